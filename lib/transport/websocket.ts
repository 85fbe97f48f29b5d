// XMPP over WebSocket (RFC 7395) at /xmpp-websocket on the http and https listeners.
//
// The upgrade is refused (plain HTTP error, no WebSocket) without the `xmpp` subprotocol
// (RFC 7395 §3.1), from an origin the policy refuses, or over the per-IP connection limit.
// Each text message is one element (framed-parser.ts); the stream machine is the same one TCP
// clients talk to. Messages larger than the stanza size limit are refused by ws itself (close
// 1009); within that, the parser applies the stream's current limits (smaller before
// authentication: a stream error `policy-violation`). Compression is off: permessage-deflate
// costs memory per connection and mixes secrets with attacker-chosen text (CRIME/BREACH).
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { C2sStream, type C2sEnv } from '../stream/c2s-stream.js';
import { escapeXML } from '../xml/element.js';
import type { Logger } from '../log.js';
import type { StreamSet } from './c2s-listeners.js';
import { clientInfo, type HttpClientInfo } from './http-client.js';
import type { OriginPolicy } from './origin-policy.js';
import { NS_FRAMING, framedParserFactory, qualifyOutgoing } from './framed-parser.js';
import type { StreamFraming, StreamTransport } from './types.js';

export const WEBSOCKET_PATH = '/xmpp-websocket';

/** RFC 7395 §3.4 and §3.6: the stream header and footer as framing elements. */
export const websocketFraming: StreamFraming = {
  framed: true,
  open(attrs) {
    const rest = Object.entries(attrs).map(([k, v]) => ` ${k}='${escapeXML(v)}'`).join('');
    return `<open xmlns='${NS_FRAMING}'${rest}/>`;
  },
  close() {
    return `<close xmlns='${NS_FRAMING}'/>`;
  },
};

/** A WebSocket as a StreamTransport: one write is one message. */
export class WebSocketTransport implements StreamTransport {
  readonly remoteAddress: string;
  readonly secure: boolean;
  readonly tlsSocket: TLSSocket | undefined;
  readonly canStartTls = false;
  private dataListener: ((chunk: Buffer) => void) | undefined;
  private readonly closeListeners: Array<() => void> = [];
  private closed = false;
  private paused = false;
  private readonly inbound: Buffer[] = [];
  private alive = true;
  private readonly pingTimer: NodeJS.Timeout | undefined;
  private endTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ws: WebSocket,
    info: HttpClientInfo,
    pingIntervalMs: number,
  ) {
    this.remoteAddress = info.remoteAddress;
    this.secure = info.secure;
    this.tlsSocket = info.tlsSocket;
    ws.on('message', (data: RawData, isBinary: boolean) => {
      this.alive = true;
      if (isBinary) {
        // RFC 7395 §3.2: XMPP messages are text frames. 1003: unsupported data.
        ws.close(1003, 'XMPP messages must be text frames');
        return;
      }
      this.inbound.push(toBuffer(data));
      this.pump();
    });
    ws.on('pong', () => {
      this.alive = true;
    });
    // ws reports protocol violations (oversized or invalid frames) here, then closes the socket.
    ws.on('error', () => undefined);
    ws.on('close', () => this.fireClose());
    if (pingIntervalMs > 0) {
      this.pingTimer = setInterval(() => {
        // While paused (rate limit, full queue) we do not read, so a pong may wait unread.
        if (this.paused) return;
        if (!this.alive) {
          // No pong (nor anything else) for a whole period: the peer is gone.
          ws.terminate();
          return;
        }
        this.alive = false;
        if (ws.readyState === WebSocket.OPEN) ws.ping();
      }, pingIntervalMs);
      this.pingTimer.unref();
    }
  }

  get bufferedBytes(): number {
    return this.ws.bufferedAmount;
  }

  write(data: string): void {
    if (data === '' || this.closed || this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.send(qualifyOutgoing(data, true));
  }

  // Messages ws already read when the machine pauses wait here, so that one is never handed
  // over while the machine is busy with the previous one (a SASL step, a full queue).
  pause(): void {
    this.paused = true;
    this.ws.pause();
  }

  resume(): void {
    this.paused = false;
    this.ws.resume();
    // Not synchronously: the machine resumes before it writes its answer to what it paused for.
    setImmediate(() => this.pump());
  }

  private pump(): void {
    while (!this.paused && !this.closed && this.inbound.length) this.dataListener?.(this.inbound.shift()!);
  }

  end(): void {
    if (this.closed) return;
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    // A peer that never completes the closing handshake must not hold the socket.
    this.endTimer ??= setTimeout(() => this.ws.terminate(), 5_000);
    this.endTimer.unref();
  }

  destroy(): void {
    this.ws.terminate();
  }

  async startTls(): Promise<void> {
    throw new Error('STARTTLS is not available on WebSocket; use wss://');
  }

  onData(listener: (chunk: Buffer) => void): void {
    this.dataListener = listener;
  }

  onClose(listener: () => void): void {
    this.closeListeners.push(listener);
  }

  private fireClose(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.endTimer) clearTimeout(this.endTimer);
    for (const l of this.closeListeners) l();
  }
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

export interface WebSocketEndpointOptions {
  env: C2sEnv;
  streams: StreamSet;
  connectionsPerIp: number;
  /** Largest message accepted: the stanza size limit. */
  maxPayload: number;
  pingIntervalMs: number;
  origins: OriginPolicy;
  log: Logger;
}

/** Writes a plain HTTP refusal on a socket that asked for an upgrade. */
export function refuseUpgrade(socket: Duplex, status: number, reason: string, text: string): void {
  const body = `${text}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  setTimeout(() => socket.destroy(), 1_000).unref();
}

export class WebSocketEndpoint {
  private readonly wss: WebSocketServer;
  private readonly sockets = new Set<WebSocket>();

  constructor(private readonly opts: WebSocketEndpointOptions) {
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: opts.maxPayload,
      handleProtocols: (protocols) => (protocols.has('xmpp') ? 'xmpp' : false),
    });
  }

  /** Called by the listener for an upgrade request on WEBSOCKET_PATH. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const protocols = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!protocols.includes('xmpp')) {
      return refuseUpgrade(socket, 400, 'Bad Request', "the 'xmpp' WebSocket subprotocol is required (RFC 7395)");
    }
    if (!this.opts.origins.allows(req)) {
      this.opts.log.debug({ origin: req.headers.origin }, 'websocket refused: origin not allowed');
      return refuseUpgrade(socket, 403, 'Forbidden', 'this origin may not connect; see http.websocket.origins');
    }
    const info = clientInfo(req);
    const ip = info.remoteAddress;
    if (!this.opts.streams.admit(ip, this.opts.connectionsPerIp)) {
      return refuseUpgrade(socket, 429, 'Too Many Requests', 'too many connections from your address');
    }
    let admitted = true;
    const release = () => {
      if (admitted) {
        admitted = false;
        this.opts.streams.release(ip);
      }
    };
    socket.once('close', release);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      socket.off('close', release);
      this.sockets.add(ws);
      ws.once('close', () => this.sockets.delete(ws));
      const transport = new WebSocketTransport(ws, info, this.opts.pingIntervalMs);
      const stream = new C2sStream(
        transport,
        websocketFraming,
        {
          ...this.opts.env,
          onClosed: (s) => {
            this.opts.streams.streams.delete(s);
            release();
          },
        },
        framedParserFactory,
      );
      this.opts.streams.streams.add(stream);
    });
  }

  /** After the streams were sent their stream errors: closes what is still open. */
  async close(graceMs = 1_000): Promise<void> {
    for (const ws of this.sockets) if (ws.readyState === WebSocket.OPEN) ws.close(1001);
    const deadline = Date.now() + graceMs;
    while (this.sockets.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
  }
}
