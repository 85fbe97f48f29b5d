// The results: a table on stdout, details underneath, and the JSON file.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { IdleResult, LoginResult, MessageResult } from './load.js';
import type { MamResult } from './mam.js';
import type { MucResult } from './muc.js';
import type { CpuReading } from './proc.js';
import type { TlsInfo } from './xmpp-client.js';

export interface ServerResult {
  name: string;
  label: string;
  /** Why the server could not be benchmarked at all. */
  error?: string;
  notes: string[];
  tls?: TlsInfo;
  idle?: IdleResult | { error: string };
  logins?: LoginResult | { error: string };
  messages?: MessageResult | { error: string };
  mam?: MamResult | { error: string };
  muc?: MucResult | { error: string };
}

const ok = <T extends object>(r: T | { error: string } | undefined): T | undefined => (r !== undefined && !('error' in r) ? r : undefined);

function num(v: number | undefined, digits = 0): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function pct(v: number | undefined): string {
  return v === undefined ? '?' : `${Math.round(v)}%`;
}

export function formatTable(results: ServerResult[]): string {
  const header = ['server', 'logins/s', 'msgs/s', 'p50 ms', 'p99 ms', 'KiB/conn', 'errors', 'other load'];
  const rows = results.map((r) => {
    if (r.error !== undefined) return [r.label, 'not run', '', '', '', '', '', ''];
    const l = ok(r.logins);
    const m = ok(r.messages);
    const i = ok(r.idle);
    const errors = (l?.errors ?? 0) + (m?.errors ?? 0) + (m?.lost ?? 0) + (i?.errors ?? 0);
    const failed = [r.logins, r.messages, r.idle].filter((x) => x !== undefined && 'error' in x).length;
    return [
      r.label,
      r.logins === undefined ? 'skipped' : l ? num(l.perSecond, 1) : 'failed',
      r.messages === undefined ? 'skipped' : m ? num(m.perSecond) : 'failed',
      m ? num(m.p50Ms, 2) : '-',
      m ? num(m.p99Ms, 2) : '-',
      r.idle === undefined ? 'skipped' : i ? num(i.kibPerConnection, 1) : 'failed',
      failed > 0 ? `${errors} +${failed} phase${failed > 1 ? 's' : ''} failed` : String(errors),
      otherLoad(l?.cpu, m?.cpu),
    ];
  });
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]): string => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  return [
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(line),
    '',
    'other load: CPU used by other processes on this machine during the timed phases (the most of',
    'logins and messages, in % of one core); high values mean the figures above are held down by it.',
  ].join('\n');
}

/** The optional phases' own table; empty when no server ran them. */
export function formatExtraTable(results: ServerResult[]): string {
  if (!results.some((r) => r.mam !== undefined || r.muc !== undefined)) return '';
  const header = ['server', 'MAM pages/s', 'MAM p50 ms', 'MAM p99 ms', 'MUC deliveries/s', 'MUC p50 ms', 'MUC p99 ms', 'errors'];
  const rows = results.map((r) => {
    if (r.error !== undefined) return [r.label, 'not run', '', '', '', '', '', ''];
    const a = ok(r.mam);
    const u = ok(r.muc);
    const failed = [r.mam, r.muc].filter((x) => x !== undefined && 'error' in x).length;
    const errors = (a?.errors ?? 0) + (a?.wrongPages ?? 0) + (u?.errors ?? 0) + (u?.lost ?? 0);
    return [
      r.label,
      r.mam === undefined ? 'skipped' : a ? num(a.perSecond, 1) : 'failed',
      a ? num(a.p50Ms, 2) : '-',
      a ? num(a.p99Ms, 2) : '-',
      r.muc === undefined ? 'skipped' : u ? num(u.deliveriesPerSecond) : 'failed',
      u ? num(u.p50Ms, 2) : '-',
      u ? num(u.p99Ms, 2) : '-',
      failed > 0 ? `${errors} +${failed} phase${failed > 1 ? 's' : ''} failed` : String(errors),
    ];
  });
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]): string => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function otherLoad(...readings: Array<CpuReading | undefined>): string {
  const values = readings.map((r) => r?.otherPct).filter((v): v is number => v !== undefined);
  return values.length === 0 ? '-' : `${Math.round(Math.max(...values))}%`;
}

export function formatDetails(results: ServerResult[]): string {
  const out: string[] = [];
  for (const r of results) {
    out.push(`${r.label}:`);
    if (r.error !== undefined) {
      out.push(`  not run: ${r.error}`);
      continue;
    }
    for (const n of r.notes) out.push(`  ${n}`);
    if (r.tls) out.push(`  TLS: ${r.tls.protocol} ${r.tls.cipher}`);
    const phase = <T extends object>(name: string, x: T | { error: string } | undefined, describe: (v: T) => string): void => {
      if (x === undefined) return;
      if ('error' in x) out.push(`  ${name}: FAILED: ${x.error}`);
      else out.push(`  ${name}: ${describe(x as T)}`);
    };
    phase<IdleResult>('idle', r.idle, (i) =>
      `${i.opened}/${i.requested} sessions, RSS ${num(i.rssBeforeKiB / 1024, 1)} -> ${num(i.rssAfterKiB / 1024, 1)} MiB, ` +
      `opened at ${num(i.openPerSecond)}/s${errorText(i)}`,
    );
    phase<LoginResult>('logins', r.logins, (l) =>
      `${l.logins} in ${l.seconds} s by ${l.concurrency} workers, mean cycle ${num(l.meanCycleMs, 1)} ms, ` +
      `CPU ${cpuText(l.cpu)}${errorText(l)}`,
    );
    phase<MamResult>('mam', r.mam, (m) =>
      `${num(m.queries)} pages of ${m.pageSize} in ${m.seconds.toFixed(1)} s by ${m.clients} sessions on a ${num(m.archiveMessages)}-message archive ` +
      `(filled in ${num(m.fillSeconds, 1)} s before start), ${num(m.meanItems, 1)} items a page, p90 ${num(m.p90Ms, 2)} ms, max ${num(m.maxMs, 1)} ms, ` +
      `wrong pages ${m.wrongPages}; ` +
      Object.entries(m.byKind).map(([k, v]) => `${k} ${v.queries} p50 ${num(v.p50Ms, 2)} p99 ${num(v.p99Ms, 2)}`).join(', ') +
      `; CPU ${cpuText(m.cpu)}${errorText(m)}`,
    );
    phase<MucResult>('muc', r.muc, (m) =>
      `${m.occupants} occupants joined in ${m.joinSeconds.toFixed(1)} s; ${num(m.sent)} messages by ${m.senders} senders x ${m.window} in flight ` +
      `in ${m.seconds.toFixed(1)} s (+${m.warmupSeconds} s warm-up) = ${num(m.messagesPerSecond)} msgs/s in, ${num(m.deliveries)} copies out, ` +
      `p90 ${num(m.p90Ms, 2)} ms, max ${num(m.maxMs, 1)} ms, lost ${m.lost}, CPU ${cpuText(m.cpu)}${errorText(m)}`,
    );
    phase<MessageResult>('messages', r.messages, (m) =>
      `${num(m.delivered)} in ${m.seconds.toFixed(1)} s (+${m.warmupSeconds} s warm-up), ${m.pairs} pairs x ${m.window} in flight, ` +
      `p90 ${num(m.p90Ms, 2)} ms, max ${num(m.maxMs, 1)} ms, lost ${m.lost}, ` +
      `CPU ${cpuText(m.cpu)}${errorText(m)}`,
    );
  }
  return out.join('\n');
}

function cpuText(c: CpuReading): string {
  return `server ${pct(c.serverPct)}, client ${pct(c.clientPct)}, other processes ${pct(c.otherPct)} (of one core)`;
}

function errorText(r: { errors: number; errorSamples: string[] }): string {
  return r.errors === 0 ? '' : `, ${r.errors} errors (${r.errorSamples.join('; ')})`;
}

export function writeJson(file: string, data: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
}
