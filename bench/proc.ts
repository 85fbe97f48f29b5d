// What /proc says about a server process: resident memory, CPU time, its descendants, and the
// open-files limit of this process. Linux only, like the rest of the benchmark.
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

/** Resident set size in KiB (VmRSS), or undefined when the process is gone. */
export function rssKiB(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

interface Stat {
  comm: string;
  ppid: number;
  /** user + system CPU seconds, all threads. */
  cpuSeconds: number;
}

function stat(pid: number): Stat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm is in parentheses and may contain spaces: split after the last ')'.
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
  return { comm, ppid: Number(fields[1]), cpuSeconds: (Number(fields[11]) + Number(fields[12])) / clockTicks() };
}

/** CPU seconds (user + system) the process has used so far. */
export function cpuSeconds(pid: number): number | undefined {
  return stat(pid)?.cpuSeconds;
}

/** The first process named `comm` among `root` and its descendants. */
export function findDescendant(root: number, comm: string): number | undefined {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(Number(name));
    if (s === undefined) continue;
    const list = children.get(s.ppid) ?? [];
    list.push(Number(name));
    children.set(s.ppid, list);
  }
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    if (stat(pid)?.comm === comm) return pid;
    queue.push(...(children.get(pid) ?? []));
  }
  return undefined;
}

/** A process's soft limit on open files (RLIMIT_NOFILE); this process by default. */
export function openFilesLimit(pid: number | 'self' = 'self'): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
    if (!m) return undefined;
    return m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
  } catch {
    return undefined;
  }
}

/** CPU seconds all processes on the machine have used so far (busy time in /proc/stat). */
function machineBusySeconds(): number | undefined {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal: everything but idle and iowait.
    const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + (f[7] ?? 0);
    return busy / clockTicks();
  } catch {
    return undefined;
  }
}

export interface CpuReading {
  /** Percent of one core used by the server (undefined: pid unknown). */
  serverPct: number | undefined;
  /** Percent of one core used by this load generator. */
  clientPct: number;
  /**
   * Percent of one core used by everything else on the machine: other load skews the figures,
   * so it is reported with them.
   */
  otherPct: number | undefined;
}

/** Measures CPU use of this process, the server (if known) and the rest, over an interval. */
export class CpuMeter {
  private readonly client = process.cpuUsage();
  private readonly server: number | undefined;
  private readonly machine = machineBusySeconds();
  private readonly started = process.hrtime.bigint();

  constructor(private readonly serverPid: number | undefined) {
    this.server = serverPid === undefined ? undefined : cpuSeconds(serverPid);
  }

  /** Percent of one core, over the time since construction. */
  read(): CpuReading {
    const wall = Number(process.hrtime.bigint() - this.started) / 1e9;
    const c = process.cpuUsage(this.client);
    const clientSeconds = (c.user + c.system) / 1e6;
    let serverSeconds: number | undefined;
    if (this.serverPid !== undefined && this.server !== undefined) {
      const now = cpuSeconds(this.serverPid);
      if (now !== undefined) serverSeconds = now - this.server;
    }
    const machineNow = machineBusySeconds();
    let otherPct: number | undefined;
    if (machineNow !== undefined && this.machine !== undefined && serverSeconds !== undefined) {
      otherPct = Math.max(0, ((machineNow - this.machine - clientSeconds - serverSeconds) / wall) * 100);
    }
    return {
      clientPct: (clientSeconds / wall) * 100,
      serverPct: serverSeconds === undefined ? undefined : (serverSeconds / wall) * 100,
      otherPct,
    };
  }
}
