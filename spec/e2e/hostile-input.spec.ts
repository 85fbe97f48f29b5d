// Hostile input against a real server over real sockets (ARCHITECTURE §6, RFC 6120 §4.9, §6,
// §8.3, §11). Every test asserts the exact answer the RFC prescribes (stream error condition in
// urn:ietf:params:xml:ns:xmpp-streams, SASL failure condition, or stanza error), that the server
// closes the connection where the RFC says so, and that a separate client, logged in before the
// attack, is still served afterwards.
import { expect } from 'chai';
import { ScramClient } from '../lib/sasl/scram-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import {
  DEFAULT_PASSWORD,
  RawClient,
  XMLNS,
  loggedIn,
  nextId,
  sleep,
  withTimeout,
  type LoginOptions,
  type XNode,
} from '../helpers/raw-client.js';

// ------------------------------------------------------------------------------------ assertions

function definedConditions(el: XNode, ns: string): string[] {
  return el.children.filter((c) => c.ns === ns && c.name !== 'text').map((c) => c.name);
}

/**
 * RFC 6120 §4.9.1.1: exactly one defined condition in urn:ietf:params:xml:ns:xmpp-streams, then
 * </stream:stream>, then the TCP connection closed by the server. Nothing follows the error, and
 * everything the server wrote parses as an XML stream (so it sent its own header first when the
 * error came before one, §4.9.1.2).
 */
async function expectStreamError(c: RawClient, condition: string, timeoutMs = 5000): Promise<XNode> {
  const err = await c.streamError(timeoutMs);
  expect(definedConditions(err, XMLNS.streams), `stream error: ${err}`).to.deep.equal([condition]);
  await c.waitClosed(timeoutMs);
  expect(c.serverClosedStream, 'the server closes the stream with </stream:stream> after the error').to.equal(true);
  expect(c.elements[c.elements.length - 1], 'nothing after the stream error').to.equal(err);
  expect(c.parseErrors, 'the server output is a well-formed XML stream').to.deep.equal([]);
  return err;
}

/** RFC 6120 §6.4.5: <failure/> with exactly one defined condition. */
async function expectSaslFailure(c: RawClient, from: number, condition: string): Promise<void> {
  const answer = await c.saslAnswer(from);
  expect(answer.name, `SASL answer: ${answer}`).to.equal('failure');
  expect(definedConditions(answer, XMLNS.sasl), `SASL failure: ${answer}`).to.deep.equal([condition]);
}

/** RFC 6120 §8.3.2: type='error', same id, <error type=…> with exactly one defined condition. */
function expectStanzaError(reply: XNode, id: string, condition: string, type: string): void {
  expect(reply.attrs.type, `reply: ${reply}`).to.equal('error');
  expect(reply.attrs.id).to.equal(id);
  const error = reply.child('error', XMLNS.client);
  expect(error, `reply has an <error/>: ${reply}`).to.not.equal(undefined);
  expect(error!.attrs.type, `error type: ${reply}`).to.equal(type);
  expect(definedConditions(error!, XMLNS.stanzas), `stanza error: ${reply}`).to.deep.equal([condition]);
}

/** Everything received on `c` from character `mark` on. */
function since(c: RawClient, mark: number): string {
  return c.received.slice(mark);
}

const SASL = XMLNS.sasl;

// ------------------------------------------------------------------------------------ fixtures

/** A server plus a client logged in before any attack, and the connections a test opened. */
class Arena {
  srv!: TestServer;
  control!: RawClient;
  private readonly opened: RawClient[] = [];

  async start(overrides: Record<string, unknown>): Promise<void> {
    this.srv = await startTestServer(overrides);
    for (const user of ['alice', 'bob', 'carol', 'mallory']) await this.srv.addUser(user, DEFAULT_PASSWORD);
    this.control = await loggedIn(this.srv, 'carol', { resource: 'control', mechanism: 'SCRAM-SHA-256' });
  }

  async stop(): Promise<void> {
    this.cleanup();
    this.control?.destroy();
    await this.srv?.stop();
  }

  /** A plain TCP connection to the c2s port (STARTTLS offered and required). */
  async connect(opts: { directTls?: boolean } = {}): Promise<RawClient> {
    const c = await RawClient.connect(this.srv.port(opts.directTls ? 'c2s-tls' : 'c2s'), { directTls: opts.directTls });
    this.opened.push(c);
    return c;
  }

  /** Connected, stream open, features received, nothing else. */
  async fresh(): Promise<RawClient> {
    const c = await this.connect();
    await c.openStream();
    return c;
  }

  /** TLS done and the stream restarted, not authenticated. */
  async secured(): Promise<RawClient> {
    const c = await this.fresh();
    await c.starttls();
    await c.openStream();
    return c;
  }

  async login(user: string, opts: LoginOptions = {}): Promise<RawClient> {
    const c = await loggedIn(this.srv, user, opts);
    this.opened.push(c);
    return c;
  }

  /** The client logged in before the attack still gets its ping answered, promptly. */
  async stillServes(withinMs = 2000): Promise<void> {
    expect(this.control.isClosed, 'the control client is still connected').to.equal(false);
    const rtt = await this.control.ping(this.srv.domain, withinMs);
    expect(rtt).to.be.lessThan(withinMs);
  }

  cleanup(): void {
    for (const c of this.opened.splice(0)) c.destroy();
  }
}

// ================================================================================================

describe('e2e: hostile input', function () {
  this.timeout(15_000);
  const arena = new Arena();

  before(async () => arena.start({ limits: { stanzaSize: '128 KiB' } }));
  after(async () => arena.stop());
  afterEach(async () => {
    arena.cleanup();
  });

  // ---------------------------------------------------------------------------- well-formedness

  describe('malformed XML', () => {
    it('answers unclosed tags followed by the stream close tag with not-well-formed and closes', async () => {
      const c = await arena.fresh();
      c.send(`<message to='alice@localhost'><body>hi</stream:stream>`);
      await expectStreamError(c, 'not-well-formed');
      await arena.stillServes();
    });

    for (const [what, bad] of [
      ['an inner end tag', `<body>hi</message></body>`],
      ['the end tag of the stanza itself', `<body>hi</body></mesage>`],
    ] as const) {
      it(`answers a mismatched end tag (${what}) with not-well-formed and delivers nothing of the stanza`, async () => {
        const bob = await arena.login('bob', { resource: 'mismatch' });
        const alice = await arena.login('alice');
        const mark = bob.received.length;
        alice.send(`<message to='bob@localhost/mismatch' type='chat' id='mm'>${bad}`);
        await expectStreamError(alice, 'not-well-formed');
        await bob.ping();
        expect(since(bob, mark)).to.not.include('<message');
        await arena.stillServes();
      });
    }

    for (const [what, bytes] of [
      ['a truncated two-byte sequence', [0xc3, 0x28]],
      ['a lone continuation byte', [0x80]],
      ['an overlong encoding of "/"', [0xc0, 0xaf]],
      ['an encoded UTF-16 surrogate', [0xed, 0xa0, 0x80]],
      ['the byte 0xFF', [0xff]],
    ] as const) {
      it(`answers invalid UTF-8 (${what}) before authentication with not-well-formed`, async () => {
        const c = await arena.fresh();
        // Without strict decoding this stanza would reach the stream machine and get not-authorized.
        c.send(Buffer.concat([Buffer.from(`<message to='alice@localhost'><body>caf`), Buffer.from(bytes), Buffer.from(`</body></message>`)]));
        await expectStreamError(c, 'not-well-formed');
        await arena.stillServes();
      });
    }

    it('answers invalid UTF-8 inside a stanza after authentication with not-well-formed and delivers nothing', async () => {
      const bob = await arena.login('bob', { resource: 'utf8' });
      const alice = await arena.login('alice');
      const mark = bob.received.length;
      alice.send(Buffer.concat([
        Buffer.from(`<message to='bob@localhost/utf8' type='chat'><body>caf`),
        Buffer.from([0xc3, 0x28]),
        Buffer.from(`</body></message>`),
      ]));
      await expectStreamError(alice, 'not-well-formed');
      await bob.ping();
      expect(since(bob, mark)).to.not.include('<message');
      await arena.stillServes();
    });
  });

  // ---------------------------------------------------------------------------- restricted XML

  describe('restricted XML (RFC 6120 §11.1)', () => {
    const laughs =
      `<!DOCTYPE lolz [<!ENTITY lol "lol">` +
      Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`).join('') +
      `]>`;

    it('answers a DOCTYPE with entity declarations (billion laughs) before the stream header with restricted-xml', async () => {
      const c = await arena.connect();
      c.sendHeader(
        `<?xml version='1.0'?>${laughs}<stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='${XMLNS.stream}'>` +
          `<message to='alice@localhost'><body>&lol9;</body></message>`,
      );
      await expectStreamError(c, 'restricted-xml');
      await arena.stillServes();
    });

    it('answers a DOCTYPE inside the stream with restricted-xml', async () => {
      const c = await arena.fresh();
      c.send(`${laughs}<message to='alice@localhost'><body>&lol9;</body></message>`);
      await expectStreamError(c, 'restricted-xml');
      await arena.stillServes();
    });

    for (const [what, data] of [
      ['a comment', `<!-- hello -->`],
      ['a comment inside a stanza', `<message to='alice@localhost'><!-- hello --><body>x</body></message>`],
      ['a processing instruction', `<?evil data?>`],
      ['a processing instruction inside a stanza', `<message to='alice@localhost'><?evil data?></message>`],
    ] as const) {
      it(`answers ${what} with restricted-xml`, async () => {
        const c = await arena.fresh();
        c.send(data);
        await expectStreamError(c, 'restricted-xml');
        await arena.stillServes();
      });
    }

    it('answers a comment before the stream header with restricted-xml', async () => {
      const c = await arena.connect();
      c.sendHeader(`<?xml version='1.0'?><!-- hi --><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='${XMLNS.stream}'>`);
      await expectStreamError(c, 'restricted-xml');
      await arena.stillServes();
    });
  });

  // ---------------------------------------------------------------------------- size and shape

  describe('size and shape limits', () => {
    it('cuts a 10 MB stanza off with policy-violation while the client is still sending it', async () => {
      const alice = await arena.login('alice', { directTls: true });
      const total = 10 * 1024 * 1024;
      const chunk = Buffer.alloc(64 * 1024, 'A');
      alice.send(`<message to='bob@localhost' type='chat'><body>`);
      // Keep writing regardless of what comes back, as an attacker would, until the socket is
      // gone (FIN, EPIPE or ECONNRESET: recorded by the client, not thrown).
      let sent = 0;
      while (sent < total) {
        if (!(await alice.write(chunk))) break;
        sent += chunk.length;
      }
      await expectStreamError(alice, 'policy-violation', 8000);
      // The limit is 128 KiB: the server hung up long before the 10 MB were out, rather than
      // reading (or buffering) the whole stanza. Kernel buffers account for the slack.
      expect(sent, 'bytes the client had written when the server hung up').to.be.lessThan(total);
      expect(sent).to.be.lessThan(4 * 1024 * 1024);
      await arena.stillServes();
    });

    it('answers 10,000 nested elements with policy-violation', async () => {
      const alice = await arena.login('alice');
      // ~70 KB: under the 128 KiB stanza limit, so only the depth limit can refuse it.
      alice.send(`<message to='bob@localhost' type='chat'>${'<a>'.repeat(10_000)}${'</a>'.repeat(10_000)}</message>`);
      await expectStreamError(alice, 'policy-violation');
      await arena.stillServes();
    });

    it('answers an element with 10,000 attributes with policy-violation', async () => {
      const alice = await arena.login('alice');
      const attrs = Array.from({ length: 10_000 }, (_, i) => `a${i}=''`).join(' ');
      // ~80 KB: under the 128 KiB stanza limit, so only the attribute limit can refuse it.
      alice.send(`<message to='bob@localhost' type='chat'><body ${attrs}>x</body></message>`);
      await expectStreamError(alice, 'policy-violation');
      await arena.stillServes();
    });
  });

  // ---------------------------------------------------------------------------- TLS → SASL → bind

  describe('negotiation order (TLS → SASL → bind)', () => {
    it('answers a stanza before TLS with not-authorized', async () => {
      const c = await arena.fresh();
      c.send(`<message to='alice@localhost' type='chat'><body>hi</body></message>`);
      await expectStreamError(c, 'not-authorized');
      await arena.stillServes();
    });

    it('answers a stanza after TLS but before authentication with not-authorized', async () => {
      const c = await arena.secured();
      c.send(`<iq type='get' id='early' to='localhost'><ping xmlns='${XMLNS.ping}'/></iq>`);
      await expectStreamError(c, 'not-authorized');
      await arena.stillServes();
    });

    it('answers SASL <auth/> before TLS with <failure><encryption-required/> and does not authenticate', async () => {
      const c = await arena.fresh();
      const from = c.elements.length;
      c.sendAuth('PLAIN', Buffer.from(`\0mallory\0${DEFAULT_PASSWORD}`));
      await expectSaslFailure(c, from, 'encryption-required');
      const beforeTls = c.received;
      // The stream survives a SASL failure (RFC 6120 §6.4.5): STARTTLS, then a real login.
      await c.starttls();
      await c.openStream();
      await c.authenticate('mallory');
      await c.openStream();
      expect(await c.bind('after-encryption-required')).to.equal('mallory@localhost/after-encryption-required');
      expect(beforeTls, 'nothing succeeded in the clear').to.not.include('<success');
      await arena.stillServes();
    });
  });

  describe('SASL', () => {
    it('answers bad base64 with <failure><incorrect-encoding/>', async () => {
      const c = await arena.secured();
      for (const bad of ['*not*base64*', 'AG1hbGxvcnk=AHNlY3JldA==', 'AG1hbGxvcnk AHNlY3JldC1wdw==']) {
        const from = c.elements.length;
        c.sendAuth('PLAIN', bad);
        await expectSaslFailure(c, from, 'incorrect-encoding');
      }
      expect(c.received).to.not.include('<success');
      await arena.stillServes();
    });

    it('answers PLAIN with an authzid naming another user with <failure><invalid-authzid/>', async () => {
      const c = await arena.secured();
      const from = c.elements.length;
      c.sendAuth('PLAIN', Buffer.from(`bob@localhost\0mallory\0${DEFAULT_PASSWORD}`));
      await expectSaslFailure(c, from, 'invalid-authzid');
      expect(c.received).to.not.include('<success');
      await arena.stillServes();
    });

    it("answers a SCRAM final message whose nonce does not start with the client's with <failure><not-authorized/>", async () => {
      const c = await arena.secured();
      const scram = new ScramClient({ hash: 'SHA-256', username: 'mallory', password: DEFAULT_PASSWORD });
      let from = c.elements.length;
      c.sendAuth('SCRAM-SHA-256', scram.first());
      const challenge = await c.saslAnswer(from);
      expect(challenge.name, `answer: ${challenge}`).to.equal('challenge');
      const serverFirst = Buffer.from(challenge.text, 'base64');
      const combined = /^r=([^,]+)/.exec(serverFirst.toString())![1]!;
      expect(combined.startsWith(scram.clientNonce)).to.equal(true);
      // Both halves, the server's first: a proof computed over it would verify if the server
      // did not check the nonce.
      const swapped = combined.slice(scram.clientNonce.length) + scram.clientNonce;
      from = c.elements.length;
      c.send(`<response xmlns='${SASL}'>${scram.final(serverFirst, { nonce: swapped }).toString('base64')}</response>`);
      await expectSaslFailure(c, from, 'not-authorized');
      expect(c.received).to.not.include('<success');
      await arena.stillServes();
    });
  });

  // ---------------------------------------------------------------------------- stream headers

  describe('stream headers', () => {
    it('answers a wrong streams namespace with invalid-namespace', async () => {
      const c = await arena.connect();
      c.open('localhost', { 'xmlns:stream': 'http://etherx.jabber.org/streams/wrong' });
      await expectStreamError(c, 'invalid-namespace');
      await arena.stillServes();
    });

    it('answers a content namespace other than jabber:client on the c2s port with invalid-namespace', async () => {
      const c = await arena.connect();
      c.open('localhost', { xmlns: 'jabber:server' });
      await expectStreamError(c, 'invalid-namespace');
      await arena.stillServes();
    });

    it('answers a stream to a host it does not serve with host-unknown', async () => {
      const c = await arena.connect();
      c.open('nowhere.example');
      await expectStreamError(c, 'host-unknown');
      expect(c.received).to.not.include('<stream:features');
      await arena.stillServes();
    });

    it('answers a stream header without a version with unsupported-version', async () => {
      const c = await arena.connect();
      c.open('localhost', { version: undefined });
      await expectStreamError(c, 'unsupported-version');
      expect(c.received).to.not.include('<stream:features');
      await arena.stillServes();
    });
  });

  // ---------------------------------------------------------------------------- addressing and stanzas

  describe('addressing and stanzas', () => {
    it("answers a spoofed from with invalid-from, and the spoofed account's session receives nothing", async () => {
      const bob = await arena.login('bob', { resource: 'x' });
      const alice = await arena.login('alice', { resource: 'spoofer' });
      const mark = bob.received.length;
      alice.send(`<message from='bob@localhost/x' to='bob@localhost/x' type='chat' id='spoof'><body>it is me, bob</body></message>`);
      await expectStreamError(alice, 'invalid-from');
      await sleep(100);
      await bob.ping();
      expect(since(bob, mark)).to.not.include('<message');
      expect(since(bob, mark)).to.not.include('it is me');
      await arena.stillServes();
    });

    it('answers an IQ get with two children with a bad-request stanza error and keeps the stream', async () => {
      const alice = await arena.login('alice');
      const id = nextId('two');
      alice.send(`<iq type='get' id='${id}' to='localhost'><ping xmlns='${XMLNS.ping}'/><query xmlns='jabber:iq:version'/></iq>`);
      const reply = await alice.waitForElement((e) => e.is('iq') && e.attrs.id === id);
      expectStanzaError(reply, id, 'bad-request', 'modify');
      await alice.ping();
      expect(alice.isClosed).to.equal(false);
      await arena.stillServes();
    });

    it('answers an IQ to a namespace nobody owns with service-unavailable', async () => {
      const alice = await arena.login('alice');
      const id = nextId('nobody');
      alice.send(`<iq type='get' id='${id}' to='localhost'><query xmlns='urn:example:nobody-owns-this'/></iq>`);
      const reply = await alice.waitForElement((e) => e.is('iq') && e.attrs.id === id);
      expectStanzaError(reply, id, 'service-unavailable', 'cancel');
      expect(reply.attrs.from).to.equal('localhost');
      expect(reply.attrs.to).to.equal(alice.jid);
      await alice.ping();
      await arena.stillServes();
    });

    it('never answers an error IQ (nor a result IQ) sent to the server', async () => {
      const alice = await arena.login('alice');
      const mark = alice.received.length;
      alice.send(
        `<iq type='error' id='stray-error' to='localhost'><error type='cancel'><service-unavailable xmlns='${XMLNS.stanzas}'/></error></iq>` +
          `<iq type='result' id='stray-result' to='localhost'/>`,
      );
      // Stanzas from one stream are processed in order: once the ping is answered, so were those.
      await alice.ping();
      await sleep(100);
      expect(since(alice, mark)).to.not.include('stray-');
      expect(alice.isClosed).to.equal(false);
      await arena.stillServes();
    });

    it('gives the first session <conflict/> when a second one binds the same full JID', async () => {
      const first = await arena.login('alice', { resource: 'twice' });
      const second = await arena.login('alice', { resource: 'twice' });
      expect(second.jid).to.equal('alice@localhost/twice');
      await expectStreamError(first, 'conflict');
      await second.ping();
      expect(arena.srv.server.sessions.all().filter((s) => s.jid.toString() === 'alice@localhost/twice')).to.have.length(1);
      await arena.stillServes();
    });
  });
});

// ================================================================================================

describe('e2e: hostile connection patterns', function () {
  this.timeout(20_000);

  describe('1,000 silent connections (connectionsPerIp 2000, unauthenticatedTimeout 2s)', () => {
    const arena = new Arena();
    before(async () => arena.start({ limits: { connectionsPerIp: 2000, newConnectionsPerIpPerMinute: 5000, unauthenticatedTimeout: '2s' } }));
    after(async () => arena.stop());

    it('keeps answering a logged-in client while they wait, then closes every one with connection-timeout', async () => {
      // The logged-in client pings throughout: while the connections open, wait and are closed.
      const rtts: number[] = [];
      let stop = false;
      const pinging = (async () => {
        while (!stop) {
          rtts.push(await arena.control.ping('localhost', 1000));
          await sleep(50);
        }
      })();
      try {
        const idle: RawClient[] = [];
        for (let i = 0; i < 1000; i += 100) {
          idle.push(...(await Promise.all(Array.from({ length: 100 }, () => arena.connect()))));
        }
        await withTimeout(Promise.all(idle.map((c) => c.closed)), 8000, 'not every silent connection was closed');
        for (const c of idle) {
          expect(c.closedAt - c.connectedAt, 'closed after the 2 s timeout, not before').to.be.at.least(1900);
        }
        for (const c of idle.filter((_, i) => i % 50 === 0)) await expectStreamError(c, 'connection-timeout', 1000);
      } finally {
        stop = true;
        await pinging;
      }
      expect(rtts.length, 'pings answered during the attack').to.be.greaterThan(10);
      expect(Math.max(...rtts), 'slowest ping round trip during the attack, ms').to.be.lessThan(1000);
      await arena.stillServes(1000);
      arena.cleanup();
    });
  });

  describe('connectionsPerIp 5', () => {
    const arena = new Arena();
    before(async () => arena.start({ limits: { connectionsPerIp: 5 } }));
    after(async () => arena.stop());

    it('refuses the 6th connection from one address with policy-violation, and admits one again when a slot frees', async () => {
      // The control client is the first of the five.
      const four = await Promise.all(Array.from({ length: 4 }, () => arena.fresh()));
      const sixth = await arena.connect();
      await expectStreamError(sixth, 'policy-violation');
      for (const c of four) expect(c.isClosed).to.equal(false);

      four[0]!.close();
      await four[0]!.waitClosed();
      const again = await arena.fresh();
      expect(again.received).to.not.include('policy-violation');
      await arena.stillServes();
      arena.cleanup();
    });
  });

  describe('a client that never reads (outboundBuffer 256 KiB)', () => {
    const arena = new Arena();
    // Rate limits are raised so that the outbound buffer, not the inbound rate, is what this meets.
    before(async () => arena.start({ limits: { outboundBuffer: '256 KiB', stanzasPerSecond: 2000, bytesPerSecond: '64 MiB' } }));
    after(async () => arena.stop());

    it('is disconnected once its unread replies pass the outbound buffer, with memory bounded', async () => {
      const lazy = await arena.login('alice', { resource: 'lazy' });
      const jid = lazy.jid!;
      const rssBefore = process.memoryUsage().rss;
      lazy.pauseReading();
      const pad = 'p'.repeat(4000); // each reply carries the id back: ~4 KB per ping
      const max = 20_000; // 80 MB of replies if nothing stopped it
      let sent = 0;
      while (sent < max) {
        if (!(await lazy.write(`<iq type='get' id='${pad}-${sent}' to='localhost'><ping xmlns='${XMLNS.ping}'/></iq>`))) break;
        sent++;
        if (sent % 100 === 0 && !arena.srv.server.sessions.all().some((s) => s.jid.toString() === jid)) break;
      }
      // The server dropped the session while the client was still not reading.
      const deadline = Date.now() + 5000;
      while (arena.srv.server.sessions.all().some((s) => s.jid.toString() === jid)) {
        if (Date.now() > deadline) throw new Error(`the server still holds the session after ${sent} unread pings`);
        await sleep(20);
      }
      expect(sent, 'pings sent before the server gave up').to.be.lessThan(max);
      const growth = process.memoryUsage().rss - rssBefore;
      expect(growth, 'rss growth in bytes').to.be.lessThan(100 * 1024 * 1024);

      // And the socket is really gone: reading again finds the end, not 80 MB of replies.
      lazy.resumeReading();
      await lazy.waitClosed(5000);
      const answered = (lazy.received.match(/type=["']result["']/g) ?? []).length;
      expect(answered, 'replies that reached the client').to.be.lessThan(sent);
      await arena.stillServes();
    });
  });

  describe('a stanza flood (stanzasPerSecond 500)', () => {
    const arena = new Arena();
    before(async () => arena.start({ limits: { stanzasPerSecond: 500, bytesPerSecond: '4 MiB' } }));
    after(async () => arena.stop());

    it('processes 2,000 messages written at once without dropping the sender or starving another client', async () => {
      const bob = await arena.login('bob', { resource: 'flood' });
      const alice = await arena.login('alice', { resource: 'flooder' });
      const n = 2000;
      const flood = Array.from({ length: n }, (_, i) => `<message to='bob@localhost/flood' type='chat' id='f${i}'><body>flood ${i}</body></message>`).join('');
      alice.send(flood);

      // While the flood is processed, the control client's pings are answered within 2 s.
      const rtts: number[] = [];
      const all = bob.waitForElement((e) => e.is('message') && e.attrs.id === `f${n - 1}`, 15_000);
      let done = false;
      void all.then(() => (done = true), () => (done = true));
      while (!done) {
        rtts.push(await arena.control.ping('localhost', 2000));
        await sleep(50);
      }
      await all;
      const ids = bob.elements.filter((e) => e.is('message')).map((e) => e.attrs.id);
      expect(ids, 'every message, in order').to.deep.equal(Array.from({ length: n }, (_, i) => `f${i}`));
      expect(rtts.length).to.be.greaterThan(0);
      expect(Math.max(...rtts)).to.be.lessThan(2000);
      // The sender is still connected and served.
      expect(alice.isClosed).to.equal(false);
      await alice.ping();
      await arena.stillServes();
      arena.cleanup();
    });
  });
});
