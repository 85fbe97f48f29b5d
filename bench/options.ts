// Benchmark options: each flag `--some-name` can also be given as BENCH_SOME_NAME; flags win.
import { parseArgs } from 'node:util';

export const TARGETS = ['parley', 'prosody', 'ejabberd'] as const;
export type TargetName = (typeof TARGETS)[number];
export const PHASES = ['idle', 'logins', 'messages', 'muc', 'mam'] as const;
export type Phase = (typeof PHASES)[number];
/** The phases a run without --phases does; mam (Parley only, a 1M-message archive) is opt-in. */
export const DEFAULT_PHASES: readonly Phase[] = ['idle', 'logins', 'messages', 'muc'];

export const PARLEY_MODULES = ['same', 'all'] as const;
export type ParleyModules = (typeof PARLEY_MODULES)[number];

export interface BenchOptions {
  /** Servers to start; empty when `external` is set. 'all' is resolved by the caller. */
  targets: TargetName[] | 'all';
  /** Runs of every server; servers alternate (A B C A B C), each run a fresh server process. */
  repeats: number;
  phases: Phase[];
  /** idle: session counts at which server memory is read, ascending (sessions accumulate). */
  idleSteps: number[];
  /** logins: fresh logins in the timed part. */
  logins: number;
  /** logins: logins in progress at once. */
  loginConcurrency: number;
  /** messages: online users, each sending to random others. */
  users: number;
  /** messages: messages in flight per user in the closed loop. */
  inFlight: number;
  /** messages: also an open loop at this many msgs/s for every server (0: not run). */
  openRate: number;
  /** Seconds per timed part (closed loop, open loop, muc, mam). */
  duration: number;
  /** muc: accounts in the room. */
  mucOccupants: number;
  /** muc: occupants sending. */
  mucSenders: number;
  /** muc: messages in flight per sender. */
  mucWindow: number;
  /** mam: messages prefilled into one account's archive (Parley only). */
  mamMessages: number;
  /** mam: sessions querying at once. */
  mamClients: number;
  /** mam: items per page (RSM <max/>). */
  mamPage: number;
  /**
   * Parley on PostgreSQL, one column per entry: 1 = one process, N > 1 = `parley start --nodes N`
   * with Redis. Undefined: one process on SQLite (the default).
   */
  parleyNodes: number[] | undefined;
  /**
   * Which Parley module sets get a column: 'same' = only the features the other servers are
   * configured with (roster, presence, disco, ping, time, version, register, muc); 'all' =
   * Parley's defaults (archive, carbons, offline, push, ... all on).
   */
  parleyModules: ParleyModules[];
  /** PostgreSQL server for --parley-nodes / --compare-nodes (a throw-away database is made there). */
  pgUrl: string;
  /** Redis for the cluster (a unique key prefix, removed afterwards). */
  redisUrl: string;
  tls: 'starttls' | 'direct';
  /** XEP-0198 resumption cost (bench/resume.ts, Parley only), after the table; 0: not measured. */
  resumeSessions: number;
  userPrefix: string;
  password: string;
  domain: string;
  /** An already running server: no server is started. */
  external: { host: string; port: number; pid: number | undefined; register: boolean } | undefined;
  /** JSON lines, appended: one per server x scenario x repeat. */
  results: string;
  /** Print the table of a results file instead of running anything. */
  report: string | undefined;
}

export const USAGE = `Usage: npm run bench -- [options]    (or: node dist/bench/run.js [options])

  npm run bench -- --compare     Parley, Prosody and ejabberd (those installed), alternating,
                                 2 runs each, one table side by side (10-15 minutes on
                                 2 quiet cores)
  npm run bench -- --quick       small sizes, Parley only (a minute or two); with --compare too
  npm run bench                  Parley alone, full sizes, 1 run

Every server is started on loopback ports from a generated config, its accounts created before
the timed part, and stopped by pid afterwards. Every session is TCP + STARTTLS + SASL
SCRAM-SHA-1 (stored keys: no PBKDF2 on the server per login) + bind + initial presence.
Scenarios (--phases):
  idle      server RSS per idle authenticated session, at each of --idle-steps sessions
  logins    --logins fresh logins, --login-concurrency at a time: logins/s
  messages  --users online users sending chat to random online users: closed loop with
            --in-flight messages each (max msgs/s), then an open loop at half that rate
            (p50/p99 latency at a sane load), and one at --open-rate for every server
  muc       --muc-occupants in one room, --muc-senders sending, --muc-window in flight each:
            deliveries/s and p50/p99
  mam       (opt-in, Parley only) random 50-item pages of a 1,000,000-message archive
Each figure comes with the CPU of the server's process tree (/proc) and of the load generator
(process.cpuUsage), and what bound it: server, loadgen or machine.

Options (each also as an environment variable, e.g. --duration 5 = BENCH_DURATION=5):
  --compare             all installed servers, --repeats 2
  --quick               idle 500, logins 300 x 50, 200 users, muc 30/5, 3 s parts
  --resume N            also the XEP-0198 resumption cost, Parley only, after the table: N
                        sessions hibernate and resume on new TLS connections (bench/resume.ts)
  --target T            parley | prosody | ejabberd | all, or a comma list (default parley)
  --repeats N           runs per server (default 1; 2 with --compare)
  --phases LIST         any of idle,logins,messages,muc,mam (default idle,logins,messages,muc)
  --idle-steps LIST     idle sessions at which memory is read (default 1000,5000,10000)
  --logins N            fresh logins in the login scenario (default 2000)
  --login-concurrency N logins at once (default 100)
  --users N             online users in the message scenario (default 1000)
  --in-flight N         messages in flight per user, closed loop (default 2)
  --open-rate N         1:1 open loop at N msgs/s for every server, latencies at one load
                        (default 1000; 0: off)
  --duration S          seconds per timed part (default 10)
  --muc-occupants N     room size (default 100)
  --muc-senders N       occupants sending (default 10)
  --muc-window N        messages in flight per sender (default 1)
  --mam-messages N      mam: archive size (default 1000000)
  --mam-clients N       mam: sessions querying at once (default 4)
  --mam-page N          mam: items per page (default 50)
  --parley-modules L    same, all or both (default same; both with --compare): Parley with the
                        same features as the others (roster, presence, disco, ping, time,
                        version, register, muc), and/or with its defaults (archive, carbons,
                        offline, push, ... on): column "Parley (defaults)"
  --parley-nodes N      Parley as N nodes (\`parley start --nodes N\`, one port) on PostgreSQL and
                        Redis (default: one process on SQLite)
  --compare-nodes LIST  one Parley column per node count, e.g. 1,2: "1 node, pg" (no cluster,
                        PostgreSQL) beside "2 nodes" (PostgreSQL + Redis), so only clustering
                        differs; each gets a throw-away database and Redis prefix
  --pg URL              PostgreSQL for the two above (default postgres://postgres@127.0.0.1:5432/postgres)
  --redis URL           Redis for the cluster (default redis://127.0.0.1:6379)
  --tls MODE            starttls (default) or direct (XEP-0368)
  --results FILE        JSON lines appended here (default .bench/results.jsonl)
  --report FILE         run nothing: print the table of the JSON lines in FILE (every line
                        in it; filter the file first to compare chosen runs)

Against a server that is already running (nothing is started):
  --host H --port P   where it listens (both required; --tls direct for a XEP-0368 port)
  --domain D          its XMPP domain (default localhost)
  --user-prefix U     accounts are U0, U1, ... (default bench); they must exist, or pass
  --register          to create them by in-band registration (XEP-0077)
  --password PW       their password (default bench-password)
  --pid PID           the server's process id, to report its memory and CPU (optional)
`;

const FLAGS = {
  compare: { type: 'boolean' },
  quick: { type: 'boolean' },
  resume: { type: 'string' },
  target: { type: 'string' },
  repeats: { type: 'string' },
  phases: { type: 'string' },
  'idle-steps': { type: 'string' },
  logins: { type: 'string' },
  'login-concurrency': { type: 'string' },
  users: { type: 'string' },
  'in-flight': { type: 'string' },
  'open-rate': { type: 'string' },
  duration: { type: 'string' },
  'muc-occupants': { type: 'string' },
  'muc-senders': { type: 'string' },
  'muc-window': { type: 'string' },
  'mam-messages': { type: 'string' },
  'mam-clients': { type: 'string' },
  'mam-page': { type: 'string' },
  'parley-nodes': { type: 'string' },
  'parley-modules': { type: 'string' },
  'compare-nodes': { type: 'string' },
  pg: { type: 'string' },
  redis: { type: 'string' },
  tls: { type: 'string' },
  results: { type: 'string' },
  report: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  domain: { type: 'string' },
  'user-prefix': { type: 'string' },
  password: { type: 'string' },
  pid: { type: 'string' },
  register: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

type FlagName = keyof typeof FLAGS;

export class OptionsError extends Error {}

/** More nodes than this on one machine measures the scheduler, not Parley. */
const MAX_NODES = 16;

export function parseOptions(argv: string[], env: NodeJS.ProcessEnv): BenchOptions | 'help' {
  const { values } = parseArgs({ args: argv, options: FLAGS, strict: true, allowPositionals: false });
  const get = (name: FlagName): string | undefined => {
    const v = (values as Record<string, string | boolean | undefined>)[name];
    if (v !== undefined) return String(v);
    return env[`BENCH_${name.toUpperCase().replace(/-/g, '_')}`];
  };
  if (get('help') === 'true') return 'help';

  const number = (name: FlagName, fallback: number, { min = 1, integer = true } = {}): number => {
    const raw = get(name);
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || (integer && !Number.isInteger(n))) {
      throw new OptionsError(`--${name} must be ${integer ? 'an integer' : 'a number'} of at least ${min}, got "${raw}"`);
    }
    return n;
  };

  const host = get('host');
  const portRaw = get('port');
  let external: BenchOptions['external'];
  if (host !== undefined || portRaw !== undefined) {
    if (host === undefined || portRaw === undefined) throw new OptionsError('--host and --port go together');
    if (get('target') !== undefined) throw new OptionsError('--target starts servers; it cannot be combined with --host/--port');
    const pidRaw = get('pid');
    external = {
      host,
      port: number('port', 0, { min: 1 }),
      pid: pidRaw === undefined ? undefined : number('pid', 0),
      register: get('register') === 'true' || get('register') === '1',
    };
  } else if (get('pid') !== undefined || get('register') !== undefined) {
    throw new OptionsError('--pid and --register are for a server given with --host/--port');
  }

  const flag = (name: FlagName): boolean => {
    const v = get(name);
    return v === 'true' || v === '1';
  };
  const compare = flag('compare');
  const quick = flag('quick');

  let targets: BenchOptions['targets'] = compare ? 'all' : ['parley'];
  const target = get('target');
  if (target === 'all') targets = 'all';
  else if (target !== undefined) {
    targets = [];
    for (const t of target.split(',').map((s) => s.trim()).filter(Boolean)) {
      if (!(TARGETS as readonly string[]).includes(t)) throw new OptionsError(`unknown --target "${t}" (use ${TARGETS.join(', ')} or all)`);
      targets.push(t as TargetName);
    }
    if (targets.length === 0) throw new OptionsError('--target is empty');
  }

  let phases: Phase[] = [...DEFAULT_PHASES];
  const phasesRaw = get('phases');
  if (phasesRaw !== undefined) {
    phases = [];
    for (const p of phasesRaw.split(',').map((s) => s.trim()).filter(Boolean)) {
      if (!(PHASES as readonly string[]).includes(p)) throw new OptionsError(`unknown phase "${p}" (use ${PHASES.join(', ')})`);
      phases.push(p as Phase);
    }
  }

  let idleSteps = quick ? [500] : [1000, 5000, 10000];
  const stepsRaw = get('idle-steps');
  if (stepsRaw !== undefined) {
    idleSteps = stepsRaw.split(',').map((x) => Number(x.trim()));
    if (idleSteps.length === 0 || idleSteps.some((n) => !Number.isInteger(n) || n < 1)) {
      throw new OptionsError(`--idle-steps must be a comma list of positive integers, got "${stepsRaw}"`);
    }
    idleSteps.sort((a, b) => a - b);
  }

  let parleyNodes: number[] | undefined;
  const compareNodes = get('compare-nodes');
  if (compareNodes !== undefined) {
    if (get('parley-nodes') !== undefined) throw new OptionsError('--parley-nodes and --compare-nodes exclude each other (--compare-nodes 2 alone is --parley-nodes 2)');
    parleyNodes = compareNodes.split(',').map((x) => Number(x.trim()));
    if (parleyNodes.length === 0 || parleyNodes.some((n) => !Number.isInteger(n) || n < 1 || n > MAX_NODES) || new Set(parleyNodes).size !== parleyNodes.length) {
      throw new OptionsError(`--compare-nodes must be a comma list of distinct node counts from 1 to ${MAX_NODES}, e.g. 1,2; got "${compareNodes}"`);
    }
  } else {
    const n = number('parley-nodes', 1);
    if (n > MAX_NODES) throw new OptionsError(`--parley-nodes must be at most ${MAX_NODES}, got ${n}`);
    if (n > 1) parleyNodes = [n];
  }
  if (parleyNodes !== undefined && external) throw new OptionsError('--parley-nodes and --compare-nodes start Parley; they cannot be combined with --host/--port');

  const modulesRaw = get('parley-modules') ?? (compare ? 'both' : 'same');
  const parleyModules: ParleyModules[] = modulesRaw === 'both' ? ['same', 'all'] : (PARLEY_MODULES as readonly string[]).includes(modulesRaw) ? [modulesRaw as ParleyModules] : [];
  if (parleyModules.length === 0) throw new OptionsError(`--parley-modules must be same, all or both, got "${modulesRaw}"`);

  const tlsMode = get('tls') ?? 'starttls';
  if (tlsMode !== 'starttls' && tlsMode !== 'direct') throw new OptionsError(`--tls must be starttls or direct, got "${tlsMode}"`);

  return {
    targets: external ? [] : targets,
    repeats: number('repeats', compare ? 2 : 1),
    phases,
    idleSteps,
    logins: number('logins', quick ? 300 : 2000),
    loginConcurrency: number('login-concurrency', quick ? 50 : 100),
    users: number('users', quick ? 200 : 1000, { min: 2 }),
    inFlight: number('in-flight', 2),
    openRate: number('open-rate', 1000, { min: 0 }),
    duration: number('duration', quick ? 3 : 10, { min: 0.5, integer: false }),
    mucOccupants: number('muc-occupants', quick ? 30 : 100, { min: 2 }),
    mucSenders: number('muc-senders', quick ? 5 : 10),
    mucWindow: number('muc-window', 1),
    mamMessages: number('mam-messages', quick ? 100_000 : 1_000_000),
    mamClients: number('mam-clients', 4),
    mamPage: number('mam-page', 50),
    parleyNodes,
    parleyModules,
    pgUrl: get('pg') ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    redisUrl: get('redis') ?? 'redis://127.0.0.1:6379',
    tls: tlsMode,
    resumeSessions: number('resume', 0, { min: 0 }),
    userPrefix: get('user-prefix') ?? 'bench',
    password: get('password') ?? 'bench-password',
    domain: get('domain') ?? 'localhost',
    external,
    results: get('results') ?? '.bench/results.jsonl',
    report: get('report'),
  };
}
