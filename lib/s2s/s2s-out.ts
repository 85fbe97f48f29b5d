// The outbound server-to-server stream for one domain pair (RFC 6120 §4-§6 for the initiating
// entity): resolve, connect, STARTTLS (or XEP-0368 direct TLS), then SASL EXTERNAL when the
// peer offers it (XEP-0178) or dialback (XEP-0220), then the queued stanzas. It also carries our
// <db:verify/> questions to the remote domain as Authoritative Server.
import { domainToASCII } from 'node:url';
import { xml, type Element } from '../xml/element.js';
import { StreamParser, type XmlStreamError } from '../xml/stream-parser.js';
import { Jid } from '../jid/jid.js';
import { NS } from '../stanza/ns.js';
import { StanzaError } from '../stanza/error.js';
import { isStanzaName, type Stanza } from '../stanza/envelope.js';
import type { Logger } from '../log.js';
import { xmlStreamFraming } from '../stream/xml-framing.js';
import type { StreamErrorCondition } from '../stream/stream-error.js';
import { connectFirst, type ConnectAttempt } from './connect.js';
import type { S2sResolver, S2sTarget } from './resolver.js';
import { S2sTransport } from './transport.js';
import { domainAttr, xmlLimits, type DialbackVerdict, type S2sEnv, type VerifyRequest } from './types.js';

type State =
  | 'new'
  | 'connecting'
  | 'wait-header'
  | 'wait-features'
  | 'wait-proceed'
  | 'tls-upgrading'
  | 'sasl'
  | 'dialback'
  | 'ready'
  | 'closing'
  | 'closed';

/** A stanza waiting for the stream, already serialised (later changes to it cannot leak). */
export interface QueuedStanza {
  stanza: Stanza;
  wire: string;
}

export interface S2sOutEnv extends S2sEnv {
  resolver: S2sResolver;
  /** Delay between connection attempts to successive candidates. */
  staggerMs?: number;
}

interface VerifyWaiter {
  req: VerifyRequest;
  resolve(v: DialbackVerdict): void;
  timer: NodeJS.Timeout;
}

const framing = xmlStreamFraming(NS.server);

export class S2sOutStream {
  private state: State = 'new';
  private transport: S2sTransport | undefined;
  private readonly parser: StreamParser;
  private streamId: string | undefined;
  private readonly queue: QueuedStanza[] = [];
  /** Sent <db:verify/> questions by stream id. */
  private readonly verifies = new Map<string, VerifyWaiter[]>();
  /** Questions waiting for the stream to be far enough along (TLS, features). */
  private readonly unsent: VerifyRequest[] = [];
  private canVerify = false;
  private saslDone = false;
  private attempt: ConnectAttempt | undefined;
  private timer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  /** How the stream authenticated, once ready. */
  authenticatedBy: 'EXTERNAL' | 'dialback' | undefined;
  /** XEP-0288: we asked for a bidirectional stream; the peer may send us stanzas on it. */
  bidirectional = false;
  private readonly inbound: Element[] = [];
  private processing = false;
  private pausedForQueue = false;

  constructor(
    readonly local: string,
    readonly remote: string,
    private readonly env: S2sOutEnv,
    private readonly onClosed: (s: S2sOutStream) => void,
  ) {
    this.log = env.log.child({ s2s: 'out', from: local, to: remote });
    this.parser = new StreamParser(
      {
        onStreamOpen: (attrs) => this.onStreamOpen(attrs),
        onElement: (el) => this.onElement(el),
        onStreamClose: () => this.onStreamClose(),
        onError: (err) => this.onParseError(err),
      },
      xmlLimits(env.limits, false),
    );
  }

  get ready(): boolean {
    return this.state === 'ready';
  }

  get closed(): boolean {
    return this.state === 'closing' || this.state === 'closed';
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Resolves, connects and negotiates; queued stanzas go out once the stream is ready. */
  start(): void {
    if (this.state !== 'new') return;
    this.state = 'connecting';
    void this.connect();
  }

  /** Sends now when ready, else queues (bounded by `queueLimit`; overflow bounces). */
  send(item: QueuedStanza): void {
    if (this.state === 'ready') {
      this.writeStanza(item);
      return;
    }
    if (this.closed) {
      this.env.router.bounce(item.stanza, StanzaError.remoteServerNotFound(`the connection to ${this.remote} is closing`));
      return;
    }
    if (this.queue.length >= this.env.config.queueLimit) {
      this.env.router.bounce(item.stanza, StanzaError.resourceConstraint(`too many stanzas waiting for ${this.remote}`));
      return;
    }
    this.queue.push(item);
  }

  /** XEP-0220 Step 2: asks the remote (Authoritative) server whether it issued `req.key`. */
  verify(req: VerifyRequest): Promise<DialbackVerdict> {
    if (this.closed) return Promise.resolve(StanzaError.remoteServerNotFound(`no connection to ${this.remote}`));
    return new Promise<DialbackVerdict>((resolve) => {
      const timer = setTimeout(() => {
        this.dropWaiter(req.streamId, waiter);
        resolve(StanzaError.remoteServerTimeout(`${this.remote} did not answer the verification`));
      }, this.env.limits.unauthenticatedTimeoutMs);
      timer.unref();
      const waiter: VerifyWaiter = { req, resolve, timer };
      const list = this.verifies.get(req.streamId);
      if (list) list.push(waiter);
      else this.verifies.set(req.streamId, [waiter]);
      if (this.canVerify) this.writeVerify(req);
      else this.unsent.push(req);
      if (this.state === 'new') this.start();
    });
  }

  private dropWaiter(id: string, waiter: VerifyWaiter): void {
    const list = this.verifies.get(id);
    if (!list) return;
    const rest = list.filter((w) => w !== waiter);
    if (rest.length) this.verifies.set(id, rest);
    else this.verifies.delete(id);
  }

  private writeVerify(req: VerifyRequest): void {
    this.writeElement(xml('db:verify', { from: req.receiving, to: req.originating, id: req.streamId }, req.key));
  }

  /** Graceful close (idle, shutdown): queued stanzas, if any, bounce. */
  close(reason = 'closed'): void {
    if (this.closed) return;
    if (this.state === 'new' || this.state === 'connecting' || !this.transport) return this.fail(StanzaError.remoteServerTimeout(reason));
    this.log.debug({ reason }, 's2s-out closing');
    this.transport.write(framing.close());
    this.finish(StanzaError.remoteServerTimeout(reason));
    this.transport.end();
  }

  // ------------------------------------------------------------------ connecting

  private async connect(): Promise<void> {
    const cfg = this.env.config;
    this.timer = setTimeout(() => this.fail(StanzaError.remoteServerTimeout(`no connection to ${this.remote} within ${cfg.connectTimeout} ms`)), cfg.connectTimeout);
    this.timer.unref();
    let targets: S2sTarget[];
    try {
      targets = await this.env.resolver.resolve(this.remote);
    } catch (err) {
      this.log.debug({ err }, 's2s-out DNS lookup failed');
      targets = [];
    }
    if (this.closed) return;
    if (targets.length === 0) return this.fail(StanzaError.remoteServerNotFound(`${this.remote} has no XMPP server`));
    this.log.debug({ targets }, 's2s-out connecting');
    this.attempt = connectFirst(targets, {
      staggerMs: this.env.staggerMs ?? 250,
      servername: sniName(this.remote),
      secureContext: this.env.tls.context(this.local),
    });
    let connected;
    try {
      connected = await this.attempt.result;
    } catch (err) {
      if (this.closed) return; // cancelled: timed out or shut down
      this.log.info({ err: (err as Error).message }, 's2s-out could not connect');
      return this.fail(StanzaError.remoteServerNotFound(`could not connect to ${this.remote}`));
    } finally {
      this.attempt = undefined;
    }
    if (this.closed) {
      connected.socket.destroy();
      return;
    }
    clearTimeout(this.timer);
    connected.socket.setNoDelay(true);
    const transport = new S2sTransport(connected.socket, undefined);
    this.transport = transport;
    this.env.metrics?.connections.inc({ type: 's2s-out' });
    transport.onData((chunk) => this.onData(chunk));
    transport.onClose(() => this.onTransportClosed());
    // Negotiation (TLS, authentication) gets the same time as an unauthenticated client.
    this.timer = setTimeout(() => this.fail(StanzaError.remoteServerTimeout(`${this.remote} did not authenticate us in time`)), this.env.limits.unauthenticatedTimeoutMs);
    this.timer.unref();
    if (connected.target.directTls) this.checkServerCertificate();
    this.sendHeader();
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closed' || this.state === 'tls-upgrading') return;
    this.idleTimer?.refresh();
    this.parser.write(chunk);
  }

  private sendHeader(): void {
    this.state = 'wait-header';
    this.transport?.write(framing.open({ 'xmlns:db': NS.dialback, from: this.local, to: this.remote, version: '1.0' }));
  }

  private writeElement(el: Element): void {
    if (this.state === 'closed' || !this.transport) return;
    this.transport.write(el.toString());
  }

  private writeStanza(item: QueuedStanza): void {
    if (!this.transport) return;
    this.transport.write(item.wire);
    this.env.metrics?.stanzas.inc({ direction: 'out', kind: item.stanza.kind });
    this.idleTimer?.refresh();
    if (this.transport.bufferedBytes > this.env.limits.outboundBufferBytes) {
      this.log.warn({ buffered: this.transport.bufferedBytes }, 'remote server is not reading; closing');
      this.finish(StanzaError.remoteServerTimeout('the remote server is not reading'));
      this.transport.destroy();
    }
  }

  // ------------------------------------------------------------------ stream

  private onStreamOpen(attrs: Record<string, string>): void {
    if (this.state !== 'wait-header') return this.streamError('not-well-formed', 'unexpected stream header');
    if (attrs.xmlns !== NS.server) return this.streamError('invalid-namespace', `content namespace must be ${NS.server}`);
    this.streamId = attrs.id;
    const version = attrs.version;
    if (version === undefined || Number.parseInt(version.split('.')[0] ?? '0', 10) < 1) {
      // A pre-RFC 3920 server: no features, so no TLS; dialback straight away if allowed.
      if (this.env.config.requireEncryption && !this.transport?.secure) {
        return this.fail(StanzaError.remoteServerNotFound(`${this.remote} does not offer TLS`), 'unsupported-version');
      }
      this.canVerify = true;
      this.flushVerifies();
      return this.sendDialbackKey();
    }
    this.state = 'wait-features';
  }

  private onElement(el: Element): void {
    if (this.closed) return;
    const ns = el.attrs.xmlns as string | undefined;
    if (ns === NS.stream && el.name === 'error') return this.onStreamErrorReceived(el);
    if (ns === NS.stream && el.name === 'features') return this.onFeatures(el);
    if (ns === NS.tls) return void this.onTls(el);
    if (ns === NS.sasl) return this.onSasl(el);
    if (ns === NS.dialback && el.name === 'result') return this.onResult(el);
    if (ns === NS.dialback && el.name === 'verify') {
      if (el.attrs.type === undefined && this.bidirectional) return this.answerVerify(el);
      return this.onVerifyAnswer(el);
    }
    if (ns === undefined && isStanzaName(el.name)) return this.onStanza(el);
    this.log.debug({ name: el.name, ns }, 's2s-out ignored an unexpected element');
  }

  private onFeatures(features: Element): void {
    if (this.state !== 'wait-features') return this.streamError('not-authorized', 'unexpected features');
    const secure = this.transport?.secure === true;
    if (!secure) {
      if (features.getChild('starttls', NS.tls)) {
        this.state = 'wait-proceed';
        this.writeElement(xml('starttls', { xmlns: NS.tls }));
        return;
      }
      if (this.env.config.requireEncryption) {
        return this.fail(StanzaError.remoteServerNotFound(`${this.remote} does not offer TLS`), 'policy-violation');
      }
    }
    if (this.saslDone) return this.becomeReady('EXTERNAL');
    // The stream is usable for <db:verify/> from here on.
    this.canVerify = true;
    this.flushVerifies();
    // XEP-0288 §3: asked for before authenticating, and only over TLS when TLS is required.
    if (!this.bidirectional && features.getChild('bidi', NS.bidiFeature) && (secure || !this.env.config.requireEncryption)) {
      this.writeElement(xml('bidi', { xmlns: NS.bidi }));
      this.bidirectional = true;
    }
    const mechanisms = features.getChild('mechanisms', NS.sasl)?.getChildren('mechanism').map((m) => m.getText().trim()) ?? [];
    if (secure && mechanisms.includes('EXTERNAL')) {
      // XEP-0178 §3: offered only when our certificate names our domain; include the authzid
      // for older peers (the interoperability note).
      this.state = 'sasl';
      this.writeElement(xml('auth', { xmlns: NS.sasl, mechanism: 'EXTERNAL' }, Buffer.from(this.local).toString('base64')));
      return;
    }
    // Dialback even when not advertised: RFC 3920 servers announce it only by the namespace
    // declaration on their header, which the parser does not report.
    if (!features.getChild('dialback', NS.dialbackFeature)) this.log.debug('dialback not advertised; trying it anyway');
    this.sendDialbackKey();
  }

  private checkServerCertificate(): boolean {
    const cert = this.transport!.peerCertificate(this.remote);
    if (!cert.valid) {
      this.log.debug({ reason: cert.reason }, 's2s-out: the remote certificate is not valid for its domain');
      if (this.env.config.requireValidCertificates) {
        this.fail(StanzaError.remoteServerNotFound(`the certificate of ${this.remote} is not valid (${cert.reason ?? 'unknown'})`), 'policy-violation');
        return false;
      }
    }
    return true;
  }

  private async onTls(el: Element): Promise<void> {
    if (this.state !== 'wait-proceed') return this.streamError('policy-violation', 'unexpected TLS element');
    if (el.name !== 'proceed') return this.fail(StanzaError.remoteServerNotFound(`${this.remote} refused TLS`));
    this.state = 'tls-upgrading';
    this.parser.reset();
    try {
      await this.transport!.startClientTls(sniName(this.remote), this.env.tls.context(this.local));
    } catch (err) {
      this.log.info({ err: (err as Error).message }, 's2s-out TLS handshake failed');
      return this.fail(StanzaError.remoteServerNotFound(`TLS with ${this.remote} failed`));
    }
    if (this.closed) return;
    if (!this.checkServerCertificate()) return;
    this.sendHeader();
  }

  private onSasl(el: Element): void {
    if (this.state !== 'sasl') return this.streamError('policy-violation', 'unexpected SASL element');
    if (el.name === 'success') {
      this.saslDone = true;
      this.parser.reset();
      this.parser.setLimits(xmlLimits(this.env.limits, true));
      this.sendHeader();
      return;
    }
    // <failure/>: fall back to dialback on the same stream (XEP-0178 allows either).
    this.log.info({ condition: el.getChildElements()[0]?.name }, 's2s-out SASL EXTERNAL failed; trying dialback');
    this.sendDialbackKey();
  }

  private sendDialbackKey(): void {
    if (!this.streamId) return this.fail(StanzaError.remoteServerNotFound(`${this.remote} gave no stream id for dialback`));
    this.state = 'dialback';
    const key = this.env.keys.generate(this.remote, this.local, this.streamId);
    this.writeElement(xml('db:result', { from: this.local, to: this.remote }, key));
  }

  /** Step 4: the Receiving Server's verdict on our key. */
  private onResult(el: Element): void {
    const from = domainAttr(el.attrs.from);
    const to = domainAttr(el.attrs.to);
    // XEP-0220 §3.1: only an answer to what we asked on this stream counts.
    if (this.state !== 'dialback' || from !== this.remote || to !== this.local) {
      this.log.warn({ from: el.attrs.from, to: el.attrs.to }, 'unsolicited dialback result ignored');
      return;
    }
    switch (el.attrs.type) {
      case 'valid':
        return this.becomeReady('dialback');
      case 'invalid':
        // XEP-0220 §2.1.1: queued stanzas bounce with internal-server-error.
        this.log.warn('s2s-out: the remote server says our dialback key is invalid');
        return this.fail(StanzaError.internalServerError(`${this.remote} did not accept our identity`));
      case 'error': {
        const err = StanzaError.fromElement(el);
        this.log.info({ condition: err?.condition }, 's2s-out dialback error');
        return this.fail(StanzaError.remoteServerTimeout(`${this.remote} could not verify us${err ? ` (${err.condition})` : ''}`));
      }
      default:
        this.log.warn({ type: el.attrs.type }, 'dialback result without a valid type ignored');
    }
  }

  /** Step 3: the Authoritative Server's answer to our <db:verify/>. */
  private onVerifyAnswer(el: Element): void {
    const id = el.attrs.id as string | undefined;
    const from = domainAttr(el.attrs.from);
    const to = domainAttr(el.attrs.to);
    const list = id === undefined ? undefined : this.verifies.get(id);
    const mine = list?.filter((w) => w.req.originating === from && w.req.receiving === to) ?? [];
    if (mine.length === 0) {
      this.log.warn({ from: el.attrs.from, to: el.attrs.to }, 'unsolicited dialback verify answer ignored');
      return;
    }
    let verdict: DialbackVerdict;
    if (el.attrs.type === 'valid') verdict = 'valid';
    else if (el.attrs.type === 'invalid') verdict = 'invalid';
    else verdict = StanzaError.remoteServerTimeout(`${this.remote} could not answer (${StanzaError.fromElement(el)?.condition ?? 'error'})`);
    for (const w of mine) {
      clearTimeout(w.timer);
      this.dropWaiter(id!, w);
      w.resolve(verdict);
    }
  }

  /**
   * XEP-0288: stanzas the peer sends back on our stream, from its domain (the inverse of the
   * pair we authenticated) to one of ours.
   */
  private onStanza(el: Element): void {
    if (!this.bidirectional || this.state !== 'ready') {
      if (!this.bidirectional) return this.streamError('unsupported-stanza-type', 'this stream is not bidirectional');
      return this.streamError('not-authorized', 'not authenticated yet');
    }
    const from = Jid.tryParse(el.attrs.from as string | undefined);
    const to = Jid.tryParse(el.attrs.to as string | undefined);
    if (!from || !to) return this.streamError('improper-addressing', 'stanzas between servers need valid from and to');
    if (from.domain !== this.remote) return this.streamError('invalid-from', `only ${this.remote} is verified on this stream`);
    if (!this.env.isLocal(to.domain)) return this.streamError('host-unknown', `${to.domain} is not served here`);
    this.env.metrics?.stanzas.inc({ direction: 'in', kind: el.name });
    this.inbound.push(el);
    if (this.inbound.length >= this.env.limits.inboundQueue && !this.pausedForQueue) {
      this.pausedForQueue = true;
      this.transport?.pause();
    }
    if (!this.processing) void this.drain();
  }

  private async drain(): Promise<void> {
    this.processing = true;
    try {
      while (this.inbound.length > 0) {
        const el = this.inbound.shift()!;
        try {
          await this.env.router.route(el);
        } catch (err) {
          this.log.error({ err }, 'routing a stanza from a remote server failed');
        }
        if (this.pausedForQueue && this.inbound.length < this.env.limits.inboundQueue / 2) {
          this.pausedForQueue = false;
          if (!this.closed) this.transport?.resume();
        }
      }
    } finally {
      this.processing = false;
    }
  }

  /** XEP-0288: on a bidirectional stream the peer may ask us, as Authoritative Server, too. */
  private answerVerify(el: Element): void {
    const receiving = domainAttr(el.attrs.from);
    const originating = domainAttr(el.attrs.to);
    const id = el.attrs.id as string | undefined;
    if (receiving === undefined || originating === undefined || !id) return this.streamError('improper-addressing', '<db:verify/> needs from, to and id');
    if (!this.env.isLocal(originating)) {
      return this.writeElement(xml('db:verify', { from: originating, to: receiving, id, type: 'error' }, StanzaError.itemNotFound().toElement()));
    }
    const valid = this.env.keys.verify(receiving, originating, id, el.getText());
    this.writeElement(xml('db:verify', { from: originating, to: receiving, id, type: valid ? 'valid' : 'invalid' }));
  }

  private flushVerifies(): void {
    for (const req of this.unsent.splice(0)) this.writeVerify(req);
  }

  private becomeReady(how: 'EXTERNAL' | 'dialback'): void {
    this.state = 'ready';
    this.authenticatedBy = how;
    this.canVerify = true;
    this.flushVerifies();
    if (this.timer) clearTimeout(this.timer);
    this.parser.setLimits(xmlLimits(this.env.limits, true));
    this.log.info({ via: how, queued: this.queue.length }, 's2s-out authenticated');
    this.idleTimer = setTimeout(() => this.close('idle'), this.env.config.idleTimeout);
    this.idleTimer.unref();
    for (const item of this.queue.splice(0)) this.writeStanza(item);
  }

  private onStreamErrorReceived(el: Element): void {
    const condition = el.getChildElements().find((c) => c.getNS() === NS.streamErrors && c.name !== 'text')?.name ?? 'undefined-condition';
    this.log.info({ condition, text: el.getChildText('text', NS.streamErrors) }, 's2s-out stream error from the remote server');
    const err = condition === 'connection-timeout'
      ? StanzaError.remoteServerTimeout(`${this.remote} closed the stream (${condition})`)
      : StanzaError.remoteServerNotFound(`${this.remote} closed the stream (${condition})`);
    this.finish(err);
    this.transport?.write(framing.close());
    this.transport?.end();
  }

  private onStreamClose(): void {
    if (this.state === 'closed') return;
    this.transport?.write(framing.close());
    this.finish(StanzaError.remoteServerTimeout(`${this.remote} closed the stream`));
    this.transport?.end();
  }

  private onParseError(err: XmlStreamError): void {
    this.streamError(err.condition as StreamErrorCondition, err.message);
  }

  private onTransportClosed(): void {
    this.finish(StanzaError.remoteServerTimeout(`the connection to ${this.remote} was lost`));
    this.state = 'closed';
  }

  /** We send a stream error (the peer broke the protocol) and give up on the stream. */
  private streamError(condition: StreamErrorCondition, text?: string): void {
    this.fail(StanzaError.remoteServerNotFound(`${this.remote} broke the protocol (${condition})`), condition, text);
  }

  /** Gives up: bounces what waits, answers pending verifications, closes the connection. */
  private fail(err: StanzaError, streamCondition?: string, text?: string): void {
    if (this.closed) return;
    this.log.debug({ condition: err.condition, reason: err.text }, 's2s-out failed');
    const transport = this.transport;
    if (transport && streamCondition && this.state !== 'connecting' && this.state !== 'tls-upgrading') {
      transport.write(`<stream:error><${streamCondition} xmlns='${NS.streamErrors}'/>${text ? `<text xmlns='${NS.streamErrors}'>${escapeText(text)}</text>` : ''}</stream:error>${framing.close()}`);
    } else if (transport && this.state !== 'connecting' && this.state !== 'tls-upgrading') {
      transport.write(framing.close());
    }
    this.finish(err);
    if (transport) transport.end();
  }

  private torn = false;

  private finish(err: StanzaError): void {
    if (this.torn) return;
    this.torn = true;
    const wasReady = this.state === 'ready';
    this.state = 'closing';
    this.attempt?.cancel();
    if (this.timer) clearTimeout(this.timer);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.transport) this.env.metrics?.connections.dec({ type: 's2s-out' });
    const queued = this.queue.splice(0);
    if (queued.length > 0) this.log.info({ bounced: queued.length, condition: err.condition }, 's2s-out bouncing queued stanzas');
    for (const item of queued) this.env.router.bounce(item.stanza, err);
    for (const [id, list] of [...this.verifies]) {
      this.verifies.delete(id);
      for (const w of list) {
        clearTimeout(w.timer);
        w.resolve(err.condition === 'remote-server-timeout' || err.condition === 'remote-server-not-found' ? err : StanzaError.remoteServerTimeout(err.text));
      }
    }
    this.unsent.length = 0;
    if (wasReady) this.log.debug('s2s-out closed');
    this.onClosed(this);
  }
}

/** SNI carries the A-label form of a domain (RFC 6066 §3). */
function sniName(domain: string): string {
  return domainToASCII(domain) || domain;
}

function escapeText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
