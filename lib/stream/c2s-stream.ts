// The client-to-server stream machine (RFC 6120 §4-§7): header, features, STARTTLS, SASL,
// resource binding, then stanzas into the router. Transport-agnostic: TCP, direct TLS and
// WebSocket all drive this class.
import { randomToken } from '../util/random-pool.js';
import { performance } from 'node:perf_hooks';
import { xml, type Element } from '../xml/element.js';
import { StreamParser, XmlStreamError, type StreamParserHandlers } from '../xml/stream-parser.js';
import { serialize } from '../xml/serialize.js';
import type { XmlLimits } from '../xml/limits.js';
import { Jid, JidError, prepResource } from '../jid/jid.js';
import { NS } from '../stanza/ns.js';
import { StanzaError } from '../stanza/error.js';
import { isStanzaName } from '../stanza/envelope.js';
import type { Logger } from '../log.js';
import type { AccountService } from '../accounts/types.js';
import type { LoginThrottle } from '../accounts/throttle.js';
import type { SaslMechanism, SaslStep } from '../sasl/mechanism.js';
import { forgetTlsChannel, tlsChannelOf } from '../sasl/mechanism.js';
import { SaslNegotiator } from '../sasl/negotiator.js';
import type { Router } from '../routing/router.js';
import { errorReply } from '../routing/router.js';
import { preAuthKey, type HostRuntime } from '../routing/host-runtime.js';
import { C2sSession, type SessionSink } from '../sessions/c2s-session.js';
import type { SessionHandle } from '../sessions/types.js';
import type { StreamControl } from '../modules/define.js';
import type { SessionDirectory } from '../sessions/directory.js';
import { TokenBucket } from '../sessions/rate-limit.js';
import type { StreamFraming, StreamTransport } from '../transport/types.js';
import type { Metrics } from '../metrics.js';
import { streamErrorElement, type StreamErrorCondition } from './stream-error.js';
import * as sasl2 from '../sasl2/sasl2.js';
import { LoginPolicy, type LoginStep } from '../sasl2/login-policy.js';

export interface C2sLimits {
  stanzaBytes: number;
  preAuthStanzaBytes: number;
  depth: number;
  attributes: number;
  unauthenticatedTimeoutMs: number;
  inboundQueue: number;
  outboundBufferBytes: number;
  sessionsPerAccount: number;
  stanzasPerSecond: number;
  bytesPerSecond: number;
  saslFailures: number;
}

export interface C2sEnv {
  hosts: ReadonlyMap<string, HostRuntime>;
  router: Router;
  sessions: SessionDirectory;
  accounts: AccountService;
  throttle: LoginThrottle;
  mechanisms: readonly SaslMechanism[];
  limits: C2sLimits;
  requireEncryption: boolean;
  log: Logger;
  metrics?: Metrics;
  /** Work that must finish before storage closes (session/closed handlers), awaited at shutdown. */
  track?(work: Promise<void>): void;
  /** Called once when the stream is gone, to drop it from the listener's set. */
  onClosed?(stream: C2sStream): void;
  /**
   * Resolves once the writes made so far are on disk (archive appends nobody awaited);
   * undefined when none is waiting. A stanza counts as handled (XEP-0198) only then.
   */
  durable?(): Promise<void> | undefined;
}

/**
 * A session's queue yields to the event loop after this long, so that one client's burst does
 * not hold back the others (and their reads, and the group commit of their writes).
 */
const SLICE_MS = 1;

const MAX_PREAUTH_IQS = 10;

/** What the stream machine needs of a parser: the TCP stream parser, or RFC 7395 framing for WebSocket. */
export interface ElementParser {
  write(chunk: Buffer): void;
  reset(): void;
  setLimits(limits: XmlLimits): void;
}
export type ParserFactory = (handlers: StreamParserHandlers, limits: XmlLimits) => ElementParser;

type State = 'wait-header' | 'negotiating' | 'tls-upgrading' | 'authenticated' | 'bound' | 'closing' | 'closed';

/** The parser limits before and after authentication, made once per limits object and shared. */
const parserLimits = new WeakMap<C2sLimits, readonly [XmlLimits, XmlLimits]>();

function limitsFor(l: C2sLimits, authenticated: boolean): XmlLimits {
  let pair = parserLimits.get(l);
  if (pair === undefined) {
    pair = [makeLimits(l, false), makeLimits(l, true)];
    parserLimits.set(l, pair);
  }
  return pair[authenticated ? 1 : 0];
}

function makeLimits(l: C2sLimits, authenticated: boolean): XmlLimits {
  const size = authenticated ? l.stanzaBytes : l.preAuthStanzaBytes;
  return {
    maxStanzaBytes: size,
    maxDepth: l.depth,
    maxAttributes: l.attributes,
    maxAttributeValueBytes: Math.min(size, 64 * 1024),
    maxTextBytes: size,
    maxNameBytes: 256,
  };
}

export class C2sStream {
  private state: State = 'wait-header';
  private readonly parser: ElementParser;
  private headerSent = false;
  private streamId = '';
  private host = '';
  private lang = 'en';
  private authUser: string | undefined;
  private negotiator: SaslNegotiator | undefined;
  /** The negotiator whose mechanisms the features listed, until an exchange starts with it. */
  private offeredNegotiator: SaslNegotiator | undefined;
  /** The `<authenticate/>` of a SASL2 exchange under way (XEP-0388). */
  private sasl2Request: sasl2.Sasl2Authenticate | undefined;
  /**
   * The login policy (app passwords, SASL2 tasks, audit): lib/sasl2/login-policy.ts. Made by the
   * first authentication attempt and let go once a session is bound: an idle connection does
   * not keep it.
   */
  private loginPolicy: LoginPolicy | undefined;
  /** While a SASL2 `<success/>` is being put together, what is written waits here to follow it. */
  private holding: Element[] | undefined;
  private saslFailures = 0;
  private session: C2sSession | undefined;
  private queue: Element[] = [];
  /**
   * For each queued element, when it may be handled (Date.now() ms; 0: at once). A burst that
   * arrived in one read is shaped here: pausing the socket only slows the reads after it.
   */
  private dueAt: number[] = [];
  private processing = false;
  private pausedForQueue = false;
  private pausedForRate = false;
  private readonly stanzaRate: TokenBucket;
  private readonly byteRate: TokenBucket;
  private authTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private firstHeaderAnswered = false;

  constructor(
    private readonly transport: StreamTransport,
    private readonly framing: StreamFraming,
    private readonly env: C2sEnv,
    createParser: ParserFactory = (handlers, limits) => new StreamParser(handlers, limits),
  ) {
    this.log = env.log.child({ remote: transport.remoteAddress });
    this.parser = createParser(
      {
        onStreamOpen: (attrs) => this.onStreamOpen(attrs),
        onElement: (el) => this.onElement(el),
        onStreamClose: () => this.onStreamClose(),
        onError: (err) => this.onParseError(err),
        onQuiet: () => this.onQuiet(),
      },
      limitsFor(env.limits, false),
    );
    this.stanzaRate = new TokenBucket(env.limits.stanzasPerSecond, env.limits.stanzasPerSecond * 2);
    this.byteRate = new TokenBucket(env.limits.bytesPerSecond, env.limits.bytesPerSecond * 2);
    transport.onData((chunk) => this.onData(chunk));
    transport.onClose(() => this.onTransportClosed());
    this.authTimer = setTimeout(() => this.streamError('connection-timeout', 'authenticate sooner'), env.limits.unauthenticatedTimeoutMs);
    this.authTimer.unref();
    env.metrics?.connections.inc({ type: 'c2s' });
  }

  get boundSession(): C2sSession | undefined {
    return this.session;
  }

  /** The client's address, as the transport reports it. */
  get remoteAddress(): string {
    return this.transport.remoteAddress;
  }

  private get login(): LoginPolicy {
    this.loginPolicy ??= new LoginPolicy({ host: () => this.host, guard: () => this.guard(), remoteAddress: this.transport.remoteAddress, log: this.log });
    return this.loginPolicy;
  }

  /** Authentication state nobody needs once a session is bound. */
  private loginDone(): void {
    this.loginPolicy = undefined;
    const tlsSocket = this.transport.tlsSocket;
    if (tlsSocket !== undefined) forgetTlsChannel(tlsSocket);
  }

  /**
   * The parser found the stream quiet and let go of its own state: the queues give back the room
   * a burst made them grow to (a fresh array holds none).
   */
  private onQuiet(): void {
    if (this.queue.length === 0 && !this.processing) {
      this.queue = [];
      this.dueAt = [];
    }
  }

  /** Feeds bytes from a transport that is not a socket (tests, WebSocket framing). */
  onData(chunk: Buffer): void {
    if (this.state === 'closed' || this.state === 'tls-upgrading') return;
    const wait = this.byteRate.take(chunk.length);
    this.parser.write(chunk);
    if (wait > 0) this.pauseFor(wait);
  }

  private pauseFor(ms: number): void {
    if (this.pausedForRate) return;
    this.pausedForRate = true;
    this.transport.pause();
    setTimeout(() => {
      this.pausedForRate = false;
      if (!this.pausedForQueue && this.state !== 'closed') this.transport.resume();
    }, Math.min(ms, 5_000)).unref();
  }

  // ------------------------------------------------------------------ output

  /** Output held back until the next turn of the event loop (see onStreamOpen). */
  private deferred: string[] | undefined;

  private flushDeferred(): void {
    const out = this.deferred;
    this.deferred = undefined;
    if (out && this.state !== 'closed') for (const d of out) this.writeRaw(d);
  }

  private writeRaw(data: string): void {
    if (this.deferred) {
      this.deferred.push(data);
      return;
    }
    // Nothing may follow </stream:stream>: every path that closes writes before 'closing'.
    if (this.state === 'closed' || this.state === 'closing') return;
    this.transport.write(data);
    if (this.transport.bufferedBytes > this.env.limits.outboundBufferBytes) {
      // A client that never reads must not make us hold unbounded data. It may be a connection
      // that died without a word (a phone out of coverage): a lost connection, which stream
      // management can resume.
      this.log.warn({ buffered: this.transport.bufferedBytes }, 'client is not reading; closing');
      this.state = 'closing';
      this.teardown('outbound buffer full', true);
      this.transport.destroy();
    }
  }

  private writeElement(el: Element): void {
    if (this.holding) {
      this.holding.push(el);
      return;
    }
    this.writeRaw(serialize(el));
  }

  private sendHeader(host: string | undefined): void {
    this.streamId = randomToken(12);
    const attrs: Record<string, string> = { id: this.streamId, version: '1.0', 'xml:lang': 'en' };
    if (host) attrs.from = host;
    this.writeRaw(this.framing.open(attrs));
    this.headerSent = true;
  }

  /** RFC 6120 §4.9: send the error, close the stream, and tear the session down. */
  streamError(condition: StreamErrorCondition, text?: string, appCondition?: Element): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.flushDeferred();
    if (!this.headerSent) this.sendHeader(this.host || undefined);
    this.log.debug({ condition, text }, 'stream error');
    this.writeElement(streamErrorElement(condition, text, appCondition));
    this.writeRaw(this.framing.close());
    this.state = 'closing';
    this.teardown(condition);
    this.transport.end();
  }

  /** Graceful close from our side (no error). */
  close(): void {
    if (this.state === 'closed' || this.state === 'closing') return;
    this.flushDeferred();
    this.writeRaw(this.framing.close());
    this.state = 'closing';
    this.teardown('closed');
    this.transport.end();
  }

  // ------------------------------------------------------------------ header and features

  private onStreamOpen(attrs: Record<string, string>): void {
    if (this.state !== 'wait-header') return this.streamError('not-well-formed', 'unexpected stream header');
    const to = attrs.to;
    if (attrs.xmlns !== NS.client) {
      this.sendHeader(to && this.env.hosts.has(to.toLowerCase()) ? to.toLowerCase() : undefined);
      return this.streamError('invalid-namespace', `content namespace must be ${NS.client}`);
    }
    const version = attrs.version;
    if (version === undefined || Number.parseInt(version.split('.')[0] ?? '0', 10) !== 1) {
      return this.streamError('unsupported-version', "only version='1.0' streams are supported");
    }
    let domain: string | undefined;
    // A served domain as configured (already prepared) is itself; anything else is prepared.
    if (to !== undefined && this.env.hosts.has(to)) domain = to;
    else {
      try {
        domain = to === undefined ? undefined : Jid.parse(to).domain;
      } catch {
        domain = undefined;
      }
    }
    if (domain === undefined || !this.env.hosts.has(domain)) return this.streamError('host-unknown', 'this server does not serve that domain');
    if (this.host && domain !== this.host) return this.streamError('host-unknown', 'the domain changed on restart');
    this.host = domain;
    if (attrs['xml:lang']) this.lang = attrs['xml:lang'];
    if (!this.firstHeaderAnswered) {
      // COMPAT(@xmpp/connection 0.14): it writes its stream header and only then listens for
      // ours; an answer read before its write callback ran is missed, and with SASL2 no stream
      // restart makes up for it. The first answer of a connection waits one event-loop turn.
      this.firstHeaderAnswered = true;
      this.deferred = [];
      setImmediate(() => this.flushDeferred());
    }
    this.sendHeader(domain);
    this.state = this.authUser ? 'authenticated' : 'negotiating';
    this.writeElement(this.features());
  }

  private features(): Element {
    const runtime = this.env.hosts.get(this.host)!;
    const features = xml('stream:features');
    if (this.authUser) {
      // After SASL2 with Bind2 or inline resumption (XEP-0388 §2.6.2) the stream is bound already.
      if (!this.session) {
        features.cnode(xml('bind', { xmlns: NS.bind }));
        features.cnode(xml('session', { xmlns: NS.session }, xml('optional')));
      }
      for (const p of runtime.features) if (p.stage === 'post-auth') { const f = p.build(this.session); if (f) features.cnode(f); }
      return features;
    }
    if (this.transport.canStartTls) {
      features.cnode(xml('starttls', { xmlns: NS.tls }, this.env.requireEncryption ? xml('required') : null));
      if (this.env.requireEncryption) return features;
    }
    const negotiator = this.newNegotiator();
    // The first <auth/> of this stream uses it (the same offer, nothing started yet).
    this.offeredNegotiator = negotiator;
    const mechs = negotiator.offered();
    features.cnode(xml('mechanisms', { xmlns: NS.sasl }, mechs.map((m) => xml('mechanism', {}, m))));
    const bindings = negotiator.channelBindings();
    if (bindings.length) {
      features.cnode(xml('sasl-channel-binding', { xmlns: NS.saslChannelBinding }, bindings.map((t) => xml('channel-binding', { type: t }))));
    }
    // XEP-0388: SASL2 beside classic SASL, with the same mechanisms; its inline features are
    // Bind2 (XEP-0386) and what modules register (XEP-0198 resumption, XEP-0484 FAST).
    const inline: Element[] = [sasl2.bind2Feature([...runtime.bind2Features.keys()])];
    const hidden = { mechanisms: negotiator.hiddenOffered() };
    for (const p of runtime.sasl2Inline.values()) {
      const f = p.feature?.(hidden);
      if (f) inline.push(f);
    }
    features.cnode(sasl2.authenticationFeature(mechs, inline));
    for (const p of runtime.features) if (p.stage === 'pre-auth') { const f = p.build(undefined); if (f) features.cnode(f); }
    return features;
  }

  private newNegotiator(userAgentId?: string): SaslNegotiator {
    // A secure transport without a TLS socket of ours (BOSH, a TLS-terminating proxy) allows
    // PLAIN but offers no channel binding.
    const tls = !this.transport.secure
      ? undefined
      : this.transport.tlsSocket
        ? tlsChannelOf(this.transport.tlsSocket)
        : { version: '', bindings: () => [], bindingData: () => undefined };
    return new SaslNegotiator({
      mechanisms: [...this.env.mechanisms],
      hidden: [...(this.env.hosts.get(this.host)?.saslMechanisms ?? [])],
      ctx: { host: this.host, tls, credentials: this.env.accounts, userAgentId },
      throttle: this.env.throttle,
      remoteAddress: this.transport.remoteAddress,
      appPassword: this.guard()?.verifyAppPassword ? (_host, user, password) => this.guard()!.verifyAppPassword!(user, password) : undefined,
      onResult: (mechanism, result) => this.env.metrics?.logins.inc({ mechanism, result }),
    });
  }

  // ------------------------------------------------------------------ elements

  private onElement(el: Element): void {
    if (this.state === 'closed' || this.state === 'closing' || this.state === 'tls-upgrading') return;
    if (this.state === 'wait-header') return this.streamError('not-well-formed', 'expected a stream header');
    const ns = el.attrs.xmlns as string | undefined;
    if (this.state === 'negotiating' && ns === undefined && el.name === 'iq') return void this.onPreAuthIq(el);
    if (ns === undefined && isStanzaName(el.name)) return this.onStanza(el);
    if (this.state === 'negotiating') {
      if (ns === NS.tls && el.name === 'starttls') return void this.onStartTls();
      if (ns === NS.sasl) return void this.onSasl(el);
      if (ns === sasl2.SASL2_NS) return void this.onSasl2(el);
      return this.streamError('not-authorized', 'authenticate first');
    }
    if ((this.state === 'bound' || this.state === 'authenticated') && ns !== undefined) {
      const runtime = this.env.hosts.get(this.host)!;
      // Stream nonzas from authentication on (XEP-0198 <resume/> comes instead of bind); session
      // nonzas once bound. Both wait their turn behind the stanzas before them.
      if (runtime.streamNonzas.has(ns) || (this.state === 'bound' && runtime.nonzas.has(ns))) {
        this.enqueue(el);
        return;
      }
    }
    if (ns === NS.sasl || ns === NS.tls || ns === sasl2.SASL2_NS) return this.streamError('policy-violation', 'already negotiated');
    this.streamError('unsupported-stanza-type', `<${el.name}/> is not understood here`);
  }

  private onStreamClose(): void {
    if (this.state === 'closed') return;
    this.flushDeferred();
    if (this.state !== 'closing') this.writeRaw(this.framing.close());
    this.state = 'closing';
    this.teardown('client closed the stream');
    this.transport.end();
  }

  private onParseError(err: XmlStreamError): void {
    this.streamError(err.condition as StreamErrorCondition, err.message);
  }

  private onTransportClosed(): void {
    this.teardown('connection lost', true);
    this.state = 'closed';
  }

  // ------------------------------------------------------------------ IQs before authentication

  private preAuthIqs = 0;
  /** What `PreAuthOrigin.stream` hands modules: one identity for every pre-auth IQ of this stream. */
  private readonly preAuthStream: object = {};

  /** Only IQs a module registered with `ctx.preAuthIq` (e.g. XEP-0077); everything else is not-authorized. */
  private async onPreAuthIq(el: Element): Promise<void> {
    const type = el.attrs.type as string | undefined;
    const children = el.getChildElements();
    const child = children.length === 1 ? children[0] : undefined;
    const runtime = this.env.hosts.get(this.host)!;
    const handler = child && (type === 'get' || type === 'set')
      ? runtime.preAuthIqs.get(preAuthKey(type, (child.attrs.xmlns as string | undefined) ?? '', child.name))
      : undefined;
    if (!handler || (this.env.requireEncryption && !this.transport.secure)) return this.streamError('not-authorized', 'authenticate first');
    if (++this.preAuthIqs > MAX_PREAUTH_IQS) return this.streamError('policy-violation', 'too many requests before authentication');
    this.transport.pause();
    let result: Element | StanzaError | undefined;
    try {
      result = await handler(el, { host: this.host, remoteAddress: this.transport.remoteAddress, secure: this.transport.secure, stream: this.preAuthStream });
    } catch (err) {
      this.log.error({ err }, 'pre-authentication iq handler failed');
      result = StanzaError.internalServerError();
    } finally {
      if (this.state !== 'closed') this.transport.resume();
    }
    if (this.state !== 'negotiating') return;
    const id = el.attrs.id as string | undefined;
    if (result instanceof StanzaError) {
      const reply = errorReply(el, result, this.host);
      delete reply.attrs.from;
      delete reply.attrs.to;
      this.writeElement(reply);
    } else {
      this.writeElement(xml('iq', { type: 'result', id }, result ?? null));
    }
  }

  // ------------------------------------------------------------------ STARTTLS

  private async onStartTls(): Promise<void> {
    // What waits for the next turn (the first header's answer) goes out in clear first.
    this.flushDeferred();
    if (!this.transport.canStartTls) {
      this.writeElement(xml('failure', { xmlns: NS.tls }));
      this.writeRaw(this.framing.close());
      this.state = 'closing';
      this.teardown('starttls refused');
      this.transport.end();
      return;
    }
    // Anything the client pipelined after <starttls/> is discarded (RFC 6120 §5.4.3.3).
    this.state = 'tls-upgrading';
    this.writeElement(xml('proceed', { xmlns: NS.tls }));
    this.parser.reset();
    try {
      await this.transport.startTls();
    } catch (err) {
      this.log.debug({ err }, 'TLS handshake failed');
      this.teardown('tls failed');
      this.state = 'closed';
      this.transport.destroy();
      return;
    }
    this.headerSent = false;
    this.state = 'wait-header';
  }

  // ------------------------------------------------------------------ SASL

  private async onSasl(el: Element): Promise<void> {
    if (this.env.requireEncryption && !this.transport.secure) {
      if (el.name === 'auth') return this.saslFailure({ kind: 'failure', condition: 'encryption-required' });
      return this.streamError('policy-violation', 'use STARTTLS first');
    }
    let step: LoginStep;
    this.transport.pause();
    try {
      if (el.name === 'auth') {
        // XEP-0388 §3: once <continue/> was sent, starting over is a stream error.
        if (this.login.tasksPending) return this.streamError('policy-violation', 'authentication already succeeded; finish the task');
        this.negotiator = this.offeredNegotiator ?? this.newNegotiator();
        this.offeredNegotiator = undefined;
        const text = el.getText();
        step = await this.negotiator.begin(String(el.attrs.mechanism ?? ''), text === '' ? undefined : text);
        step = await this.login.afterMechanism(step, this.negotiator, undefined);
      } else if (el.name === 'response' && this.negotiator) {
        step = await this.negotiator.respond(el.getText());
        step = await this.login.afterMechanism(step, this.negotiator, undefined);
      } else if (el.name === 'abort') {
        // RFC 6120 §6.4.4: always answered with <aborted/>, even with no exchange under way.
        step = this.negotiator ? this.negotiator.abort() : { kind: 'failure', condition: 'aborted' };
      } else {
        return this.streamError('policy-violation', `unexpected SASL element <${el.name}/>`);
      }
    } finally {
      if (this.state !== 'closed') this.transport.resume();
    }
    if (this.state === 'closed' || this.state === 'closing') return;
    switch (step.kind) {
      case 'challenge':
        this.writeElement(xml('challenge', { xmlns: NS.sasl }, step.data.length ? step.data.toString('base64') : null));
        return;
      case 'continue':
        // Never for RFC 6120 SASL (afterMechanism refuses tasks there).
        return this.saslFailure({ kind: 'failure', condition: 'not-authorized' });
      case 'failure':
        return this.saslFailure(step);
      case 'success':
        this.negotiator = undefined;
        this.authUser = step.user;
        this.writeElement(xml('success', { xmlns: NS.sasl }, step.data?.length ? step.data.toString('base64') : null));
        this.log.info({ user: `${step.user}@${this.host}` }, 'authenticated');
        // RFC 6120 §6.4.6: a new stream follows; anything pipelined before it belongs to it.
        this.parser.reset();
        this.parser.setLimits(limitsFor(this.env.limits, true));
        this.headerSent = false;
        this.state = 'wait-header';
        return;
    }
  }

  // ------------------------------------------------------------------ SASL2 (XEP-0388)

  private async onSasl2(el: Element): Promise<void> {
    this.offeredNegotiator = undefined;
    if (this.env.requireEncryption && !this.transport.secure) {
      if (el.name === 'authenticate') return this.sasl2Failure({ kind: 'failure', condition: 'encryption-required' });
      return this.streamError('policy-violation', 'use STARTTLS first');
    }
    let step: LoginStep;
    this.transport.pause();
    try {
      if (el.name === 'authenticate') {
        // XEP-0388 §3: after <continue/> another <authenticate/> is a stream error.
        if (this.login.tasksPending) return this.streamError('policy-violation', 'authentication already succeeded; finish the task');
        const request = sasl2.parseAuthenticate(el);
        if (typeof request === 'string') {
          step = { kind: 'failure', condition: 'malformed-request', text: request };
        } else {
          this.sasl2Request = request;
          this.negotiator = this.newNegotiator(request.userAgent.id);
          step = await this.negotiator.begin(request.mechanism, request.initialResponse === '' ? undefined : request.initialResponse);
          step = await this.login.afterMechanism(step, this.negotiator, request);
        }
      } else if (el.name === 'response' && this.negotiator && this.sasl2Request && !this.login.tasksPending) {
        step = await this.negotiator.respond(el.getText().trim());
        step = await this.login.afterMechanism(step, this.negotiator, this.sasl2Request);
      } else if ((el.name === 'next' || el.name === 'task-data') && this.login.tasksPending) {
        step = await this.login.runTask(el);
      } else if (el.name === 'abort') {
        step = this.negotiator ? this.negotiator.abort() : { kind: 'failure', condition: 'aborted' };
        this.login.reset(true);
      } else {
        return this.streamError('policy-violation', `unexpected SASL2 element <${el.name}/>`);
      }
    } finally {
      if (this.state !== 'closed') this.transport.resume();
    }
    if (this.state === 'closed' || this.state === 'closing') return;
    switch (step.kind) {
      case 'challenge':
        this.writeElement(sasl2.challenge(step.data));
        return;
      case 'continue':
        this.writeElement(step.element);
        return;
      case 'failure':
        return this.sasl2Failure(step);
      case 'success': {
        const request = this.sasl2Request!;
        this.negotiator = undefined;
        this.sasl2Request = undefined;
        this.authUser = step.user;
        this.parser.setLimits(limitsFor(this.env.limits, true));
        // XEP-0388 §2.6.2: no stream restart; the stream is authenticated from here on.
        this.state = 'authenticated';
        this.log.info({ user: `${step.user}@${this.host}`, mechanism: request.mechanism }, 'authenticated (SASL2)');
        this.transport.pause();
        try {
          await this.sasl2Success(request, step.data, step.taskResult);
        } finally {
          if ((this.state as State) !== 'closed') this.transport.resume();
        }
        return;
      }
    }
  }

  /** Runs the inline features, then writes `<success/>` and what they wrote after it. */
  private async sasl2Success(request: sasl2.Sasl2Authenticate, additionalData: Buffer | undefined, taskResult?: Element): Promise<void> {
    const runtime = this.env.hosts.get(this.host)!;
    const control = this.control();
    const outcome = { mechanism: request.mechanism, userAgent: request.userAgent, authenticate: request.element };
    const extra: Element[] = taskResult ? [taskResult] : [];
    const held: Element[] = [];
    this.holding = held;
    let bound: C2sSession | undefined;
    try {
      // Inline features in document order: XEP-0198 <resume/> binds the stream to an old session,
      // and then Bind2 does not happen (XEP-0386 §4).
      for (const child of request.inline) {
        const provider = runtime.sasl2Inline.get((child.attrs.xmlns as string | undefined) ?? '');
        if (!provider?.handle) continue;
        try {
          const out = await provider.handle(control, child, outcome);
          if (out) extra.push(out);
        } catch (err) {
          this.log.error({ err, ns: provider.ns }, 'SASL2 inline handler failed');
        }
      }
      if (request.bind && !this.session && this.state === 'authenticated') {
        const tag = request.bind.getChildText('tag') ?? undefined;
        const taken = (r: string) => {
          try {
            return this.env.sessions.get(Jid.of(this.authUser!, this.host, prepResource(r))) !== undefined;
          } catch {
            return true;
          }
        };
        let result: C2sSession | StanzaError;
        try {
          result = this.bindResource(prepResource(sasl2.bind2Resource(tag, taken)));
        } catch (err) {
          // A tag that cannot be (part of) a resource is dropped.
          result = err instanceof JidError ? this.bindResource(sasl2.bind2Resource(undefined, taken)) : StanzaError.internalServerError();
        }
        if (result instanceof StanzaError) {
          // XEP-0388: authentication succeeded, binding did not; the client may bind classically.
          this.log.info({ condition: result.condition }, 'Bind2 refused');
        } else {
          bound = result;
          const boundEl = xml('bound', { xmlns: sasl2.BIND2_NS });
          for (const child of request.bind.getChildElements()) {
            const handler = runtime.bind2Features.get((child.attrs.xmlns as string | undefined) ?? '');
            if (!handler) continue;
            try {
              const out = await handler(control, child);
              if (out) boundEl.cnode(out);
            } catch (err) {
              this.log.error({ err, ns: child.attrs.xmlns }, 'Bind2 inline handler failed');
            }
          }
          extra.push(boundEl);
        }
      }
    } finally {
      this.holding = undefined;
    }
    if ((this.state as State) === 'closed' || (this.state as State) === 'closing') return;
    const authzid = this.session ? this.session.jid.toString() : Jid.of(this.authUser!, this.host).toString();
    this.writeElement(sasl2.success(authzid, additionalData, extra));
    // XEP-0388 §2.6.2: the features of the authenticated stream follow at once; no restart.
    this.writeElement(this.features());
    for (const el of held) this.writeElement(el);
    if (bound) {
      this.log.info({ jid: bound.jid.toString() }, 'session bound (Bind2)');
      await runtime.hooks.notify('session/bound', { session: bound }, (err) => this.log.error({ err }, 'session/bound handler failed'));
    }
    const resumed = this.resumed;
    this.resumed = undefined;
    if (resumed && this.session === resumed) {
      await runtime.hooks.notify('session/resumed', { session: resumed }, (err) => this.log.error({ err }, 'session/resumed handler failed'));
    }
  }

  private guard() {
    return this.env.hosts.get(this.host)?.authGuard;
  }

  private sasl2Failure(step: Extract<SaslStep, { kind: 'failure' }>): void {
    this.negotiator = undefined;
    this.sasl2Request = undefined;
    this.login.reset(false);
    this.writeElement(sasl2.failure(step.condition, step.text));
    if (step.condition !== 'aborted' && ++this.saslFailures >= this.env.limits.saslFailures) {
      this.streamError('policy-violation', 'too many failed authentication attempts');
    }
  }

  private saslFailure(step: Extract<SaslStep, { kind: 'failure' }>): void {
    this.negotiator = undefined;
    this.writeElement(xml('failure', { xmlns: NS.sasl }, xml(step.condition), step.text ? xml('text', { 'xml:lang': 'en' }, step.text) : null));
    if (step.condition !== 'aborted' && ++this.saslFailures >= this.env.limits.saslFailures) {
      this.streamError('policy-violation', 'too many failed authentication attempts');
    }
  }

  // ------------------------------------------------------------------ stanzas

  private onStanza(el: Element): void {
    if (this.state === 'negotiating' || !this.authUser) return this.streamError('not-authorized', 'authenticate first');
    const wait = this.stanzaRate.take();
    if (wait > 0) this.pauseFor(wait);
    this.enqueue(el, wait > 0 ? Date.now() + wait : 0);
  }

  private enqueue(el: Element, due = 0): void {
    this.queue.push(el);
    this.dueAt.push(due);
    if (this.queue.length >= this.env.limits.inboundQueue && !this.pausedForQueue) {
      // Back-pressure: stop reading until the queue drains.
      this.pausedForQueue = true;
      this.transport.pause();
    }
    if (!this.processing) void this.drain();
  }

  private async drain(): Promise<void> {
    this.processing = true;
    let slice = performance.now();
    try {
      while (this.queue.length && this.state !== 'closed' && this.state !== 'closing') {
        const due = this.dueAt[0]!;
        if (due > 0) {
          const wait = due - Date.now();
          if (wait > 0) {
            await new Promise<void>((resolve) => setTimeout(resolve, wait));
            slice = performance.now();
            continue;
          }
        }
        const el = this.queue.shift()!;
        this.dueAt.shift();
        // The session the stanza came from, even if the stream is lost while it is handled.
        const session = this.state === 'bound' && el.attrs.xmlns === undefined ? this.session : undefined;
        // A nonza (an XEP-0198 <r/>, say) sees every stanza before it counted.
        if (!session && this.handledTail) await this.handledTail;
        try {
          // Most stanzas are routed synchronously: no await for them (see Router.fromClient).
          const pending = this.process(el);
          if (pending) await pending;
        } catch (err) {
          this.log.error({ err }, 'stanza processing failed');
        }
        // Handled (routed, answered or refused): XEP-0198 counts it, once its writes are durable.
        if (session) this.handled(session, el);
        if (this.pausedForQueue && this.queue.length < this.env.limits.inboundQueue / 2) {
          this.pausedForQueue = false;
          if (!this.pausedForRate) this.transport.resume();
        }
        if (this.queue.length && performance.now() - slice >= SLICE_MS) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          slice = performance.now();
        }
      }
    } finally {
      this.processing = false;
    }
  }

  /** Read taps waiting for the writes of their stanzas to be durable, in stanza order. */
  private handledTail: Promise<void> | undefined;

  private handled(session: C2sSession, el: Element): void {
    const taps = this.env.hosts.get(this.host)!.readTaps;
    if (taps.length === 0) return;
    const run = () => {
      for (const tap of taps) tap(session, el);
    };
    const durable = this.env.durable?.();
    if (durable === undefined && this.handledTail === undefined) return run();
    const before = this.handledTail;
    const tail: Promise<void> = Promise.all([before, durable])
      .then(run, run)
      .catch((err: unknown) => this.log.error({ err }, 'read tap failed'))
      .finally(() => {
        if (this.handledTail === tail) this.handledTail = undefined;
      });
    this.handledTail = tail;
  }

  private process(el: Element): Promise<void> | void {
    const ns = el.attrs.xmlns as string | undefined;
    if (ns !== undefined) return this.processNonza(el, ns);
    if (this.state === 'authenticated') return this.preBind(el);
    const session = this.session!;
    // RFC 6120 §8.1.2.1: the server stamps the full JID; a `from` naming anyone else is refused.
    const from = el.attrs.from as string | undefined;
    if (from !== undefined) {
      const jid = Jid.tryParse(from);
      if (!jid || !(jid.equals(session.jid) || jid.equals(session.jid.bare()))) {
        return this.streamError('invalid-from', 'from must be your own JID');
      }
    }
    el.attrs.from = session.jid.toString();
    this.env.metrics?.countStanza('in', el.name);
    if (el.name === 'iq' && el.attrs.type === 'set' && el.getChild('session', NS.session) && !el.attrs.to) {
      // RFC 3921 session establishment, still sent by old clients: a no-op. Through the session,
      // like every stanza after bind, so that stream management counts it.
      session.send(xml('iq', { type: 'result', id: el.attrs.id as string }));
      return;
    }
    return this.env.router.fromClient(session, el);
  }

  private async processNonza(el: Element, ns: string): Promise<void> {
    const runtime = this.env.hosts.get(this.host)!;
    const streamHandler = runtime.streamNonzas.get(ns);
    if (streamHandler) {
      await streamHandler(this.control(), el);
      const resumed = this.resumed;
      this.resumed = undefined;
      if (resumed && this.session === resumed) {
        await runtime.hooks.notify('session/resumed', { session: resumed }, (err) => this.log.error({ err }, 'session/resumed handler failed'));
      }
      return;
    }
    const handler = runtime.nonzas.get(ns);
    if (handler && this.session) await handler(this.session, el);
  }

  /** Between SASL and bind only the bind IQ is allowed (RFC 6120 §7.2). */
  private async preBind(el: Element): Promise<void> {
    const bind = el.name === 'iq' && el.attrs.type === 'set' ? el.getChild('bind', NS.bind) : undefined;
    if (!bind) return this.streamError('not-authorized', 'bind a resource first');
    const reply = (child: Element | StanzaError) =>
      child instanceof StanzaError
        ? this.writeElement(errorReply(el, child, this.host))
        : this.writeElement(xml('iq', { type: 'result', id: el.attrs.id as string }, child));
    let resource: string;
    const requested = bind.getChildText('resource');
    try {
      resource = requested ? prepResource(requested) : randomToken(9);
    } catch (err) {
      if (err instanceof JidError) return reply(StanzaError.badRequest('invalid resource'));
      throw err;
    }
    const session = this.bindResource(resource);
    if (session instanceof StanzaError) return reply(session);
    reply(xml('bind', { xmlns: NS.bind }, xml('jid', {}, session.jid.toString())));
    this.log.info({ jid: session.jid.toString() }, 'session bound');
    const runtime = this.env.hosts.get(this.host)!;
    await runtime.hooks.notify('session/bound', { session }, (err) => this.log.error({ err }, 'session/bound handler failed'));
  }

  /**
   * RFC 6120 §7 resource binding, shared by the bind IQ and Bind2 (XEP-0386): the session for
   * this resource, or why not. `session/bound` is the caller's to fire, once it has answered.
   */
  private bindResource(resource: string): C2sSession | StanzaError {
    const jid = Jid.of(this.authUser!, this.host, resource);
    const existing = this.env.sessions.get(jid);
    if (!existing && this.env.sessions.countOf(jid) >= this.env.limits.sessionsPerAccount) {
      return StanzaError.resourceConstraint('too many sessions for this account');
    }
    if (existing) {
      // RFC 6120 §7.7.2.2: the newer session wins; the old one gets <conflict/>.
      existing.close('conflict', 'replaced by a new connection');
    }
    const runtime = this.env.hosts.get(this.host)!;
    const outgoing = runtime.hooks.has('stanza/outgoing')
      ? async (s: C2sSession, stanza: Element) => (await runtime.hooks.filter('stanza/outgoing', { session: s, stanza })) === 'pass'
      : undefined;
    const session = new C2sSession(jid, this.sinkFor(), outgoing, { writeTaps: runtime.writeTaps, client: this.loginPolicy?.client });
    this.loginDone();
    this.env.sessions.add(session);
    this.session = session;
    this.state = 'bound';
    if (this.authTimer) clearTimeout(this.authTimer);
    return session;
  }

  // ------------------------------------------------------------------ sessions on this stream

  /** How the session bound to this stream reaches the wire. */
  private sinkFor(): SessionSink {
    return {
      write: (stanza) => {
        this.env.metrics?.countStanza('out', stanza.name);
        this.writeElement(stanza);
      },
      close: (condition, text) => (condition ? this.streamError(condition as StreamErrorCondition, text) : this.close()),
      // XEP-0198 §5: resumed from another stream while this one is still open.
      release: () => {
        const session = this.session;
        if (!session) return;
        this.session = undefined;
        this.log.info({ jid: session.jid.toString() }, 'session resumed on another stream');
        this.streamError('conflict', 'the session was resumed on another connection');
      },
      remoteAddress: this.transport.remoteAddress,
      secure: this.transport.secure,
    };
  }

  private controlObject: StreamControl | undefined;
  /** Set by resumeSession; session/resumed fires once the stream nonza handler returns. */
  private resumed: C2sSession | undefined;

  private control(): StreamControl {
    if (this.controlObject) return this.controlObject;
    const stream = this;
    this.controlObject = {
      host: this.host,
      account: Jid.of(this.authUser!, this.host),
      get session(): SessionHandle | undefined { return stream.session; },
      remoteAddress: this.transport.remoteAddress,
      get secure(): boolean { return stream.transport.secure; },
      get open(): boolean { return stream.state !== 'closing' && stream.state !== 'closed'; },
      write: (el) => this.writeElement(el),
      resumeSession: (target) => this.resumeSession(target),
      close: (condition, text, appCondition) => this.streamError(condition, text, appCondition),
    };
    return this.controlObject;
  }

  /** XEP-0198 §5: this stream takes over a session of its account instead of binding one. */
  private resumeSession(target: SessionHandle): boolean {
    if (this.state !== 'authenticated' || this.session || !this.authUser) return false;
    const session = this.env.sessions.local(target.jid);
    if (!session || session !== target || session.isEnded) return false;
    if (!session.jid.bare().equals(Jid.of(this.authUser, this.host))) return false;
    this.session = session;
    this.state = 'bound';
    this.loginDone();
    if (this.authTimer) clearTimeout(this.authTimer);
    // Takes it from the stream still holding it (closed with conflict), or wakes it.
    session.attach(this.sinkFor());
    this.resumed = session;
    this.log.info({ jid: session.jid.toString() }, 'session resumed');
    return true;
  }

  // ------------------------------------------------------------------ teardown

  private torn = false;

  /**
   * The stream is gone (`lost`: without a clean end, so stream management may keep the session
   * hibernating and resumable) or ended.
   */
  private teardown(reason: string, lost = false): void {
    if (this.torn) return;
    this.torn = true;
    if (this.authTimer) clearTimeout(this.authTimer);
    this.queue.length = 0;
    this.dueAt.length = 0;
    this.env.metrics?.connections.dec({ type: 'c2s' });
    const session = this.session;
    this.session = undefined;
    if (session) {
      const runtime = this.env.hosts.get(this.host)!;
      if (lost && runtime.hooks.has('session/lost')) this.hibernateOrEnd(runtime, session, reason);
      else endSession(this.env, runtime, session, reason, this.log);
    }
    this.env.onClosed?.(this);
  }

  /** XEP-0198 §5: a module (stream management) may keep the session until it is resumed. */
  private hibernateOrEnd(runtime: HostRuntime, session: C2sSession, reason: string): void {
    const { env, log } = this;
    // From now on nothing reaches a wire: what the session is sent goes to the write taps only.
    session.detach({
      write: () => undefined,
      close: (condition, text) => endSession(env, runtime, session, text ?? condition ?? 'closed', log),
      remoteAddress: session.remoteAddress,
      secure: session.secure,
    });
    const work = (async () => {
      let kept = false;
      try {
        kept = await runtime.hooks.claim('session/lost', { session, reason });
      } catch (err) {
        log.error({ err }, 'session/lost handler failed');
      }
      if (kept) log.info({ jid: session.jid.toString(), reason }, 'session hibernating');
      else if (session.hibernating) endSession(env, runtime, session, reason, log);
    })();
    env.track?.(work);
  }
}

/** Unbinds a session for good and fires session/closed, once. */
function endSession(env: C2sEnv, runtime: HostRuntime, session: C2sSession, reason: string, log: Logger): void {
  if (!session.markEnded()) return;
  env.sessions.remove(session);
  const work = runtime.hooks.notify('session/closed', { session, reason }, (err) => log.error({ err }, 'session/closed handler failed'));
  env.track?.(work);
}
