// The XEP-0114 listener: a TCP port for external components. Each configured component domain
// is registered with the router once, at start, so stanzas for a component that is not
// connected bounce (service-unavailable) instead of being sent to another server.
import net from 'node:net';
import { AdminError } from '../config/errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Router } from '../routing/router.js';
import { NS } from '../stanza/ns.js';
import { StanzaError } from '../stanza/error.js';
import { xmlStreamFraming } from '../stream/xml-framing.js';
import { SocketTransport } from '../transport/socket-transport.js';
import type { S2sLimits } from '../s2s/types.js';
import { ComponentStream } from './component-stream.js';

export interface ComponentListenerOptions {
  address: string;
  port: number;
  components: ReadonlyArray<{ domain: string; secret: string }>;
  router: Router;
  /** The local host a component domain belongs to (its nearest parent host, else the first). */
  hostFor(domain: string): string;
  limits: S2sLimits;
  log: Logger;
  metrics?: Metrics;
}

export interface ComponentListener {
  server: net.Server;
  /** Connected components by domain. */
  readonly connected: ReadonlyMap<string, ComponentStream>;
  close(): Promise<void>;
}

export async function listenComponents(opts: ComponentListenerOptions): Promise<ComponentListener> {
  const framing = xmlStreamFraming(NS.component);
  const secrets = new Map(opts.components.map((c) => [c.domain, c.secret]));
  const connected = new Map<string, ComponentStream>();
  const streams = new Set<ComponentStream>();
  const unregister: Array<() => void> = [];
  for (const domain of secrets.keys()) {
    try {
      unregister.push(
        opts.router.addService(domain, opts.hostFor(domain), (stanza) => {
          const stream = connected.get(domain);
          if (stream) stream.deliver(stanza);
          else opts.router.bounce(stanza, StanzaError.serviceUnavailable(`${domain} is not connected`));
        }),
      );
    } catch (err) {
      for (const fn of unregister) fn();
      throw new AdminError(
        'PARLEY_ERR_COMPONENT_DOMAIN',
        `the component domain ${domain} is already a host or another service`,
        'give the component its own subdomain, e.g. bot.example.com, and list it only once',
        { cause: err },
      );
    }
  }
  const env = {
    router: opts.router,
    secrets,
    limits: opts.limits,
    log: opts.log,
    metrics: opts.metrics,
    attach(domain: string, stream: ComponentStream): boolean {
      if (connected.has(domain)) return false;
      connected.set(domain, stream);
      return true;
    },
    detach(domain: string, stream: ComponentStream): void {
      if (connected.get(domain) === stream) connected.delete(domain);
    },
    onClosed(stream: ComponentStream): void {
      streams.delete(stream);
    },
  };
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    streams.add(new ComponentStream(new SocketTransport(socket, undefined), framing, env));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.address, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    for (const fn of unregister) fn();
    throw err;
  }
  return {
    server,
    connected,
    async close() {
      for (const s of [...streams]) s.streamError('system-shutdown', 'the server is stopping');
      for (const fn of unregister) fn();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
