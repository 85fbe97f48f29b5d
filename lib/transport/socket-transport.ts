// TCP and TLS sockets as a StreamTransport, with in-place STARTTLS upgrade.
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { noteServerContext } from '../sasl/mechanism.js';
import type { StreamTransport, TlsProvider } from './types.js';

/**
 * Transports holding output until the end of this turn of the event loop, flushed by one
 * setImmediate for all of them rather than one per socket.
 */
const unflushed: SocketTransport[] = [];
let flushScheduled = false;

function flushAll(): void {
  flushScheduled = false;
  for (let i = 0; i < unflushed.length; i++) unflushed[i].flush();
  unflushed.length = 0;
}

export class SocketTransport implements StreamTransport {
  private socket: Socket;
  private dataListener: ((chunk: Buffer) => void) | undefined;
  private closeListeners: Array<() => void> = [];
  private closed = false;
  readonly remoteAddress: string;

  constructor(socket: Socket, private readonly tls: TlsProvider | undefined, private readonly minVersion: 'TLSv1.2' | 'TLSv1.3' = 'TLSv1.2') {
    this.socket = socket;
    this.remoteAddress = normaliseAddress(socket.remoteAddress);
    this.attach(socket);
  }

  get secure(): boolean {
    return this.socket instanceof TLSSocket && this.socket.encrypted;
  }

  get tlsSocket(): TLSSocket | undefined {
    return this.socket instanceof TLSSocket ? this.socket : undefined;
  }

  get bufferedBytes(): number {
    // Output held for this turn counts too, by characters (at least one byte each).
    return this.socket.writableLength + this.pending.length;
  }

  get canStartTls(): boolean {
    return this.tls !== undefined && !this.secure;
  }

  private attach(socket: Socket): void {
    // The listeners stay when STARTTLS wraps the socket (the TCP socket's data then reaches only
    // the TLS socket): removing them would turn the socket's listener table into a dictionary,
    // several hundred bytes more for as long as the connection lives.
    socket.on('data', (chunk: Buffer) => {
      if (this.socket === socket) this.dataListener?.(chunk);
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.fireClose());
  }

  private fireClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.closeListeners) l();
  }

  /** What was written in this turn of the event loop, not yet handed to the socket. */
  private pending = '';

  /**
   * Everything written in one turn of the event loop leaves in one write: over TLS, one record
   * and one system call for a burst of stanzas instead of one each. Joined here, as one string,
   * rather than by corking the socket: the stream's buffering of every chunk and the writev of
   * them cost more than the string (a group chat sends a socket several copies per turn).
   */
  write(data: string): void {
    if (this.closed || this.socket.destroyed || data === '') return;
    if (this.pending === '') {
      unflushed.push(this);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushAll);
      }
    }
    this.pending += data;
  }

  /** Hands the output held for this turn to the socket. */
  flush(): void {
    const data = this.pending;
    if (data === '') return;
    this.pending = '';
    if (!this.closed && !this.socket.destroyed) this.socket.write(data);
  }

  pause(): void { this.socket.pause(); }
  resume(): void { this.socket.resume(); }

  end(): void {
    if (this.socket.destroyed) return;
    this.flush();
    this.socket.end();
    // A peer that never closes its side must not hold the socket forever.
    setTimeout(() => this.socket.destroy(), 5_000).unref();
  }

  destroy(): void {
    this.pending = '';
    this.socket.destroy();
  }

  async startTls(): Promise<void> {
    if (!this.tls) throw new Error('no TLS configured');
    // <proceed/> goes out before the handshake takes the socket over.
    this.flush();
    const raw = this.socket;
    // The context the handshake ends up with (the default, or the one SNI picked), so the
    // certificate's channel binding can be shared by every connection that uses it.
    let context = this.tls.secureContext();
    const provider = this.tls;
    const secure = new TLSSocket(raw, {
      isServer: true,
      secureContext: context,
      SNICallback: (name, cb) => provider.sniCallback(name, (err, picked) => {
        if (picked !== undefined) context = picked;
        cb(err, picked);
      }),
      minVersion: this.minVersion,
    } as ConstructorParameters<typeof TLSSocket>[1]);
    this.socket = secure;
    this.attach(secure);
    await new Promise<void>((resolve, reject) => {
      secure.once('secure', () => {
        noteServerContext(secure, context);
        resolve();
      });
      secure.once('error', reject);
      secure.once('close', () => reject(new Error('closed during TLS handshake')));
    });
  }

  onData(listener: (chunk: Buffer) => void): void { this.dataListener = listener; }
  onClose(listener: () => void): void { this.closeListeners.push(listener); }
}

function normaliseAddress(addr: string | undefined): string {
  if (!addr) return 'unknown';
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}
