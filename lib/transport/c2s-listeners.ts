// TCP (STARTTLS) and direct-TLS (XEP-0368) listeners for client streams.
import net from 'node:net';
import tls from 'node:tls';
import { SocketTransport } from './socket-transport.js';
import type { TlsProvider } from './types.js';
import { C2sStream, type C2sEnv } from '../stream/c2s-stream.js';
import { xmlStreamFraming } from '../stream/xml-framing.js';
import { NS } from '../stanza/ns.js';
import { KeyedRateLimit } from '../sessions/rate-limit.js';

export interface ListenerOptions {
  address: string;
  port: number;
  directTls: boolean;
  tls: TlsProvider;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  connectionsPerIp: number;
}

/**
 * Tracks live streams so that shutdown can send `system-shutdown` to each, and admits new ones:
 * at most `max` at once per address, and at most `newPerMinute` new ones per address per minute
 * (bursts of as many), on every client transport sharing this set.
 */
export class StreamSet {
  readonly streams = new Set<C2sStream>();
  private readonly perIp = new Map<string, number>();
  private readonly rate: KeyedRateLimit | undefined;

  constructor(newPerMinute?: number) {
    this.rate = newPerMinute === undefined ? undefined : new KeyedRateLimit(newPerMinute / 60, newPerMinute);
  }

  admit(ip: string, max: number): boolean {
    const n = this.perIp.get(ip) ?? 0;
    if (n >= max) return false;
    if (this.rate && !this.rate.take(ip)) return false;
    this.perIp.set(ip, n + 1);
    return true;
  }

  release(ip: string): void {
    const n = (this.perIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.perIp.delete(ip);
    else this.perIp.set(ip, n);
  }
}

export function listenC2s(opts: ListenerOptions, env: C2sEnv, set: StreamSet): Promise<net.Server> {
  const framing = xmlStreamFraming(NS.client);
  // One environment for every stream of this listener (a copy per connection costs each idle
  // connection its size).
  const streamEnv: C2sEnv = {
    ...env,
    onClosed: (s) => {
      set.streams.delete(s);
      set.release(s.remoteAddress);
    },
  };
  const onSocket = (socket: net.Socket) => {
    socket.setNoDelay(true);
    const transport = new SocketTransport(socket, opts.directTls ? undefined : opts.tls, opts.minVersion);
    const ip = transport.remoteAddress;
    if (!set.admit(ip, opts.connectionsPerIp)) {
      // RFC 6120 §4.9.3.14 policy-violation, written raw: no stream machine for this one.
      socket.end(`${framing.open({ id: 'refused', version: '1.0' })}<stream:error><policy-violation xmlns='${NS.streamErrors}'/><text xmlns='${NS.streamErrors}'>too many connections from your address</text></stream:error>${framing.close()}`);
      return;
    }
    const stream = new C2sStream(transport, framing, streamEnv);
    set.streams.add(stream);
  };
  let server: net.Server;
  if (opts.directTls) {
    const tlsServer = tls.createServer({ ...opts.tls.serverOptions(), ALPNProtocols: ['xmpp-client'], minVersion: opts.minVersion });
    opts.tls.attach(tlsServer);
    server = tlsServer;
  } else {
    server = net.createServer();
  }
  server.on(opts.directTls ? 'secureConnection' : 'connection', onSocket);
  // Handshake failures on direct TLS are the client's problem, not the server's.
  server.on('tlsClientError', () => undefined);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.address, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
