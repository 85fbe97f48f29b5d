// The inbound server-to-server stream (RFC 6120 §4-§6 for the receiving entity): header,
// STARTTLS, SASL EXTERNAL (XEP-0178) or dialback (XEP-0220, with the XEP-0344 shortcuts), then
// stanzas from verified domains into the router. Also answers <db:verify/> as the
// Authoritative Server for our own keys.
import { randomBytes } from 'node:crypto';
import { xml, type Element } from '../xml/element.js';
import { StreamParser, type XmlStreamError } from '../xml/stream-parser.js';
import { Jid } from '../jid/jid.js';
import { NS } from '../stanza/ns.js';
import { StanzaError } from '../stanza/error.js';
import { isStanzaName } from '../stanza/envelope.js';
import type { StreamFraming } from '../transport/types.js';
import type { StreamErrorCondition } from '../stream/stream-error.js';
import { AcceptedStream } from '../stream/accepted-stream.js';
import { domainAttr, xmlLimits, type ReverseSink, type S2sEnv, type S2sStreamTransport } from './types.js';
import { DomainBlocklist } from '../routing/domain-blocklist.js';

const blocklists = new WeakMap<readonly string[], DomainBlocklist>();

/** Config `s2s.blockedDomains`, as a lookup built once per config. */
function blocklistOf(domains: readonly string[]): DomainBlocklist {
  let list = blocklists.get(domains);
  if (!list) blocklists.set(domains, (list = new DomainBlocklist(domains)));
  return list;
}

type State = 'wait-header' | 'open' | 'tls-upgrading';

const MAX_SASL_FAILURES = 3;

export class S2sInStream extends AcceptedStream<State> implements ReverseSink {
  protected readonly peerKind = 'remote server';
  private readonly parser: StreamParser;
  /** The id of the header we sent last; dialback keys are bound to it. */
  streamId = '';
  /** The peer's domain from its stream header (`from`), if it said. */
  private peerDomain: string | undefined;
  /** Our domain from its stream header (`to`). */
  private localDomain: string | undefined;
  /** The domain authenticated by SASL EXTERNAL. */
  private saslDomain: string | undefined;
  private saslFailures = 0;
  /** Verified sender domain → our domains it was verified for (XEP-0220 domain pairs). */
  private readonly verified = new Map<string, Set<string>>();
  /** "from to" pairs whose dialback is under way. */
  private readonly pending = new Set<string>();
  /** Answered a <db:verify/>: a legitimate stream even with nothing verified. */
  private servedVerify = false;
  /** XEP-0288: the peer asked for a bidirectional stream. */
  private bidi = false;
  private authTimer: NodeJS.Timeout | undefined;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(
    protected override readonly transport: S2sStreamTransport,
    framing: StreamFraming,
    private readonly env: S2sEnv,
    private readonly onClosed: (s: S2sInStream) => void,
  ) {
    super(transport, framing, env.limits, env.log.child({ s2s: 'in', remote: transport.remoteAddress }), 'wait-header');
    this.parser = new StreamParser(
      {
        onStreamOpen: (attrs) => this.onStreamOpen(attrs),
        onElement: (el) => this.onElement(el),
        onStreamClose: () => this.onStreamClose(),
        onError: (err) => this.onParseError(err),
      },
      xmlLimits(env.limits, false),
    );
    transport.onData((chunk) => this.onData(chunk));
    transport.onClose(() => this.onTransportClosed());
    this.authTimer = setTimeout(() => {
      if (this.verified.size === 0 && !this.servedVerify) this.streamError('connection-timeout', 'authenticate sooner');
    }, env.limits.unauthenticatedTimeoutMs);
    this.authTimer.unref();
    this.touch();
    env.metrics?.connections.inc({ type: 's2s-in' });
  }

  /** Domains verified on this stream (for tests and diagnostics). */
  get verifiedDomains(): string[] {
    return [...this.verified.keys()];
  }

  get bidirectional(): boolean {
    return this.bidi;
  }

  /** XEP-0288: our stanza to a domain verified on this stream, the other way. */
  sendReverse(wire: string, kind: string): void {
    if (this.closed) return;
    this.env.metrics?.stanzas.inc({ direction: 'out', kind });
    this.touch();
    this.writeRaw(wire);
  }

  onData(chunk: Buffer): void {
    if (this.state === 'closed' || this.state === 'tls-upgrading') return;
    this.touch();
    this.parser.write(chunk);
  }

  /** Idle close (RFC 6120 §4.6.3 leaves the policy to us): silent streams are closed. */
  private touch(): void {
    if (this.idleTimer) this.idleTimer.refresh();
    else {
      this.idleTimer = setTimeout(() => this.close(), this.env.config.idleTimeout);
      this.idleTimer.unref();
    }
  }

  // ------------------------------------------------------------------ output

  private writeElement(el: Element): void {
    this.writeRaw(el.toString());
  }

  protected sendHeader(): void {
    this.streamId = randomBytes(12).toString('base64url');
    const attrs: Record<string, string> = { 'xmlns:db': NS.dialback, id: this.streamId, version: '1.0' };
    if (this.localDomain) attrs.from = this.localDomain;
    if (this.peerDomain) attrs.to = this.peerDomain;
    this.writeRaw(this.framing.open(attrs));
    this.headerSent = true;
  }

  close(): void {
    this.closeStream();
  }

  // ------------------------------------------------------------------ header and features

  private onStreamOpen(attrs: Record<string, string>): void {
    if (this.state !== 'wait-header') return this.streamError('not-well-formed', 'unexpected stream header');
    const to = domainAttr(attrs.to);
    const from = domainAttr(attrs.from);
    if (attrs.to !== undefined && to !== undefined && this.env.isLocal(to)) this.localDomain = to;
    if (attrs.xmlns !== NS.server) return this.streamError('invalid-namespace', `content namespace must be ${NS.server}`);
    const version = attrs.version;
    // Without version 1.0 there are no stream features, so no STARTTLS and no SASL.
    if (version === undefined || Number.parseInt(version.split('.')[0] ?? '0', 10) !== 1) {
      return this.streamError('unsupported-version', "only version='1.0' streams are supported");
    }
    // RFC 6120 §4.7.2: a `to` we do not serve is host-unknown. An absent one is tolerated: the
    // dialback elements carry their own domain pairs.
    if (attrs.to !== undefined && (to === undefined || !this.env.isLocal(to))) {
      return this.streamError('host-unknown', 'this server does not serve that domain');
    }
    if (this.saslDomain !== undefined && from !== undefined && from !== this.saslDomain) {
      return this.streamError('invalid-from', 'the domain changed on restart');
    }
    if (from !== undefined) this.peerDomain = from;
    // RFC 6120 §4.9.3.14: a server this one refuses to talk to (config s2s.blockedDomains).
    if (from !== undefined && this.isBlocked(from)) {
      this.log.info({ from }, 's2s-in from a blocked domain refused');
      return this.streamError('policy-violation', 'this server does not accept connections from your domain');
    }
    this.sendHeader();
    this.state = 'open';
    this.writeElement(this.features());
  }

  private certificateValidFor(domain: string | undefined): boolean {
    return domain !== undefined && this.transport.secure && this.transport.peerCertificate(domain).valid;
  }

  private features(): Element {
    const features = xml('stream:features');
    if (this.saslDomain !== undefined) return features; // RFC 6120 §6.4.6: nothing left to offer.
    const cfg = this.env.config;
    if (this.transport.canStartTls) {
      features.cnode(xml('starttls', { xmlns: NS.tls }, cfg.requireEncryption ? xml('required') : null));
      if (cfg.requireEncryption) return features;
    }
    // XEP-0178 §3 step 8: EXTERNAL only when the certificate names the domain in `from`.
    if (this.certificateValidFor(this.peerDomain)) {
      features.cnode(xml('mechanisms', { xmlns: NS.sasl }, xml('mechanism', {}, 'EXTERNAL')));
    }
    // Dialback stays on offer even when only certificates are accepted: it carries <db:verify/>
    // and XEP-0344's certificate-checked dialback for further domains.
    features.cnode(xml('dialback', { xmlns: NS.dialbackFeature }, xml('errors')));
    // XEP-0288 §2: offered before authentication, after TLS when TLS is required.
    if (this.verified.size === 0) features.cnode(xml('bidi', { xmlns: NS.bidiFeature }));
    return features;
  }

  // ------------------------------------------------------------------ elements

  private onElement(el: Element): void {
    if (this.state !== 'open') return;
    const ns = el.attrs.xmlns as string | undefined;
    if (ns === undefined && isStanzaName(el.name)) return this.onStanza(el);
    if (ns === NS.tls && el.name === 'starttls') return void this.onStartTls();
    if (ns === NS.sasl) return this.onSasl(el);
    if (ns === NS.dialback && el.name === 'result') return void this.onDialbackResult(el);
    if (ns === NS.dialback && el.name === 'verify') return this.onDialbackVerify(el);
    if (ns === NS.bidi && el.name === 'bidi') return this.onBidi();
    this.streamError('unsupported-stanza-type', `<${el.name}/> is not understood here`);
  }

  private mustEncryptFirst(): boolean {
    return this.env.config.requireEncryption && !this.transport.secure;
  }

  private onParseError(err: XmlStreamError): void {
    this.streamError(err.condition as StreamErrorCondition, err.message);
  }

  // ------------------------------------------------------------------ STARTTLS

  private async onStartTls(): Promise<void> {
    if (!this.transport.canStartTls) return this.streamError('policy-violation', 'TLS is already in place');
    this.state = 'tls-upgrading';
    this.writeElement(xml('proceed', { xmlns: NS.tls }));
    this.parser.reset();
    try {
      await this.transport.startTls();
    } catch (err) {
      this.log.debug({ err }, 's2s TLS handshake failed');
      this.teardown();
      this.state = 'closed';
      this.transport.destroy();
      return;
    }
    this.headerSent = false;
    this.state = 'wait-header';
  }

  /** XEP-0288 §3: before authentication (and after TLS when it is required). */
  private onBidi(): void {
    if (this.mustEncryptFirst()) return this.streamError('policy-violation', 'use STARTTLS first');
    if (this.verified.size > 0) return this.streamError('policy-violation', 'bidi must come before authentication');
    this.bidi = true;
    this.log.debug('bidirectional stream requested');
  }

  // ------------------------------------------------------------------ SASL EXTERNAL (XEP-0178)

  private saslFailure(condition: string, text?: string): void {
    this.writeElement(xml('failure', { xmlns: NS.sasl }, xml(condition), text ? xml('text', { 'xml:lang': 'en' }, text) : null));
    if (condition !== 'aborted' && ++this.saslFailures >= MAX_SASL_FAILURES) {
      this.streamError('policy-violation', 'too many failed authentication attempts');
    }
  }

  private onSasl(el: Element): void {
    if (this.mustEncryptFirst()) {
      if (el.name === 'auth') return this.saslFailure('encryption-required');
      return this.streamError('policy-violation', 'use STARTTLS first');
    }
    if (this.saslDomain !== undefined) return this.streamError('policy-violation', 'already authenticated');
    if (el.name === 'abort') return this.saslFailure('aborted');
    if (el.name !== 'auth') return this.streamError('policy-violation', `unexpected SASL element <${el.name}/>`);
    if (el.attrs.mechanism !== 'EXTERNAL') return this.saslFailure('invalid-mechanism');
    // RFC 6120 §6.4.2: "=" is an empty initial response; an authzid, if any, must be the domain.
    const text = el.getText().trim();
    let authzid: string | undefined;
    if (text !== '' && text !== '=') {
      const decoded = Buffer.from(text, 'base64').toString('utf8');
      authzid = domainAttr(decoded);
      if (authzid === undefined) return this.saslFailure('invalid-authzid');
    }
    const identity = this.peerDomain ?? authzid;
    if (identity === undefined) return this.saslFailure('not-authorized', "say who you are in the stream header's from");
    if (authzid !== undefined && authzid !== identity) return this.saslFailure('invalid-authzid', 'the authorization identity is not the stream\'s from');
    if (this.env.isLocal(identity)) return this.saslFailure('not-authorized');
    if (this.isBlocked(identity)) return this.streamError('policy-violation', 'this server does not accept connections from your domain');
    const cert = this.transport.peerCertificate(identity);
    if (!cert.valid) return this.saslFailure('not-authorized', `the certificate is not valid for ${identity}`);
    this.saslDomain = identity;
    this.peerDomain = identity;
    this.writeElement(xml('success', { xmlns: NS.sasl }));
    this.log.info({ from: identity, to: this.localDomain, mechanism: 'EXTERNAL' }, 's2s-in authenticated');
    this.env.metrics?.logins.inc({ mechanism: 's2s-EXTERNAL', result: 'success' });
    this.markVerified(identity, this.localDomain);
    // RFC 6120 §6.4.6: a new stream follows.
    this.parser.reset();
    this.headerSent = false;
    this.state = 'wait-header';
  }

  private isBlocked(domain: string): boolean {
    return !this.env.isLocal(domain) && blocklistOf(this.env.config.blockedDomains).has(domain);
  }

  private markVerified(from: string, to: string | undefined): void {
    if (this.env.mayFederate && !this.env.mayFederate(from)) return this.streamError('policy-violation', `this server does not federate with ${from}`);
    let set = this.verified.get(from);
    if (!set) this.verified.set(from, (set = new Set()));
    if (to !== undefined) set.add(to);
    // XEP-0288 §3: the inverse of a verified pair may now carry our stanzas.
    if (this.bidi && to !== undefined) this.env.attachReverse?.(to, from, this);
    if (this.authTimer) clearTimeout(this.authTimer);
    this.parser.setLimits(xmlLimits(this.env.limits, true));
  }

  // ------------------------------------------------------------------ dialback (XEP-0220)

  private dialbackError(name: 'result' | 'verify', attrs: Record<string, string>, err: StanzaError): void {
    this.writeElement(xml(`db:${name}`, { ...attrs, type: 'error' }, err.toElement()));
  }

  /** Step 1 received: a claim to send stanzas from `from` to our `to`. */
  private async onDialbackResult(el: Element): Promise<void> {
    if (el.attrs.type !== undefined) {
      // XEP-0220 §3 / §4.1: a typed <db:result/> on an inbound stream was never asked for.
      this.log.warn({ from: el.attrs.from, to: el.attrs.to }, 'unsolicited dialback result ignored');
      return;
    }
    const from = domainAttr(el.attrs.from);
    const to = domainAttr(el.attrs.to);
    if (from === undefined || to === undefined) return this.streamError('improper-addressing', '<db:result/> needs from and to domains');
    const reply = { from: to, to: from };
    if (!this.env.isLocal(to)) return this.dialbackError('result', reply, StanzaError.itemNotFound(`${to} is not served here`));
    if (this.mustEncryptFirst()) return this.dialbackError('result', reply, StanzaError.policyViolation('use STARTTLS first'));
    if (this.env.isLocal(from)) return this.dialbackError('result', reply, StanzaError.notAuthorized(`${from} is served here`));
    if (this.isBlocked(from)) return this.streamError('policy-violation', 'this server does not accept connections from your domain');
    if (this.verified.get(from)?.has(to)) return this.writeElement(xml('db:result', { ...reply, type: 'valid' }));
    const pair = `${from} ${to}`;
    if (this.pending.has(pair)) return;
    // XEP-0344 §2.4 "dialback without dialback": a certificate valid for the sender domain is
    // proof enough; checked now, not only at the handshake (XEP-0344 §3).
    const cert = this.transport.secure ? this.transport.peerCertificate(from) : { valid: false, reason: 'not TLS' };
    if (cert.valid) return this.acceptPair(from, to, 'certificate');
    if (!this.env.config.dialback || this.env.config.requireValidCertificates) {
      this.log.info({ from, to, reason: cert.reason }, 's2s-in refused: no valid certificate');
      return this.dialbackError('result', reply, StanzaError.notAuthorized(`a certificate valid for ${from} is required (${cert.reason ?? 'none'})`));
    }
    const key = el.getText().trim();
    if (key === '') return this.dialbackError('result', reply, StanzaError.badRequest('empty key'));
    this.pending.add(pair);
    const streamId = this.streamId;
    let verdict;
    try {
      verdict = await this.env.verifyKey({ receiving: to, originating: from, streamId, key });
    } finally {
      this.pending.delete(pair);
    }
    if (this.state !== 'open' && this.state !== 'wait-header') return;
    if (verdict === 'valid') return this.acceptPair(from, to, 'dialback');
    if (verdict === 'invalid') {
      this.log.warn({ from, to }, 's2s-in dialback key is invalid (spoofing or misconfiguration)');
      if (this.verified.size > 0) return this.dialbackError('result', reply, StanzaError.forbidden('the dialback key is invalid'));
      // XEP-0220 §2.2.1: the first pair failing closes the stream.
      this.writeElement(xml('db:result', { ...reply, type: 'invalid' }));
      return this.streamError('not-authorized', 'the dialback key is invalid');
    }
    this.log.info({ from, to, condition: verdict.condition }, 's2s-in dialback could not be verified');
    this.dialbackError('result', reply, verdict);
  }

  private acceptPair(from: string, to: string, how: 'certificate' | 'dialback'): void {
    this.markVerified(from, to);
    this.writeElement(xml('db:result', { from: to, to: from, type: 'valid' }));
    this.log.info({ from, to, via: how }, 's2s-in authenticated');
    this.env.metrics?.logins.inc({ mechanism: `s2s-dialback-${how}`, result: 'success' });
  }

  /** Step 2 received: a Receiving Server asks whether we issued this key. */
  private onDialbackVerify(el: Element): void {
    if (el.attrs.type !== undefined) {
      this.log.warn({ from: el.attrs.from, to: el.attrs.to }, 'unsolicited dialback verify answer ignored');
      return;
    }
    const receiving = domainAttr(el.attrs.from);
    const originating = domainAttr(el.attrs.to);
    const id = el.attrs.id as string | undefined;
    if (receiving === undefined || originating === undefined || !id) {
      return this.streamError('improper-addressing', '<db:verify/> needs from, to and id');
    }
    const reply = { from: originating, to: receiving, id };
    if (!this.env.isLocal(originating)) return this.dialbackError('verify', reply, StanzaError.itemNotFound(`${originating} is not served here`));
    if (this.mustEncryptFirst()) return this.dialbackError('verify', reply, StanzaError.policyViolation('use STARTTLS first'));
    const valid = this.env.keys.verify(receiving, originating, id, el.getText());
    this.servedVerify = true;
    this.log.debug({ receiving, originating, valid }, 'answered a dialback verification');
    this.writeElement(xml('db:verify', { ...reply, type: valid ? 'valid' : 'invalid' }));
  }

  // ------------------------------------------------------------------ stanzas

  private onStanza(el: Element): void {
    if (this.verified.size === 0) return this.streamError('not-authorized', 'authenticate first');
    const from = Jid.tryParse(el.attrs.from as string | undefined);
    const to = Jid.tryParse(el.attrs.to as string | undefined);
    // RFC 6120 §8.1.1.1 / §8.1.2.1: both addresses are required between servers.
    if (!from || !to) return this.streamError('improper-addressing', 'stanzas between servers need valid from and to');
    if (!this.verified.has(from.domain)) return this.streamError('invalid-from', `${from.domain} is not verified on this stream`);
    if (!this.env.isLocal(to.domain)) return this.streamError('host-unknown', `${to.domain} is not served here`);
    this.env.metrics?.stanzas.inc({ direction: 'in', kind: el.name });
    this.enqueue(el);
  }

  protected route(el: Element): Promise<void> {
    return this.env.router.route(el);
  }

  // ------------------------------------------------------------------ teardown

  protected onTeardown(): void {
    if (this.authTimer) clearTimeout(this.authTimer);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.bidi) this.env.detachReverse?.(this);
    this.env.metrics?.connections.dec({ type: 's2s-in' });
    this.onClosed(this);
  }
}
