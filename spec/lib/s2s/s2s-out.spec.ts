// The outbound s2s stream against scripted peers on real sockets: what it sends, how it
// authenticates by dialback, and what the stanzas waiting for it bounce with.
import { expect } from 'chai';
import net from 'node:net';
import tls from 'node:tls';
import { silentLogger } from '../../../lib/log.js';
import type { S2sConfig } from '../../../lib/config/schema.js';
import { Jid } from '../../../lib/jid/jid.js';
import type { Router } from '../../../lib/routing/router.js';
import { toEnvelope, type Stanza } from '../../../lib/stanza/envelope.js';
import type { StanzaError } from '../../../lib/stanza/error.js';
import { xml } from '../../../lib/xml/element.js';
import type { S2sTlsContexts } from '../../../lib/s2s/certificates.js';
import { connectFirst } from '../../../lib/s2s/connect.js';
import { DialbackKeys } from '../../../lib/s2s/dialback-key.js';
import { wireForm } from '../../../lib/s2s/federation.js';
import { S2sResolver } from '../../../lib/s2s/resolver.js';
import { S2sOutStream } from '../../../lib/s2s/s2s-out.js';

const PEER_HEADER = (id: string) =>
  `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' xmlns:stream='http://etherx.jabber.org/streams' from='remote.test' to='local.test' id='${id}' version='1.0'>`;

/** A peer that answers each thing we send with the next scripted reply. */
class ScriptedPeer {
  readonly server: net.Server;
  received = '';
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly onData: (peer: ScriptedPeer, socket: net.Socket) => void) {
    this.server = net.createServer((socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
      socket.on('error', () => undefined);
      socket.on('data', (chunk) => {
        this.received += chunk.toString();
        this.onData(this, socket);
      });
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    return (this.server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

const CONFIG: S2sConfig = {
  blockedDomains: [],
  requireEncryption: true,
  requireValidCertificates: false,
  dialback: true,
  idleTimeout: 600_000,
  connectTimeout: 2_000,
  queueLimit: 10,
  trustedCAs: [],
  resolver: { hosts: {} },
};

function outStream(port: number, config: Partial<S2sConfig> = {}) {
  const bounced: Array<{ id: string | undefined; condition: string }> = [];
  const keys = new DialbackKeys('k');
  const router = {
    bounce: (s: Stanza, err: StanzaError) => void bounced.push({ id: s.id, condition: err.condition }),
    route: async () => undefined,
    isLocal: (d: string) => d === 'local.test',
  } as unknown as Router;
  const resolver = new S2sResolver({ hosts: { 'remote.test': { host: '127.0.0.1', port, directTls: false } } });
  let closed = false;
  const stream = new S2sOutStream(
    'local.test',
    'remote.test',
    {
      router,
      isLocal: (d) => d === 'local.test',
      keys,
      tls: { context: () => tls.createSecureContext({}) } as unknown as S2sTlsContexts,
      config: { ...CONFIG, ...config },
      limits: { stanzaBytes: 65_536, preAuthStanzaBytes: 16_384, depth: 32, attributes: 32, unauthenticatedTimeoutMs: 2_000, inboundQueue: 16, outboundBufferBytes: 1 << 20 },
      log: silentLogger(),
      resolver,
      verifyKey: async () => 'invalid',
    },
    () => (closed = true),
  );
  const message = (id: string) => {
    const el = xml('message', { from: 'alice@local.test/r', to: 'bob@remote.test', id }, xml('body', {}, 'secret words'));
    const stanza = toEnvelope(el, Jid.parse('alice@local.test/r'));
    stream.send({ stanza, wire: wireForm(el) });
  };
  return { stream, bounced, keys, message, isClosed: () => closed };
}

async function until(check: () => boolean, ms = 3_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('s2s-out stream', () => {
  const peers: ScriptedPeer[] = [];
  afterEach(async () => {
    for (const p of peers.splice(0)) await p.close();
  });

  it('bounces what waits with remote-server-not-found when the peer offers no TLS and TLS is required', async () => {
    const peer = new ScriptedPeer((p, s) => {
      if (p.received.includes('<stream:stream') && !s.writableEnded) s.write(`${PEER_HEADER('S1')}<stream:features><dialback xmlns='urn:xmpp:features:dialback'/></stream:features>`);
    });
    peers.push(peer);
    const o = outStream(await peer.listen());
    o.message('m1');
    o.stream.start();
    await until(() => o.bounced.length === 1);
    expect(o.bounced[0]).to.deep.equal({ id: 'm1', condition: 'remote-server-not-found' });
    expect(o.isClosed()).to.equal(true);
    expect(peer.received).to.not.contain('db:result');
  });

  it('opens with from, to, version and the dialback namespace, then sends the XEP-0185 key for the peer\'s stream id', async () => {
    let answered = false;
    const peer = new ScriptedPeer((p, s) => {
      if (!answered && p.received.includes('<stream:stream')) {
        answered = true;
        s.write(`${PEER_HEADER('PEER-ID-1')}<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback></stream:features>`);
      }
      if (p.received.includes('</db:result>') && !p.received.includes('<message')) {
        s.write(`<db:result from='remote.test' to='local.test' type='valid'/>`);
      }
    });
    peers.push(peer);
    const o = outStream(await peer.listen(), { requireEncryption: false });
    o.message('m1');
    o.stream.start();
    await until(() => peer.received.includes('<message'));
    expect(peer.received).to.match(/<stream:stream xmlns='jabber:server' xmlns:stream='http:\/\/etherx.jabber.org\/streams' xmlns:db='jabber:server:dialback' from='local.test' to='remote.test' version='1.0'>/);
    const key = o.keys.generate('remote.test', 'local.test', 'PEER-ID-1');
    expect(peer.received).to.contain(`<db:result from="local.test" to="remote.test">${key}</db:result>`);
    expect(peer.received).to.contain(`<message from="alice@local.test/r" to="bob@remote.test" id="m1"><body>secret words</body></message>`);
    expect(o.stream.ready).to.equal(true);
    expect(o.stream.authenticatedBy).to.equal('dialback');
    expect(o.bounced).to.deep.equal([]);
  });

  it('bounces with internal-server-error when the peer says our key is invalid (XEP-0220 §2.1.1)', async () => {
    const peer = new ScriptedPeer((p, s) => {
      if (p.received.endsWith("version='1.0'>")) s.write(`${PEER_HEADER('X')}<stream:features/>`);
      if (p.received.includes('</db:result>')) s.write(`<db:result from='remote.test' to='local.test' type='invalid'/>`);
    });
    peers.push(peer);
    const o = outStream(await peer.listen(), { requireEncryption: false });
    o.message('m1');
    o.stream.start();
    await until(() => o.bounced.length === 1);
    expect(o.bounced[0]!.condition).to.equal('internal-server-error');
  });

  it('ignores a dialback result for another domain pair (unsolicited) and times out', async () => {
    const peer = new ScriptedPeer((p, s) => {
      if (p.received.endsWith("version='1.0'>")) s.write(`${PEER_HEADER('X')}<stream:features/>`);
      if (p.received.includes('</db:result>')) s.write(`<db:result from='evil.test' to='local.test' type='valid'/>`);
    });
    peers.push(peer);
    const o = outStream(await peer.listen(), { requireEncryption: false });
    o.message('m1');
    o.stream.start();
    await until(() => o.bounced.length === 1, 5_000);
    expect(o.bounced[0]!.condition).to.equal('remote-server-timeout');
    expect(peer.received).to.not.contain('<message');
  });

  it('bounces with remote-server-not-found when nothing listens', async () => {
    const spare = new ScriptedPeer(() => undefined);
    const port = await spare.listen();
    await spare.close();
    const o = outStream(port);
    o.message('m1');
    o.message('m2');
    o.stream.start();
    await until(() => o.bounced.length === 2);
    expect(o.bounced.map((b) => b.condition)).to.deep.equal(['remote-server-not-found', 'remote-server-not-found']);
  });

  it('bounces past queueLimit with resource-constraint', async () => {
    const o = outStream(1, { queueLimit: 2 });
    o.message('a');
    o.message('b');
    o.message('c');
    expect(o.bounced).to.deep.equal([{ id: 'c', condition: 'resource-constraint' }]);
    o.stream.close('test over');
  });
});

describe('connectFirst', () => {
  it('moves on to the next candidate when one refuses, and reports the last error when all do', async () => {
    const listening = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => listening.listen(0, '127.0.0.1', () => r()));
    const open = (listening.address() as net.AddressInfo).port;
    const closedSrv = net.createServer();
    await new Promise<void>((r) => closedSrv.listen(0, '127.0.0.1', () => r()));
    const closed = (closedSrv.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closedSrv.close(() => r()));
    try {
      const opts = { staggerMs: 250, servername: 'x.test', secureContext: tls.createSecureContext({}) };
      const ok = await connectFirst([{ host: '127.0.0.1', port: closed, directTls: false }, { host: '127.0.0.1', port: open, directTls: false }], opts).result;
      expect(ok.target.port).to.equal(open);
      ok.socket.destroy();
      let error: Error | undefined;
      await connectFirst([{ host: '127.0.0.1', port: closed, directTls: false }], opts).result.catch((e: Error) => (error = e));
      expect((error as NodeJS.ErrnoException | undefined)?.code).to.equal('ECONNREFUSED');
    } finally {
      await new Promise<void>((r) => listening.close(() => r()));
    }
  });

  it('starts the next candidate after the stagger while the first is still pending, and drops the loser', async () => {
    // The first candidate is direct TLS to a server that accepts TCP and never answers the
    // ClientHello: that attempt stays pending, so only the stagger lets the second one start.
    let silentClosed = false;
    const silent = net.createServer((s) => {
      s.on('error', () => undefined).resume();
      s.on('close', () => (silentClosed = true));
    });
    const listening = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    await new Promise<void>((r) => listening.listen(0, '127.0.0.1', () => r()));
    try {
      const t0 = Date.now();
      const ok = await connectFirst(
        [
          { host: '127.0.0.1', port: (silent.address() as net.AddressInfo).port, directTls: true },
          { host: '127.0.0.1', port: (listening.address() as net.AddressInfo).port, directTls: false },
        ],
        { staggerMs: 150, servername: 'x.test', secureContext: tls.createSecureContext({}) },
      ).result;
      const elapsed = Date.now() - t0;
      expect(ok.target.directTls).to.equal(false);
      expect(elapsed).to.be.within(140, 2_000);
      ok.socket.destroy();
      await until(() => silentClosed);
    } finally {
      await new Promise<void>((r) => listening.close(() => r()));
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });
});
