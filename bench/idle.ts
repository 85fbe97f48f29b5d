// Scenario `idle`: server memory per idle session. Sessions are opened (TLS, SCRAM-SHA-1, bind,
// initial presence) and kept; at each of the steps (1,000, 5,000, 10,000 sessions by default)
// the server's resident memory (the whole process tree, from /proc) is read once it is steady,
// and compared with the reading before the first session.
import { performance } from 'node:perf_hooks';
import { treeRssKiB } from './proc.js';
import { pool } from './pool.js';
import { median } from './stats.js';
import { sleep } from './server-common.js';
import { account, Errors, type LoadTarget } from './target.js';
import { XmppConnection } from './xmpp-client.js';

export interface IdleStep {
  sessions: number;
  rssKiB: number;
  /** (RSS now - RSS before any session) / sessions. */
  kibPerSession: number;
}

export interface IdleResult {
  rssBeforeKiB: number;
  steps: IdleStep[];
  /** Sessions opened per second while filling up. */
  openPerSecond: number;
  errors: number;
  errorSamples: string[];
}

/** The median of a few readings after a pause: GC and lazy frees settle first. */
async function steadyRss(pid: number): Promise<number> {
  await sleep(2000);
  const samples: number[] = [];
  for (let i = 0; i < 5; i++) {
    const v = treeRssKiB(pid);
    if (v === undefined) throw new Error(`server process ${pid} is gone`);
    samples.push(v);
    await sleep(200);
  }
  return median(samples)!;
}

export async function measureIdle(t: LoadTarget & { pid: number }, opts: { steps: number[]; concurrency: number; progress?: (line: string) => void }): Promise<IdleResult> {
  const errors = new Errors();
  // Warm up first, so that one-off costs (code paths compiled, TLS contexts, caches) are not
  // charged to the idle sessions.
  await pool(50, 10, async (i) => {
    const c = await XmppConnection.login(t.endpoint, account(t, i), `warm-${i}`);
    await c.close();
  });
  const before = await steadyRss(t.pid);

  const sessions: XmppConnection[] = [];
  const steps: IdleStep[] = [];
  let openSeconds = 0;
  try {
    for (const target of opts.steps) {
      const started = performance.now();
      let next = sessions.length;
      await Promise.all(
        Array.from({ length: Math.min(opts.concurrency, target - next) }, async () => {
          while (next < target) {
            const i = next++;
            try {
              sessions.push(await XmppConnection.login(t.endpoint, account(t, i), 'idle'));
            } catch (err) {
              errors.add(err);
            }
          }
        }),
      );
      openSeconds += (performance.now() - started) / 1000;
      if (errors.count > target / 10) throw new Error(`${errors.count} of ${target} sessions failed: ${errors.samples.join('; ')}`);
      const rss = await steadyRss(t.pid);
      steps.push({ sessions: sessions.length, rssKiB: rss, kibPerSession: (rss - before) / sessions.length });
      opts.progress?.(`${sessions.length} sessions open (${(sessions.length / openSeconds).toFixed(0)}/s), RSS ${(rss / 1024).toFixed(1)} MiB`);
    }
  } finally {
    await pool(sessions.length, 200, (i) => sessions[i]!.close(2_000, { wait: false }));
  }
  return {
    rssBeforeKiB: before,
    steps,
    openPerSecond: sessions.length / openSeconds,
    errors: errors.count,
    errorSamples: errors.samples,
  };
}
