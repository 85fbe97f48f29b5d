// Scenario `messages`: one-to-one chat among `users` online users (each logged in with initial
// presence), every message from a user to another one drawn at random, addressed to the bare
// JID as a client would. Two parts:
//   closed loop: every user keeps `inFlight` messages in flight (it sends its next one when one
//     of its own is received): the most messages/s the server delivers;
//   open loop:   messages sent on a fixed schedule at half that rate, whatever the server does:
//     the latency (receive time - send time) at a sane load, p50 and p99.
import { performance } from 'node:perf_hooks';
import { CpuMeter, type CpuReading } from './proc.js';
import { pool } from './pool.js';
import { sleep } from './server-common.js';
import { Samples } from './stats.js';
import { account, Errors, type LoadTarget } from './target.js';
import { XmppConnection } from './xmpp-client.js';

export interface LoopResult {
  seconds: number;
  /** Messages received within the timed window. */
  delivered: number;
  perSecond: number;
  p50Ms: number | undefined;
  p90Ms: number | undefined;
  p99Ms: number | undefined;
  maxMs: number | undefined;
  cpu: CpuReading;
}

export interface MessageResult {
  users: number;
  inFlight: number;
  warmupSeconds: number;
  closed: LoopResult;
  /** The open loop's target rate: half the closed loop's. */
  openRate: number;
  open: LoopResult;
  /**
   * An open loop at the same rate for every server (--open-rate), so that latencies compare at
   * one load; absent when not asked for.
   */
  common?: { rate: number; result: LoopResult };
  /** Sent but neither received nor bounced (after a drain of a few seconds), both parts. */
  lost: number;
  /** Copies of a message received more than once (not counted as deliveries), both parts. */
  duplicates: number;
  errors: number;
  errorSamples: string[];
}

/** Where a message's body starts: `<body>` then "sender:sequence:sentAt". */
const BODY = '<body>';

export async function measureMessages(
  t: LoadTarget,
  opts: { users: number; inFlight: number; seconds: number; warmupSeconds: number; commonRate?: number },
): Promise<MessageResult> {
  const errors = new Errors();
  const n = opts.users;
  const sessions: XmppConnection[] = new Array(n);
  try {
    await pool(n, 50, async (i) => {
      sessions[i] = await XmppConnection.login(t.endpoint, account(t, i), 'chat');
    });
  } catch (err) {
    await pool(n, 100, (i) => sessions[i]?.close(2_000, { wait: false }) ?? Promise.resolve());
    throw err;
  }
  // The start of each user's messages, up to the body: built once, not per message.
  const heads = Array.from({ length: n }, (_, i) => `<message type='chat' to='${t.userPrefix}${i}@${t.endpoint.domain}'>${BODY}`);

  let mode: 'closed' | 'open' | 'stopped' = 'closed';
  let measuring = false;
  let latencies = new Samples();
  let delivered = 0;
  let outstanding = 0;
  // Every message has a number; a second copy of one (a server delivering it twice) is counted
  // apart and sends nothing more, so it can neither inflate the rate nor the messages in flight.
  let sequence = 0;
  let seen = new Uint8Array(1 << 16);
  let duplicates = 0;
  const firstCopy = (seq: number): boolean => {
    if (seq >= seen.length) {
      const grown = new Uint8Array(Math.max(seen.length * 2, seq + 1));
      grown.set(seen);
      seen = grown;
    }
    if (seen[seq] === 1) return false;
    seen[seq] = 1;
    return true;
  };

  const send = (from: number): void => {
    let to = Math.floor(Math.random() * (n - 1));
    if (to >= from) to++;
    outstanding++;
    sessions[from]!.write(`${heads[to]}${from}:${sequence++}:${performance.now().toFixed(3)}</body></message>`);
  };

  for (let i = 0; i < n; i++) {
    const conn = sessions[i]!;
    conn.onStanza = (xml) => {
      if (!xml.startsWith('<message')) return;
      const open = xml.indexOf(BODY);
      const headEnd = xml.indexOf('>');
      if (/type=['"]error['"]/.test(xml.slice(0, headEnd))) {
        // A bounce: that message is not coming; in the closed loop its sender sends another.
        outstanding--;
        errors.add(new Error(`bounced: ${xml.slice(0, 200)}`));
        if (mode === 'closed') send(i);
        return;
      }
      if (open < 0) return;
      const now = performance.now();
      const text = xml.slice(open + BODY.length, xml.indexOf('<', open + BODY.length));
      const colon = text.indexOf(':');
      const colon2 = text.indexOf(':', colon + 1);
      const from = Number(text.slice(0, colon));
      if (!firstCopy(Number(text.slice(colon + 1, colon2)))) {
        duplicates++;
        return;
      }
      outstanding--;
      if (measuring) {
        delivered++;
        latencies.add(now - Number(text.slice(colon2 + 1)));
      }
      if (mode === 'closed') send(from);
    };
    conn.onLost = (reason) => errors.add(new Error(`session lost during the message phase: ${reason}`));
  }

  const timed = async (run: () => Promise<void>): Promise<LoopResult> => {
    latencies = new Samples();
    delivered = 0;
    measuring = true;
    const cpu = new CpuMeter(t.pid, t.capacityPct);
    const start = performance.now();
    await run();
    measuring = false;
    const seconds = (performance.now() - start) / 1000;
    const reading = cpu.read();
    const [p50, p90, p99, max] = latencies.percentiles(50, 90, 99, 100);
    return { seconds, delivered, perSecond: delivered / seconds, p50Ms: p50, p90Ms: p90, p99Ms: p99, maxMs: max, cpu: reading };
  };
  const drain = async (): Promise<number> => {
    for (let waited = 0; outstanding > 0 && waited < 5000; waited += 50) await sleep(50);
    const left = outstanding;
    outstanding = 0;
    return left;
  };

  // Closed loop.
  for (let i = 0; i < n; i++) for (let w = 0; w < opts.inFlight; w++) send(i);
  await sleep(opts.warmupSeconds * 1000);
  const closed = await timed(() => sleep(opts.seconds * 1000));
  mode = 'stopped';
  let lost = await drain();

  // Open loop at a fixed rate, senders in turn; a 1 ms tick sends what is due.
  // (A coarser tick sends bursts: at 10 ms and 9,000 msgs/s a burst of 90 arrives at once and
  // its last message waits for the 89 before it, which measures the burst, not the server.)
  let sender = 0;
  const openLoop = async (rate: number): Promise<LoopResult> => {
    mode = 'open';
    let sentOpen = 0;
    const began = performance.now();
    const ticker = setInterval(() => {
      const due = Math.floor(((performance.now() - began) / 1000) * rate) - sentOpen;
      for (let k = 0; k < due; k++) {
        send(sender);
        sender = (sender + 1) % n;
      }
      sentOpen += due;
    }, 1);
    try {
      await sleep(Math.min(opts.warmupSeconds, 1) * 1000);
      return await timed(() => sleep(opts.seconds * 1000));
    } finally {
      clearInterval(ticker);
      mode = 'stopped';
      lost += await drain();
    }
  };
  // Half the closed loop's rate: latency at a sane load for this server.
  const rate = Math.max(1, closed.perSecond / 2);
  const open = await openLoop(rate);
  // The same rate for every server: latency at one load, whatever each one's ceiling.
  const common = opts.commonRate ? { rate: opts.commonRate, result: await openLoop(opts.commonRate) } : undefined;

  for (const s of sessions) s.onLost = undefined;
  await pool(n, 100, (i) => sessions[i]!.close(2_000, { wait: false }));
  return {
    users: n,
    inFlight: opts.inFlight,
    warmupSeconds: opts.warmupSeconds,
    closed,
    openRate: rate,
    open,
    ...(common ? { common } : {}),
    lost,
    duplicates,
    errors: errors.count,
    errorSamples: errors.samples,
  };
}
