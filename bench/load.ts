// The three measurements, each against one running server: login cycles per second, one-to-one
// message throughput and latency, and server memory per idle session.
import { performance } from 'node:perf_hooks';
import { CpuMeter, rssKiB, type CpuReading } from './proc.js';
import { pool } from './pool.js';
import { median, Samples } from './stats.js';
import { sleep } from './server-common.js';
import { XmppConnection, type Endpoint, type TlsInfo } from './xmpp-client.js';

export interface LoadTarget {
  endpoint: Endpoint;
  userPrefix: string;
  password: string;
  /** The server process, for RSS and CPU; undefined when unknown. */
  pid: number | undefined;
}

/** Counts failures and keeps the first few distinct messages. */
class Errors {
  count = 0;
  readonly samples: string[] = [];

  add(err: unknown): void {
    this.count++;
    const message = err instanceof Error ? err.message : String(err);
    if (this.samples.length < 3 && !this.samples.includes(message)) this.samples.push(message);
  }
}

function account(t: LoadTarget, i: number): { user: string; password: string } {
  return { user: `${t.userPrefix}${i}`, password: t.password };
}

/** One login, to check the accounts work and to see what TLS was negotiated. */
export async function probe(t: LoadTarget): Promise<TlsInfo | undefined> {
  const conn = await XmppConnection.login(t.endpoint, account(t, 0), 'probe');
  const info = conn.tlsInfo;
  await conn.close();
  return info;
}

// ------------------------------------------------------------------ logins

export interface LoginResult {
  seconds: number;
  concurrency: number;
  logins: number;
  perSecond: number;
  /** Mean time of one full cycle, connect to closed. */
  meanCycleMs: number | undefined;
  errors: number;
  errorSamples: string[];
  cpu: CpuReading;
}

export async function measureLogins(t: LoadTarget, opts: { seconds: number; concurrency: number; accounts: number }): Promise<LoginResult> {
  const errors = new Errors();
  const cycles = new Samples();
  const start = performance.now();
  const end = start + opts.seconds * 1000;
  const cpu = new CpuMeter(t.pid);
  let logins = 0;
  const worker = async (w: number): Promise<void> => {
    for (let n = 0; performance.now() < end; n++) {
      const began = performance.now();
      try {
        const conn = await XmppConnection.login(t.endpoint, account(t, w % opts.accounts), `login-${w}-${n}`);
        await conn.close(5_000, { wait: false });
        const done = performance.now();
        if (done <= end) {
          logins++;
          cycles.add(done - began);
        }
      } catch (err) {
        errors.add(err);
        await sleep(20); // a failing server must not turn this into a busy loop
      }
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, (_, w) => worker(w)));
  const share = cpu.read();
  return {
    seconds: opts.seconds,
    concurrency: opts.concurrency,
    logins,
    perSecond: logins / opts.seconds,
    meanCycleMs: cycles.mean(),
    errors: errors.count,
    errorSamples: errors.samples,
    cpu: share,
  };
}

// ------------------------------------------------------------------ messages

export interface MessageResult {
  seconds: number;
  warmupSeconds: number;
  pairs: number;
  window: number;
  /** Messages received within the timed window. */
  delivered: number;
  perSecond: number;
  p50Ms: number | undefined;
  p90Ms: number | undefined;
  p99Ms: number | undefined;
  maxMs: number | undefined;
  /** Sent but never received (after a drain of a few seconds). */
  lost: number;
  /** Error replies, lost sessions, failed logins. */
  errors: number;
  errorSamples: string[];
  cpu: CpuReading;
}

export async function measureMessages(
  t: LoadTarget,
  opts: { seconds: number; warmupSeconds: number; pairs: number; window: number },
): Promise<MessageResult> {
  const errors = new Errors();
  const sessions: XmppConnection[] = new Array(opts.pairs * 2);
  await pool(opts.pairs * 2, 20, async (i) => {
    sessions[i] = await XmppConnection.login(t.endpoint, account(t, i), 'msg');
  });

  const latencies = new Samples();
  let running = true;
  let measuring = false;
  let delivered = 0;
  let inFlight = 0;
  let id = 0;

  for (let p = 0; p < opts.pairs; p++) {
    const sender = sessions[2 * p]!;
    const receiver = sessions[2 * p + 1]!;
    // The partner's full JID as the server bound it: routes without presence or rosters.
    const head = `<message to='${receiver.jid}' type='chat' id='`;
    const send = (): void => {
      inFlight++;
      sender.write(`${head}${++id}'><body>${performance.now().toFixed(3)}</body></message>`);
    };
    receiver.onStanza = (xml) => {
      if (!xml.startsWith('<message')) return;
      const now = performance.now();
      const open = xml.indexOf('<body');
      if (open < 0) return;
      const from = xml.indexOf('>', open) + 1;
      const sentAt = Number(xml.slice(from, xml.indexOf('<', from)));
      inFlight--;
      if (measuring) {
        delivered++;
        latencies.add(now - sentAt);
      }
      if (running) send();
    };
    sender.onStanza = (xml) => {
      // A bounce (type='error') means the message was not delivered; it leaves the window.
      if (xml.startsWith('<message') && /type=['"]error['"]/.test(xml.slice(0, xml.indexOf('>')))) {
        inFlight--;
        errors.add(new Error(`bounced: ${xml.slice(0, 200)}`));
      }
    };
    const lost = (reason: string): void => errors.add(new Error(`session lost during the message phase: ${reason}`));
    sender.onLost = lost;
    receiver.onLost = lost;
    for (let w = 0; w < opts.window; w++) send();
  }

  await sleep(opts.warmupSeconds * 1000);
  measuring = true;
  const cpu = new CpuMeter(t.pid);
  const start = performance.now();
  await sleep(opts.seconds * 1000);
  measuring = false;
  const elapsed = (performance.now() - start) / 1000;
  const share = cpu.read();
  running = false;

  for (let waited = 0; inFlight > 0 && waited < 5000; waited += 50) await sleep(50);
  const lostCount = inFlight;
  await pool(sessions.length, 50, (i) => sessions[i]!.close());

  const [p50, p90, p99, max] = latencies.percentiles(50, 90, 99, 100);
  return {
    seconds: elapsed,
    warmupSeconds: opts.warmupSeconds,
    pairs: opts.pairs,
    window: opts.window,
    delivered,
    perSecond: delivered / elapsed,
    p50Ms: p50,
    p90Ms: p90,
    p99Ms: p99,
    maxMs: max,
    lost: lostCount,
    errors: errors.count,
    errorSamples: errors.samples,
    cpu: share,
  };
}

// ------------------------------------------------------------------ idle memory

export interface IdleResult {
  requested: number;
  opened: number;
  rssBeforeKiB: number;
  rssAfterKiB: number;
  kibPerConnection: number;
  /** Sessions opened per second while filling up (concurrency 50). */
  openPerSecond: number;
  errors: number;
  errorSamples: string[];
}

async function steadyRss(pid: number): Promise<number> {
  await sleep(1500);
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    const v = rssKiB(pid);
    if (v === undefined) throw new Error(`server process ${pid} is gone`);
    samples.push(v);
    await sleep(200);
  }
  return median(samples)!;
}

export async function measureIdle(t: LoadTarget & { pid: number }, opts: { connections: number }): Promise<IdleResult> {
  const errors = new Errors();
  // Warm up first, so that one-off costs (code paths compiled, TLS contexts, caches) are not
  // charged to the idle sessions.
  await pool(50, 10, async (i) => {
    const c = await XmppConnection.login(t.endpoint, account(t, i % opts.connections), `warm-${i}`);
    await c.close();
  });
  const before = await steadyRss(t.pid);

  const sessions: XmppConnection[] = [];
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(50, opts.connections) }, async () => {
      while (next < opts.connections) {
        const i = next++;
        try {
          sessions.push(await XmppConnection.login(t.endpoint, account(t, i), 'idle'));
        } catch (err) {
          errors.add(err);
        }
      }
    }),
  );
  const openSeconds = (performance.now() - started) / 1000;
  const after = await steadyRss(t.pid);
  await pool(sessions.length, 100, (i) => sessions[i]!.close());

  return {
    requested: opts.connections,
    opened: sessions.length,
    rssBeforeKiB: before,
    rssAfterKiB: after,
    kibPerConnection: sessions.length > 0 ? (after - before) / sessions.length : Number.NaN,
    openPerSecond: sessions.length / openSeconds,
    errors: errors.count,
    errorSamples: errors.samples,
  };
}
