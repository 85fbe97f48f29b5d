// Federation between Parley servers beyond plain dialback: SASL EXTERNAL with CA-issued
// certificates (XEP-0178), direct TLS (XEP-0368), the certificate-only policy, the outgoing
// queue's bounds and timeouts, and idle close with reconnection on demand.
import { expect } from 'chai';
import net from 'node:net';
import type { TestServer } from '../helpers/server.js';
import { DEFAULT_PASSWORD, loggedIn, sleep, XMLNS, type RawClient, type XNode } from '../helpers/raw-client.js';
import { createTestCa, federatedServer, linkServers, type TestCa } from '../lib/s2s/federation-helpers.js';

const fromPrefix = (from: string) => (e: XNode) => e.is('message') && e.attrs.from?.startsWith(from) === true;
const errorOf = (e: XNode): string | undefined => e.child('error')?.elements(XMLNS.stanzas).find((c) => c.name !== 'text')?.name;

async function pair(aS2s: Record<string, unknown> = {}, bS2s: Record<string, unknown> = {}, extraA: Record<string, unknown> = {}, extraB: Record<string, unknown> = {}) {
  const a = await federatedServer('a.test', aS2s, extraA);
  const b = await federatedServer('b.test', bS2s, extraB);
  await a.addUser('alice', DEFAULT_PASSWORD);
  await b.addUser('bob', DEFAULT_PASSWORD);
  const alice = await loggedIn(a, 'alice', { resource: 'r' });
  const bob = await loggedIn(b, 'bob', { resource: 'r' });
  alice.send('<presence/>');
  bob.send('<presence/>');
  return { a, b, alice, bob };
}

describe('e2e: federation authentication and connection management', function () {
  this.timeout(30_000);
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const fn of cleanups.splice(0).reverse()) await fn();
  });
  const track = (servers: TestServer[], clients: RawClient[]) => {
    cleanups.push(async () => {
      for (const c of clients) c.destroy();
      for (const s of servers) await s.stop();
    });
  };

  describe('with certificates from a trusted CA', () => {
    let ca: TestCa;
    before(() => {
      ca = createTestCa();
    });
    after(() => ca.remove());

    const tlsFor = (domain: string) => ({ certificates: 'certs', generate: true, hosts: { [domain]: ca.issue([domain]) } });

    it('authenticates with SASL EXTERNAL (XEP-0178) and answers over the same stream (bidi, XEP-0288)', async () => {
      const { a, b, alice, bob } = await pair({ trustedCAs: [ca.caFile] }, { trustedCAs: [ca.caFile] }, { tls: tlsFor('a.test') }, { tls: tlsFor('b.test') });
      track([a, b], [alice, bob]);
      linkServers(a, b);
      alice.send(`<message to='bob@b.test' id='e1'><body>over EXTERNAL</body></message>`);
      await bob.waitForElement(fromPrefix('alice@a.test'), 10_000);
      bob.send(`<message to='alice@a.test' id='e2'><body>and back</body></message>`);
      await alice.waitForElement(fromPrefix('bob@b.test'), 10_000);
      const out = a.server.federation!.outgoingStream('a.test', 'b.test');
      expect(out?.authenticatedBy).to.equal('EXTERNAL');
      expect(out?.bidirectional).to.equal(true);
      // No dialback, so no verification connection: b's answer went back on a's stream.
      expect(b.server.federation!.outgoingStream('b.test', 'a.test')).to.equal(undefined);
      expect(b.server.federation!.hasReverseRoute('b.test', 'a.test')).to.equal(true);
      expect(b.server.federation!.incomingCount).to.equal(1);
      expect(a.server.federation!.incomingCount).to.equal(0);
    });

    it('accepts only valid certificates when requireValidCertificates is set', async () => {
      // b trusts the CA; a has a CA-issued certificate, c.test only a self-signed one.
      const { a, b, alice, bob } = await pair({ trustedCAs: [ca.caFile] }, { trustedCAs: [ca.caFile], requireValidCertificates: true }, { tls: tlsFor('a.test') }, { tls: tlsFor('b.test') });
      const c = await federatedServer('c.test');
      await c.addUser('carol', DEFAULT_PASSWORD);
      const carol = await loggedIn(c, 'carol', { resource: 'r' });
      track([a, b, c], [alice, bob, carol]);
      linkServers(a, b);
      linkServers(c, b);
      alice.send(`<message to='bob@b.test' id='v1'><body>valid</body></message>`);
      await bob.waitForElement(fromPrefix('alice@a.test'), 10_000);
      carol.send(`<message to='bob@b.test' id='v2'><body>self-signed</body></message>`);
      const bounce = await carol.waitForElement((e) => e.is('message') && e.attrs.id === 'v2', 10_000);
      expect(bounce.attrs.type).to.equal('error');
      expect(errorOf(bounce)).to.be.oneOf(['remote-server-timeout', 'remote-server-not-found']);
    });
  });

  it('federates over direct TLS (s2s-tls, XEP-0368)', async () => {
    const { a, b, alice, bob } = await pair();
    track([a, b], [alice, bob]);
    linkServers(a, b, 's2s-tls');
    alice.send(`<message to='bob@b.test' id='d1'><body>direct TLS</body></message>`);
    await bob.waitForElement(fromPrefix('alice@a.test'), 10_000);
    bob.send(`<message to='alice@a.test' id='d2'><body>back</body></message>`);
    await alice.waitForElement(fromPrefix('bob@b.test'), 10_000);
  });

  it('bounces overflow with resource-constraint and the queue with remote-server-timeout', async () => {
    // A "server" that accepts TCP and never says a word.
    const silent = net.createServer((s) => s.on('error', () => undefined).resume());
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const a = await federatedServer('a.test', { queueLimit: 2, connectTimeout: '5s' }, { limits: { unauthenticatedTimeout: '1s' } });
    await a.addUser('alice', DEFAULT_PASSWORD);
    const alice = await loggedIn(a, 'alice', { resource: 'r' });
    track([a], [alice]);
    cleanups.push(() => new Promise<void>((r) => silent.close(() => r())));
    a.server.federation!.setTarget('mute.test', { host: '127.0.0.1', port: (silent.address() as net.AddressInfo).port, directTls: false });
    for (const id of ['q1', 'q2', 'q3']) alice.send(`<message to='x@mute.test' id='${id}'><body>${id}</body></message>`);
    const overflow = await alice.waitForElement((e) => e.is('message') && e.attrs.id === 'q3', 5_000);
    expect(errorOf(overflow)).to.equal('resource-constraint');
    const first = await alice.waitForElement((e) => e.is('message') && e.attrs.id === 'q1', 5_000);
    const second = await alice.waitForElement((e) => e.is('message') && e.attrs.id === 'q2', 5_000);
    expect(errorOf(first)).to.equal('remote-server-timeout');
    expect(errorOf(second)).to.equal('remote-server-timeout');
  });

  it('closes an idle outgoing stream and reconnects when there is something to send', async () => {
    const { a, b, alice, bob } = await pair({ idleTimeout: '300ms' }, { idleTimeout: '300ms' });
    track([a, b], [alice, bob]);
    linkServers(a, b);
    alice.send(`<message to='bob@b.test' id='i1'><body>one</body></message>`);
    await bob.waitForElement((e) => e.is('message') && e.attrs.id === 'i1', 10_000);
    const first = a.server.federation!.outgoingStream('a.test', 'b.test');
    expect(first?.ready).to.equal(true);
    await sleep(800);
    expect(a.server.federation!.outgoingStream('a.test', 'b.test')).to.equal(undefined);
    alice.send(`<message to='bob@b.test' id='i2'><body>two</body></message>`);
    await bob.waitForElement((e) => e.is('message') && e.attrs.id === 'i2', 10_000);
    expect(a.server.federation!.outgoingStream('a.test', 'b.test')).to.not.equal(first);
  });
});
