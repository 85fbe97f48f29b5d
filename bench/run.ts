// `npm run bench`: Parley, and with --compare Prosody and ejabberd, on this machine over real TLS
// sockets (ARCHITECTURE §12). Servers alternate (A B C A B C ...), each run a fresh server
// process on data prepared once (accounts created before any timed part). Every figure printed
// is measured in this run; every run's figures are appended to the results file as JSON lines.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { cpus, hostname, loadavg, release, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureIdle } from './idle.js';
import { measureLogins, warmLogins } from './logins.js';
import { measureMam } from './mam.js';
import { measureMessages } from './messages.js';
import { measureMuc } from './muc.js';
import { OptionsError, parseOptions, USAGE, type BenchOptions, type Phase, type TargetName } from './options.js';
import { hardOpenFilesLimit, raiseOwnOpenFilesLimit } from './proc.js';
import { appendResults, formatDetails, formatTable, type RunRecord, type ServerFailure } from './report.js';
import { logTail, registerAccounts, removeDir, sleep, stopAll, tempDir, writeCertificate, type LaunchContext, type PreparedServer, type RunningServer } from './server-common.js';
import { ejabberdctlBinary, prepareEjabberd } from './server-ejabberd.js';
import { ARCHIVE_SHAPE } from './server-parley-archive.js';
import { parleyServerName, prepareParley } from './server-parley.js';
import { prepareProsody, prosodyBinary } from './server-prosody.js';
import type { LoadTarget } from './target.js';

const say = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Which servers to start, in order: 'all' means Parley plus whichever others are installed. */
function resolveTargets(opts: BenchOptions): Array<{ name: TargetName; missing?: string }> {
  const installed: Record<TargetName, boolean> = { parley: true, prosody: prosodyBinary() !== undefined, ejabberd: ejabberdctlBinary() !== undefined };
  if (opts.targets === 'all') return (['parley', 'prosody', 'ejabberd'] as const).filter((n) => installed[n]).map((name) => ({ name }));
  return opts.targets.map((name) =>
    installed[name] ? { name } : { name, missing: `${name} is not installed (no binary found; set BENCH_${name === 'prosody' ? 'PROSODY' : 'EJABBERDCTL'} to its path)` },
  );
}

/** Accounts prefix0.. serve every scenario: idle sessions, chat users, login accounts, occupants. */
function accountsNeeded(opts: BenchOptions): { accounts: number; loginAccounts: number } {
  const has = (p: Phase): boolean => opts.phases.includes(p);
  const loginAccounts = Math.min(opts.logins, 2000);
  const accounts = Math.max(
    50,
    has('idle') ? Math.max(...opts.idleSteps) : 0,
    has('messages') ? opts.users : 0,
    has('logins') ? loginAccounts : 0,
    has('muc') ? opts.mucOccupants : 0,
    has('mam') ? ARCHIVE_SHAPE.peers + 1 : 0,
  );
  return { accounts, loginAccounts: Math.min(loginAccounts, accounts) };
}

function gitCommit(): { commit: string; dirty: boolean } {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return { commit, dirty: status.trim() !== '' };
  } catch {
    return { commit: 'unknown', dirty: false };
  }
}

function machine(): Record<string, unknown> {
  const cpu = cpus();
  return {
    host: hostname(),
    cpus: cpu.length,
    cpuModel: cpu[0]?.model.trim(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.versions.node,
    loadAverage: loadavg().map((x) => Number(x.toFixed(2))),
  };
}

/** One server run: every scenario in order, each failure recorded without stopping the others. */
async function runScenarios(
  prepared: PreparedServer,
  running: RunningServer,
  opts: BenchOptions,
  repeat: number,
  warmed: Map<string, number>,
  loginAccounts: number,
): Promise<RunRecord[]> {
  const target: LoadTarget = { endpoint: running.endpoint, userPrefix: opts.userPrefix, password: opts.password, pid: running.pid, capacityPct: prepared.capacityPct };
  const records: RunRecord[] = [];
  const warm = (n: number): void => {
    warmed.set(prepared.name, Math.max(warmed.get(prepared.name) ?? 0, n));
  };
  const phase = async <P extends Phase>(scenario: P, run: () => Promise<RunRecord<P>['result']>): Promise<void> => {
    say(`  ${prepared.name} run ${repeat}: ${scenario}...`);
    const began = Date.now();
    let result: RunRecord<P>['result'];
    const gone = running.died?.();
    try {
      if (gone !== undefined) throw new Error(`the server process had ended (${gone})`);
      result = await run();
    } catch (err) {
      const end = running.died?.();
      const why = end !== undefined && gone === undefined ? `${message(err)} (the server process ended: ${end}; ${logTail(running.logFile, 4)})` : message(err);
      say(`  ${scenario} failed: ${why}`);
      result = { error: why };
    }
    say(`  ${scenario} done in ${((Date.now() - began) / 1000).toFixed(1)} s`);
    records.push({ server: prepared.name, label: prepared.label, repeat, scenario, result } as RunRecord);
    await sleep(1000); // the server finishes closing the scenario's sessions before the next one
  };
  if (opts.phases.includes('idle')) {
    const pid = running.pid;
    await phase('idle', async () => {
      if (pid === undefined) throw new Error('the server process id is unknown (pass --pid)');
      const r = await measureIdle({ ...target, pid }, { steps: opts.idleSteps, concurrency: opts.loginConcurrency, progress: (l) => say(`    ${l}`) });
      warm(Math.max(...opts.idleSteps));
      return r;
    });
  }
  if (opts.phases.includes('logins')) {
    await phase('logins', async () => {
      if ((warmed.get(prepared.name) ?? 0) < loginAccounts) {
        say(`    first login of ${loginAccounts} accounts, untimed (the client caches their salted passwords)`);
        await warmLogins(target, loginAccounts, opts.loginConcurrency);
        warm(loginAccounts);
        await sleep(1000);
      }
      return measureLogins(target, { logins: opts.logins, concurrency: opts.loginConcurrency, accounts: loginAccounts });
    });
  }
  if (opts.phases.includes('messages')) {
    await phase('messages', async () => {
      const r = await measureMessages(target, { users: opts.users, inFlight: opts.inFlight, commonRate: opts.openRate, seconds: opts.duration, warmupSeconds: Math.min(2, opts.duration / 3) });
      warm(opts.users);
      return r;
    });
  }
  if (opts.phases.includes('muc')) {
    await phase('muc', () =>
      measureMuc(target, { seconds: opts.duration, warmupSeconds: Math.min(2, opts.duration / 3), occupants: opts.mucOccupants, senders: opts.mucSenders, window: opts.mucWindow }),
    );
  }
  if (opts.phases.includes('mam') && prepared.name.startsWith('parley')) {
    const shape = { ...ARCHIVE_SHAPE, messages: opts.mamMessages };
    const fill = (prepared as PreparedServer & { fillSeconds?: number }).fillSeconds;
    await phase('mam', () => measureMam(target, shape, { seconds: opts.duration, clients: opts.mamClients, pageSize: opts.mamPage, fillSeconds: fill }));
  }
  return records;
}

function externalServer(opts: BenchOptions, accounts: number): PreparedServer {
  const ext = opts.external!;
  let registered = false;
  return {
    name: 'external',
    label: `${ext.host}:${ext.port}`,
    capacityPct: 100,
    notes: [`an already running server; accounts ${opts.userPrefix}0..${opts.userPrefix}${accounts - 1}; its CPU ceiling is taken as one core`],
    async start() {
      const endpoint = { host: ext.host, port: ext.port, domain: opts.domain, tls: opts.tls };
      if (ext.register && !registered) {
        await registerAccounts(endpoint, { userPrefix: opts.userPrefix, password: opts.password, accounts, say });
        registered = true;
      }
      return { endpoint, pid: ext.pid, logFile: undefined, stop: async () => undefined };
    },
    dispose: async () => undefined,
  };
}

async function main(): Promise<number> {
  let opts: BenchOptions | 'help';
  try {
    opts = parseOptions(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`bench: ${message(err)}\n${err instanceof OptionsError ? '' : '\n'}${USAGE}`);
    return 1;
  }
  if (opts === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  if (opts.report !== undefined) return printReport(opts.report);
  if (opts.resumeSessions > 0) resumeWanted = { tls: opts.tls, sessions: opts.resumeSessions };
  const began = Date.now();
  const resultsFile = resolve(opts.results.startsWith('.bench/') ? ROOT : process.cwd(), opts.results);
  const { accounts, loginAccounts } = accountsNeeded(opts);

  // Sockets: idle sessions (or chat users, or occupants) plus a login wave, on both ends.
  const sockets = Math.max(opts.phases.includes('idle') ? Math.max(...opts.idleSteps) : 0, opts.users, opts.mucOccupants) + opts.loginConcurrency + 200;
  // Root may raise it past the hard limit (prlimit); in a container without CAP_SYS_RESOURCE the
  // hard limit is the ceiling, for this process and for the servers alike.
  let openFiles = Math.max(65_536, sockets * 2);
  const own = raiseOwnOpenFilesLimit(openFiles);
  openFiles = Math.min(openFiles, Math.max(own ?? 0, hardOpenFilesLimit() ?? 0));
  if (own !== undefined && own < sockets) {
    say(`warning: this process may open ${sockets} files but its limit is ${own} (prlimit failed); raise it (ulimit -n ${openFiles}) or lower --idle-steps`);
  }

  const certDir = tempDir('cert');
  const ctx: LaunchContext = {
    domain: opts.domain,
    tls: opts.tls,
    userPrefix: opts.userPrefix,
    password: opts.password,
    accounts,
    cert: writeCertificate(certDir, opts.domain),
    openFiles,
    say: (l) => say(`  ${l}`),
    logDir: join(ROOT, '.bench', 'logs'),
  };
  mkdirSync(ctx.logDir, { recursive: true });
  const failures: ServerFailure[] = [];
  const prepared: PreparedServer[] = [];
  const shown: Array<{ name: string; label: string; notes: string[] }> = [];
  if (opts.external) {
    prepared.push(externalServer(opts, accounts));
  } else {
    for (const { name, missing } of resolveTargets(opts)) {
      if (missing !== undefined) {
        say(`${name}: skipped: ${missing}`);
        failures.push({ server: name, label: name, repeat: undefined, error: missing });
        shown.push({ name, label: name, notes: [] });
        continue;
      }
      say(`${name}: preparing (config, ${accounts} accounts)`);
      try {
        if (name === 'parley' && opts.parleyNodes !== undefined) {
          for (const nodes of opts.parleyNodes) {
            const pg = { nodes, pgUrl: opts.pgUrl, redisUrl: opts.redisUrl };
            // Clustering's cost is measured on Parley's defaults (offline storage on, as deployed).
            try {
              prepared.push(await prepareParley(ctx, { pg, modules: 'all' }));
            } catch (err) {
              const server = parleyServerName(pg);
              say(`${server}: could not be prepared: ${message(err)}`);
              failures.push({ server, label: `Parley (${nodes} node${nodes > 1 ? 's' : ', pg'})`, repeat: undefined, error: message(err) });
              shown.push({ name: server, label: `Parley (${nodes} node${nodes > 1 ? 's' : ', pg'})`, notes: [] });
            }
          }
        } else if (name === 'parley') {
          for (const modules of opts.parleyModules) {
            prepared.push(await prepareParley(ctx, { modules, archive: opts.phases.includes('mam') ? { ...ARCHIVE_SHAPE, messages: opts.mamMessages } : undefined }));
          }
        } else if (name === 'prosody') prepared.push(await prepareProsody(ctx));
        else prepared.push(await prepareEjabberd(ctx));
      } catch (err) {
        say(`${name}: could not be prepared: ${message(err)}`);
        failures.push({ server: name, label: name, repeat: undefined, error: message(err) });
        shown.push({ name, label: name, notes: [] });
      }
    }
  }
  for (const p of prepared) shown.splice(resolveOrder(shown, p), 0, { name: p.name, label: p.label, notes: p.notes });

  const phases = opts.phases.filter((p) => p !== 'mam' || prepared.some((s) => s.name.startsWith('parley')));
  process.stdout.write(
    `machine: ${cpus().length} x ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}, node ${process.versions.node}, ` +
      `load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}\n` +
      `method: ${opts.tls === 'direct' ? 'direct TLS' : 'STARTTLS'} on loopback, SASL SCRAM-SHA-1 with stored keys on every server, bind + initial presence, ` +
      `a full TLS handshake per login; ${opts.repeats} run${opts.repeats > 1 ? 's' : ''} per server, servers alternating;\n` +
      `        scenarios ${phases.join(', ')}; the load generator shares this machine with the server under test\n`,
  );

  const records: RunRecord[] = [];
  const { commit, dirty } = gitCommit();
  // Written after every server run, so that an interrupted or crashed run keeps what it measured.
  const save = (batch: RunRecord[]): void =>
    appendResults(resultsFile, batch, () => ({
      date: new Date().toISOString(),
      runStartedAt: new Date(began).toISOString(),
      commit,
      dirty,
      machine: machine(),
      method: { tls: opts.tls, sasl: 'SCRAM-SHA-1, stored keys', presence: true, loopback: true, sharedMachine: true },
      options: { ...opts, password: undefined, external: opts.external ?? null },
    }));
  const printTable = (): void => {
    const seconds = (Date.now() - began) / 1000;
    process.stdout.write(`\n${formatTable(records, shown, failures)}\n\n${formatDetails(records, shown, failures)}\n\ntotal run time ${seconds.toFixed(1)} s\n`);
  };
  onInterrupt = () => {
    if (records.length > 0) {
      say('interrupted: the table of the runs so far');
      printTable();
    }
  };
  const warmed = new Map<string, number>();
  for (let repeat = 1; repeat <= opts.repeats; repeat++) {
    for (const server of prepared) {
      say(`${server.label}: run ${repeat} of ${opts.repeats}, starting`);
      let running: RunningServer;
      try {
        running = await server.start();
      } catch (err) {
        say(`${server.label}: could not start: ${message(err)}`);
        failures.push({ server: server.name, label: server.label, repeat, error: `could not start: ${message(err)}` });
        continue;
      }
      say(`${server.label}: listening on ${running.endpoint.host}:${running.endpoint.port}${running.pid ? `, pid ${running.pid}` : ''}`);
      try {
        const batch = await runScenarios(server, running, opts, repeat, warmed, loginAccounts);
        records.push(...batch);
        save(batch);
      } finally {
        await running.stop();
      }
    }
  }
  onInterrupt = undefined;
  for (const p of prepared) await p.dispose();
  removeDir(certDir);

  printTable();
  say(`results appended to ${resultsFile} (${records.length} lines)`);
  const anyFailed = failures.length > 0 || records.some((r) => 'error' in r.result);
  return anyFailed ? 3 : 0;
}

/** --report: the table of earlier runs, from their JSON lines. */
function printReport(file: string): number {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    say(`bench: cannot read ${file}: ${message(err)}`);
    return 1;
  }
  const records: RunRecord[] = [];
  const shown: Array<{ name: string; label: string; notes: string[] }> = [];
  for (const [n, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    let r: RunRecord & { date?: string; commit?: string };
    try {
      r = JSON.parse(line) as RunRecord & { date?: string; commit?: string };
    } catch {
      say(`bench: ${file}:${n + 1} is not JSON; fix or remove that line`);
      return 1;
    }
    records.push({ server: r.server, label: r.label, repeat: r.repeat, scenario: r.scenario, result: r.result } as RunRecord);
    const s = shown.find((x) => x.name === r.server);
    const note = `${r.date?.slice(0, 16) ?? '?'} commit ${r.commit?.slice(0, 10) ?? '?'}`;
    if (s === undefined) shown.push({ name: r.server, label: r.label, notes: [note] });
    else if (!s.notes.includes(note)) s.notes.push(note);
  }
  shown.sort((a, b) => serverRank(a.name) - serverRank(b.name));
  process.stdout.write(`${formatTable(records, shown, [])}\n\n${formatDetails(records, shown, [])}\n`);
  return 0;
}

/** Where a prepared server goes among those shown: the order of --target. */
function resolveOrder(shown: Array<{ name: string }>, p: PreparedServer): number {
  const i = shown.findIndex((s) => serverRank(s.name) > serverRank(p.name));
  return i < 0 ? shown.length : i;
}

/** Column order: Parley (SQLite, then by node count), Prosody, ejabberd, external. */
function serverRank(name: string): number {
  const pg = /^parley-pg-(\d+)$/.exec(name);
  if (pg !== null) return 1 + Number(pg[1]) / 1000;
  return { parley: 0, 'parley-all': 0.5, prosody: 2, ejabberd: 3, external: 4 }[name] ?? 5;
}

/** Prints what was measured so far when the run is interrupted. */
let onInterrupt: (() => void) | undefined;

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    say(`\n${sig}: stopping the servers`);
    onInterrupt?.();
    void stopAll().finally(() => process.exit(130));
  });
}

let resumeWanted: { tls: 'starttls' | 'direct'; sessions: number } | undefined;
const resumeRequested = () => resumeWanted;

/** The opt-in resume phase: bench/resume.ts in its own process, Parley only, after the table. */
function runResumePhase(opts: { tls: 'starttls' | 'direct'; sessions: number }): number {
  const script = fileURLToPath(new URL('./resume.js', import.meta.url));
  say('\nresume (XEP-0198), Parley only:');
  const r = spawnSync(process.execPath, [script, '--sessions', String(opts.sessions), '--tls', opts.tls], { stdio: 'inherit' });
  return r.status ?? 3;
}

main().then(
  async (code) => {
    await stopAll();
    const opts = resumeRequested();
    if (opts !== undefined && code === 0) code = runResumePhase(opts);
    process.exit(code);
  },
  async (err: unknown) => {
    say(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    await stopAll();
    process.exit(3);
  },
);

