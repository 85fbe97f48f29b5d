// BOSH (XEP-0124/XEP-0206) against a real server: StanzaJS's BOSH transport (login with SASL
// and stream restart, bind, ping, messages with a TCP client), and a raw client for the
// protocol rules: rid order and window, resent answers, hold and wait, terminate, limits.
import { expect } from 'chai';
import { createClient, type Agent } from 'stanza';
import { client, xml, type XmppClient } from '@xmpp/client';
import type { Element } from 'ltx';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { NS, RawBosh, boshPost, httpRequest, sleep } from '../lib/transport/web-clients.js';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

function tcpClient(srv: TestServer, user: string, resource?: string): Promise<XmppClient> {
  const c = client({ service: `xmpp://127.0.0.1:${srv.port('c2s')}`, domain: srv.domain, username: user, password: 'secret-pw', resource });
  c.on('error', () => undefined);
  return c.start().then(() => c);
}

describe('e2e: BOSH (XEP-0124, XEP-0206)', function () {
  this.timeout(30_000);
  let srv: TestServer;
  let port: number;

  before(async () => {
    srv = await startTestServer({ http: { websocket: { origins: ['https://app.example.net'] } } });
    for (const u of ['alice', 'bob', 'carol']) await srv.addUser(u, 'secret-pw');
    port = srv.port('http');
  });
  after(async () => srv?.stop());

  describe('with StanzaJS', () => {
    let stanza: Agent | undefined;
    afterEach(async () => {
      if (stanza) {
        const s = stanza;
        stanza = undefined;
        const gone = new Promise((r) => s.once('disconnected', r));
        s.disconnect();
        await gone;
      }
    });

    it('logs in (SASL, restart, bind), pings, and exchanges messages with a TCP client', async () => {
      const s = createClient({
        jid: 'alice@localhost',
        password: 'secret-pw',
        resource: 'bosh',
        transports: { bosh: `http://127.0.0.1:${port}/http-bind`, websocket: false },
      });
      stanza = s;
      const sent: string[] = [];
      s.on('raw', (dir, data) => {
        if (dir === 'outgoing') sent.push(data);
      });
      const started = new Promise((r) => s.once('session:started', r));
      s.connect();
      await started;
      expect(s.jid).to.equal('alice@localhost/bosh');
      expect(sent.some((b) => /xmpp:restart=["']true["']/.test(b)), 'the client restarted the stream').to.equal(true);
      await s.ping('localhost');

      const bob = await tcpClient(srv, 'bob', 'tcp');
      try {
        await bob.send(xml('presence'));
        await s.sendPresence();
        const toBob = new Promise<Element>((resolve) => bob.on('stanza', (el) => el.is('message') && resolve(el)));
        s.sendMessage({ to: 'bob@localhost/tcp', type: 'chat', body: 'hello over BOSH' });
        const m1 = await toBob;
        expect(m1.attrs.from).to.equal('alice@localhost/bosh');
        expect(m1.getChildText('body')).to.equal('hello over BOSH');

        const toAlice = new Promise<{ from?: string; body?: string }>((resolve) => s.once('message', (m) => resolve(m)));
        await bob.send(xml('message', { to: 'alice@localhost/bosh', type: 'chat' }, xml('body', {}, 'and back over a held request')));
        const m2 = await toAlice;
        expect(m2.from).to.equal('bob@localhost/tcp');
        expect(m2.body).to.equal('and back over a held request');
      } finally {
        await bob.stop();
      }
    });
  });

  describe('session creation', () => {
    it('answers with sid, limits and the first features (XEP-0206 §5), as text/xml', async () => {
      const b = new RawBosh(port, 'localhost');
      const answer = await b.create({ wait: '600', hold: '5' });
      expect(answer.status).to.equal(200);
      expect(answer.headers['content-type']).to.equal('text/xml; charset=utf-8');
      const body = answer.body!;
      expect(body.is('body', NS.httpbind)).to.equal(true);
      expect(body.attrs.sid).to.match(/^[A-Za-z0-9_-]{20,}$/);
      expect(body.attrs).to.include({ wait: '60', hold: '1', requests: '2', ver: '1.11', from: 'localhost', 'xmpp:version': '1.0', 'xmpp:restartlogic': 'true' });
      expect(Number(body.attrs.inactivity)).to.be.greaterThan(0);
      expect(body.attrs.authid).to.match(/.{8,}/);
      const features = body.child('features', NS.stream)!;
      expect(features.child('mechanisms', NS.sasl)).to.not.equal(undefined);
      await b.send('', { type: 'terminate' });
    });

    it('refuses an unknown domain with host-unknown and an unknown sid with item-not-found', async () => {
      const unknownHost = await new RawBosh(port, 'elsewhere.example').create();
      expect(unknownHost.body?.attrs).to.include({ type: 'terminate', condition: 'host-unknown' });
      const unknownSid = await boshPost(port, `<body xmlns='${NS.httpbind}' sid='nope' rid='5'/>`);
      expect(unknownSid.body?.attrs).to.include({ type: 'terminate', condition: 'item-not-found' });
    });

    it('answers malformed bodies with 400 and bodies over the size limit with 413', async () => {
      for (const bad of ['<body', `<body rid='1'/>`, `<bod xmlns='${NS.httpbind}' rid='1'/>`, `<body xmlns='${NS.httpbind}' rid='x'/>`, `<!DOCTYPE body><body xmlns='${NS.httpbind}' rid='1'/>`]) {
        const answer = await boshPost(port, bad);
        expect(answer.status, bad).to.equal(400);
      }
      const huge = await boshPost(port, `<body xmlns='${NS.httpbind}' rid='1'>${'x'.repeat(1100 * 1024)}</body>`);
      expect(huge.status).to.equal(413);
    });

    it('answers CORS preflights and requests from allowed origins, and refuses others', async () => {
      const pre = await httpRequest(port, 'OPTIONS', '/http-bind', undefined, { origin: 'https://app.example.net', 'access-control-request-method': 'POST' });
      expect(pre.status).to.equal(204);
      expect(pre.headers).to.include({ 'access-control-allow-origin': 'https://app.example.net', 'access-control-allow-methods': 'POST, OPTIONS' });
      expect(pre.headers['access-control-allow-headers']).to.match(/content-type/i);
      const b = new RawBosh(port, 'localhost');
      const answer = await boshPost(port, `<body xmlns='${NS.httpbind}' xmlns:xmpp='${NS.xbosh}' rid='7' to='localhost' wait='5' hold='1' xmpp:version='1.0'/>`, { origin: 'https://app.example.net' });
      expect(answer.headers['access-control-allow-origin']).to.equal('https://app.example.net');
      b.sid = answer.body!.attrs.sid!;
      b.rid = 8;
      await b.send('', { type: 'terminate' });
      const refused = await boshPost(port, `<body xmlns='${NS.httpbind}' rid='1' to='localhost'/>`, { origin: 'https://evil.example' });
      expect(refused.status).to.equal(403);
    });
  });

  describe('requests', () => {
    it('terminates the session with item-not-found for a rid outside the window', async () => {
      const b = new RawBosh(port, 'localhost');
      await b.create();
      const answer = await b.send('', {}, b.rid + 5);
      expect(answer.body?.attrs).to.include({ type: 'terminate', condition: 'item-not-found' });
      const after = await b.send();
      expect(after.body?.attrs).to.include({ type: 'terminate', condition: 'item-not-found' });
    });

    it('terminates with item-not-found for a rid used long ago', async () => {
      const b = new RawBosh(port, 'localhost', 5000);
      await b.create({ wait: '1' });
      for (let i = 0; i < 3; i++) await b.send();
      const stale = await b.send('', {}, 5001);
      expect(stale.body?.attrs).to.include({ type: 'terminate', condition: 'item-not-found' });
    });

    const SCRAM_FIRST = `<auth xmlns='${NS.sasl}' mechanism='SCRAM-SHA-256'>${Buffer.from('n,,n=alice,r=abcdefghijklmnop').toString('base64')}</auth>`;

    it('sends the same answer again when a client repeats the last rid (a lost response)', async () => {
      const b = new RawBosh(port, 'localhost');
      await b.create();
      const rid = b.rid;
      const first = await b.send(SCRAM_FIRST, {}, rid);
      expect(first.body?.child('challenge', NS.sasl)).to.not.equal(undefined);
      const again = await b.send('', {}, rid);
      expect(again.text).to.equal(first.text);
      await b.send('', { type: 'terminate' });
    });

    it('processes a request that arrives early only after the one before it, in rid order', async () => {
      const b = new RawBosh(port, 'localhost');
      await b.create({ hold: '1', wait: '5' });
      const rid = b.rid;
      // rid+1 aborts the SASL exchange that rid starts: processed the other way round, there
      // would be no challenge (abort first, then a fresh exchange that is still waiting).
      const early = b.send(`<abort xmlns='${NS.sasl}'/>`, {}, rid + 1);
      await sleep(200);
      const late = b.send(SCRAM_FIRST, {}, rid);
      const answers = await Promise.all([late, early]);
      const names = answers.flatMap((a) => a.body?.children ?? []).map((c) => c.name);
      expect(names).to.include('challenge').and.to.include('failure');
      expect(names.indexOf('challenge'), names.join()).to.be.lessThan(names.indexOf('failure'));
      b.rid = rid + 2;
      await b.send('', { type: 'terminate' });
    });

    it('holds an empty request until wait elapses, and answers the older of two at once (hold=1)', async () => {
      const b = new RawBosh(port, 'localhost');
      await b.create({ wait: '1', hold: '1' });
      const held = await b.send();
      expect(held.ms).to.be.within(800, 2_500);
      expect(held.body?.children).to.deep.equal([]);
      const first = b.send();
      await sleep(150);
      const second = b.send();
      const a1 = await first;
      expect(a1.ms, 'the first request is released when the second arrives').to.be.below(700);
      const a2 = await second;
      expect(a2.ms).to.be.within(700, 2_500);
      await b.send('', { type: 'terminate' });
    });

    it('delivers a message to the held request as soon as it arrives, and none is lost or reordered', async () => {
      const b = new RawBosh(port, 'localhost');
      await b.create({ wait: '10', hold: '1' });
      const jid = await b.login('carol', 'secret-pw', 'raw');
      expect(jid).to.equal('carol@localhost/raw');
      const bob = await tcpClient(srv, 'bob', 'order');
      try {
        const bodies: string[] = [];
        const collect = (a: Awaited<ReturnType<RawBosh['send']>>) => {
          for (const c of a.body?.children ?? []) if (c.is('message', NS.client)) bodies.push(c.child('body')!.text);
          return a;
        };
        const presence = b.send(`<presence xmlns='jabber:client'/>`);
        await sleep(100);
        const held = b.send(); // releases the presence request (hold=1) and waits for data
        collect(await presence);
        await sleep(200);
        const started = Date.now();
        for (let i = 0; i < 20; i++) await bob.send(xml('message', { to: 'carol@localhost/raw', type: 'chat' }, xml('body', {}, `m${i}`)));
        const first = collect(await held);
        expect(Date.now() - started, 'answered when data came, not at wait').to.be.below(2_000);
        expect(first.body?.children.length).to.be.greaterThan(0);
        while (bodies.length < 20) collect(await b.send());
        expect(bodies).to.deep.equal(Array.from({ length: 20 }, (_, i) => `m${i}`));
      } finally {
        await bob.stop();
        await b.send('', { type: 'terminate' });
      }
    });

    it('ends the session on terminate, delivering the stanzas sent with it', async () => {
      const b = new RawBosh(port, 'localhost');
      await b.create();
      await b.login('alice', 'secret-pw', 'term');
      const answer = await b.send(`<presence xmlns='jabber:client' type='unavailable'/>`, { type: 'terminate' });
      expect(answer.body?.attrs.type).to.equal('terminate');
      const after = await b.send();
      expect(after.body?.attrs).to.include({ type: 'terminate', condition: 'item-not-found' });
    });

    it('wraps a stream error in a terminate body with remote-stream-error', async () => {
      const b = new RawBosh(port, 'localhost');
      await b.create();
      const answer = await b.send(`<message xmlns='jabber:client' to='bob@localhost'><body>before auth</body></message>`);
      expect(answer.body?.attrs).to.include({ type: 'terminate', condition: 'remote-stream-error' });
      const error = answer.body!.child('error', NS.stream)!;
      expect(error.child('not-authorized', NS.streams)).to.not.equal(undefined);
    });

    it('answers held requests at once when the client pauses the session', async () => {
      const b = new RawBosh(port, 'localhost');
      await b.create({ wait: '10' });
      const pending = b.send();
      await sleep(100);
      const pause = await b.send('', { pause: '5' });
      expect(pause.ms).to.be.below(1_000);
      expect((await pending).ms).to.be.below(1_000);
      const resumed = await b.send('', { type: 'terminate' });
      expect(resumed.body?.attrs.type).to.equal('terminate');
    });
  });

  describe('inactivity', () => {
    let quick: TestServer;
    before(async () => {
      quick = await startTestServer({ http: { bosh: { inactivity: '500ms' } } });
    });
    after(async () => quick?.stop());

    it('ends a session that sends no request for the inactivity period', async () => {
      const b = new RawBosh(quick.port('http'), 'localhost');
      const created = await b.create();
      expect(created.body?.attrs.sid).to.be.a('string');
      await sleep(1_200);
      const late = await b.send();
      expect(late.body?.attrs).to.include({ type: 'terminate', condition: 'item-not-found' });
    });
  });
});
