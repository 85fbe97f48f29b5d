// BOSH (XEP-0124) carrying XMPP (XEP-0206) at /http-bind.
//
// Each session is a StreamTransport for the same stream machine TCP and WebSocket clients use.
// Inbound: the children of every request's <body/> are handed to the machine one element at a
// time, in request-id order, through the framed parser (framed-parser.ts), so the stream's
// limits apply per stanza; session creation and `xmpp:restart` become an <open/>, a terminate
// request a <close/>. Outbound: what the machine writes is queued (bounded by the outbound
// buffer limit, like a socket's) and sent in the body of the oldest held request.
//
// Request ids (XEP-0124 §14): requests are processed strictly in rid order; one that arrives
// early within the window (`requests`) waits for the ones before it; a rid already answered
// gets the same answer again (the client lost it), one outside the window ends the session
// with `item-not-found`. At most `hold` requests are held; the oldest is answered when a newer
// one arrives beyond that, when data is ready, or after `wait` seconds. A session with no
// request for `inactivity` seconds (or the `pause` the client asked for, §10) is ended.
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { C2sStream, type C2sEnv } from '../stream/c2s-stream.js';
import { escapeXML, type Element } from '../xml/element.js';
import { parseFramedElement } from '../xml/framed.js';
import { NS_STREAM, XmlStreamError } from '../xml/stream-parser.js';
import type { XmlLimits } from '../xml/limits.js';
import type { Logger } from '../log.js';
import type { StreamSet } from './c2s-listeners.js';
import type { HttpClientInfo } from './http-client.js';
import { NS_CLIENT, NS_FRAMING, framedParserFactory, qualifyOutgoing } from './framed-parser.js';
import type { StreamFraming, StreamTransport } from './types.js';

export const BOSH_PATH = '/http-bind';
export const NS_HTTPBIND = 'http://jabber.org/protocol/httpbind';
export const NS_XBOSH = 'urn:xmpp:xbosh';
const BOSH_VERSION = '1.11';
/** Shortest interval between empty polls we ask of clients that hold nothing (seconds). */
const POLLING_SECONDS = 2;
/** How long an ended session waits for a request to carry its terminate body. */
const TERMINATE_GRACE_MS = 10_000;
/** rids are positive integers below 2^53 (XEP-0124 §7.1). */
const RID_RE = /^\d{1,16}$/;

export type BoshCondition =
  | 'bad-request'
  | 'host-unknown'
  | 'item-not-found'
  | 'policy-violation'
  | 'remote-stream-error'
  | 'system-shutdown'
  | 'undefined-condition';

export interface BoshOptions {
  env: C2sEnv;
  streams: StreamSet;
  connectionsPerIp: number;
  maxWaitMs: number;
  maxHold: number;
  maxRequests: number;
  inactivityMs: number;
  maxPauseMs: number;
  /** Limits for the whole <body/> of one request. */
  bodyLimits: XmlLimits;
  log: Logger;
}

/** Response headers for one request (content type, cache, CORS), decided by the listener. */
export type ResponseHeaders = Record<string, string>;

function terminateBody(condition: BoshCondition | undefined, extra = ''): string {
  const cond = condition ? ` condition='${condition}'` : '';
  return `<body xmlns='${NS_HTTPBIND}' type='terminate'${cond}>${extra}</body>`;
}

function send(res: ServerResponse, status: number, headers: ResponseHeaders, body: string): void {
  if (res.writableEnded || res.destroyed) return;
  res.writeHead(status, { ...headers, 'content-type': 'text/xml; charset=utf-8', 'content-length': String(Buffer.byteLength(body)) });
  res.end(body);
}

/** An attribute in a namespace, whatever prefix the client bound it to. */
function nsAttr(el: Element, ns: string, local: string): string | undefined {
  for (const [key, value] of Object.entries(el.attrs)) {
    const colon = key.indexOf(':');
    if (colon < 0 || key.slice(colon + 1) !== local) continue;
    const prefix = key.slice(0, colon);
    if (prefix !== 'xmlns' && el.attrs[`xmlns:${prefix}`] === ns && typeof value === 'string') return value;
  }
  return undefined;
}

function intAttr(el: Element, name: string): number | undefined {
  const v = el.attrs[name];
  return typeof v === 'string' && /^\d{1,9}$/.test(v) ? Number(v) : undefined;
}

function openFrame(to: string, lang: string | undefined, version: string): Buffer {
  const langAttr = lang ? ` xml:lang='${escapeXML(lang)}'` : '';
  return Buffer.from(`<open xmlns='${NS_FRAMING}' to='${escapeXML(to)}' version='${escapeXML(version)}'${langAttr}/>`);
}

const CLOSE_FRAME = Buffer.from(`<close xmlns='${NS_FRAMING}'/>`);

/** One child of a request's <body/> as a self-contained element for the framed parser. */
function childFrame(child: Element): Buffer {
  const ns = child.attrs.xmlns;
  // XEP-0206 §3: stanzas are qualified by jabber:client. COMPAT(several BOSH clients): some
  // leave them in the body's namespace; like Prosody, take those as jabber:client too.
  if ((ns === NS_HTTPBIND || ns === NS_CLIENT) && (child.name === 'message' || child.name === 'presence' || child.name === 'iq')) {
    child.attrs.xmlns = NS_CLIENT;
  }
  return Buffer.from(child.toString());
}

interface Held {
  rid: number;
  res: ServerResponse;
  headers: ResponseHeaders;
  timer: NodeJS.Timeout;
}

interface Early {
  rid: number;
  body: Element;
  res: ServerResponse;
  headers: ResponseHeaders;
}

class BoshSession implements StreamTransport {
  readonly tlsSocket = undefined; // requests may arrive over different connections: no channel binding
  readonly canStartTls = false;
  readonly remoteAddress: string;
  readonly secure: boolean;
  /** The stream header the machine last sent (id, from). */
  header: Record<string, string> = {};
  private readonly framing: StreamFraming;
  private dataListener: ((chunk: Buffer) => void) | undefined;
  private readonly closeListeners: Array<() => void> = [];
  private lastRid: number;
  private readonly early = new Map<number, Early>();
  private readonly held: Held[] = [];
  /** Responses already sent, by rid, for clients that lost one and ask again. */
  private readonly answered = new Map<number, string>();
  /** rids processed whose connection closed before it could be answered. */
  private readonly unanswered = new Set<number>();
  private outgoing: string[] = [];
  private outgoingBytes = 0;
  private readonly inbound: Buffer[] = [];
  private paused = false;
  private pumping = false;
  private creationPending = true;
  private streamErrored = false;
  private ended = false;
  closed = false;
  private flushScheduled = false;
  private inactivityTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly manager: BoshManager,
    readonly sid: string,
    rid: number,
    readonly host: string,
    private readonly wait: number,
    private readonly hold: number,
    private readonly requests: number,
    private readonly inactivity: number,
    info: HttpClientInfo,
  ) {
    this.lastRid = rid - 1;
    this.remoteAddress = info.remoteAddress;
    this.secure = info.secure;
    this.framing = {
      framed: true,
      open: (attrs) => {
        this.header = attrs;
        return '';
      },
      close: () => '',
    };
  }

  get streamFraming(): StreamFraming {
    return this.framing;
  }

  // ---------------------------------------------------------------- StreamTransport

  get bufferedBytes(): number {
    return this.outgoingBytes;
  }

  write(data: string): void {
    if (data === '' || this.closed || this.ended) return;
    // XEP-0206 §3.3: a stream error ends the session with remote-stream-error around it.
    if (data.startsWith('<stream:error')) this.streamErrored = true;
    const qualified = qualifyOutgoing(data, false);
    this.outgoing.push(qualified);
    this.outgoingBytes += Buffer.byteLength(qualified);
    this.scheduleFlush();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    // Not synchronously: the machine resumes before it writes the answer to what it paused
    // for (a SASL step), and the next element must come after that answer.
    setImmediate(() => this.pump());
  }

  end(): void {
    if (this.closed || this.ended) return;
    this.ended = true;
    this.scheduleFlush();
  }

  destroy(): void {
    if (this.closed) return;
    this.outgoing = [];
    this.outgoingBytes = 0;
    for (const h of this.held.splice(0)) this.answer(h, terminateBody('undefined-condition'));
    this.finish();
  }

  async startTls(): Promise<void> {
    throw new Error('STARTTLS is not available on BOSH; use https');
  }

  onData(listener: (chunk: Buffer) => void): void {
    this.dataListener = listener;
  }

  onClose(listener: () => void): void {
    this.closeListeners.push(listener);
  }

  // ---------------------------------------------------------------- requests

  /** The session creation request (XEP-0206 §5): answered with the first features. */
  start(body: Element, res: ServerResponse, headers: ResponseHeaders): void {
    const rid = this.lastRid + 1;
    this.lastRid = rid;
    this.holdRequest(rid, res, headers);
    const version = nsAttr(body, NS_XBOSH, 'version') ?? '1.0';
    this.feed(openFrame(this.host, body.attrs['xml:lang'] as string | undefined, version));
  }

  request(rid: number, body: Element, res: ServerResponse, headers: ResponseHeaders): void {
    if (this.closed) return send(res, 200, headers, terminateBody('item-not-found'));
    this.touch();
    this.handleRequest(rid, body, res, headers);
    // Nothing held (an answer resent, only early requests waiting): the clock runs again.
    if (!this.closed && this.held.length === 0) this.startInactivity(this.inactivity);
  }

  private handleRequest(rid: number, body: Element, res: ServerResponse, headers: ResponseHeaders): void {
    if (this.ended) {
      // The stream is over: this request carries whatever is left and the terminate.
      this.holdRequest(rid, res, headers);
      this.scheduleFlush();
      return;
    }
    if (rid <= this.lastRid) {
      const held = this.held.find((h) => h.rid === rid);
      if (held) {
        // The client retried a request we still hold: answer on the new connection.
        if (!held.res.writableEnded) send(held.res, 200, held.headers, `<body xmlns='${NS_HTTPBIND}'/>`);
        held.res = res;
        held.headers = headers;
        this.watchClose(held);
        return;
      }
      const previous = this.answered.get(rid);
      if (previous !== undefined) return send(res, 200, headers, previous);
      if (this.unanswered.delete(rid)) {
        this.holdRequest(rid, res, headers);
        this.scheduleFlush();
        return;
      }
      return this.fail(res, headers, 'item-not-found', `rid ${rid} was already used`);
    }
    if (rid > this.lastRid + this.requests) {
      return this.fail(res, headers, 'item-not-found', `rid ${rid} is outside the window`);
    }
    const replaced = this.early.get(rid);
    if (replaced) send(replaced.res, 200, replaced.headers, `<body xmlns='${NS_HTTPBIND}'/>`);
    // An early request waits for the ones before it; if its client gives up meanwhile, it is
    // still processed when its turn comes.
    this.early.set(rid, { rid, body, res, headers });
    while (this.early.has(this.lastRid + 1)) {
      const next = this.early.get(this.lastRid + 1)!;
      this.early.delete(next.rid);
      this.lastRid = next.rid;
      this.process(next);
      if (this.closed) return;
    }
  }

  private process(req: Early): void {
    const { rid, body, res, headers } = req;
    const pause = intAttr(body, 'pause');
    this.holdRequest(rid, res, headers);
    if (body.attrs.type === 'terminate') {
      for (const child of body.getChildElements()) this.feed(childFrame(child));
      this.feed(CLOSE_FRAME);
      return;
    }
    if (nsAttr(body, NS_XBOSH, 'restart') === 'true') {
      // XEP-0206 §5: a restart request carries no payload; it opens a new stream.
      const to = typeof body.attrs.to === 'string' ? body.attrs.to : this.host;
      this.feed(openFrame(to, body.attrs['xml:lang'] as string | undefined, '1.0'));
      return;
    }
    for (const child of body.getChildElements()) this.feed(childFrame(child));
    if (pause !== undefined) {
      // XEP-0124 §10: answer everything now and keep the session for the pause.
      const ms = Math.min(pause * 1000, this.manager.opts.maxPauseMs);
      setImmediate(() => {
        this.flushNow(true);
        this.startInactivity(ms);
      });
      return;
    }
    this.scheduleFlush();
  }

  private fail(res: ServerResponse, headers: ResponseHeaders, condition: BoshCondition, why: string): void {
    this.manager.opts.log.debug({ sid: this.sid, why }, 'bosh session terminated');
    send(res, 200, headers, terminateBody(condition));
    for (const h of this.held.splice(0)) this.answer(h, terminateBody(condition));
    this.finish();
  }

  private holdRequest(rid: number, res: ServerResponse, headers: ResponseHeaders): void {
    this.touch();
    const held: Held = { rid, res, headers, timer: setTimeout(() => this.expire(held), this.wait) };
    held.timer.unref();
    this.held.push(held);
    this.watchClose(held);
  }

  private watchClose(held: Held): void {
    const res = held.res;
    res.once('close', () => {
      if (res.writableFinished || held.res !== res) return;
      // The client went away before we answered: nothing was lost; a retry of this rid is held again.
      const i = this.held.indexOf(held);
      if (i < 0) return;
      this.held.splice(i, 1);
      clearTimeout(held.timer);
      this.unanswered.add(held.rid);
      if (this.held.length === 0 && !this.closed) this.startInactivity(this.inactivity);
    });
  }

  private expire(held: Held): void {
    const i = this.held.indexOf(held);
    if (i < 0) return;
    // Answer it, and any older ones first: responses go out in request order.
    for (const h of this.held.splice(0, i + 1)) this.answer(h, this.responseBody(false));
    if (this.held.length === 0) this.startInactivity(this.inactivity);
  }

  // ---------------------------------------------------------------- output

  private scheduleFlush(): void {
    if (this.flushScheduled || this.closed) return;
    this.flushScheduled = true;
    // Batch what the machine writes while handling one request into one response.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flushNow(false);
    });
  }

  /** Answers held requests: all of them with `all`, else while there is data or more than `hold`. */
  private flushNow(all: boolean): void {
    if (this.closed) return;
    if (this.ended) {
      const first = this.held.shift();
      if (!first) {
        this.graceTimer ??= setTimeout(() => this.finish(), TERMINATE_GRACE_MS);
        this.graceTimer.unref();
        return;
      }
      this.answer(first, this.responseBody(true));
      for (const h of this.held.splice(0)) this.answer(h, terminateBody(undefined));
      this.finish();
      return;
    }
    while (this.held.length && (all || this.outgoing.length || this.held.length > this.hold)) {
      this.answer(this.held.shift()!, this.responseBody(false));
    }
    if (this.held.length === 0) this.startInactivity(this.inactivity);
  }

  private responseBody(terminate: boolean): string {
    const attrs: Record<string, string> = { xmlns: NS_HTTPBIND, 'xmlns:stream': NS_STREAM };
    if (this.creationPending) {
      this.creationPending = false;
      Object.assign(attrs, {
        sid: this.sid,
        wait: String(Math.round(this.wait / 1000)),
        requests: String(this.requests),
        hold: String(this.hold),
        inactivity: String(Math.round(this.inactivity / 1000)),
        polling: String(POLLING_SECONDS),
        maxpause: String(Math.round(this.manager.opts.maxPauseMs / 1000)),
        ver: BOSH_VERSION,
        from: this.header.from ?? this.host,
        'xmlns:xmpp': NS_XBOSH,
        'xmpp:version': '1.0',
        'xmpp:restartlogic': 'true',
      });
      if (this.header.id) attrs.authid = this.header.id;
    }
    if (terminate) {
      attrs.type = 'terminate';
      if (this.streamErrored) attrs.condition = 'remote-stream-error';
    }
    const head = Object.entries(attrs).map(([k, v]) => ` ${k}='${escapeXML(v)}'`).join('');
    const payload = this.outgoing.join('');
    this.outgoing = [];
    this.outgoingBytes = 0;
    return payload === '' ? `<body${head}/>` : `<body${head}>${payload}</body>`;
  }

  private answer(held: Held, body: string): void {
    clearTimeout(held.timer);
    this.answered.set(held.rid, body);
    // Keep only the responses a client may still ask for again (the window).
    for (const rid of this.answered.keys()) if (rid <= held.rid - this.requests) this.answered.delete(rid);
    for (const rid of this.unanswered) if (rid <= this.lastRid - this.requests) this.unanswered.delete(rid);
    send(held.res, 200, held.headers, body);
  }

  // ---------------------------------------------------------------- input

  private feed(frame: Buffer): void {
    this.inbound.push(frame);
    this.pump();
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.paused && !this.closed && this.inbound.length) this.dataListener?.(this.inbound.shift()!);
    } finally {
      this.pumping = false;
    }
  }

  // ---------------------------------------------------------------- lifetime

  private touch(): void {
    if (this.inactivityTimer) clearTimeout(this.inactivityTimer);
    this.inactivityTimer = undefined;
  }

  private startInactivity(ms: number): void {
    if (this.closed) return;
    this.touch();
    this.inactivityTimer = setTimeout(() => {
      this.manager.opts.log.debug({ sid: this.sid }, 'bosh session inactive; ended');
      this.finish();
    }, ms);
    this.inactivityTimer.unref();
  }

  /** Server shutdown after the machine had its say: answer what is held, then end. */
  shutdown(): void {
    if (this.closed) return;
    if (!this.ended) {
      this.ended = true;
    }
    const first = this.held.shift();
    if (first) this.answer(first, this.responseBody(true));
    for (const h of this.held.splice(0)) this.answer(h, terminateBody('system-shutdown'));
    this.finish();
  }

  private finish(): void {
    if (this.closed) return;
    this.closed = true;
    this.touch();
    if (this.graceTimer) clearTimeout(this.graceTimer);
    for (const h of this.held.splice(0)) {
      clearTimeout(h.timer);
      send(h.res, 200, h.headers, terminateBody(this.ended ? undefined : 'undefined-condition'));
    }
    for (const e of this.early.values()) send(e.res, 200, e.headers, terminateBody('item-not-found'));
    this.early.clear();
    this.inbound.length = 0;
    this.manager.forget(this);
    for (const l of this.closeListeners) l();
  }
}

export class BoshManager {
  private readonly sessions = new Map<string, BoshSession>();

  constructor(readonly opts: BoshOptions) {}

  get size(): number {
    return this.sessions.size;
  }

  /** A POST to BOSH_PATH whose body was read (and size-checked) by the listener. */
  handle(req: IncomingMessage, res: ServerResponse, text: string, info: HttpClientInfo, headers: ResponseHeaders): void {
    let body: Element;
    try {
      body = parseFramedElement(text, this.opts.bodyLimits);
    } catch (err) {
      if (!(err instanceof XmlStreamError)) throw err;
      return send(res, 400, headers, terminateBody('bad-request'));
    }
    if (body.name !== 'body' || body.attrs.xmlns !== NS_HTTPBIND) return send(res, 400, headers, terminateBody('bad-request'));
    const ridText = body.attrs.rid;
    if (typeof ridText !== 'string' || !RID_RE.test(ridText) || !Number.isSafeInteger(Number(ridText))) {
      return send(res, 400, headers, terminateBody('bad-request'));
    }
    const rid = Number(ridText);
    const sid = body.attrs.sid;
    if (sid === undefined) return this.create(rid, body, res, info, headers);
    const session = typeof sid === 'string' ? this.sessions.get(sid) : undefined;
    if (!session) return send(res, 200, headers, terminateBody('item-not-found'));
    session.request(rid, body, res, headers);
  }

  private create(rid: number, body: Element, res: ServerResponse, info: HttpClientInfo, headers: ResponseHeaders): void {
    const to = typeof body.attrs.to === 'string' ? body.attrs.to.toLowerCase() : undefined;
    if (to === undefined || !this.opts.env.hosts.has(to)) return send(res, 200, headers, terminateBody('host-unknown'));
    const o = this.opts;
    if (!o.streams.admit(info.remoteAddress, o.connectionsPerIp)) return send(res, 200, headers, terminateBody('policy-violation'));
    const requestedWait = intAttr(body, 'wait');
    const requestedHold = intAttr(body, 'hold');
    const wait = Math.max(1_000, Math.min((requestedWait ?? o.maxWaitMs / 1000) * 1000, o.maxWaitMs));
    const hold = Math.min(requestedHold ?? 1, o.maxHold);
    const requests = Math.max(o.maxRequests, hold + 1);
    const sid = randomBytes(16).toString('base64url');
    const session = new BoshSession(this, sid, rid, to, wait, hold, requests, o.inactivityMs, info);
    this.sessions.set(sid, session);
    const ip = info.remoteAddress;
    const stream = new C2sStream(
      session,
      session.streamFraming,
      {
        ...o.env,
        onClosed: (s) => {
          o.streams.streams.delete(s);
        },
      },
      framedParserFactory,
    );
    session.onClose(() => o.streams.release(ip));
    o.streams.streams.add(stream);
    session.start(body, res, headers);
  }

  forget(session: BoshSession): void {
    this.sessions.delete(session.sid);
  }

  /** Server shutdown: the streams were sent system-shutdown; deliver that and end every session. */
  async close(): Promise<void> {
    await new Promise((r) => setImmediate(r));
    for (const s of [...this.sessions.values()]) s.shutdown();
  }
}
