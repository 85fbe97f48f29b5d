// What starting any server under test needs: a temp dir, a free port, a certificate, a child
// process in its own process group (so it can be stopped with everything it spawned), and
// waiting for its port.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { generateSelfSigned } from '../lib/tls/generate.js';
import { XmppConnection, type Account, type Endpoint } from './xmpp-client.js';
import { pool } from './pool.js';

/** A server whose instance directory, config and accounts exist; it can be started many times. */
export interface PreparedServer {
  /** parley | prosody | ejabberd | external */
  name: string;
  /** Name and version, for the report. */
  label: string;
  /** How the instance is configured, for the report. */
  notes: string[];
  /** The most CPU the server can use, in % of one core: 100 for one event loop. */
  capacityPct: number;
  /** Starts a fresh server process on the prepared data (accounts exist once it resolves). */
  start(): Promise<RunningServer>;
  /** Removes the instance directory. */
  dispose(): Promise<void>;
}

export interface RunningServer {
  endpoint: Endpoint;
  /** The root of the server's process tree, whose RSS and CPU are measured; undefined when unknown. */
  pid: number | undefined;
  logFile: string | undefined;
  /** Stops the server by pid (its process group), SIGTERM then SIGKILL. */
  stop(): Promise<void>;
  /** How the server process ended if it ended on its own ("code 1", "signal SIGKILL"), else undefined. */
  died?(): string | undefined;
}

export interface LaunchContext {
  domain: string;
  tls: Endpoint['tls'];
  userPrefix: string;
  password: string;
  /** Accounts userPrefix0 .. userPrefix(accounts-1) must exist once the first start resolves. */
  accounts: number;
  /** The one certificate every server presents (same key type and size for all). */
  cert: CertificateFiles;
  /** The servers' open-files limit (set with prlimit on the child). */
  openFiles: number;
  /** Progress lines for the operator. */
  say(line: string): void;
  /** Where server logs are written so they outlive the run's temp dir (e.g. .bench/logs). */
  logDir: string;
}

export interface CertificateFiles {
  certFile: string;
  keyFile: string;
  /** Certificate followed by key, for servers that want one file (ejabberd). */
  combinedFile: string;
}

/** Every launched process, so that Ctrl-C or a crash of the benchmark still stops them. */
const running = new Set<() => Promise<void>>();

export function trackForCleanup(stop: () => Promise<void>): () => void {
  running.add(stop);
  return () => running.delete(stop);
}

export async function stopAll(): Promise<void> {
  await Promise.allSettled([...running].map((stop) => stop()));
  running.clear();
}

export function tempDir(name: string): string {
  return mkdtempSync(join(tmpdir(), `parley-bench-${name}-`));
}

/** A start failure, with where the instance's files (config, logs) were left for a look. */
export function startFailure(err: unknown, dir: string): Error {
  return new Error(`${err instanceof Error ? err.message : String(err)} (its config and logs are kept in ${dir})`);
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export function writeCertificate(dir: string, domain: string): CertificateFiles {
  const pair = generateSelfSigned([domain]);
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  const combinedFile = join(dir, 'combined.pem');
  writeFileSync(certFile, pair.cert, { mode: 0o644 });
  writeFileSync(keyFile, pair.key, { mode: 0o600 });
  writeFileSync(combinedFile, pair.cert + pair.key, { mode: 0o600 });
  return { certFile, keyFile, combinedFile };
}

/** A port that was free a moment ago on `host` (the kernel's choice for port 0). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** The first of `names` found as given (absolute) or on PATH (plus the sbin directories). */
export function findExecutable(...names: string[]): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin'];
  for (const name of names) {
    if (name.includes('/')) {
      if (existsSync(name)) return name;
      continue;
    }
    for (const dir of dirs) {
      const p = join(dir, name);
      if (dir && existsSync(p)) return p;
    }
  }
  return undefined;
}

export interface Child {
  process: ChildProcess;
  exited: Promise<number | null>;
  logFile: string;
}

/**
 * Starts a server in its own process group, stdout and stderr appended to `logFile`, with its
 * open-files limit raised to `openFiles` through prlimit(1) when that is installed.
 */
export function spawnServer(command: string, args: string[], opts: { cwd: string; logFile: string; env?: NodeJS.ProcessEnv; openFiles?: number }): Child {
  const fd = openSync(opts.logFile, 'a');
  const prlimit = opts.openFiles === undefined ? undefined : findExecutable('prlimit');
  if (prlimit !== undefined) {
    args = [`--nofile=${opts.openFiles}:${opts.openFiles}`, '--', command, ...args];
    command = prlimit;
  }
  const child = spawn(command, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null)));
    child.once('error', () => resolve(-1));
  });
  return { process: child, exited, logFile: opts.logFile };
}

/** Stops a child's process group: SIGTERM (and to `alsoPids`), then SIGKILL after `graceMs`. */
export async function stopChild(child: Child, alsoPids: number[] = [], graceMs = 8_000): Promise<void> {
  const pid = child.process.pid;
  if (pid === undefined || child.process.exitCode !== null || child.process.signalCode !== null) return;
  const signal = (sig: NodeJS.Signals): void => {
    for (const p of alsoPids) {
      try {
        process.kill(p, sig);
      } catch {
        // already gone
      }
    }
    try {
      process.kill(-pid, sig);
    } catch {
      // already gone
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs).unref());
  if ((await Promise.race([child.exited, timer])) === 'timeout') {
    signal('SIGKILL');
    await child.exited;
  }
  // A wrapper script may exit on SIGTERM while the real server is still shutting down.
  while (alsoPids.some(alive)) {
    if (Date.now() > deadline) {
      signal('SIGKILL');
      break;
    }
    await sleep(50);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Resolves once `port` accepts connections; rejects if the child exits or time runs out. */
export async function waitForPort(host: string, port: number, child: Child, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void child.exited.then(() => {
    exited = true;
  });
  for (;;) {
    if (exited) throw new Error(`it exited while starting (code ${child.process.exitCode ?? child.process.signalCode}); ${logTail(child.logFile)}`);
    if (await canConnect(host, port)) return;
    if (Date.now() > deadline) throw new Error(`port ${port} not open after ${timeoutMs / 1000} s; ${logTail(child.logFile)}`);
    await sleep(100);
  }
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** The last lines of a log, for an error message. */
export function logTail(file: string | undefined, lines = 8): string {
  if (file === undefined || !existsSync(file)) return 'no log';
  const text = readFileSync(file, 'utf8').trim();
  if (text === '') return `log ${file} is empty`;
  return `last lines of ${file}:\n    ${text.split('\n').slice(-lines).join('\n    ')}`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Creates accounts by in-band registration (XEP-0077), over `concurrency` streams at a time, a
 * new stream every 20 accounts: servers close a stream that stays unauthenticated for long
 * (ejabberd after 30 s of negotiation, with connection-timeout), so a batch whose stream is
 * closed is tried again on a new one (accounts it already made answer conflict: no harm).
 */
export async function registerAccounts(endpoint: Endpoint, ctx: Pick<LaunchContext, 'userPrefix' | 'password' | 'accounts' | 'say'>, concurrency = 8): Promise<void> {
  const perStream = 20;
  let created = 0;
  let existing = 0;
  const started = Date.now();
  await pool(Math.ceil(ctx.accounts / perStream), concurrency, async (batch) => {
    const mine: Account[] = [];
    for (let i = batch * perStream; i < Math.min(ctx.accounts, (batch + 1) * perStream); i++) mine.push({ user: `${ctx.userPrefix}${i}`, password: ctx.password });
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await XmppConnection.register(endpoint, mine);
        created += r.created;
        existing += r.exists;
        return;
      } catch (err) {
        if (attempt === 3) throw err;
      }
    }
  });
  ctx.say(`registered ${created} accounts in-band${existing ? ` (${existing} already existed)` : ''} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/**
 * Waits for a started child's port, tracked so that Ctrl-C or a crash of the benchmark still
 * stops it. `pid` is the root of its process tree (what is measured); `signalAlso` finds a
 * process inside it that should get the signals directly too (ejabberd's beam.smp).
 */
export async function startTracked(
  child: Child,
  opts: { port: number; timeoutMs: number; dir: string; signalAlso?: () => Promise<number | undefined>; graceMs?: number },
): Promise<{ pid: number | undefined; stop(): Promise<void>; died(): string | undefined }> {
  let also: number | undefined;
  let stopping = false;
  const stop = async (): Promise<void> => {
    stopping = true;
    untrack();
    await stopChild(child, also === undefined ? [] : [also], opts.graceMs);
  };
  const untrack = trackForCleanup(stop);
  try {
    await waitForPort('127.0.0.1', opts.port, child, opts.timeoutMs);
    also = opts.signalAlso ? await opts.signalAlso() : undefined;
  } catch (err) {
    await stop();
    throw startFailure(err, opts.dir);
  }
  const died = (): string | undefined => {
    if (stopping) return undefined;
    const p = child.process;
    if (p.exitCode !== null) return `code ${p.exitCode}`;
    if (p.signalCode !== null) return `signal ${p.signalCode}`;
    return undefined;
  };
  return { pid: child.process.pid, stop, died };
}
