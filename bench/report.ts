// The results: one table with every server side by side (the mean of the repeats, their spread,
// and what bound each figure), details underneath, and one JSON line per server x scenario x
// repeat appended to the results file for later comparison.
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { IdleResult } from './idle.js';
import type { LoginResult } from './logins.js';
import type { MamResult } from './mam.js';
import type { MessageResult } from './messages.js';
import type { MucResult } from './muc.js';
import type { Phase } from './options.js';
import type { Bound, CpuReading } from './proc.js';

export interface ScenarioResults {
  idle: IdleResult;
  logins: LoginResult;
  messages: MessageResult;
  muc: MucResult;
  mam: MamResult;
}

/** One scenario of one run of one server. */
export interface RunRecord<P extends Phase = Phase> {
  server: string;
  label: string;
  repeat: number;
  scenario: P;
  result: ScenarioResults[P] | { error: string };
}

/** A server that could not be prepared or started at all. */
export interface ServerFailure {
  server: string;
  label: string;
  repeat: number | undefined;
  error: string;
}

interface Figure {
  value: number | undefined;
  cpu?: CpuReading;
}

interface Metric {
  scenario: Phase;
  label: string;
  digits: number;
  pick(r: never): Figure;
}

const metric = <P extends Phase>(scenario: P, label: string, digits: number, pick: (r: ScenarioResults[P]) => Figure): Metric => ({
  scenario,
  label,
  digits,
  pick: pick as (r: never) => Figure,
});

/** The table's rows, in order; idle rows follow the steps that were run. */
function metrics(records: RunRecord[]): Metric[] {
  const steps = new Set<number>();
  for (const r of records) if (r.scenario === 'idle' && !('error' in r.result)) for (const s of (r.result as IdleResult).steps) steps.add(s.sessions);
  const first = <P extends Phase>(p: P): ScenarioResults[P] | undefined =>
    records.find((r) => r.scenario === p && !('error' in r.result))?.result as ScenarioResults[P] | undefined;
  const login = first('logins');
  const msg = first('messages');
  const muc = first('muc');
  return [
    ...[...steps]
      .sort((a, b) => a - b)
      .map((n) =>
        metric('idle', `idle KiB/session @ ${n.toLocaleString('en-US')}`, 1, (r) => ({ value: r.steps.find((s) => s.sessions === n)?.kibPerSession })),
      ),
    metric('logins', `logins/s (${login ? `${login.requested ?? login.logins} @ ${login.concurrency}` : '-'})`, 0, (r) => ({ value: r.perSecond, cpu: r.cpu })),
    metric('messages', `1:1 msgs/s closed (${msg ? `${msg.users} x ${msg.inFlight}` : '-'})`, 0, (r) => ({ value: r.closed.perSecond, cpu: r.closed.cpu })),
    metric('messages', '1:1 open loop msgs/s (half)', 0, (r) => ({ value: r.open.perSecond, cpu: r.open.cpu })),
    metric('messages', '1:1 open loop p50 ms', 2, (r) => ({ value: r.open.p50Ms, cpu: r.open.cpu })),
    metric('messages', '1:1 open loop p99 ms', 2, (r) => ({ value: r.open.p99Ms, cpu: r.open.cpu })),
    ...(msg?.common
      ? [
          metric('messages', `1:1 open @ ${num(msg.common.rate)}/s p50 ms`, 2, (r) => ({ value: r.common?.result.p50Ms, cpu: r.common?.result.cpu })),
          metric('messages', `1:1 open @ ${num(msg.common.rate)}/s p99 ms`, 2, (r) => ({ value: r.common?.result.p99Ms, cpu: r.common?.result.cpu })),
        ]
      : []),
    metric('muc', `MUC deliveries/s (${muc ? `${muc.occupants}/${muc.senders}` : '-'})`, 0, (r) => ({ value: r.deliveriesPerSecond, cpu: r.cpu })),
    metric('muc', 'MUC p50 ms', 2, (r) => ({ value: r.p50Ms, cpu: r.cpu })),
    metric('muc', 'MUC p99 ms', 2, (r) => ({ value: r.p99Ms, cpu: r.cpu })),
    metric('mam', 'MAM pages/s (Parley only)', 0, (r) => ({ value: r.perSecond, cpu: r.cpu })),
    metric('mam', 'MAM p50 ms', 2, (r) => ({ value: r.p50Ms, cpu: r.cpu })),
    metric('mam', 'MAM p99 ms', 2, (r) => ({ value: r.p99Ms, cpu: r.cpu })),
  ];
}

function num(v: number | undefined, digits = 0): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

const BOUND_WORD: Record<Bound, string> = { server: 'srv', loadgen: 'gen', machine: 'cpu' };

/** The most frequent bound over the repeats (ties: the first run's). */
function commonBound(readings: CpuReading[]): string {
  const counts = new Map<string, number>();
  for (const r of readings) if (r.bound !== undefined) counts.set(r.bound, (counts.get(r.bound) ?? 0) + 1);
  let best: string | undefined;
  for (const [b, c] of counts) if (best === undefined || c > counts.get(best)!) best = b;
  return best === undefined ? '?' : BOUND_WORD[best as Bound];
}

/** "12,345 ±3% S93 G41 srv": mean, half the range over the mean, CPU of server and generator, bound. */
function cell(figures: Figure[], failed: number, digits: number): string {
  const values = figures.map((f) => f.value).filter((v): v is number => v !== undefined && Number.isFinite(v));
  if (values.length === 0) return failed > 0 ? 'failed' : '-';
  const m = mean(values);
  const spread = values.length > 1 && m !== 0 ? ` ±${Math.round(((Math.max(...values) - Math.min(...values)) / 2 / m) * 100)}%` : '';
  const cpus = figures.map((f) => f.cpu).filter((c): c is CpuReading => c !== undefined);
  let cpu = '';
  if (cpus.length > 0) {
    const s = cpus.map((c) => c.serverPct).filter((v): v is number => v !== undefined);
    cpu = ` S${s.length ? Math.round(mean(s)) : '?'} G${Math.round(mean(cpus.map((c) => c.clientPct)))} ${commonBound(cpus)}`;
  }
  return `${num(m, digits)}${spread}${cpu}${failed > 0 ? ` (${failed} failed)` : ''}`;
}

export function formatTable(records: RunRecord[], servers: Array<{ name: string; label: string }>, failures: ServerFailure[]): string {
  const header = ['', ...servers.map((s) => s.label)];
  const rows: string[][] = [];
  for (const m of metrics(records)) {
    const of = (server: string): RunRecord[] => records.filter((r) => r.server === server && r.scenario === m.scenario);
    if (!servers.some((s) => of(s.name).length > 0)) continue;
    rows.push([
      m.label,
      ...servers.map((s) => {
        const rs = of(s.name);
        if (rs.length === 0) return failures.some((f) => f.server === s.name) ? 'not run' : '-';
        const ok = rs.filter((r) => !('error' in r.result));
        return cell(
          ok.map((r) => m.pick(r.result as never)),
          rs.length - ok.length,
          m.digits,
        );
      }),
    ]);
  }
  rows.push([
    'errors (all runs)',
    ...servers.map((s) => {
      const rs = records.filter((r) => r.server === s.name);
      let n = 0;
      for (const r of rs) {
        if ('error' in r.result) continue;
        const x = r.result as { errors?: number; lost?: number; wrongPages?: number };
        n += (x.errors ?? 0) + (x.lost ?? 0) + (x.wrongPages ?? 0);
      }
      const failed = rs.filter((r) => 'error' in r.result).length + failures.filter((f) => f.server === s.name).length;
      return failed > 0 ? `${n} +${failed} failed` : String(n);
    }),
  ]);
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]): string => cells.map((v, c) => (c === 0 ? v.padEnd(widths[c]!) : v.padStart(widths[c]!))).join('  ');
  const repeats = Math.max(0, ...records.map((r) => r.repeat));
  return [
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(line),
    '',
    `Each cell: the mean of ${repeats} run${repeats === 1 ? '' : 's'}${repeats > 1 ? ', ±half the range between runs in % of the mean' : ''};`,
    'S = CPU of the server process tree, G = CPU of the load generator (% of one core, /proc and process.cpuUsage);',
    'then the bound: srv = the server was the closest to its ceiling (one core for an event loop, all for ejabberd),',
    'gen = the load generator was (the figure is a floor for the server), cpu = the whole machine was busy.',
    'Memory rows have no bound: RSS of the server process tree, from /proc, once steady.',
  ].join('\n');
}

function cpuText(c: CpuReading): string {
  const pct = (v: number | undefined): string => (v === undefined ? '?' : `${Math.round(v)}%`);
  return `CPU server ${pct(c.serverPct)} of ${c.serverCapacityPct}%, load generator ${pct(c.clientPct)}, other ${pct(c.otherPct)}, bound: ${c.bound ?? '?'}`;
}

function errorText(r: { errors: number; errorSamples: string[] }): string {
  return r.errors === 0 ? '' : `, ${r.errors} errors (${r.errorSamples.join('; ')})`;
}

function describe(r: RunRecord): string {
  if ('error' in r.result) return `FAILED: ${r.result.error}`;
  switch (r.scenario) {
    case 'idle': {
      const i = r.result as IdleResult;
      return (
        `RSS ${num(i.rssBeforeKiB / 1024, 1)} MiB before; ` +
        i.steps.map((s) => `${s.sessions} sessions ${num(s.rssKiB / 1024, 1)} MiB (${num(s.kibPerSession, 1)} KiB each)`).join(', ') +
        `; opened at ${num(i.openPerSecond)}/s${errorText(i)}`
      );
    }
    case 'logins': {
      const l = r.result as LoginResult;
      return `${l.logins} in ${l.seconds.toFixed(1)} s, ${l.concurrency} at a time, p50 ${num(l.p50Ms, 1)} ms, p99 ${num(l.p99Ms, 1)} ms; ${cpuText(l.cpu)}${errorText(l)}`;
    }
    case 'messages': {
      const m = r.result as MessageResult;
      return (
        `${m.users} users; closed loop (${m.inFlight} in flight each): ${num(m.closed.delivered)} in ${m.closed.seconds.toFixed(1)} s, ` +
        `p50 ${num(m.closed.p50Ms, 2)} p99 ${num(m.closed.p99Ms, 2)} ms, ${cpuText(m.closed.cpu)}; ` +
        `open loop at ${num(m.openRate)}/s: ${num(m.open.delivered)} in ${m.open.seconds.toFixed(1)} s, p90 ${num(m.open.p90Ms, 2)} max ${num(m.open.maxMs, 1)} ms, ` +
        `${cpuText(m.open.cpu)}` +
        (m.common ? `; open loop at ${num(m.common.rate)}/s: ${num(m.common.result.delivered)}, p50 ${num(m.common.result.p50Ms, 2)} p99 ${num(m.common.result.p99Ms, 2)} ms, ${cpuText(m.common.result.cpu)}` : '') +
        `; lost ${m.lost}${m.duplicates ? `, ${m.duplicates} received twice (not counted)` : ''}${errorText(m)}`
      );
    }
    case 'muc': {
      const m = r.result as MucResult;
      return (
        `${m.occupants} occupants joined in ${m.joinSeconds.toFixed(1)} s; ${num(m.sent)} messages by ${m.senders} senders x ${m.window} in flight ` +
        `in ${m.seconds.toFixed(1)} s = ${num(m.messagesPerSecond)} msgs/s in, ${num(m.deliveries)} copies out, ` +
        `p90 ${num(m.p90Ms, 2)} ms, max ${num(m.maxMs, 1)} ms, lost ${m.lost}; ${cpuText(m.cpu)}${errorText(m)}`
      );
    }
    case 'mam': {
      const m = r.result as MamResult;
      return (
        `${num(m.queries)} pages of ${m.pageSize} in ${m.seconds.toFixed(1)} s by ${m.clients} sessions on a ${num(m.archiveMessages)}-message archive, ` +
        `${num(m.meanItems, 1)} items a page, wrong pages ${m.wrongPages}; ${cpuText(m.cpu)}${errorText(m)}`
      );
    }
  }
  return '';
}

export function formatDetails(records: RunRecord[], servers: Array<{ name: string; label: string; notes: string[] }>, failures: ServerFailure[]): string {
  const out: string[] = [];
  for (const s of servers) {
    out.push(`${s.label}:`);
    for (const n of s.notes) out.push(`  ${n}`);
    for (const f of failures.filter((x) => x.server === s.name)) out.push(`  ${f.repeat === undefined ? '' : `run ${f.repeat}: `}not run: ${f.error}`);
    for (const r of records.filter((x) => x.server === s.name)) out.push(`  run ${r.repeat} ${r.scenario}: ${describe(r)}`);
  }
  return out.join('\n');
}

/** Appends one JSON line per record; `common` (commit, date, machine, method) goes into each. */
export function appendResults(file: string, records: RunRecord[], common: (r: RunRecord) => Record<string, unknown>): void {
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, records.map((r) => `${JSON.stringify({ ...common(r), server: r.server, label: r.label, repeat: r.repeat, scenario: r.scenario, result: r.result })}\n`).join(''));
}
