// XEP-0114 external components ("accept" method): the component names its domain in the stream
// header, proves the shared secret with <handshake>SHA1(streamId + secret)</handshake>, then
// gets every stanza for that domain and may send from any address at it.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { xml, type Element } from '../xml/element.js';
import { StreamParser, type XmlStreamError } from '../xml/stream-parser.js';
import { Jid } from '../jid/jid.js';
import { NS } from '../stanza/ns.js';
import { isStanzaName, type Stanza } from '../stanza/envelope.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Router } from '../routing/router.js';
import type { StreamFraming, StreamTransport } from '../transport/types.js';
import type { StreamErrorCondition } from '../stream/stream-error.js';
import { AcceptedStream } from '../stream/accepted-stream.js';
import { domainAttr, xmlLimits, type S2sLimits } from '../s2s/types.js';
import { wireForm } from '../s2s/federation.js';

export interface ComponentEnv {
  router: Router;
  /** The component domains this listener accepts, with their secrets. */
  secrets: ReadonlyMap<string, string>;
  /** Makes `stream` the one that gets the domain's stanzas; false when another one has it. */
  attach(domain: string, stream: ComponentStream): boolean;
  detach(domain: string, stream: ComponentStream): void;
  limits: S2sLimits;
  log: Logger;
  metrics?: Metrics;
  onClosed?(s: ComponentStream): void;
}

type State = 'wait-header' | 'wait-handshake' | 'ready';

/** XEP-0114 §2: lowercase hex SHA-1 of the stream id followed by the secret. */
export function handshakeDigest(streamId: string, secret: string): string {
  return createHash('sha1').update(streamId + secret).digest('hex');
}

export class ComponentStream extends AcceptedStream<State> {
  protected readonly peerKind = 'component';
  private readonly parser: StreamParser;
  private streamId = '';
  private domain: string | undefined;
  private attached = false;
  private readonly authTimer: NodeJS.Timeout;

  constructor(
    transport: StreamTransport,
    framing: StreamFraming,
    private readonly env: ComponentEnv,
  ) {
    super(transport, framing, env.limits, env.log.child({ component: true, remote: transport.remoteAddress }), 'wait-header');
    this.parser = new StreamParser(
      {
        onStreamOpen: (attrs) => this.onStreamOpen(attrs),
        onElement: (el) => this.onElement(el),
        onStreamClose: () => this.onStreamClose(),
        onError: (err: XmlStreamError) => this.streamError(err.condition as StreamErrorCondition, err.message),
      },
      xmlLimits(env.limits, false),
    );
    transport.onData((chunk) => {
      if (this.state !== 'closed') this.parser.write(chunk);
    });
    transport.onClose(() => this.onTransportClosed());
    this.authTimer = setTimeout(() => this.streamError('connection-timeout', 'send the handshake sooner'), env.limits.unauthenticatedTimeoutMs);
    this.authTimer.unref();
    env.metrics?.connections.inc({ type: 'component' });
  }

  protected sendHeader(): void {
    this.streamId = randomBytes(12).toString('hex');
    const attrs: Record<string, string> = { id: this.streamId };
    if (this.domain) attrs.from = this.domain;
    this.writeRaw(this.framing.open(attrs));
    this.headerSent = true;
  }

  private onStreamOpen(attrs: Record<string, string>): void {
    if (this.state !== 'wait-header') return this.streamError('not-well-formed', 'unexpected stream header');
    if (attrs.xmlns !== NS.component) return this.streamError('invalid-namespace', `content namespace must be ${NS.component}`);
    const domain = domainAttr(attrs.to);
    if (domain === undefined || !this.env.secrets.has(domain)) return this.streamError('host-unknown', 'no component of that name is configured');
    this.domain = domain;
    this.sendHeader();
    this.state = 'wait-handshake';
  }

  private onElement(el: Element): void {
    if (this.state === 'wait-handshake') {
      if (el.name !== 'handshake' || el.attrs.xmlns !== undefined) return this.streamError('not-authorized', 'send the handshake first');
      return this.onHandshake(el.getText().trim().toLowerCase());
    }
    if (this.state !== 'ready') return;
    if (el.attrs.xmlns !== undefined || !isStanzaName(el.name)) return this.streamError('unsupported-stanza-type', `<${el.name}/> is not understood here`);
    const from = Jid.tryParse(el.attrs.from as string | undefined);
    if (!from || Jid.tryParse(el.attrs.to as string | undefined) === undefined) {
      return this.streamError('improper-addressing', 'stanzas from a component need valid from and to');
    }
    // XEP-0114 §2: the from domain must be the component's.
    if (from.domain !== this.domain) return this.streamError('invalid-from', `from must be at ${this.domain}`);
    this.env.metrics?.stanzas.inc({ direction: 'in', kind: el.name });
    this.enqueue(el);
  }

  private onHandshake(given: string): void {
    const domain = this.domain!;
    const expected = Buffer.from(handshakeDigest(this.streamId, this.env.secrets.get(domain)!), 'utf8');
    const actual = Buffer.from(given, 'utf8');
    if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
      this.log.info({ domain }, 'component handshake refused');
      return this.streamError('not-authorized', 'wrong handshake');
    }
    if (!this.env.attach(domain, this)) return this.streamError('conflict', `a component for ${domain} is already connected`);
    this.attached = true;
    clearTimeout(this.authTimer);
    this.parser.setLimits(xmlLimits(this.env.limits, true));
    this.state = 'ready';
    this.writeRaw('<handshake/>');
    this.log.info({ domain }, 'component connected');
  }

  /** A stanza the router has for the component's domain. */
  deliver(stanza: Stanza): void {
    if (this.state !== 'ready') return;
    this.env.metrics?.stanzas.inc({ direction: 'out', kind: stanza.kind });
    this.writeRaw(wireForm(stanza.el));
  }

  protected route(el: Element): Promise<void> {
    return this.env.router.route(el);
  }

  protected onTeardown(): void {
    clearTimeout(this.authTimer);
    if (this.attached) this.env.detach(this.domain!, this);
    this.attached = false;
    if (this.domain && this.state === 'ready') this.log.info({ domain: this.domain }, 'component disconnected');
    this.env.metrics?.connections.dec({ type: 'component' });
    this.env.onClosed?.(this);
  }
}

/** Builds the `<handshake/>` a component sends (for tests and tools). */
export function handshakeElement(streamId: string, secret: string): Element {
  return xml('handshake', {}, handshakeDigest(streamId, secret));
}
