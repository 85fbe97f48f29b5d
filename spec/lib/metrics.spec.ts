import { expect } from 'chai';
import { Metrics } from '../../lib/metrics.js';

function value(body: string, series: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('Metrics', () => {
  it('renders the Prometheus text format with its content type', async () => {
    const { contentType, body } = await new Metrics().render();
    expect(contentType).to.match(/^text\/plain; version=0\.0\.4/);
    expect(body).to.match(/^# HELP /m);
  });

  it('declares every Parley metric', async () => {
    const { body } = await new Metrics().render();
    for (const name of [
      'parley_connections',
      'parley_logins_total',
      'parley_stanzas_total',
      'parley_queue_depth',
      'parley_storage_seconds',
      'parley_event_loop_lag_seconds',
    ]) {
      expect(body).to.include(`# TYPE ${name} `);
    }
  });

  it('includes the default process and Node metrics', async () => {
    const { body } = await new Metrics().render();
    expect(body).to.include('process_cpu_user_seconds_total');
    expect(body).to.include('nodejs_eventloop_lag_seconds');
  });

  it('counts connections, logins and stanzas by label', async () => {
    const m = new Metrics();
    m.connections.inc({ type: 'c2s' });
    m.connections.inc({ type: 'c2s' });
    m.connections.dec({ type: 'c2s' });
    m.logins.inc({ mechanism: 'SCRAM-SHA-256', result: 'success' });
    m.logins.inc({ mechanism: 'PLAIN', result: 'failure' });
    m.stanzas.inc({ direction: 'in', kind: 'message' }, 3);
    const { body } = await m.render();
    expect(value(body, 'parley_connections{type="c2s"}')).to.equal(1);
    expect(value(body, 'parley_logins_total{mechanism="SCRAM-SHA-256",result="success"}')).to.equal(1);
    expect(value(body, 'parley_logins_total{mechanism="PLAIN",result="failure"}')).to.equal(1);
    expect(value(body, 'parley_stanzas_total{direction="in",kind="message"}')).to.equal(3);
  });

  it('folds stanzas counted on the hot path into parley_stanzas_total when read', async () => {
    const m = new Metrics();
    m.stanzas.inc({ direction: 'in', kind: 'message' }, 2);
    m.countStanza('in', 'message');
    m.countStanza('out', 'presence');
    m.countStanza('out', 'presence');
    let { body } = await m.render();
    expect(value(body, 'parley_stanzas_total{direction="in",kind="message"}')).to.equal(3);
    expect(value(body, 'parley_stanzas_total{direction="out",kind="presence"}')).to.equal(2);
    m.countStanza('in', 'message');
    ({ body } = await m.render());
    expect(value(body, 'parley_stanzas_total{direction="in",kind="message"}')).to.equal(4);
    expect(value(body, 'parley_stanzas_total{direction="out",kind="presence"}')).to.equal(2);
    const read = await m.stanzas.get();
    expect(read.values.find((v) => v.labels.direction === 'in')?.value).to.equal(4);
  });

  it('records queue depths and storage latencies as histograms', async () => {
    const m = new Metrics();
    m.queueDepth.observe({ queue: 'outbound' }, 7);
    m.storageSeconds.observe({ operation: 'select' }, 0.002);
    const { body } = await m.render();
    expect(value(body, 'parley_queue_depth_bucket{le="5",queue="outbound"}')).to.equal(0);
    expect(value(body, 'parley_queue_depth_bucket{le="10",queue="outbound"}')).to.equal(1);
    expect(value(body, 'parley_storage_seconds_count{operation="select"}')).to.equal(1);
    expect(value(body, 'parley_storage_seconds_sum{operation="select"}')).to.equal(0.002);
  });

  it('reports a blocked event loop in parley_event_loop_lag_seconds', async () => {
    const m = new Metrics();
    // Let the delay monitor arm, then hold the loop for 200 ms.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const until = Date.now() + 200;
    while (Date.now() < until) {
      // busy: the loop cannot turn
    }
    // The monitor records the delay when its timer next fires.
    await new Promise((resolve) => setTimeout(resolve, 30));
    const lag = value((await m.render()).body, 'parley_event_loop_lag_seconds');
    expect(lag).to.be.greaterThan(0.1);
  });

  it('keeps two instances in one process apart', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.logins.inc({ mechanism: 'PLAIN', result: 'success' });
    expect(value((await a.render()).body, 'parley_logins_total{mechanism="PLAIN",result="success"}')).to.equal(1);
    expect(value((await b.render()).body, 'parley_logins_total{mechanism="PLAIN",result="success"}')).to.equal(undefined);
  });
});
