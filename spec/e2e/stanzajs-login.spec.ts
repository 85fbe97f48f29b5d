// StanzaJS 12 (npm `stanza`) against a real server: STARTTLS and direct TLS, SCRAM and PLAIN,
// SCRAM-*-PLUS with tls-unique, bind, ping, and messages at full JIDs.
//
// Stanza ships only WebSocket and BOSH transports and Parley has neither yet, so the client runs
// over the small TCP transport and STARTTLS feature in clients/stanza-tcp.ts, installed through
// Stanza's own `transports` and `registerFeature` hooks; SASL, bind, IQs and messages are
// Stanza's code. Its -PLUS support is tls-unique only, supplied as the `tlsUnique` credential
// (the client's Finished message), so -PLUS runs over TLS 1.2.
import { expect } from 'chai';
import { createClient, type Agent } from 'stanza';
import { client as xmppClient } from '@xmpp/client';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { starttlsFeature, tcpTransport, type StanzaTcpTransport } from './clients/stanza-tcp.js';

// @xmpp/client, for the cross-client message, meets the generated self-signed certificate.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

interface Session {
  client: Agent;
  transport: StanzaTcpTransport;
  /** The mechanism and the decoded initial response of the <auth/> Stanza sent. */
  auth: { mechanism: string; initial: string };
  close(): Promise<void>;
}

interface ConnectOptions {
  user: string;
  password?: string;
  mechanism: string;
  direct?: boolean;
  resource?: string;
  maxTls?: 'TLSv1.2';
}

// What Stanza 12 registers (Client constructor) and what Parley offers after TLS.
const STANZA_MECHANISMS = ['EXTERNAL', 'SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-1', 'DIGEST-MD5', 'OAUTHBEARER', 'X-OAUTH2', 'PLAIN', 'ANONYMOUS'];
const PARLEY_MECHANISMS = ['SCRAM-SHA-512-PLUS', 'SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-512', 'SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'];

const SASL_AUTH = /<auth\b[^>]*\bmechanism=["']([^"']+)["'][^>]*>([^<]*)<\/auth>/;

describe('e2e: stanza.js', function () {
  this.timeout(15_000);
  let srv: TestServer;
  const open: Session[] = [];

  before(async () => {
    srv = await startTestServer();
    for (const user of ['alice', 'bob', 'mallory']) await srv.addUser(user, 'secret-pw');
  });
  after(async () => srv?.stop());
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });

  function createSession(opts: ConnectOptions): Session {
    const url = opts.direct ? `xmpps://127.0.0.1:${srv.port('c2s-tls')}` : `xmpp://127.0.0.1:${srv.port('c2s')}`;
    const client = createClient({
      jid: `${opts.user}@${srv.domain}`,
      password: opts.password ?? 'secret-pw',
      resource: opts.resource,
      transports: { tcp: url, websocket: false, bosh: false },
      transportPreferenceOrder: ['tcp'],
      useStreamManagement: false,
    });
    client.transports.tcp = tcpTransport({ maxVersion: opts.maxTls });
    client.use(starttlsFeature);
    // Force the mechanism through Stanza's own SASL factory, and check that, offered all of
    // Parley's, it picks that one.
    for (const name of STANZA_MECHANISMS) if (name !== opts.mechanism) client.sasl.disable(name);
    expect(client.sasl.createMechanism(PARLEY_MECHANISMS)?.name).to.equal(opts.mechanism);

    const session = { client, auth: { mechanism: '', initial: '' } } as Session;
    client.on('raw:outgoing', (data) => {
      const m = SASL_AUTH.exec(data);
      if (m) session.auth = { mechanism: m[1]!, initial: Buffer.from(m[2]!, 'base64').toString('utf8') };
    });
    if (process.env.PARLEY_E2E_DEBUG) client.on('raw', (dir, data) => console.error(`${dir === 'incoming' ? 'RECV' : 'SEND'}: ${data}`));
    if (opts.mechanism.endsWith('-PLUS')) {
      // tls-unique (RFC 5929 §3.1): the first Finished of the handshake, the client's own in a
      // full one. Set once the stream restarts over TLS, before SASL asks for credentials.
      client.on('stream:start', () => {
        const finished = (client.transport as StanzaTcpTransport | undefined)?.tlsSocket?.getFinished();
        if (finished) client.config.credentials = { ...client.config.credentials, tlsUnique: finished };
      });
    }
    session.close = async () => {
      if (!client.transport) return;
      const gone = new Promise<void>((resolve) => client.once('disconnected', () => resolve()));
      client.disconnect();
      await gone;
    };
    open.push(session);
    return session;
  }

  async function connect(opts: ConnectOptions): Promise<Session> {
    const session = createSession(opts);
    const { client } = session;
    await new Promise<void>((resolve, reject) => {
      client.once('session:started', () => resolve());
      client.once('auth:failed', () => reject(new Error('authentication failed')));
      client.once('disconnected', () => reject(new Error('disconnected before the session started')));
      client.connect();
    });
    session.transport = client.transport as StanzaTcpTransport;
    return session;
  }

  async function pingServer(client: Agent): Promise<void> {
    const res = await client.sendIQ({ to: srv.domain, type: 'get', ping: true });
    expect(res.type).to.equal('result');
    expect(res.from).to.equal(srv.domain);
  }

  for (const mechanism of ['SCRAM-SHA-1', 'SCRAM-SHA-256', 'PLAIN']) {
    for (const direct of [false, true]) {
      it(`logs in with ${mechanism} over ${direct ? 'direct TLS' : 'STARTTLS'}, binds and pings the server`, async () => {
        const { client, transport, auth } = await connect({ user: 'alice', mechanism, direct });
        expect(client.jid).to.match(/^alice@localhost\/.+/);
        expect(auth.mechanism).to.equal(mechanism);
        if (mechanism !== 'PLAIN') expect(auth.initial).to.match(/^n,,n=alice,r=/);
        expect(transport.tlsSocket?.getProtocol()).to.equal('TLSv1.3');
        if (direct) expect(transport.tlsSocket?.alpnProtocol).to.equal('xmpp-client');
        await pingServer(client);
      });
    }
  }

  for (const [mechanism, direct] of [['SCRAM-SHA-256-PLUS', false], ['SCRAM-SHA-1-PLUS', true]] as const) {
    it(`logs in with ${mechanism} bound to tls-unique over TLS 1.2 (${direct ? 'direct TLS' : 'STARTTLS'})`, async () => {
      const { client, transport, auth } = await connect({ user: 'bob', mechanism, direct, maxTls: 'TLSv1.2' });
      expect(client.jid).to.match(/^bob@localhost\/.+/);
      expect(auth.mechanism).to.equal(mechanism);
      expect(auth.initial).to.match(/^p=tls-unique,,n=bob,r=/);
      expect(transport.tlsSocket?.getProtocol()).to.equal('TLSv1.2');
      await pingServer(client);
    });
  }

  it('refuses a wrong password', async () => {
    const { client } = createSession({ user: 'mallory', password: 'not-the-password', mechanism: 'SCRAM-SHA-256' });
    const failures: string[] = [];
    client.on('raw:incoming', (data) => {
      const m = /<failure xmlns=["']urn:ietf:params:xml:ns:xmpp-sasl["']>\s*<([a-z-]+)/.exec(data);
      if (m) failures.push(m[1]!);
    });
    const outcome = await new Promise<string>((resolve) => {
      client.once('session:started', () => resolve('session started'));
      client.once('auth:failed', () => resolve('auth failed'));
      client.connect();
    });
    expect(outcome).to.equal('auth failed');
    expect(failures).to.deep.equal(['not-authorized']);
    expect(client.sessionStarted).to.equal(false);
  });

  it("delivers a chat message between two stanza.js sessions at full JIDs, from the sender's full JID", async () => {
    const bob = await connect({ user: 'bob', resource: 'st-bob', mechanism: 'SCRAM-SHA-256' });
    const alice = await connect({ user: 'alice', resource: 'st-alice', mechanism: 'PLAIN', direct: true });
    expect(bob.client.jid).to.equal('bob@localhost/st-bob');
    const got = new Promise<{ from: string; to?: string; body?: string; id?: string; type?: string }>((resolve) => bob.client.on('message', resolve));
    const body = 'héllo <bob> & 🦊';
    const id = alice.client.sendMessage({ to: 'bob@localhost/st-bob', type: 'chat', body });
    const msg = await got;
    expect(msg).to.include({ from: alice.client.jid, to: bob.client.jid, body, type: 'chat', id });
    expect(msg.from).to.equal('alice@localhost/st-alice');
  });

  it('delivers a chat message from stanza.js to an @xmpp/client session', async () => {
    const bob = xmppClient({ service: `xmpp://127.0.0.1:${srv.port('c2s')}`, domain: srv.domain, username: 'bob', password: 'secret-pw', resource: 'xjs' });
    bob.on('error', () => undefined);
    await bob.start();
    try {
      const got = new Promise<import('ltx').Element>((resolve) => {
        bob.on('stanza', (s) => {
          if (s.is('message')) resolve(s);
        });
      });
      const alice = await connect({ user: 'alice', resource: 'st', mechanism: 'SCRAM-SHA-1' });
      alice.client.sendMessage({ to: 'bob@localhost/xjs', type: 'chat', body: 'to xmpp.js' });
      const msg = await got;
      expect(msg.attrs.from).to.equal(alice.client.jid).and.to.equal('alice@localhost/st');
      expect(msg.attrs.to).to.equal('bob@localhost/xjs');
      expect(msg.getChildText('body')).to.equal('to xmpp.js');
    } finally {
      await bob.stop();
    }
  });
});
