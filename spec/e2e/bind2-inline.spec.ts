// XEP-0386 Bind2 inline features over real sockets: carbons (XEP-0280) and CSI (XEP-0352) asked
// for inside <bind/> are in force from the first stanza, without the classic enable IQ or nonza;
// and XEP-0484 FAST with the HT-SHA-512 mechanisms end to end.
import { createHmac, randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { DEFAULT_PASSWORD, loggedIn, RawClient, sleep, XMLNS, type XNode } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { ScramClient } from '../lib/sasl/scram-client.js';

const SASL2 = 'urn:xmpp:sasl:2';
const BIND2 = 'urn:xmpp:bind:0';
const FAST = 'urn:xmpp:fast:0';
const CARBONS = 'urn:xmpp:carbons:2';
const CSI = 'urn:xmpp:csi:0';
const FORWARD = 'urn:xmpp:forward:0';

async function secured(srv: TestServer): Promise<RawClient> {
  const c = await RawClient.connect(srv.port('c2s'), { domain: srv.domain });
  await c.openStream();
  await c.starttls();
  await c.openStream();
  return c;
}

function sasl2Answer(c: RawClient, from: number): Promise<XNode> {
  return c.waitForElement((e) => e.ns === SASL2 && ['challenge', 'success', 'failure', 'continue'].includes(e.name), 5000, from);
}

const userAgent = (id: string) => `<user-agent id='${id}'><software>Parley spec</software><device>Phone</device></user-agent>`;

/** SCRAM-SHA-256 inside SASL2 with `extra` (user agent, Bind2, FAST) in <authenticate/>. */
async function scramSasl2(c: RawClient, user: string, extra: string): Promise<XNode> {
  const scram = new ScramClient({ hash: 'SHA-256', username: user, password: DEFAULT_PASSWORD });
  let from = c.elements.length;
  c.send(`<authenticate xmlns='${SASL2}' mechanism='SCRAM-SHA-256'><initial-response>${scram.first().toString('base64')}</initial-response>${extra}</authenticate>`);
  const challenge = await sasl2Answer(c, from);
  if (challenge.name !== 'challenge') return challenge;
  from = c.elements.length;
  c.send(`<response xmlns='${SASL2}'>${scram.final(Buffer.from(challenge.text, 'base64')).toString('base64')}</response>`);
  return sasl2Answer(c, from);
}

describe('e2e: Bind2 inline carbons and CSI; FAST HT-SHA-512', function () {
  this.timeout(20_000);
  let srv: TestServer;
  const clients: RawClient[] = [];

  before(async () => {
    srv = await startTestServer({ modules: { csi: { maxHeld: 50 } } });
    for (const user of ['alice', 'bob', 'carol']) await srv.addUser(user, DEFAULT_PASSWORD);
  });
  after(async () => srv?.stop());
  afterEach(() => {
    for (const c of clients.splice(0)) c.destroy();
  });

  it('a session bound with <enable/> carbons and <inactive/> CSI inside <bind/> gets carbon copies at once and has presence held', async () => {
    const phone = await secured(srv);
    clients.push(phone);
    const bind = `<bind xmlns='${BIND2}'><tag>phone</tag><enable xmlns='${CARBONS}'/><inactive xmlns='${CSI}'/></bind>`;
    const success = await scramSasl2(phone, 'alice', `${userAgent(randomUUID())}${bind}`);
    expect(success.name, success.toString()).to.equal('success');
    const phoneJid = success.child('authorization-identifier')!.text;
    expect(phoneJid.startsWith('alice@localhost/phone')).to.equal(true);
    // Initial presence, so that presence from a contact is routed to this resource.
    phone.send(`<presence/>`);
    await phone.ping();

    const desk = await loggedIn(srv, 'alice', { resource: 'desk' });
    const bob = await loggedIn(srv, 'bob', { resource: 'pc' });
    clients.push(desk, bob);

    // Carbons: bob writes to alice's other resource; the phone never sent the enable IQ.
    bob.send(`<message to='alice@localhost/desk' type='chat' id='c1'><body>to the desk</body></message>`);
    await desk.waitForElement((e) => e.is('message') && e.child('body')?.text === 'to the desk');
    const carbon = await phone.waitForElement((e) => e.is('message') && e.child('received', CARBONS) !== undefined);
    const inner = carbon.child('received', CARBONS)!.child('forwarded', FORWARD)!.child('message')!;
    expect(inner.child('body')!.text).to.equal('to the desk');
    expect(carbon.attrs.from).to.equal('alice@localhost');

    // CSI: a presence update for the phone waits while it is inactive (it never sent <inactive/> as a nonza).
    const from = phone.elements.length;
    bob.send(`<presence to='${phoneJid}'><status>away for lunch</status></presence>`);
    await bob.ping();
    await sleep(300);
    const presences = () => phone.elements.slice(from).filter((e) => e.is('presence', XMLNS.client) && e.child('status')?.text === 'away for lunch');
    expect(presences()).to.have.length(0);
    phone.send(`<active xmlns='${CSI}'/>`);
    await phone.waitForElement((e) => e.is('presence', XMLNS.client) && e.child('status')?.text === 'away for lunch', 5000, from);
    expect(presences()).to.have.length(1);
  });

  it('without the inline features, the same session gets neither carbon copies nor held presence (control)', async () => {
    const phone = await secured(srv);
    clients.push(phone);
    const success = await scramSasl2(phone, 'carol', `${userAgent(randomUUID())}<bind xmlns='${BIND2}'><tag>phone</tag></bind>`);
    expect(success.name).to.equal('success');
    const phoneJid = success.child('authorization-identifier')!.text;
    phone.send(`<presence/>`);
    await phone.ping();
    const desk = await loggedIn(srv, 'carol', { resource: 'desk' });
    const bob = await loggedIn(srv, 'bob', { resource: 'pc2' });
    clients.push(desk, bob);
    bob.send(`<message to='carol@localhost/desk' type='chat'><body>only desk</body></message>`);
    await desk.waitForElement((e) => e.is('message') && e.child('body')?.text === 'only desk');
    bob.send(`<presence to='${phoneJid}'><status>visible now</status></presence>`);
    await phone.waitForElement((e) => e.is('presence', XMLNS.client) && e.child('status')?.text === 'visible now');
    await phone.ping();
    expect(phone.elements.some((e) => e.child('received', CARBONS) !== undefined)).to.equal(false);
  });

  for (const mechanism of ['HT-SHA-512-NONE', 'HT-SHA-512-EXPR']) {
    it(`FAST: a token issued for ${mechanism} logs in with an HMAC-SHA-512 proof in one round trip`, async () => {
      const ua = randomUUID();
      const first = await secured(srv);
      clients.push(first);
      const features = first.elements.filter((e) => e.is('features')).at(-1)!;
      const offered = features.child('authentication', SASL2)!.child('inline')!.child('fast', FAST)!.children.map((m) => m.text);
      expect(offered).to.include.members(['HT-SHA-512-NONE', 'HT-SHA-512-EXPR', 'HT-SHA-256-NONE']);
      const success = await scramSasl2(first, 'alice', `${userAgent(ua)}<request-token xmlns='${FAST}' mechanism='${mechanism}'/>`);
      expect(success.name, success.toString()).to.equal('success');
      const token = success.child('token', FAST)!.attrs.token!;
      expect(token.length).to.be.greaterThan(128);
      first.destroy();

      const again = await secured(srv);
      clients.push(again);
      const cb = mechanism.endsWith('-EXPR') ? again.tlsExporter() : Buffer.alloc(0);
      const proof = createHmac('sha512', Buffer.from(token)).update(Buffer.concat([Buffer.from('Initiator'), cb])).digest();
      const from = again.elements.length;
      const initial = Buffer.concat([Buffer.from('alice\0'), proof]).toString('base64');
      again.send(`<authenticate xmlns='${SASL2}' mechanism='${mechanism}'><initial-response>${initial}</initial-response>${userAgent(ua)}<fast xmlns='${FAST}'/></authenticate>`);
      const answer = await sasl2Answer(again, from);
      expect(answer.name, answer.toString()).to.equal('success');
      const responder = createHmac('sha512', Buffer.from(token)).update(Buffer.concat([Buffer.from('Responder'), cb])).digest('base64');
      expect(answer.child('additional-data')!.text).to.equal(responder);

      // The same token under the SHA-256 variant is not accepted.
      const third = await secured(srv);
      clients.push(third);
      const proof256 = createHmac('sha256', Buffer.from(token)).update('Initiator').digest();
      const from3 = third.elements.length;
      third.send(`<authenticate xmlns='${SASL2}' mechanism='HT-SHA-256-NONE'><initial-response>${Buffer.concat([Buffer.from('alice\0'), proof256]).toString('base64')}</initial-response>${userAgent(ua)}</authenticate>`);
      expect((await sasl2Answer(third, from3)).name).to.equal('failure');
    });
  }
});
