// Scenario `logins`: a fixed number of fresh logins (TCP, STARTTLS, SASL SCRAM-SHA-1, bind,
// initial presence, then the stream closed), `concurrency` in progress at any time: logins/s.
// Each login uses its own account (round robin over the accounts given), with the client's
// salted password already cached: the figure is the server's work, not the client's PBKDF2.
import { performance } from 'node:perf_hooks';
import { CpuMeter, type CpuReading } from './proc.js';
import { pool } from './pool.js';
import { sleep } from './server-common.js';
import { Samples } from './stats.js';
import { account, Errors, type LoadTarget } from './target.js';
import { XmppConnection } from './xmpp-client.js';

export interface LoginResult {
  /** Logins asked for; `logins` of them succeeded. */
  requested: number;
  logins: number;
  concurrency: number;
  seconds: number;
  perSecond: number;
  p50Ms: number | undefined;
  p99Ms: number | undefined;
  errors: number;
  errorSamples: string[];
  cpu: CpuReading;
}

/** One login per account, untimed, so the client has every salted password cached. */
export async function warmLogins(t: LoadTarget, accounts: number, concurrency: number): Promise<void> {
  await pool(accounts, concurrency, async (i) => {
    const c = await XmppConnection.login(t.endpoint, account(t, i), 'warm', { presence: false });
    await c.close(2_000, { wait: false });
  });
}

export async function measureLogins(t: LoadTarget, opts: { logins: number; concurrency: number; accounts: number }): Promise<LoginResult> {
  const errors = new Errors();
  const times = new Samples();
  let next = 0;
  let done = 0;
  const cpu = new CpuMeter(t.pid, t.capacityPct);
  const start = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(opts.concurrency, opts.logins) }, async () => {
      while (next < opts.logins) {
        const n = next++;
        const began = performance.now();
        try {
          const conn = await XmppConnection.login(t.endpoint, account(t, n % opts.accounts), `login-${n}`);
          // Closing is part of a login's cost to the server, but waiting for its answer is not.
          await conn.close(5_000, { wait: false });
          times.add(performance.now() - began);
          done++;
        } catch (err) {
          errors.add(err);
          await sleep(20); // a failing server must not turn this into a busy loop
        }
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const reading = cpu.read();
  const [p50, p99] = times.percentiles(50, 99);
  if (done === 0) throw new Error(`no login succeeded: ${errors.samples.join('; ')}`);
  return {
    requested: opts.logins,
    logins: done,
    concurrency: opts.concurrency,
    seconds,
    perSecond: done / seconds,
    p50Ms: p50,
    p99Ms: p99,
    errors: errors.count,
    errorSamples: errors.samples,
    cpu: reading,
  };
}
