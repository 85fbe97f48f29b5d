// Opens the first TCP (or direct TLS) connection that works among ordered candidates: the next
// candidate starts after a short stagger, or at once when the previous one fails (RFC 8305
// "happy eyeballs" in spirit; each candidate's own A/AAAA race is Node's autoSelectFamily).
import net from 'node:net';
import tls from 'node:tls';
import type { S2sTarget } from './resolver.js';

export interface Connected {
  socket: net.Socket;
  target: S2sTarget;
}

export interface ConnectAttempt {
  readonly result: Promise<Connected>;
  /** Abandons every connection still being tried. */
  cancel(): void;
}

export interface ConnectOptions {
  /** Delay before trying the next candidate while the previous one is still pending. */
  staggerMs: number;
  /** For direct-TLS candidates (XEP-0368): SNI name and our context (certificate, CAs). */
  servername: string;
  secureContext: tls.SecureContext;
}

export function connectFirst(targets: readonly S2sTarget[], opts: ConnectOptions): ConnectAttempt {
  const live = new Set<net.Socket>();
  let next = 0;
  let done = false;
  let lastError: Error | undefined;
  let timer: NodeJS.Timeout | undefined;

  let fail: (err: Error) => void = () => undefined;
  const stop = (): void => {
    done = true;
    if (timer) clearTimeout(timer);
    for (const s of live) s.destroy();
    live.clear();
  };
  const cancel = (): void => {
    if (done) return;
    stop();
    fail(new Error('cancelled'));
  };

  const result = new Promise<Connected>((resolve, reject) => {
    fail = reject;
    const startNext = (): void => {
      if (timer) clearTimeout(timer);
      if (done) return;
      if (next >= targets.length) {
        if (live.size === 0) {
          done = true;
          reject(lastError ?? new Error('no address to connect to'));
        }
        return;
      }
      const target = targets[next++]!;
      const socket = target.directTls
        ? tls.connect({
            host: target.host,
            port: target.port,
            servername: opts.servername,
            secureContext: opts.secureContext,
            ALPNProtocols: ['xmpp-server'],
            rejectUnauthorized: false,
            checkServerIdentity: () => undefined,
          })
        : net.connect({ host: target.host, port: target.port, autoSelectFamily: true });
      live.add(socket);
      const onError = (err: Error): void => {
        live.delete(socket);
        socket.destroy();
        lastError = err;
        startNext();
      };
      socket.once('error', onError);
      socket.once(target.directTls ? 'secureConnect' : 'connect', () => {
        socket.off('error', onError);
        live.delete(socket);
        if (done) {
          socket.destroy();
          return;
        }
        stop();
        resolve({ socket, target });
      });
      timer = setTimeout(startNext, opts.staggerMs);
      timer.unref();
    };
    startNext();
  });
  return { result, cancel };
}
