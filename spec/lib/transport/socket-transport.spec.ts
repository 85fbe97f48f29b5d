// SocketTransport's STARTTLS upgrade tells the SASL layer which certificate the handshake used,
// so the tls-server-end-point binding (RFC 5929 §4.1) is computed once per certificate.
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { tlsChannelOf } from '../../../lib/sasl/mechanism.js';
import { SocketTransport } from '../../../lib/transport/socket-transport.js';
import type { TlsProvider } from '../../../lib/transport/types.js';
import { rsaCert, type TestCert } from '../sasl/tls-fixture.js';

/** Two certificates: `a` by default, `b` for clients that ask for b.example by SNI. */
function provider(a: TestCert, b: TestCert): TlsProvider {
  const ctxA = tls.createSecureContext({ key: a.key, cert: a.cert });
  const ctxB = tls.createSecureContext({ key: b.key, cert: b.cert });
  const pick = (name?: string): tls.SecureContext => (name === 'b.example' ? ctxB : ctxA);
  return {
    secureContext: pick,
    sniCallback: (name, cb) => cb(null, pick(name)),
    serverOptions: () => ({ SNICallback: (name, cb) => cb(null, pick(name)) }),
    attach: () => undefined,
  };
}

/** A plain TCP connection upgraded in place, as after <proceed/>. */
async function upgraded(tlsProvider: TlsProvider, servername?: string): Promise<{ transport: SocketTransport; close(): Promise<void> }> {
  const server = net.createServer();
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const raw = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  const transport = new SocketTransport(await accepted, tlsProvider);
  const client = tls.connect({ socket: raw, rejectUnauthorized: false, ...(servername ? { servername } : {}) });
  client.on('error', () => undefined);
  await Promise.all([transport.startTls(), new Promise((resolve) => client.once('secureConnect', resolve))]);
  return {
    transport,
    async close() {
      client.destroy();
      transport.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('SocketTransport STARTTLS and channel binding', function () {
  this.timeout(20_000);
  const a = rsaCert('sha256');
  const b = rsaCert('sha384');

  it('computes the tls-server-end-point binding once per certificate, and right for each', async () => {
    const tlsProvider = provider(a, b);
    const original = tls.TLSSocket.prototype.getCertificate;
    let reads = 0;
    tls.TLSSocket.prototype.getCertificate = function (this: tls.TLSSocket) {
      reads++;
      return original.call(this);
    };
    const open: Array<{ close(): Promise<void> }> = [];
    try {
      const bindingOf = async (servername?: string): Promise<Buffer | undefined> => {
        const conn = await upgraded(tlsProvider, servername);
        open.push(conn);
        return tlsChannelOf(conn.transport.tlsSocket!).bindingData('tls-server-end-point');
      };
      const first = await bindingOf();
      const second = await bindingOf();
      expect(first).to.deep.equal(createHash('sha256').update(a.der).digest());
      expect(second).to.deep.equal(first);
      expect(reads, 'one certificate read for two connections with the same certificate').to.equal(1);

      // SNI picked the other certificate: its own binding (SHA-384 signature, SHA-384 hash).
      const viaSni = await bindingOf('b.example');
      expect(viaSni).to.deep.equal(createHash('sha384').update(b.der).digest());
      expect(await bindingOf('b.example')).to.deep.equal(viaSni);
      expect(reads).to.equal(2);
    } finally {
      tls.TLSSocket.prototype.getCertificate = original;
      await Promise.all(open.map((c) => c.close()));
    }
  });
});

/** A plain TCP pair: our transport on the accepted side, the raw peer socket on the other. */
async function plainPair(): Promise<{ transport: SocketTransport; peer: net.Socket; received: () => string; chunks: string[]; close(): Promise<void> }> {
  const server = net.createServer();
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const peer = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  const chunks: string[] = [];
  peer.on('data', (d: Buffer) => chunks.push(d.toString('utf8')));
  peer.on('error', () => undefined);
  const transport = new SocketTransport(await accepted, undefined);
  return {
    transport,
    peer,
    chunks,
    received: () => chunks.join(''),
    async close() {
      peer.destroy();
      transport.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 5));
}

describe('SocketTransport output', () => {
  it('sends what is written in one turn as one write, in order, at the end of the turn', async () => {
    const pair = await plainPair();
    const writes: unknown[] = [];
    const socket = (pair.transport as unknown as { socket: net.Socket }).socket;
    const original = socket.write.bind(socket);
    socket.write = ((data: unknown, ...rest: never[]) => { writes.push(data); return original(data as string, ...rest); }) as typeof socket.write;
    try {
      pair.transport.write('<a/>');
      pair.transport.write('<b>é</b>');
      pair.transport.write('');
      pair.transport.write('<c/>');
      expect(writes).to.have.length(0);
      expect(pair.transport.bufferedBytes).to.be.at.least('<a/><b>é</b><c/>'.length);
      await new Promise((r) => setImmediate(r));
      expect(writes).to.deep.equal(['<a/><b>é</b><c/>']);
      pair.transport.write('<d/>');
      await until(() => pair.received() === '<a/><b>é</b><c/><d/>');
      expect(pair.received()).to.equal('<a/><b>é</b><c/><d/>');
      expect(writes).to.have.length(2);
    } finally {
      await pair.close();
    }
  });

  it('sends what is held before ending the connection', async () => {
    const pair = await plainPair();
    try {
      const ended = new Promise((resolve) => pair.peer.once('end', resolve));
      pair.transport.write('<message/>');
      pair.transport.write('</stream:stream>');
      pair.transport.end();
      await ended;
      expect(pair.received()).to.equal('<message/></stream:stream>');
    } finally {
      await pair.close();
    }
  });

  it('drops what is held when the connection is destroyed', async () => {
    const pair = await plainPair();
    try {
      pair.transport.write('<message/>');
      pair.transport.destroy();
      expect(pair.transport.bufferedBytes).to.equal(0);
      await new Promise((r) => setTimeout(r, 20));
      expect(pair.received()).to.equal('');
    } finally {
      await pair.close();
    }
  });
});
