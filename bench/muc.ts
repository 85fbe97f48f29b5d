// The `muc` phase: group chat fan-out (XEP-0045) over real TLS sessions. --muc-occupants accounts
// join one room on conference.<domain> (the first creates it and accepts the default
// configuration, an instant room, XEP-0045 §10.1.2); then --muc-senders of them send groupchat
// messages, closed loop with --muc-window in flight each: a sender sends its next message when
// the room reflects one of its own back. Every occupant's copy of every message counts as one
// delivery; latency = receive time - send time, over all copies.
import { performance } from 'node:perf_hooks';
import { CpuMeter, type CpuReading } from './proc.js';
import { pool } from './pool.js';
import { sleep } from './server-common.js';
import { Samples } from './stats.js';
import { XmppConnection } from './xmpp-client.js';
import type { LoadTarget } from './target.js';

export interface MucResult {
  room: string;
  occupants: number;
  senders: number;
  window: number;
  seconds: number;
  warmupSeconds: number;
  /** Seconds for every occupant to join (self-presence received). */
  joinSeconds: number;
  /** Groupchat messages sent within the timed window (each fans out to every occupant). */
  sent: number;
  /** Copies received within the timed window. */
  deliveries: number;
  deliveriesPerSecond: number;
  messagesPerSecond: number;
  p50Ms: number | undefined;
  p90Ms: number | undefined;
  p99Ms: number | undefined;
  maxMs: number | undefined;
  /** Copies never received, after a drain of a few seconds. */
  lost: number;
  errors: number;
  errorSamples: string[];
  cpu: CpuReading;
}

const NS_MUC = 'http://jabber.org/protocol/muc';
const NS_MUC_OWNER = 'http://jabber.org/protocol/muc#owner';

const hasCode = (xml: string, code: number): boolean => new RegExp(`<status[^>]*code=['"]${code}['"]`).test(xml);
const typeOf = (xml: string): string | undefined => /^<[a-z]+[^>]*?\stype=['"]([a-z]+)['"]/.exec(xml)?.[1];

export async function measureMuc(
  target: LoadTarget,
  opts: { seconds: number; warmupSeconds: number; occupants: number; senders: number; window: number; service?: string },
): Promise<MucResult> {
  const service = opts.service ?? `conference.${target.endpoint.domain}`;
  const room = `bench-fanout-${Date.now().toString(36)}@${service}`;
  let errors = 0;
  const errorSamples: string[] = [];
  const fail = (msg: string): void => {
    errors++;
    if (errorSamples.length < 3 && !errorSamples.includes(msg)) errorSamples.push(msg);
  };
  const sessions: XmppConnection[] = new Array(opts.occupants);
  await pool(opts.occupants, 20, async (i) => {
    sessions[i] = await XmppConnection.login(target.endpoint, { user: `${target.userPrefix}${i}`, password: target.password }, 'muc');
  });

  /** Joins occupant i (nick o<i>) and resolves on its self-presence; returns that presence. */
  const join = (i: number): Promise<string> =>
    new Promise<string>((resolve, reject) => {
      const conn = sessions[i]!;
      const me = `${room}/o${i}`;
      const timer = setTimeout(() => reject(new Error(`occupant ${i} not in the room after 30 s`)), 30_000);
      conn.onStanza = (xml) => {
        if (!xml.startsWith('<presence')) return;
        if (!xml.includes(`from='${me}'`) && !xml.includes(`from="${me}"`)) return;
        if (typeOf(xml) === 'error') {
          clearTimeout(timer);
          reject(new Error(`join refused: ${xml.slice(0, 300)}`));
        } else if (hasCode(xml, 110)) {
          clearTimeout(timer);
          resolve(xml);
        }
      };
      conn.write(`<presence to='${me}'><x xmlns='${NS_MUC}'><history maxstanzas='0'/></x></presence>`);
    });

  const joinStart = performance.now();
  const created = await join(0);
  if (hasCode(created, 201)) {
    // A new room is locked until its owner configures it: accept the defaults (instant room).
    const conn = sessions[0]!;
    const reply = await new Promise<string>((resolve) => {
      conn.onStanza = (xml) => {
        if (xml.startsWith('<iq') && (xml.includes("id='muc-instant'") || xml.includes('id="muc-instant"'))) resolve(xml);
      };
      conn.write(`<iq type='set' id='muc-instant' to='${room}'><query xmlns='${NS_MUC_OWNER}'><x xmlns='jabber:x:data' type='submit'/></query></iq>`);
    });
    if (typeOf(reply) !== 'result') throw new Error(`the room was not unlocked: ${reply.slice(0, 300)}`);
  }
  await pool(opts.occupants - 1, 10, (i) => join(i + 1).then(() => undefined));
  const joinSeconds = (performance.now() - joinStart) / 1000;
  await sleep(1000); // the join presence storm (occupants² stanzas) drains before the timed part

  const latencies = new Samples();
  let running = true;
  let measuring = false;
  let sent = 0;
  let sentTotal = 0;
  let deliveries = 0;
  let receivedTotal = 0;
  const senders = Math.min(opts.senders, opts.occupants);
  const send = (s: number): void => {
    sentTotal++;
    if (measuring) sent++;
    sessions[s]!.write(`<message to='${room}' type='groupchat'><body>${s}:${performance.now().toFixed(3)}</body></message>`);
  };
  for (let i = 0; i < opts.occupants; i++) {
    const conn = sessions[i]!;
    conn.onStanza = (xml) => {
      if (!xml.startsWith('<message')) return;
      const type = typeOf(xml);
      if (type === 'error') {
        fail(`error reply: ${xml.slice(0, 200)}`);
        return;
      }
      const open = xml.indexOf('<body>');
      if (type !== 'groupchat' || open < 0) return;
      const now = performance.now();
      const text = xml.slice(open + 6, xml.indexOf('<', open + 6));
      const colon = text.indexOf(':');
      const from = Number(text.slice(0, colon));
      const sentAt = Number(text.slice(colon + 1));
      receivedTotal++;
      if (measuring) {
        deliveries++;
        latencies.add(now - sentAt);
      }
      if (from === i && running) send(i);
    };
    conn.onLost = (reason) => fail(`session lost during the muc phase: ${reason}`);
  }
  for (let s = 0; s < senders; s++) for (let w = 0; w < opts.window; w++) send(s);

  await sleep(opts.warmupSeconds * 1000);
  measuring = true;
  const cpu = new CpuMeter(target.pid, target.capacityPct);
  const start = performance.now();
  await sleep(opts.seconds * 1000);
  measuring = false;
  const elapsed = (performance.now() - start) / 1000;
  const share = cpu.read();
  running = false;

  for (let waited = 0; receivedTotal < sentTotal * opts.occupants && waited < 5000; waited += 50) await sleep(50);
  const lost = sentTotal * opts.occupants - receivedTotal;
  for (const s of sessions) s.onLost = undefined;
  await pool(sessions.length, 50, (i) => sessions[i]!.close());

  const [p50, p90, p99, max] = latencies.percentiles(50, 90, 99, 100);
  return {
    room,
    occupants: opts.occupants,
    senders,
    window: opts.window,
    seconds: elapsed,
    warmupSeconds: opts.warmupSeconds,
    joinSeconds,
    sent,
    deliveries,
    deliveriesPerSecond: deliveries / elapsed,
    messagesPerSecond: sent / elapsed,
    p50Ms: p50,
    p90Ms: p90,
    p99Ms: p99,
    maxMs: max,
    lost,
    errors,
    errorSamples,
    cpu: share,
  };
}
