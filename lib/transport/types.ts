// What the stream machine needs of a connection, whatever carries it (TCP, TLS, WebSocket, BOSH).
import type { TLSSocket, SecureContext, TlsOptions, Server as TlsServer } from 'node:tls';

export interface TlsProvider {
  secureContext(servername?: string): SecureContext;
  sniCallback(servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void;
  /** Options for tls.createServer: SNI plus a default certificate for clients that send no name. */
  serverOptions(): TlsOptions;
  /** Keeps a server's default certificate in step with reloads. */
  attach(server: TlsServer): void;
}

export interface StreamTransport {
  readonly remoteAddress: string;
  /** True once the bytes are encrypted (STARTTLS done, direct TLS, or wss/https). */
  readonly secure: boolean;
  /** The TLS socket, for channel binding; undefined when not TLS or not reachable (proxied). */
  readonly tlsSocket: TLSSocket | undefined;
  /** Bytes queued for writing, to bound what a client that never reads can make us hold. */
  readonly bufferedBytes: number;
  readonly canStartTls: boolean;
  write(data: string): void;
  pause(): void;
  resume(): void;
  /** Flushes then closes. */
  end(): void;
  destroy(): void;
  /** Upgrades in place (STARTTLS); data arriving afterwards is decrypted. */
  startTls(): Promise<void>;
  onData(listener: (chunk: Buffer) => void): void;
  onClose(listener: () => void): void;
}

/** How stream headers are written: XML stream over TCP, or RFC 7395 framing over WebSocket. */
export interface StreamFraming {
  open(attrs: Record<string, string>): string;
  close(): string;
  /** True when every top-level element is a separate message (WebSocket). */
  readonly framed: boolean;
}
