// What /proc says about a server process: resident memory, CPU time, its descendants, and the
// open-files limit of this process. Linux only, like the rest of the benchmark.
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';

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

/** ppid -> children, for every process on the machine right now. */
function childrenMap(): Map<number, number[]> {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = stat(Number(name));
    if (s === undefined) continue;
    const list = children.get(s.ppid) ?? [];
    list.push(Number(name));
    children.set(s.ppid, list);
  }
  return children;
}

/** `root` and all its descendants (a server started through wrapper scripts is one tree). */
export function processTree(root: number): number[] {
  const children = childrenMap();
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** The first process named `comm` among `root` and its descendants. */
export function findDescendant(root: number, comm: string): number | undefined {
  return processTree(root).find((pid) => stat(pid)?.comm === comm);
}

/** Resident memory of a whole process tree in KiB, or undefined when `root` is gone. */
export function treeRssKiB(root: number): number | undefined {
  if (rssKiB(root) === undefined) return undefined;
  let sum = 0;
  for (const pid of processTree(root)) sum += rssKiB(pid) ?? 0;
  return sum;
}

/** CPU seconds so far of every process in the tree, by pid. */
function treeCpu(root: number): Map<number, number> {
  const out = new Map<number, number>();
  for (const pid of processTree(root)) {
    const s = cpuSeconds(pid);
    if (s !== undefined) out.set(pid, s);
  }
  return out;
}

/** This process's hard limit on open files: the most a child can be given without CAP_SYS_RESOURCE. */
export function hardOpenFilesLimit(): number | undefined {
  try {
    const m = /^Max open files\s+\S+\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (!m) return undefined;
    return m[1] === 'unlimited' ? Number.POSITIVE_INFINITY : Number(m[1]);
  } catch {
    return undefined;
  }
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

/** What held a figure down: the resource closest to saturation while it was measured. */
export type Bound = 'server' | 'loadgen' | 'machine';

export interface CpuReading {
  /** Percent of one core used by the server's process tree (undefined: pid unknown). */
  serverPct: number | undefined;
  /** Percent of one core used by this load generator, every thread included (process.cpuUsage). */
  clientPct: number;
  /**
   * Percent of one core used by everything else on the machine: other load skews the figures,
   * so it is reported with them.
   */
  otherPct: number | undefined;
  /** What the server can use at most, in % of one core (100 for one event loop). */
  serverCapacityPct: number;
  /** Cores on the machine. */
  cores: number;
  bound: Bound | undefined;
}

/**
 * Which of server, load generator (one event loop: 100%) or the whole machine was closest to its
 * ceiling. A server at 95% of its event loop is the bound; a load generator at 95% means the
 * figure is a floor for the server; a full machine means both were fighting over the cores.
 */
export function boundOf(r: Omit<CpuReading, 'bound'>): Bound | undefined {
  if (r.serverPct === undefined) return undefined;
  const shares: Array<[Bound, number]> = [
    ['server', r.serverPct / r.serverCapacityPct],
    ['loadgen', r.clientPct / 100],
    ['machine', (r.serverPct + r.clientPct + (r.otherPct ?? 0)) / (r.cores * 100)],
  ];
  shares.sort((a, b) => b[1] - a[1]);
  return shares[0]![0];
}

/** Measures CPU use of this process, the server's process tree (if known) and the rest, over an interval. */
export class CpuMeter {
  private readonly client = process.cpuUsage();
  private readonly server: Map<number, number> | undefined;
  private readonly machine = machineBusySeconds();
  private readonly started = process.hrtime.bigint();

  constructor(
    private readonly serverPid: number | undefined,
    private readonly serverCapacityPct = 100,
  ) {
    this.server = serverPid === undefined ? undefined : treeCpu(serverPid);
  }

  /** Percent of one core, over the time since construction. */
  read(): CpuReading {
    const wall = Number(process.hrtime.bigint() - this.started) / 1e9;
    const c = process.cpuUsage(this.client);
    const clientSeconds = (c.user + c.system) / 1e6;
    let serverSeconds: number | undefined;
    if (this.serverPid !== undefined && this.server !== undefined) {
      serverSeconds = 0;
      for (const [pid, now] of treeCpu(this.serverPid)) serverSeconds += now - (this.server.get(pid) ?? 0);
    }
    const machineNow = machineBusySeconds();
    let otherPct: number | undefined;
    if (machineNow !== undefined && this.machine !== undefined && serverSeconds !== undefined) {
      otherPct = Math.max(0, ((machineNow - this.machine - clientSeconds - serverSeconds) / wall) * 100);
    }
    const reading = {
      clientPct: (clientSeconds / wall) * 100,
      serverPct: serverSeconds === undefined ? undefined : (serverSeconds / wall) * 100,
      otherPct,
      serverCapacityPct: this.serverCapacityPct,
      cores: cpus().length,
    };
    return { ...reading, bound: boundOf(reading) };
  }
}

/**
 * Raises this process's open-files limit to `wanted` with prlimit(1) (root may raise the hard
 * limit too); returns the limit in force afterwards.
 */
export function raiseOwnOpenFilesLimit(wanted: number): number | undefined {
  const now = openFilesLimit();
  if (now === undefined || now >= wanted) return now;
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${wanted}:${wanted}`], { stdio: 'ignore' });
  } catch {
    try {
      // Not root: the soft limit can still go up to the hard one.
      const hard = /^Max open files\s+\S+\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
      if (hard !== undefined) execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${Math.min(wanted, Number(hard))}:${hard}`], { stdio: 'ignore' });
    } catch {
      // no prlimit: the caller warns with the limit it got
    }
  }
  return openFilesLimit();
}
