// Prometheus metrics (ARCHITECTURE.md §10). Each Metrics owns its own registry, never prom-client's
// global one, so several servers in one process (the test suite) do not collide.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();

  /** Open streams by type: c2s, s2s-in, s2s-out, component, websocket, bosh. */
  readonly connections: Gauge<'type'>;
  /** SASL attempts by mechanism and result (success, failure). */
  readonly logins: Counter<'mechanism' | 'result'>;
  /** Stanzas by direction (in, out) and kind (message, presence, iq). */
  readonly stanzas: Counter<'direction' | 'kind'>;
  /** Depth of a session queue (inbound, outbound), observed when a stanza is queued. */
  readonly queueDepth: Histogram<'queue'>;
  /** Storage query latency by operation (select, insert, update, delete, schema, raw). */
  readonly storageSeconds: Histogram<'operation'>;
  /** Event-loop delay since the previous scrape (99th percentile). */
  readonly eventLoopLag: Gauge;
  /** Stanzas counted by `countStanza` and not yet folded into `stanzas`, by direction and kind. */
  private readonly uncounted = { in: new Map<string, number>(), out: new Map<string, number>() };

  constructor() {
    const registers = [this.registry];
    // Process and Node metrics under their usual names (process_*, nodejs_*), which existing
    // dashboards expect; this also starts prom-client's event-loop delay monitor.
    collectDefaultMetrics({ register: this.registry });

    this.connections = new Gauge({
      name: 'parley_connections',
      help: 'Open connections by type.',
      labelNames: ['type'] as const,
      registers,
    });
    this.logins = new Counter({
      name: 'parley_logins_total',
      help: 'Authentication attempts by SASL mechanism and result.',
      labelNames: ['mechanism', 'result'] as const,
      registers,
    });
    const uncounted = this.uncounted;
    this.stanzas = new Counter({
      name: 'parley_stanzas_total',
      help: 'Stanzas handled by direction and kind.',
      labelNames: ['direction', 'kind'] as const,
      registers,
      collect() {
        for (const direction of ['in', 'out'] as const) {
          for (const [kind, n] of uncounted[direction]) this.inc({ direction, kind }, n);
          uncounted[direction].clear();
        }
      },
    });
    this.queueDepth = new Histogram({
      name: 'parley_queue_depth',
      help: 'Session queue depth observed when a stanza is queued.',
      labelNames: ['queue'] as const,
      buckets: [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      registers,
    });
    this.storageSeconds = new Histogram({
      name: 'parley_storage_seconds',
      help: 'Storage query latency in seconds.',
      labelNames: ['operation'] as const,
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });

    // prom-client's default event-loop collector runs first (it registered first) and sets its
    // percentiles from the monitorEventLoopDelay histogram; this gauge republishes the p99.
    const registry = this.registry;
    this.eventLoopLag = new Gauge({
      name: 'parley_event_loop_lag_seconds',
      help: 'Event-loop delay in seconds: 99th percentile since the previous scrape.',
      registers,
      async collect() {
        const source =
          registry.getSingleMetric('nodejs_eventloop_lag_p99_seconds') ?? registry.getSingleMetric('nodejs_eventloop_lag_seconds');
        const value = (await source?.get())?.values[0]?.value;
        if (value !== undefined && Number.isFinite(value)) this.set(value);
      },
    });
  }

  /**
   * Counts one stanza into `stanzas`, at the cost of a Map update: prom-client's `inc` hashes
   * its labels on every call, a cost paid twice for each routed stanza. Folded in when read.
   */
  countStanza(direction: 'in' | 'out', kind: string): void {
    const m = this.uncounted[direction];
    m.set(kind, (m.get(kind) ?? 0) + 1);
  }

  /** The Prometheus text exposition of every metric. */
  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
