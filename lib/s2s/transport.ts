// A TCP or TLS socket carrying an s2s stream, upgraded in place by STARTTLS on either side.
// Unlike the c2s transport, the server side asks for the peer's certificate (RFC 6120 §13.7.2,
// XEP-0178) and remembers OpenSSL's verdict on it; the client side presents ours.
import type { Socket } from 'node:net';
import tls from 'node:tls';
import type { StreamTransport } from '../transport/types.js';
import type { S2sTlsContexts } from './certificates.js';
import { checkPeerCertificate, type PeerCertificate } from './certificates.js';

export class S2sTransport implements StreamTransport {
  private socket: Socket;
  private dataListener: ((chunk: Buffer) => void) | undefined;
  private readonly closeListeners: Array<() => void> = [];
  private closed = false;
  /** OpenSSL's verdict on the peer's certificate chain (not its name). */
  private peerAuthorized = false;
  private peerAuthError: string | undefined;
  readonly remoteAddress: string;

  /**
   * `contexts` enables server-side STARTTLS; a socket that is already TLS (direct TLS) must not
   * get it. `authorized` is the verdict of the tls.Server that accepted a direct-TLS socket.
   */
  constructor(socket: Socket, private readonly contexts: S2sTlsContexts | undefined) {
    this.socket = socket;
    this.remoteAddress = normaliseAddress(socket.remoteAddress);
    if (socket instanceof tls.TLSSocket) {
      this.peerAuthorized = socket.authorized;
      this.peerAuthError = socket.authorizationError === undefined ? undefined : String(socket.authorizationError);
    }
    this.attach(socket);
  }

  get secure(): boolean {
    return this.socket instanceof tls.TLSSocket && this.socket.encrypted;
  }

  get tlsSocket(): tls.TLSSocket | undefined {
    return this.socket instanceof tls.TLSSocket ? this.socket : undefined;
  }

  get bufferedBytes(): number {
    return this.socket.writableLength;
  }

  get canStartTls(): boolean {
    return this.contexts !== undefined && !this.secure;
  }

  /** Is the peer's certificate trusted and issued for `domain`? */
  peerCertificate(domain: string): PeerCertificate {
    const s = this.tlsSocket;
    if (!s) return { valid: false, reason: 'not TLS' };
    return checkPeerCertificate(s, domain, this.peerAuthorized, this.peerAuthError);
  }

  private attach(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => this.dataListener?.(chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.fireClose());
  }

  private fireClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const l of this.closeListeners) l();
  }

  write(data: string): void {
    if (!this.closed && !this.socket.destroyed) this.socket.write(data);
  }

  pause(): void { this.socket.pause(); }
  resume(): void { this.socket.resume(); }

  end(): void {
    if (this.socket.destroyed) return;
    this.socket.end();
    // A peer that never closes its side must not hold the socket forever.
    setTimeout(() => this.socket.destroy(), 5_000).unref();
  }

  destroy(): void { this.socket.destroy(); }

  private detachRaw(): Socket {
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    raw.removeAllListeners('error');
    // Errors on the raw socket surface on the TLS socket; this keeps them from being unhandled.
    raw.on('error', () => raw.destroy());
    raw.on('close', () => this.fireClose());
    return raw;
  }

  /** Server side of STARTTLS (RFC 6120 §5.4.3.3), asking for the peer's certificate. */
  async startTls(): Promise<void> {
    const contexts = this.contexts;
    if (!contexts) throw new Error('no TLS configured');
    const raw = this.detachRaw();
    const secure = new tls.TLSSocket(raw, {
      isServer: true,
      secureContext: contexts.context(),
      SNICallback: contexts.sniCallback,
      requestCert: true,
      rejectUnauthorized: false,
    } as ConstructorParameters<typeof tls.TLSSocket>[1]);
    this.socket = secure;
    this.attach(secure);
    await new Promise<void>((resolve, reject) => {
      secure.once('secure', () => resolve());
      secure.once('error', reject);
      secure.once('close', () => reject(new Error('closed during TLS handshake')));
    });
    // A TLSSocket made by hand (not by a tls.Server) never sets `authorized`; read OpenSSL's
    // verification result the way tls.Server does.
    const handle = (secure as unknown as { _handle?: { verifyError?: () => Error | null } })._handle;
    const error = typeof handle?.verifyError === 'function' ? handle.verifyError() : new Error('UNVERIFIED');
    this.peerAuthorized = error === null;
    this.peerAuthError = error === null ? undefined : ((error as NodeJS.ErrnoException).code ?? error.message);
  }

  /** Client side of STARTTLS, or of direct TLS on a fresh socket: presents our certificate. */
  async startClientTls(servername: string, secureContext: tls.SecureContext, alpn?: string[]): Promise<void> {
    const raw = this.socket instanceof tls.TLSSocket ? undefined : this.detachRaw();
    if (!raw) throw new Error('already TLS');
    const secure = tls.connect({
      socket: raw,
      servername,
      secureContext,
      rejectUnauthorized: false,
      ALPNProtocols: alpn,
      // The name is checked against RFC 6125 by checkPeerCertificate, not by Node's rules.
      checkServerIdentity: () => undefined,
    });
    this.socket = secure;
    this.attach(secure);
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
      secure.once('close', () => reject(new Error('closed during TLS handshake')));
    });
    this.peerAuthorized = secure.authorized;
    this.peerAuthError = secure.authorizationError === undefined ? undefined : String(secure.authorizationError);
  }

  onData(listener: (chunk: Buffer) => void): void { this.dataListener = listener; }
  onClose(listener: () => void): void { this.closeListeners.push(listener); }
}

function normaliseAddress(addr: string | undefined): string {
  if (!addr) return 'unknown';
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}
