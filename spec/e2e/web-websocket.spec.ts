// XMPP over WebSocket (RFC 7395) against a real server: @xmpp/client's websocket transport
// (login, bind, ping, messages with a TCP client), and a raw client for the framing and for
// what must be refused (subprotocol, origin, sizes, binary frames, silent peers).
import { expect } from 'chai';
import { WebSocket } from 'ws';
import { client, xml, type XmppClient } from '@xmpp/client';
import type { Element } from 'ltx';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { NS, RawWs, scramLogin, sleep } from '../lib/transport/web-clients.js';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
// @xmpp/websocket uses the WHATWG WebSocket global, which Node 20 lacks; ws provides the same API.
(globalThis as { WebSocket?: unknown }).WebSocket ??= WebSocket;

function wsClient(url: string, domain: string, user: string, resource?: string): Promise<XmppClient> {
  const c = client({ service: url, domain, username: user, password: 'secret-pw', resource });
  c.on('error', () => undefined);
  return c.start().then(() => c);
}

function tcpClient(srv: TestServer, user: string, resource?: string): Promise<XmppClient> {
  const c = client({ service: `xmpp://127.0.0.1:${srv.port('c2s')}`, domain: srv.domain, username: user, password: 'secret-pw', resource });
  c.on('error', () => undefined);
  return c.start().then(() => c);
}

/** The next message with a body (the listener stays, resolving nothing more, until the client stops). */
function nextMessage(c: XmppClient): Promise<Element> {
  return new Promise((resolve) => {
    c.on('stanza', (s: Element) => {
      if (s.is('message') && s.getChild('body')) resolve(s);
    });
  });
}

/** The HTTP status with which the server refused a WebSocket upgrade (0 if it accepted). */
async function refusal(opening: Promise<RawWs>): Promise<number> {
  try {
    (await opening).close();
    return 0;
  } catch (err) {
    return (err as { status?: number }).status ?? -1;
  }
}

describe('e2e: WebSocket (RFC 7395)', function () {
  this.timeout(30_000);
  let srv: TestServer;
  let url: string;

  before(async () => {
    srv = await startTestServer({
      listeners: [
        { type: 'c2s', port: 0, address: '127.0.0.1' },
        { type: 'c2s-tls', port: 0, address: '127.0.0.1' },
        { type: 'http', port: 0, address: '127.0.0.1' },
        { type: 'https', port: 0, address: '127.0.0.1' },
      ],
      http: { websocket: { origins: ['https://app.example.net'] } },
    });
    for (const u of ['alice', 'bob']) await srv.addUser(u, 'secret-pw');
    url = `ws://127.0.0.1:${srv.port('http')}/xmpp-websocket`;
  });
  after(async () => srv?.stop());

  const httpsPort = () => srv.server.addresses.find((a) => a.type === 'https')!.port;

  it('logs in with @xmpp/client over ws://, binds a resource and answers a ping', async () => {
    const c = await wsClient(url, srv.domain, 'alice');
    try {
      expect(c.jid?.toString()).to.match(/^alice@localhost\/.+/);
      const pong = await c.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: NS.ping })));
      expect(pong.attrs.type).to.equal('result');
    } finally {
      await c.stop();
    }
  });

  it('exchanges messages both ways with a TCP client', async () => {
    const alice = await wsClient(url, srv.domain, 'alice', 'web');
    const bob = await tcpClient(srv, 'bob', 'tcp');
    try {
      await alice.send(xml('presence'));
      await bob.send(xml('presence'));
      const toBob = nextMessage(bob);
      await alice.send(xml('message', { to: 'bob@localhost/tcp', type: 'chat', id: 'w1' }, xml('body', {}, 'hello from the web')));
      const m1 = await toBob;
      expect(m1.attrs.from).to.equal('alice@localhost/web');
      expect(m1.getChildText('body')).to.equal('hello from the web');
      const toAlice = nextMessage(alice);
      await bob.send(xml('message', { to: 'alice@localhost/web', type: 'chat', id: 't1' }, xml('body', {}, 'hello from TCP <&>')));
      const m2 = await toAlice;
      expect(m2.attrs.from).to.equal('bob@localhost/tcp');
      expect(m2.getChildText('body')).to.equal('hello from TCP <&>');
    } finally {
      await alice.stop();
      await bob.stop();
    }
  });

  it('logs in over wss:// on the https listener, offering PLAIN and SCRAM-*-PLUS there', async () => {
    const wss = `wss://127.0.0.1:${httpsPort()}/xmpp-websocket`;
    const raw = await RawWs.open(wss, ['xmpp'], { rejectUnauthorized: false });
    try {
      const features = await raw.open('localhost');
      const mechs = features.child('mechanisms', NS.sasl)!.children.map((m) => m.text);
      expect(mechs).to.include('PLAIN').and.to.include('SCRAM-SHA-256-PLUS');
    } finally {
      raw.close();
    }
    const c = await wsClient(wss, srv.domain, 'alice');
    try {
      expect(c.jid?.toString()).to.match(/^alice@localhost\//);
    } finally {
      await c.stop();
    }
  });

  it('frames the stream per RFC 7395: <open/>, namespaced features and stanzas, <close/>', async () => {
    const raw = await RawWs.open(url);
    const features = await raw.open('localhost');
    const open = raw.received[0];
    expect(open.is('open', NS.framing)).to.equal(true);
    expect(open.attrs).to.include({ from: 'localhost', version: '1.0' });
    expect(open.attrs.id).to.match(/.{8,}/);
    expect(features.qname).to.equal('features');
    const success = await scramLogin((x) => raw.request(x, (n) => n.ns === NS.sasl && n.name !== 'mechanisms'), 'alice', 'secret-pw');
    expect(success.is('success', NS.sasl)).to.equal(true);
    const bindFeatures = await raw.open('localhost');
    expect(bindFeatures.child('bind', NS.bind)).to.not.equal(undefined);
    const bound = await raw.request(`<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='${NS.bind}'/></iq>`, (n) => n.is('iq'));
    expect(bound.ns, 'a stanza carries jabber:client').to.equal(NS.client);
    expect(bound.attrs.type).to.equal('result');
    const pong = await raw.request(`<iq xmlns='jabber:client' type='get' id='p1' to='localhost'><ping xmlns='${NS.ping}'/></iq>`, (n) => n.is('iq') && n.attrs.id === 'p1');
    expect(pong.ns).to.equal(NS.client);
    const close = await raw.request(`<close xmlns='${NS.framing}'/>`, (n) => n.is('close', NS.framing));
    expect(close.ns).to.equal(NS.framing);
    expect((await raw.closed).code).to.equal(1000);
  });

  it('handles messages one at a time: one sent while a SASL step is running waits for its answer', async () => {
    const raw = await RawWs.open(url);
    await raw.open('localhost');
    const from = raw.received.length;
    raw.send(`<auth xmlns='${NS.sasl}' mechanism='SCRAM-SHA-256'>${Buffer.from('n,,n=alice,r=abcdefghijklmnop').toString('base64')}</auth>`);
    raw.send(`<abort xmlns='${NS.sasl}'/>`);
    await raw.next((n) => n.is('failure', NS.sasl), from);
    expect(raw.received.slice(from).map((n) => n.name)).to.deep.equal(['challenge', 'failure']);
    raw.close();
  });

  it('refuses an upgrade without the xmpp subprotocol', async () => {
    expect(await refusal(RawWs.open(url, []))).to.equal(400);
    expect(await refusal(RawWs.open(url, ['chat', 'superchat']))).to.equal(400);
  });

  it('refuses an upgrade from a foreign origin, and accepts its own and configured ones', async () => {
    expect(await refusal(RawWs.open(url, ['xmpp'], { origin: 'https://evil.example' }))).to.equal(403);
    expect(await refusal(RawWs.open(url, ['xmpp'], { origin: 'null' }))).to.equal(403);
    for (const origin of [`http://127.0.0.1:${srv.port('http')}`, 'https://app.example.net', 'https://localhost']) {
      const raw = await RawWs.open(url, ['xmpp'], { origin });
      expect(raw.ws.protocol, origin).to.equal('xmpp');
      raw.close();
    }
  });

  it('answers a plain GET on the endpoint with 426 and other paths with 404', async () => {
    const res = await fetch(`http://127.0.0.1:${srv.port('http')}/xmpp-websocket`);
    expect(res.status).to.equal(426);
    expect(await refusal(RawWs.open(`ws://127.0.0.1:${srv.port('http')}/elsewhere`))).to.equal(404);
  });

  it('closes with a policy-violation stream error for a message over the pre-authentication limit', async () => {
    const raw = await RawWs.open(url);
    await raw.open('localhost');
    raw.send(`<iq xmlns='jabber:client' type='get' id='big'><query xmlns='jabber:iq:register'>${'x'.repeat(20_000)}</query></iq>`);
    const error = await raw.next((n) => n.is('error', NS.stream));
    expect(error.child('policy-violation', NS.streams)).to.not.equal(undefined);
    await raw.next((n) => n.is('close', NS.framing));
    await raw.closed;
  });

  it('closes the WebSocket (1009) for a frame over the stanza size limit', async () => {
    const raw = await RawWs.open(url);
    await raw.open('localhost');
    raw.send(`<message xmlns='jabber:client'><body>${'x'.repeat(300 * 1024)}</body></message>`);
    expect((await raw.closed).code).to.equal(1009);
  });

  it('closes the WebSocket (1003) for a binary frame', async () => {
    const raw = await RawWs.open(url);
    raw.ws.send(Buffer.from(`<open xmlns='${NS.framing}' to='localhost' version='1.0'/>`), { binary: true });
    expect((await raw.closed).code).to.equal(1003);
  });

  it('refuses authentication when a local proxy says the client used plain http', async () => {
    const raw = await RawWs.open(url, ['xmpp'], { headers: { 'x-forwarded-proto': 'http', 'x-forwarded-for': '198.51.100.7' } });
    await raw.open('localhost');
    const failure = await scramLogin((x) => raw.request(x, (n) => n.ns === NS.sasl && n.name !== 'mechanisms'), 'alice', 'secret-pw');
    expect(failure.is('failure', NS.sasl)).to.equal(true);
    expect(failure.child('encryption-required', NS.sasl)).to.not.equal(undefined);
    raw.close();
  });

  it('sends system-shutdown to WebSocket clients when the server stops', async () => {
    const own = await startTestServer();
    const raw = await RawWs.open(`ws://127.0.0.1:${own.port('http')}/xmpp-websocket`);
    await raw.open('localhost');
    await own.stop();
    const error = await raw.next((n) => n.is('error', NS.stream));
    expect(error.child('system-shutdown', NS.streams)).to.not.equal(undefined);
    await raw.closed;
  });

  describe('keepalive', () => {
    let quick: TestServer;
    before(async () => {
      quick = await startTestServer({ http: { websocket: { pingInterval: '150ms' } } });
    });
    after(async () => quick?.stop());

    it('keeps a connection that answers pings', async () => {
      const raw = await RawWs.open(`ws://127.0.0.1:${quick.port('http')}/xmpp-websocket`);
      await raw.open('localhost');
      const outcome = await Promise.race([raw.closed.then(() => 'closed'), sleep(800).then(() => 'open')]);
      expect(outcome).to.equal('open');
      raw.close();
    });

    it('drops a connection that misses a pong', async () => {
      const raw = await RawWs.open(`ws://127.0.0.1:${quick.port('http')}/xmpp-websocket`, ['xmpp'], { autoPong: false });
      await raw.open('localhost');
      const started = Date.now();
      const closed = await raw.closed;
      expect(closed.code).to.equal(1006); // terminated, no closing handshake
      expect(Date.now() - started).to.be.below(1_500);
    });
  });
});
