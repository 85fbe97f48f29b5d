// XEP-0114 external components over a real socket: handshake, stanzas both ways (also from a
// user of another server, over federation), and the refusals.
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { DEFAULT_PASSWORD, loggedIn, RawClient, sleep, XMLNS, type XNode } from '../helpers/raw-client.js';
import { federatedServer, s2sPort } from '../lib/s2s/federation-helpers.js';

const COMPONENT_NS = 'jabber:component:accept';

function componentPort(srv: TestServer): number {
  return srv.server.addresses.find((a) => a.type === 'component')!.port;
}

/** Opens a component stream for `domain`; resolves with the client and the stream id. */
async function openComponent(srv: TestServer, domain: string): Promise<{ c: RawClient; id: string }> {
  const c = await RawClient.connect(componentPort(srv), { domain });
  c.open(domain, { xmlns: COMPONENT_NS, version: undefined, 'xml:lang': undefined });
  await c.waitFor(/<stream:stream[^>]*>/);
  return { c, id: c.headers[0]?.id ?? '' };
}

async function component(srv: TestServer, domain: string, secret: string): Promise<RawClient> {
  const { c, id } = await openComponent(srv, domain);
  c.send(`<handshake>${createHash('sha1').update(id + secret).digest('hex')}</handshake>`);
  await c.waitForElement((e) => e.name === 'handshake');
  return c;
}

const streamError = async (c: RawClient): Promise<string | undefined> => (await c.streamError()).elements(XMLNS.streams).find((e) => e.name !== 'text')?.name;

describe('e2e: external components (XEP-0114)', function () {
  this.timeout(30_000);
  let a: TestServer;
  let alice: RawClient;
  const open: RawClient[] = [];

  before(async () => {
    a = await startTestServer(
      {
        listeners: [
          { type: 'c2s', port: 0, address: '127.0.0.1' },
          { type: 's2s', port: 0, address: '127.0.0.1' },
          { type: 'component', port: 0, address: '127.0.0.1', secret: 'listener-secret', components: ['bot.a.test', { domain: 'gw.a.test', secret: 'gw-secret' }] },
        ],
      },
      'a.test',
    );
    await a.addUser('alice', DEFAULT_PASSWORD);
    alice = await loggedIn(a, 'alice', { resource: 'r' });
  });

  afterEach(async () => {
    for (const c of open.splice(0)) c.destroy();
    // Let the server see those connections go before the next test claims the same domain.
    await sleep(50);
  });

  after(async () => {
    alice?.destroy();
    await a?.stop();
  });

  it('accepts the handshake and exchanges stanzas with local users', async () => {
    const bot = await component(a, 'bot.a.test', 'listener-secret');
    open.push(bot);
    alice.send(`<message to='echo@bot.a.test' id='c1' type='chat'><body>ping</body></message>`);
    const got = await bot.waitForElement((e) => e.is('message') && e.attrs.id === 'c1');
    expect(got.attrs.from).to.equal('alice@a.test/r');
    expect(got.ns).to.equal(COMPONENT_NS);
    bot.send(`<message from='echo@bot.a.test' to='alice@a.test/r' id='c2' type='chat'><body>pong</body></message>`);
    const back = await alice.waitForElement((e) => e.is('message') && e.attrs.id === 'c2');
    expect(back.attrs.from).to.equal('echo@bot.a.test');
    // An IQ to the component's domain is the component's to answer.
    alice.send(`<iq to='bot.a.test' type='get' id='c3'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`);
    const iq = await bot.waitForElement((e) => e.is('iq') && e.attrs.id === 'c3');
    bot.send(`<iq from='bot.a.test' to='${iq.attrs.from}' type='result' id='c3'><query xmlns='http://jabber.org/protocol/disco#info'><identity category='component' type='generic'/></query></iq>`);
    const answer = await alice.waitForElement((e) => e.is('iq') && e.attrs.id === 'c3');
    expect(answer.attrs.type).to.equal('result');
  });

  it('takes a per-component secret over the listener one', async () => {
    const { c, id } = await openComponent(a, 'gw.a.test');
    open.push(c);
    c.send(`<handshake>${createHash('sha1').update(id + 'listener-secret').digest('hex')}</handshake>`);
    expect(await streamError(c)).to.equal('not-authorized');
    open.push(await component(a, 'gw.a.test', 'gw-secret'));
  });

  it('refuses a wrong handshake with not-authorized', async () => {
    const { c } = await openComponent(a, 'bot.a.test');
    open.push(c);
    c.send(`<handshake>0000000000000000000000000000000000000000</handshake>`);
    expect(await streamError(c)).to.equal('not-authorized');
  });

  it('refuses an unknown component domain with host-unknown', async () => {
    const c = await RawClient.connect(componentPort(a), { domain: 'nobody.a.test' });
    open.push(c);
    c.open('nobody.a.test', { xmlns: COMPONENT_NS, version: undefined });
    expect(await streamError(c)).to.equal('host-unknown');
  });

  it('refuses a second connection for a connected domain with conflict', async () => {
    open.push(await component(a, 'bot.a.test', 'listener-secret'));
    const { c, id } = await openComponent(a, 'bot.a.test');
    open.push(c);
    c.send(`<handshake>${createHash('sha1').update(id + 'listener-secret').digest('hex')}</handshake>`);
    expect(await streamError(c)).to.equal('conflict');
  });

  it('closes with invalid-from when the component writes a from outside its domain', async () => {
    const bot = await component(a, 'bot.a.test', 'listener-secret');
    open.push(bot);
    bot.send(`<message from='admin@a.test' to='alice@a.test'><body>spoof</body></message>`);
    expect(await streamError(bot)).to.equal('invalid-from');
  });

  it('bounces stanzas for a component that is not connected with service-unavailable', async () => {
    alice.send(`<message to='x@gw.a.test' id='off' type='chat'><body>anyone?</body></message>`);
    const err = await alice.waitForElement((e: XNode) => e.is('message') && e.attrs.id === 'off');
    expect(err.attrs.type).to.equal('error');
    expect(err.child('error')?.child('service-unavailable', XMLNS.stanzas)).to.not.equal(undefined);
  });

  it('serves users of another server over federation (the component domain verified by dialback)', async () => {
    const b = await federatedServer('b.test');
    try {
      await b.addUser('bob', DEFAULT_PASSWORD);
      const bob = await loggedIn(b, 'bob', { resource: 'r' });
      open.push(bob);
      bob.send('<presence/>');
      b.server.federation!.setTarget('bot.a.test', { host: '127.0.0.1', port: s2sPort(a), directTls: false });
      a.server.federation!.setTarget('b.test', { host: '127.0.0.1', port: s2sPort(b), directTls: false });
      const bot = await component(a, 'bot.a.test', 'listener-secret');
      open.push(bot);
      bob.send(`<message to='echo@bot.a.test' id='fed1' type='chat'><body>from afar</body></message>`);
      const got = await bot.waitForElement((e) => e.is('message') && e.attrs.id === 'fed1', 10_000);
      expect(got.attrs.from).to.equal('bob@b.test/r');
      bot.send(`<message from='echo@bot.a.test' to='bob@b.test/r' id='fed2' type='chat'><body>hello there</body></message>`);
      const back = await bob.waitForElement((e) => e.is('message') && e.attrs.id === 'fed2', 10_000);
      expect(back.attrs.from).to.equal('echo@bot.a.test');
    } finally {
      await b.stop();
    }
  });
});
