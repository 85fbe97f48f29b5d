// A minimal raw XMPP client for load generation: TCP + STARTTLS (or direct TLS), SASL
// SCRAM-SHA-1 (bench/scram-client.ts), resource binding, initial presence, in-band registration (XEP-0077), and raw stanza send/receive. It speaks
// just enough XMPP to drive a server and does as little work per byte as it can, so that on a
// shared machine the server under test, not the client, is what gets measured.
import net from 'node:net';
import tls from 'node:tls';
import { XmlSplitter } from './xml-splitter.js';
import { SCRAM_SHA_1, ScramSha1Client } from './scram-client.js';

export interface Endpoint {
  host: string;
  port: number;
  /** The XMPP domain (stream `to`, SNI). */
  domain: string;
  /** STARTTLS on a plain port (RFC 6120 §5) or TLS from the first byte (XEP-0368). */
  tls: 'starttls' | 'direct';
}

export interface Account {
  user: string;
  password: string;
}

export interface TlsInfo {
  protocol: string;
  cipher: string;
}

const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';
const NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind';
const NS_REGISTER_FEATURE = 'http://jabber.org/features/iq-register';

export class XmppError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XmppError';
  }
}

export class XmppConnection {
  /** The full JID the server bound, once logged in. */
  jid = '';
  /** After login, every stanza goes here instead of the negotiation queue. */
  onStanza: ((xml: string) => void) | undefined;
  /** Called when the connection closes after login (not for close() we asked for). */
  onLost: ((reason: string) => void) | undefined;

  private socket: net.Socket;
  private readonly splitter: XmlSplitter;
  private readonly queue: string[] = [];
  private waiter: { resolve(xml: string): void; reject(err: Error): void } | undefined;
  private ended: Error | undefined;
  private closing = false;
  private streamClosed: (() => void) | undefined;
  private socketClosed: Promise<void>;

  private constructor(socket: net.Socket, private readonly endpoint: Endpoint) {
    this.socket = socket;
    this.splitter = new XmlSplitter({
      onOpen: () => undefined,
      onElement: (xml) => this.deliver(xml),
      onClose: () => {
        this.streamClosed?.();
        this.fail(new XmppError('the server closed the stream'));
      },
    });
    this.socketClosed = this.attach(socket);
  }

  // ---------------------------------------------------------------- entry points

  /**
   * Connects, secures, authenticates with SCRAM-SHA-1, binds `resource` and, unless `presence`
   * is false, sends initial presence (RFC 6121 §4.2): an online, available session.
   */
  static async login(endpoint: Endpoint, account: Account, resource: string, opts: { timeoutMs?: number; presence?: boolean } = {}): Promise<XmppConnection> {
    const timeoutMs = opts.timeoutMs ?? 30_000;
    const conn = await XmppConnection.secured(endpoint, timeoutMs);
    const timer = setTimeout(() => conn.destroy(new XmppError(`login timed out after ${timeoutMs} ms`)), timeoutMs);
    try {
      await conn.authenticate(account);
      await conn.bind(resource);
      if (opts.presence !== false) conn.write('<presence/>');
      return conn;
    } catch (err) {
      conn.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * XEP-0077 in-band registration of `accounts`, one after the other on one unauthenticated
   * stream (Prosody and ejabberd both allow several); an account that exists (conflict) counts
   * as 'exists'.
   */
  static async register(endpoint: Endpoint, accounts: Account[], timeoutMs = 30_000): Promise<{ created: number; exists: number }> {
    const conn = await XmppConnection.secured(endpoint, timeoutMs);
    const counts = { created: 0, exists: 0 };
    try {
      if (!conn.lastFeatures.includes(NS_REGISTER_FEATURE)) {
        throw new XmppError('the server does not offer in-band registration (XEP-0077)');
      }
      for (const [i, account] of accounts.entries()) {
        const timer = setTimeout(() => conn.destroy(new XmppError(`registration timed out after ${timeoutMs} ms`)), timeoutMs);
        conn.write(
          `<iq type='set' id='reg${i}'><query xmlns='jabber:iq:register'><username>${escapeXml(account.user)}</username>` +
            `<password>${escapeXml(account.password)}</password></query></iq>`,
        );
        const reply = await conn.nextElement().finally(() => clearTimeout(timer));
        if (attrIs(reply, 'type', 'result')) counts.created++;
        else if (reply.includes('<conflict')) counts.exists++;
        else throw new XmppError(`registration of ${account.user} refused: ${reply.slice(0, 300)}`);
      }
      await conn.close();
      return counts;
    } catch (err) {
      conn.destroy();
      throw err;
    }
  }

  // ---------------------------------------------------------------- use

  get tlsInfo(): TlsInfo | undefined {
    const s = this.socket;
    if (!(s instanceof tls.TLSSocket)) return undefined;
    const cipher = s.getCipher();
    return { protocol: s.getProtocol() ?? 'unknown', cipher: cipher.standardName ?? cipher.name };
  }

  write(data: string): void {
    if (this.ended === undefined) this.socket.write(data);
  }

  /**
   * Closes the stream politely: </stream:stream>, the server's answer, then the socket. With
   * `wait: false` it sends </stream:stream> and closes the socket without waiting for the
   * answer, as many clients do (some servers take their time to answer; that is idle time, not
   * work, and must not throttle a closed-loop login benchmark).
   */
  async close(timeoutMs = 5_000, opts: { wait?: boolean } = {}): Promise<void> {
    if (this.ended !== undefined) {
      this.socket.destroy();
      return;
    }
    this.closing = true;
    if (opts.wait === false) {
      this.socket.end('</stream:stream>');
      setTimeout(() => this.socket.destroy(), timeoutMs).unref();
      return;
    }
    const answered = new Promise<void>((resolve) => {
      this.streamClosed = resolve;
    });
    this.socket.write('</stream:stream>');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([answered, this.socketClosed, timeout]);
    this.socket.end();
    await Promise.race([this.socketClosed, timeout]);
    clearTimeout(timer);
    this.socket.destroy();
  }

  destroy(err?: Error): void {
    this.closing = true;
    if (err) this.fail(err);
    this.socket.destroy();
  }

  // ---------------------------------------------------------------- negotiation

  private lastFeatures = '';

  /** TCP (+ STARTTLS) or direct TLS, up to the features of the secured stream. */
  private static async secured(endpoint: Endpoint, timeoutMs: number): Promise<XmppConnection> {
    const tlsOptions = { servername: endpoint.domain, rejectUnauthorized: false };
    let socket: net.Socket;
    if (endpoint.tls === 'direct') {
      socket = tls.connect({ host: endpoint.host, port: endpoint.port, ALPNProtocols: ['xmpp-client'], ...tlsOptions });
    } else {
      socket = net.connect({ host: endpoint.host, port: endpoint.port });
    }
    socket.setNoDelay(true);
    const conn = new XmppConnection(socket, endpoint);
    const timer = setTimeout(() => conn.destroy(new XmppError(`connect timed out after ${timeoutMs} ms`)), timeoutMs);
    try {
      await conn.waitConnected();
      if (endpoint.tls === 'starttls') {
        const features = await conn.openStream();
        if (!features.includes(NS_TLS)) throw new XmppError('the server does not offer STARTTLS');
        conn.write(`<starttls xmlns='${NS_TLS}'/>`);
        const proceed = await conn.nextElement();
        if (!proceed.startsWith('<proceed')) throw new XmppError(`STARTTLS refused: ${proceed.slice(0, 200)}`);
        await conn.upgrade(tlsOptions);
      }
      conn.lastFeatures = await conn.openStream();
      return conn;
    } catch (err) {
      conn.destroy();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private waitConnected(): Promise<void> {
    const s = this.socket;
    const event = s instanceof tls.TLSSocket ? 'secureConnect' : 'connect';
    return new Promise((resolve, reject) => {
      if (this.ended) return reject(this.ended);
      const onReady = (): void => {
        this.waiter = undefined;
        resolve();
      };
      // A connection failure arrives through fail(), as for a waiter.
      this.waiter = { resolve: onReady, reject };
      s.once(event, onReady);
    });
  }

  private async openStream(): Promise<string> {
    this.splitter.reset();
    this.write(
      `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' ` +
        `to='${escapeXml(this.endpoint.domain)}' version='1.0' xml:lang='en'>`,
    );
    const features = await this.nextElement();
    if (!features.startsWith('<stream:features')) throw new XmppError(`expected stream features, got ${features.slice(0, 200)}`);
    return features;
  }

  private async upgrade(options: tls.ConnectionOptions): Promise<void> {
    const raw = this.socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    raw.removeAllListeners('error');
    raw.on('error', () => undefined); // reported by the TLS socket
    // No session reuse: every login pays for a full handshake, on every server alike.
    const secure = tls.connect({ socket: raw, ...options });
    this.socket = secure;
    this.socketClosed = this.attach(secure);
    await this.waitConnected();
  }

  private async authenticate(account: Account): Promise<void> {
    if (!this.lastFeatures.includes(`<mechanism>${SCRAM_SHA_1}</mechanism>`)) throw new XmppError(`the server does not offer SASL ${SCRAM_SHA_1}`);
    const scram = new ScramSha1Client(account.user, account.password);
    this.write(`<auth xmlns='${NS_SASL}' mechanism='${SCRAM_SHA_1}'>${scram.first()}</auth>`);
    const challenge = await this.nextElement();
    if (!challenge.startsWith('<challenge')) throw new XmppError(`authentication of ${account.user} failed: ${challenge.slice(0, 300)}`);
    this.write(`<response xmlns='${NS_SASL}'>${await scram.final(textOf(challenge))}</response>`);
    let reply = await this.nextElement();
    if (reply.startsWith('<challenge')) {
      // RFC 6120 §6.3.10 allows the server-final-message as a last challenge, then an empty success.
      scram.verify(textOf(reply));
      this.write(`<response xmlns='${NS_SASL}'/>`);
      reply = await this.nextElement();
      if (!reply.startsWith('<success')) throw new XmppError(`authentication of ${account.user} failed: ${reply.slice(0, 300)}`);
    } else if (reply.startsWith('<success')) {
      scram.verify(textOf(reply));
    } else {
      throw new XmppError(`authentication of ${account.user} failed: ${reply.slice(0, 300)}`);
    }
    const features = await this.openStream();
    if (!features.includes(NS_BIND)) throw new XmppError('the server does not offer resource binding');
  }

  private async bind(resource: string): Promise<void> {
    this.write(`<iq type='set' id='bind1'><bind xmlns='${NS_BIND}'><resource>${escapeXml(resource)}</resource></bind></iq>`);
    const reply = await this.nextElement();
    const jid = /<jid>([^<]+)<\/jid>/.exec(reply);
    if (!attrIs(reply, 'type', 'result') || jid === null) throw new XmppError(`bind failed: ${reply.slice(0, 300)}`);
    this.jid = jid[1]!;
    // Anything that arrived with the bind result belongs to the stanza handler now.
    const early = this.queue.splice(0);
    this.onStanza ??= () => undefined;
    for (const xml of early) this.onStanza(xml);
  }

  // ---------------------------------------------------------------- plumbing

  private attach(socket: net.Socket): Promise<void> {
    socket.on('data', (chunk: Buffer) => this.splitter.write(chunk));
    socket.on('error', (err: Error) => this.fail(err));
    return new Promise((resolve) => {
      socket.once('close', () => {
        this.fail(new XmppError('connection closed'));
        resolve();
      });
    });
  }

  private deliver(xml: string): void {
    if (xml.startsWith('<stream:error')) {
      const condition = /<([a-z-]+)\s+xmlns=['"]urn:ietf:params:xml:ns:xmpp-streams['"]/.exec(xml)?.[1] ?? 'unknown';
      this.fail(new XmppError(`stream error: ${condition}`));
      return;
    }
    if (this.onStanza !== undefined && this.jid !== '') {
      this.onStanza(xml);
      return;
    }
    const w = this.waiter;
    if (w !== undefined) {
      this.waiter = undefined;
      w.resolve(xml);
    } else {
      this.queue.push(xml);
    }
  }

  private nextElement(): Promise<string> {
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.ended !== undefined) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  private fail(err: Error): void {
    if (this.ended !== undefined) return;
    this.ended = err;
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(err);
    if (!this.closing && this.jid !== '') this.onLost?.(err.message);
  }
}

/** The character data of a one-level element such as <challenge>...</challenge>. */
function textOf(xml: string): string {
  const open = xml.indexOf('>');
  if (xml[open - 1] === '/') return '';
  return xml.slice(open + 1, xml.lastIndexOf('<')).trim();
}

function attrIs(xml: string, name: string, value: string): boolean {
  const end = xml.indexOf('>');
  const head = end < 0 ? xml : xml.slice(0, end);
  return head.includes(` ${name}='${value}'`) || head.includes(` ${name}="${value}"`);
}

export function escapeXml(s: string): string {
  return s.replace(/[&<>'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
