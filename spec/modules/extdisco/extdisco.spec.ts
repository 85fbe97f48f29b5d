import { createHmac } from 'node:crypto';
import { expect } from 'chai';
import { NS, xml } from '../../../lib/module-api.js';
import disco from '../../../modules/disco/index.js';
import extdisco from '../../../modules/extdisco/index.js';
import { Harness, type TestClient } from '../../helpers/harness.js';
import { expectError, expectXml } from '../../helpers/xml-assert.js';

const NS_EXTDISCO = 'urn:xmpp:extdisco:2';
const SECRET = 'coturn-static-auth-secret';

const services = [
  { type: 'stun', host: 'stun.example.com', port: 3478, transport: 'udp' },
  { type: 'turn', host: 'turn.example.com', port: 3478, transport: 'udp', secret: SECRET, ttl: '1h' },
  { type: 'turns', host: 'turn.example.com', port: 5349, transport: 'tcp', secret: SECRET },
];

/** Checks TURN REST credentials as coturn does: the password is base64(HMAC-SHA1(secret, username)). */
function checkCredentials(service: { attrs: Record<string, unknown> }, user: string, ttlSeconds: number): void {
  const username = service.attrs.username as string;
  const [expiry, jid] = username.split(/:(.*)/s);
  expect(jid).to.equal(user);
  const now = Math.floor(Date.now() / 1000);
  expect(Number(expiry)).to.be.within(now + ttlSeconds - 5, now + ttlSeconds + 1);
  expect(service.attrs.password).to.equal(createHmac('sha1', SECRET).update(username).digest('base64'));
  expect(Date.parse(service.attrs.expires as string) / 1000).to.equal(Number(expiry));
}

describe('extdisco (XEP-0215)', () => {
  let h: Harness;
  let alice: TestClient;

  async function boot(options: Record<string, unknown> = { services }): Promise<void> {
    h = await Harness.start({ hosts: ['example.com', 'other.org'], modules: [disco, extdisco], options: { extdisco: options } });
    await h.createAccount('alice', 'pw');
    alice = await h.connect('alice@example.com/phone');
  }
  afterEach(() => h.stop());

  it('shows urn:xmpp:extdisco:2 in the server\'s disco#info', async () => {
    await boot();
    const reply = await alice.get(xml('query', { xmlns: NS.discoInfo }));
    expect(reply.getChild('query')!.getChildren('feature').map((f) => f.attrs.var)).to.include(NS_EXTDISCO);
  });

  it('lists every service, with temporary TURN credentials where a secret is set', async () => {
    await boot();
    const reply = await alice.get(xml('services', { xmlns: NS_EXTDISCO }));
    expect(reply.attrs.type).to.equal('result');
    const list = reply.getChild('services', NS_EXTDISCO)!.getChildren('service');
    expect(list).to.have.length(3);
    expectXml(list[0], `<service type='stun' host='stun.example.com' port='3478' transport='udp'/>`);
    expectXml(list[1], `<service type='turn' host='turn.example.com' port='3478' transport='udp' username='*' password='*' expires='*'/>`);
    checkCredentials(list[1]!, 'alice@example.com', 3600);
    checkCredentials(list[2]!, 'alice@example.com', 86400);
  });

  it('filters by type', async () => {
    await boot();
    const reply = await alice.get(xml('services', { xmlns: NS_EXTDISCO, type: 'turns' }));
    const el = reply.getChild('services', NS_EXTDISCO)!;
    expect(el.attrs.type).to.equal('turns');
    expect(el.getChildren('service').map((s) => s.attrs.port)).to.deep.equal(['5349']);
  });

  it('answers a credentials request for one service (§3.3)', async () => {
    await boot();
    const reply = await alice.get(xml('credentials', { xmlns: NS_EXTDISCO }, xml('service', { type: 'turn', host: 'turn.example.com' })));
    const s = reply.getChild('credentials', NS_EXTDISCO)!.getChild('service')!;
    expect(s.attrs.port).to.equal('3478');
    checkCredentials(s, 'alice@example.com', 3600);
    const byPort = await alice.get(xml('credentials', { xmlns: NS_EXTDISCO }, xml('service', { type: 'turns', host: 'turn.example.com', port: '5349' })));
    checkCredentials(byPort.getChild('credentials')!.getChild('service')!, 'alice@example.com', 86400);
  });

  it('answers item-not-found for an unknown service and bad-request without host and type', async () => {
    await boot();
    expectError(await alice.get(xml('credentials', { xmlns: NS_EXTDISCO }, xml('service', { type: 'turn', host: 'nowhere.example' }))), 'item-not-found');
    expectError(await alice.get(xml('credentials', { xmlns: NS_EXTDISCO }, xml('service', { type: 'turn' }))), 'bad-request');
    expectError(await alice.get(xml('credentials', { xmlns: NS_EXTDISCO })), 'bad-request');
  });

  it('gives nothing to users of another host', async () => {
    await boot();
    await h.createAccount('bob', 'pw', 'other.org');
    const bob = await h.connect('bob@other.org/pc');
    expectError(await bob.get(xml('services', { xmlns: NS_EXTDISCO }), 'example.com'), 'forbidden');
  });

  it('refuses an unknown service type in the config', () => {
    expect(() => extdisco.config.parse({ services: [{ type: 'ftp', host: 'x' }] })).to.throw();
  });
});
