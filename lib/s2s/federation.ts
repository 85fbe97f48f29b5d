// Federation: the s2s listeners, one outgoing stream per (local, remote) domain pair created on
// demand and closed when idle, and the router's way out (`router.remote`).
import net from 'node:net';
import tls from 'node:tls';
import type { S2sConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Router } from '../routing/router.js';
import type { Stanza } from '../stanza/envelope.js';
import { NS } from '../stanza/ns.js';
import { StanzaError } from '../stanza/error.js';
import type { CertificateStore } from '../tls/certificates.js';
import { Element } from '../xml/element.js';
import { xmlStreamFraming } from '../stream/xml-framing.js';
import { S2sTlsContexts } from './certificates.js';
import { DialbackKeys } from './dialback-key.js';
import { S2sResolver, type S2sTarget, type SrvLookup } from './resolver.js';
import { S2sInStream } from './s2s-in.js';
import { S2sOutStream, type S2sOutEnv } from './s2s-out.js';
import { S2sTransport } from './transport.js';
import type { DialbackVerdict, ReverseSink, S2sLimits, VerifyRequest } from './types.js';

export interface FederationOptions {
  config: S2sConfig;
  router: Router;
  certs: CertificateStore;
  limits: S2sLimits;
  minVersion: tls.SecureVersion;
  log: Logger;
  metrics?: Metrics;
  /** DNS for SRV lookups (tests); node:dns by default. */
  dns?: SrvLookup;
  /** Connections allowed from one address (shared with c2s's limit). */
  connectionsPerIp: number;
  /** The `s2s` access rule: whether to federate with a remote domain (all when omitted). */
  mayFederate?(domain: string): boolean;
}

export interface S2sListenerOptions {
  address: string;
  port: number;
  directTls: boolean;
}

export class Federation {
  readonly resolver: S2sResolver;
  readonly keys = new DialbackKeys();
  private readonly tls: S2sTlsContexts;
  private readonly outgoing = new Map<string, S2sOutStream>();
  /** XEP-0288: inbound streams that may carry our stanzas for a pair, the other way. */
  private readonly reverse = new Map<string, ReverseSink>();
  private readonly incoming = new Set<S2sInStream>();
  private readonly servers = new Set<net.Server>();
  private readonly tlsServers = new Set<tls.Server>();
  private readonly perIp = new Map<string, number>();
  private readonly env: S2sOutEnv;
  private stopped = false;

  private constructor(private readonly opts: FederationOptions, contexts: S2sTlsContexts) {
    this.tls = contexts;
    this.resolver = new S2sResolver({ hosts: opts.config.resolver.hosts, dns: opts.dns });
    this.env = {
      router: opts.router,
      isLocal: (domain) => opts.router.isLocal(domain),
      mayFederate: opts.mayFederate,
      keys: this.keys,
      tls: contexts,
      config: opts.config,
      limits: opts.limits,
      log: opts.log,
      metrics: opts.metrics,
      resolver: this.resolver,
      verifyKey: (req) => this.verifyKey(req),
      attachReverse: (local, remote, sink) => {
        const key = `${local} ${remote}`;
        const current = this.reverse.get(key);
        if (!current || current.closed) this.reverse.set(key, sink);
      },
      detachReverse: (sink) => {
        for (const [key, s] of [...this.reverse]) if (s === sink) this.reverse.delete(key);
      },
    };
  }

  static async create(opts: FederationOptions): Promise<Federation> {
    const contexts = new S2sTlsContexts(opts.certs, opts.config.trustedCAs, opts.minVersion);
    await contexts.load();
    return new Federation(opts, contexts);
  }

  /** For `router.remote`: queues the stanza on the stream for its domain pair. */
  readonly route = async (stanza: Stanza): Promise<void> => {
    const to = stanza.to?.domain;
    const from = stanza.from.domain;
    if (to === undefined) return;
    if (!this.opts.router.isLocal(from)) {
      // We can only authenticate as our own domains; relaying for others is not a thing.
      this.opts.log.warn({ from, to }, 'not relaying a stanza from a remote domain to another remote domain');
      return;
    }
    if (this.stopped) return this.opts.router.bounce(stanza, StanzaError.remoteServerNotFound('the server is stopping'));
    if (this.opts.mayFederate && !this.opts.mayFederate(to)) return this.opts.router.bounce(stanza, new StanzaError('policy-violation', { text: `this server does not federate with ${to}` }));
    const wire = wireForm(stanza.el);
    const key = `${from} ${to}`;
    const out = this.outgoing.get(key);
    // A ready outgoing stream first; else the peer's bidirectional stream for this pair; else
    // a new (or still connecting) outgoing stream.
    if (!out?.ready) {
      const back = this.reverse.get(key);
      if (back && !back.closed) return back.sendReverse(wire, stanza.kind);
    }
    this.streamFor(from, to).send({ stanza, wire });
  };

  /** Outgoing streams by pair, for tests and diagnostics. */
  outgoingStream(from: string, to: string): S2sOutStream | undefined {
    return this.outgoing.get(`${from} ${to}`);
  }

  get incomingCount(): number {
    return this.incoming.size;
  }

  /** Whether a peer's bidirectional stream carries our stanzas for this pair (XEP-0288). */
  hasReverseRoute(from: string, to: string): boolean {
    const s = this.reverse.get(`${from} ${to}`);
    return s !== undefined && !s.closed;
  }

  /** Overrides DNS for a domain (tests that learn a port after start). */
  setTarget(domain: string, target: S2sTarget | undefined): void {
    this.resolver.override(domain, target);
  }

  private streamFor(from: string, to: string): S2sOutStream {
    const key = `${from} ${to}`;
    let stream = this.outgoing.get(key);
    if (!stream || stream.closed) {
      stream = new S2sOutStream(from, to, this.env, (s) => {
        if (this.outgoing.get(key) === s) this.outgoing.delete(key);
      });
      this.outgoing.set(key, stream);
      stream.start();
    }
    return stream;
  }

  /** XEP-0220 Step 2 over our stream to the Authoritative Server of `originating`. */
  private verifyKey(req: VerifyRequest): Promise<DialbackVerdict> {
    if (this.stopped) return Promise.resolve(StanzaError.remoteServerNotFound('the server is stopping'));
    return this.streamFor(req.receiving, req.originating).verify(req);
  }

  async reloadCertificates(): Promise<void> {
    await this.tls.load();
    for (const server of this.tlsServers) server.setSecureContext(this.tls.serverOptions());
  }

  listen(opts: S2sListenerOptions): Promise<net.Server> {
    const framing = xmlStreamFraming(NS.server);
    const onSocket = (socket: net.Socket): void => {
      socket.setNoDelay(true);
      const transport = new S2sTransport(socket, opts.directTls ? undefined : this.tls);
      const ip = transport.remoteAddress;
      const n = this.perIp.get(ip) ?? 0;
      if (this.stopped || n >= this.opts.connectionsPerIp) {
        socket.end(`${framing.open({ id: 'refused', version: '1.0' })}<stream:error><policy-violation xmlns='${NS.streamErrors}'/></stream:error>${framing.close()}`);
        return;
      }
      this.perIp.set(ip, n + 1);
      const stream = new S2sInStream(transport, framing, this.env, (s) => {
        this.incoming.delete(s);
        const left = (this.perIp.get(ip) ?? 1) - 1;
        if (left <= 0) this.perIp.delete(ip);
        else this.perIp.set(ip, left);
      });
      this.incoming.add(stream);
    };
    let server: net.Server;
    if (opts.directTls) {
      const tlsServer = tls.createServer(this.tls.serverOptions());
      this.tlsServers.add(tlsServer);
      tlsServer.once('close', () => this.tlsServers.delete(tlsServer));
      // Handshake failures are the peer's problem.
      tlsServer.on('tlsClientError', () => undefined);
      tlsServer.on('secureConnection', onSocket);
      server = tlsServer;
    } else {
      server = net.createServer(onSocket);
    }
    this.servers.add(server);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.address, () => {
        server.off('error', reject);
        resolve(server);
      });
    });
  }

  /** Closes every stream (system-shutdown for inbound ones) and the listeners. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const s of [...this.incoming]) s.streamError('system-shutdown', 'the server is stopping');
    for (const s of [...this.outgoing.values()]) s.close('the server is stopping');
    await Promise.all([...this.servers].map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

/**
 * The stanza as it goes on a jabber:server stream: a top-level xmlns of jabber:client (or
 * jabber:server) is dropped so that it inherits the stream's.
 */
export function wireForm(el: Element): string {
  const ns = el.attrs.xmlns;
  if (ns !== NS.client && ns !== NS.server) return el.toString();
  const { xmlns: _drop, ...attrs } = el.attrs;
  const copy = new Element(el.name, attrs);
  copy.children = el.children;
  return copy.toString();
}
