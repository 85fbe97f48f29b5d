// A raw XMPP client for hostile-input specs: real sockets, the exact bytes a test gives it, and
// an independent parse (saxes, written against RFC 6120, not Parley's parser) of what the server
// sends back. It never repairs, retries or hides anything: socket errors (EPIPE, ECONNRESET) are
// recorded, not thrown, so a test can keep writing into a connection the server has cut.
import net from 'node:net';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import { SaxesParser, type SaxesTagNS } from 'saxes';
import { ScramClient, type ClientHash } from '../lib/sasl/scram-client.js';
import type { TestServer } from './server.js';

/** Namespaces from RFC 6120 and XEP-0199, spelled out here rather than taken from lib/. */
export const XMLNS = {
  client: 'jabber:client',
  stream: 'http://etherx.jabber.org/streams',
  streams: 'urn:ietf:params:xml:ns:xmpp-streams',
  stanzas: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  tls: 'urn:ietf:params:xml:ns:xmpp-tls',
  sasl: 'urn:ietf:params:xml:ns:xmpp-sasl',
  bind: 'urn:ietf:params:xml:ns:xmpp-bind',
  ping: 'urn:xmpp:ping',
} as const;

export const DEFAULT_PASSWORD = 'secret-pw';

export function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}

export function escapeText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

let idCounter = 0;
/** A fresh stanza id. */
export function nextId(prefix = 'r'): string {
  return `${prefix}-${++idCounter}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves or rejects like `p`, or rejects with `message` after `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${message} (after ${ms} ms)`)), ms);
    }),
  ]);
}

// ------------------------------------------------------------------------------------------
// What the server sent, parsed

/** An element the server sent: local name, namespace URI, attributes as written. */
export class XNode {
  readonly children: XNode[] = [];
  /** The concatenated text directly inside this element. */
  text = '';

  constructor(
    readonly name: string,
    readonly ns: string,
    readonly attrs: Record<string, string>,
    readonly qname: string,
  ) {}

  is(name: string, ns?: string): boolean {
    return this.name === name && (ns === undefined || this.ns === ns);
  }

  child(name: string, ns?: string): XNode | undefined {
    return this.children.find((c) => c.is(name, ns));
  }

  elements(ns?: string): XNode[] {
    return ns === undefined ? [...this.children] : this.children.filter((c) => c.ns === ns);
  }

  /** Compact serialisation for assertion messages (not byte-exact). */
  toString(): string {
    const attrs = Object.entries(this.attrs)
      .map(([k, v]) => ` ${k}='${escapeAttr(v.length > 80 ? `${v.slice(0, 80)}…` : v)}'`)
      .join('');
    const body = this.children.map((c) => c.toString()).join('') + escapeText(this.text.length > 200 ? `${this.text.slice(0, 200)}…` : this.text);
    return body === '' ? `<${this.qname}${attrs}/>` : `<${this.qname}${attrs}>${body}</${this.qname}>`;
  }
}

interface ParserSink {
  header(attrs: Record<string, string>): void;
  element(el: XNode): void;
  close(): void;
  error(message: string): void;
}

/** One server stream document at a time; reset() starts the next one (after STARTTLS, SASL). */
class ServerStreamParser {
  private sax!: SaxesParser<{ xmlns: true }>;
  private stack: XNode[] = [];
  private rootOpen = false;
  private failed = false;

  constructor(private readonly sink: ParserSink) {
    this.reset();
  }

  reset(): void {
    const sax = new SaxesParser<{ xmlns: true }>({ xmlns: true });
    sax.on('error', (err) => {
      this.failed = true;
      this.sink.error(err.message);
      throw err; // stop this write; nothing after an error is trusted
    });
    sax.on('opentag', (tag: SaxesTagNS) => {
      const attrs: Record<string, string> = {};
      for (const [k, a] of Object.entries(tag.attributes)) attrs[k] = a.value;
      if (!this.rootOpen) {
        this.rootOpen = true;
        this.sink.header({ ...attrs, '{}local': tag.local, '{}ns': tag.uri });
        return;
      }
      const el = new XNode(tag.local, tag.uri, attrs, tag.name);
      const parent = this.stack[this.stack.length - 1];
      if (parent) parent.children.push(el);
      this.stack.push(el);
    });
    sax.on('closetag', () => {
      const el = this.stack.pop();
      if (el === undefined) {
        this.sink.close();
        return;
      }
      if (this.stack.length === 0) this.sink.element(el);
    });
    const onText = (t: string): void => {
      const top = this.stack[this.stack.length - 1];
      if (top) top.text += t;
    };
    sax.on('text', onText);
    sax.on('cdata', onText);
    this.sax = sax;
    this.stack = [];
    this.rootOpen = false;
    this.failed = false;
  }

  write(text: string): void {
    if (this.failed) return;
    try {
      this.sax.write(text);
    } catch (err) {
      if (!this.failed) {
        this.failed = true;
        this.sink.error((err as Error).message);
      }
    }
  }
}

// ------------------------------------------------------------------------------------------

export interface ConnectOptions {
  /** XEP-0368 direct TLS instead of plain TCP. */
  directTls?: boolean;
  host?: string;
  /** The XMPP domain: `to` of stream headers and the TLS server name. Default 'localhost'. */
  domain?: string;
  /** The local address to connect from (e.g. 127.0.0.2 to test address rules). */
  localAddress?: string;
}

export type Mechanism = 'PLAIN' | `SCRAM-${ClientHash}`;

type Waiter = () => void;

export class RawClient {
  /** Everything received, decoded as UTF-8, across all streams of this connection. */
  received = '';
  receivedBytes = 0;
  /** Bytes handed to the socket by send()/write(). */
  bytesSent = 0;
  /** Top-level elements of every stream, in order of arrival. */
  readonly elements: XNode[] = [];
  /** Stream headers received (attributes as written). */
  readonly headers: Array<Record<string, string>> = [];
  /** Index into `elements` where the current stream (since the last restart) begins. */
  streamStart = 0;
  /** `</stream:stream>` received on the current stream. */
  serverClosedStream = false;
  /** Where what the server sent was not well-formed XML. */
  readonly parseErrors: string[] = [];
  /** EPIPE, ECONNRESET and friends, recorded rather than thrown. */
  readonly socketErrors: Error[] = [];
  isClosed = false;
  connectedAt = 0;
  closedAt = 0;
  /** Resolves when the socket is closed (by the server, or after our own close/destroy). */
  readonly closed: Promise<void>;
  /** The full JID after bind(). */
  jid: string | undefined;

  private socket: net.Socket;
  private decoder = new TextDecoder('utf-8');
  private readonly parser: ServerStreamParser;
  private readonly waiters = new Set<Waiter>();
  private resolveClosed!: () => void;
  private readonly listeners = {
    data: (chunk: Buffer) => this.onData(chunk),
    error: (err: Error) => this.socketErrors.push(err),
    close: () => this.onClose(),
  };

  private constructor(socket: net.Socket, readonly domain: string) {
    this.socket = socket;
    this.closed = new Promise<void>((resolve) => (this.resolveClosed = resolve));
    this.parser = new ServerStreamParser({
      header: (attrs) => this.headers.push(attrs),
      element: (el) => this.elements.push(el),
      close: () => (this.serverClosedStream = true),
      error: (message) => this.parseErrors.push(message),
    });
    this.attach(socket);
  }

  /** Connects (and, for direct TLS, finishes the handshake). Sends nothing. */
  static async connect(port: number, opts: ConnectOptions = {}): Promise<RawClient> {
    const host = opts.host ?? '127.0.0.1';
    const domain = opts.domain ?? 'localhost';
    const socket = opts.directTls
      ? tls.connect({ host, port, servername: domain, rejectUnauthorized: false, ALPNProtocols: ['xmpp-client'] })
      : net.connect({ host, port, localAddress: opts.localAddress });
    const client = new RawClient(socket, domain);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      socket.once('error', onError);
      socket.once(opts.directTls ? 'secureConnect' : 'connect', () => {
        socket.off('error', onError);
        resolve();
      });
    });
    client.connectedAt = Date.now();
    return client;
  }

  private attach(socket: net.Socket): void {
    socket.on('data', this.listeners.data);
    socket.on('error', this.listeners.error);
    socket.on('close', this.listeners.close);
  }

  private detach(socket: net.Socket): void {
    socket.off('data', this.listeners.data);
    socket.off('error', this.listeners.error);
    socket.off('close', this.listeners.close);
  }

  private onData(chunk: Buffer): void {
    this.receivedBytes += chunk.length;
    const text = this.decoder.decode(chunk, { stream: true });
    this.received += text;
    this.parser.write(text);
    this.notify();
  }

  private onClose(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closedAt = Date.now();
    this.resolveClosed();
    this.notify();
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  get secure(): boolean {
    return this.socket instanceof tls.TLSSocket && this.socket.encrypted;
  }

  /** RFC 9266 tls-exporter channel binding data of this TLS connection. */
  tlsExporter(): Buffer {
    if (!(this.socket instanceof tls.TLSSocket)) throw new Error('not a TLS connection');
    return this.socket.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0));
  }

  /** True while bytes can still go out (not closed, not half-closed by the server's FIN). */
  get writable(): boolean {
    return !this.socket.destroyed && this.socket.writable && !this.socket.writableEnded;
  }

  // ---------------------------------------------------------------------------- sending

  /** Writes raw bytes or text as they are; silently drops them once the socket is gone. */
  send(data: string | Buffer): void {
    if (!this.writable) return;
    this.bytesSent += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    this.socket.write(data);
  }

  /**
   * Writes and waits until the socket wants more (back-pressure). Resolves false, without
   * throwing, once the connection is gone (FIN, EPIPE, ECONNRESET).
   */
  async write(data: string | Buffer): Promise<boolean> {
    if (!this.writable) return false;
    this.bytesSent += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
    const socket = this.socket;
    if (socket.write(data)) return true;
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        socket.off('drain', onDrain);
        socket.off('close', onGone);
        socket.off('error', onGone);
        resolve(ok && this.writable);
      };
      const onDrain = () => done(true);
      const onGone = () => done(false);
      socket.on('drain', onDrain);
      socket.on('close', onGone);
      socket.on('error', onGone);
    });
  }

  /** Forgets the current server stream document: the next bytes start a new one. */
  restart(): void {
    this.parser.reset();
    this.streamStart = this.elements.length;
    this.serverClosedStream = false;
  }

  /**
   * Sends a stream header (RFC 6120 §4.7). `overrides` replace attributes; undefined removes one
   * (e.g. `{ version: undefined }`).
   */
  open(to: string | undefined = this.domain, overrides: Record<string, string | undefined> = {}): void {
    const attrs: Record<string, string | undefined> = {
      to,
      version: '1.0',
      'xml:lang': 'en',
      xmlns: XMLNS.client,
      'xmlns:stream': XMLNS.stream,
      ...overrides,
    };
    const rest = Object.entries(attrs)
      .filter((e): e is [string, string] => e[1] !== undefined)
      .map(([k, v]) => ` ${k}='${escapeAttr(v)}'`)
      .join('');
    this.sendHeader(`<?xml version='1.0'?><stream:stream${rest}>`);
  }

  /** Restarts the parser and sends `raw` as the beginning of a new stream. */
  sendHeader(raw: string | Buffer): void {
    this.restart();
    this.send(raw);
  }

  /** Waits for <stream:features/> on the current stream. */
  features(timeoutMs = 5000): Promise<XNode> {
    return this.waitForElement((e) => e.is('features', XMLNS.stream), timeoutMs, this.streamStart);
  }

  /** open() and wait for the features. */
  async openStream(to?: string): Promise<XNode> {
    this.open(to);
    return this.features();
  }

  /** RFC 6120 §5.4.2: <starttls/>, <proceed/>, then the TLS handshake over the same socket. */
  async starttls(): Promise<void> {
    const from = this.elements.length;
    this.send(`<starttls xmlns='${XMLNS.tls}'/>`);
    const answer = await this.waitForElement((e) => e.ns === XMLNS.tls && (e.name === 'proceed' || e.name === 'failure'), 5000, from);
    if (answer.name !== 'proceed') throw new Error(`STARTTLS refused: ${answer}`);
    const raw = this.socket;
    this.detach(raw);
    raw.on('error', this.listeners.error);
    const secure = tls.connect({ socket: raw, servername: this.domain, rejectUnauthorized: false });
    this.socket = secure;
    this.attach(secure);
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
      secure.once('close', () => reject(new Error('closed during the TLS handshake')));
    });
  }

  /** Sends <auth/> with `initial` (bytes, base64-encoded here; or a string sent as it is). */
  sendAuth(mechanism: string, initial?: Buffer | string): void {
    const body = initial === undefined ? '' : typeof initial === 'string' ? initial : initial.length === 0 ? '=' : initial.toString('base64');
    this.send(`<auth xmlns='${XMLNS.sasl}' mechanism='${escapeAttr(mechanism)}'>${body}</auth>`);
  }

  /** The next SASL <challenge/>, <success/> or <failure/> at or after element index `from`. */
  saslAnswer(from: number, timeoutMs = 5000): Promise<XNode> {
    return this.waitForElement(
      (e) => e.ns === XMLNS.sasl && (e.name === 'challenge' || e.name === 'success' || e.name === 'failure'),
      timeoutMs,
      from,
    );
  }

  /** Authenticates (RFC 6120 §6); throws with the server's answer on anything but success. */
  async authenticate(user: string, password = DEFAULT_PASSWORD, mechanism: Mechanism = 'PLAIN'): Promise<void> {
    let from = this.elements.length;
    if (mechanism === 'PLAIN') {
      this.sendAuth('PLAIN', Buffer.from(`\0${user}\0${password}`, 'utf8'));
      const answer = await this.saslAnswer(from);
      if (answer.name !== 'success') throw new Error(`SASL PLAIN: ${answer}`);
      return;
    }
    const scram = new ScramClient({ hash: mechanism.slice('SCRAM-'.length) as ClientHash, username: user, password });
    this.sendAuth(mechanism, scram.first());
    const challenge = await this.saslAnswer(from);
    if (challenge.name !== 'challenge') throw new Error(`SASL ${mechanism}: ${challenge}`);
    from = this.elements.length;
    const final = scram.final(Buffer.from(challenge.text, 'base64'));
    this.send(`<response xmlns='${XMLNS.sasl}'>${final.toString('base64')}</response>`);
    const answer = await this.saslAnswer(from);
    if (answer.name !== 'success') throw new Error(`SASL ${mechanism}: ${answer}`);
    if (!scram.verifyServerFinal(Buffer.from(answer.text, 'base64'))) throw new Error(`SASL ${mechanism}: bad server signature`);
  }

  /** RFC 6120 §7: binds `resource` (or one the server picks); returns the full JID. */
  async bind(resource?: string): Promise<string> {
    const id = nextId('bind');
    const res = resource === undefined ? '' : `<resource>${escapeText(resource)}</resource>`;
    this.send(`<iq type='set' id='${id}'><bind xmlns='${XMLNS.bind}'>${res}</bind></iq>`);
    const reply = await this.waitForElement((e) => e.is('iq') && e.attrs.id === id, 5000);
    const jid = reply.child('bind', XMLNS.bind)?.child('jid')?.text;
    if (reply.attrs.type !== 'result' || !jid) throw new Error(`bind: ${reply}`);
    this.jid = jid;
    return jid;
  }

  /** XEP-0199 ping; resolves with the round trip in ms, rejects on an error reply or timeout. */
  async ping(to: string = this.domain, timeoutMs = 5000): Promise<number> {
    const id = nextId('ping');
    const t0 = performance.now();
    this.send(`<iq type='get' id='${id}' to='${escapeAttr(to)}'><ping xmlns='${XMLNS.ping}'/></iq>`);
    const reply = await this.waitForElement((e) => e.is('iq') && e.attrs.id === id, timeoutMs);
    if (reply.attrs.type !== 'result') throw new Error(`ping answered with ${reply}`);
    return performance.now() - t0;
  }

  // ---------------------------------------------------------------------------- waiting

  private wait<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (fn: () => void) => {
        this.waiters.delete(waiter);
        if (timer) clearTimeout(timer);
        fn();
      };
      const waiter: Waiter = () => {
        let found: T | undefined;
        try {
          found = check();
        } catch (err) {
          finish(() => reject(err));
          return;
        }
        if (found !== undefined) finish(() => resolve(found));
        else if (this.isClosed) finish(() => reject(new Error(`connection closed while waiting for ${what}; received: ${this.tail()}`)));
      };
      timer = setTimeout(() => finish(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; received: ${this.tail()}`))), timeoutMs);
      this.waiters.add(waiter);
      waiter();
    });
  }

  /** Last part of what was received, for error messages. */
  tail(n = 600): string {
    return this.received.length > n ? `…${this.received.slice(-n)}` : this.received;
  }

  /**
   * Waits until the accumulated received text matches; resolves with the match (regex) or the
   * whole text (predicate).
   */
  waitFor(match: RegExp | ((text: string) => boolean), timeoutMs = 5000): Promise<string> {
    return this.wait<string>(
      () => {
        if (match instanceof RegExp) {
          const m = match.exec(this.received);
          return m === null ? undefined : m[0];
        }
        return match(this.received) ? this.received : undefined;
      },
      timeoutMs,
      String(match),
    );
  }

  /** Waits for a top-level element (index >= `from`) that satisfies `pred`. */
  waitForElement(pred: (el: XNode) => boolean, timeoutMs = 5000, from = 0): Promise<XNode> {
    let cursor = from;
    return this.wait<XNode>(
      () => {
        for (; cursor < this.elements.length; cursor++) {
          const el = this.elements[cursor]!;
          if (pred(el)) return el;
        }
        return undefined;
      },
      timeoutMs,
      `an element matching ${pred.toString().slice(0, 160)}`,
    );
  }

  /** The <stream:error/> element once it arrives. */
  streamError(timeoutMs = 5000): Promise<XNode> {
    return this.waitForElement((e) => e.is('error', XMLNS.stream), timeoutMs);
  }

  /** Resolves when the socket is closed; rejects after `timeoutMs`. */
  waitClosed(timeoutMs = 5000): Promise<void> {
    return withTimeout(this.closed, timeoutMs, `the server did not close the connection; received: ${this.tail(300)}`);
  }

  // ---------------------------------------------------------------------------- control

  /** Stops reading from the socket (the kernel buffers fill, then the server's). */
  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    this.socket.resume();
  }

  /** Closes the stream politely (RFC 6120 §4.4) and ends our side. */
  close(): void {
    this.send('</stream:stream>');
    if (!this.socket.destroyed) this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export interface LoginOptions {
  resource?: string;
  password?: string;
  mechanism?: Mechanism;
  /** XEP-0368 direct TLS instead of STARTTLS. */
  directTls?: boolean;
}

/** Connects, secures (STARTTLS or direct TLS), authenticates and binds: a ready session. */
export async function loggedIn(srv: TestServer, user: string, opts: LoginOptions = {}): Promise<RawClient> {
  const c = await RawClient.connect(srv.port(opts.directTls ? 'c2s-tls' : 'c2s'), { directTls: opts.directTls, domain: srv.domain });
  try {
    await c.openStream();
    if (!opts.directTls) {
      await c.starttls();
      await c.openStream();
    }
    await c.authenticate(user, opts.password ?? DEFAULT_PASSWORD, opts.mechanism ?? 'PLAIN');
    await c.openStream();
    await c.bind(opts.resource);
    return c;
  } catch (err) {
    c.destroy();
    throw err;
  }
}
