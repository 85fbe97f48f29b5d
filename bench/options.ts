// Benchmark options: each flag `--some-name` can also be given as BENCH_SOME_NAME; flags win.
import { parseArgs } from 'node:util';

export const TARGETS = ['parley', 'prosody', 'ejabberd'] as const;
export type TargetName = (typeof TARGETS)[number];
export const PHASES = ['idle', 'logins', 'messages'] as const;
export type Phase = (typeof PHASES)[number];

export interface BenchOptions {
  /** Servers to start; empty when `external` is set. 'all' is resolved by the caller. */
  targets: TargetName[] | 'all';
  /** Seconds per timed phase (logins, messages). */
  duration: number;
  /** Concurrent login workers. */
  concurrency: number;
  /** Sender/receiver pairs for the message phase. */
  pairs: number;
  /** Messages in flight per pair. */
  window: number;
  /** Idle sessions for the memory phase. */
  connections: number;
  phases: Phase[];
  tls: 'starttls' | 'direct';
  userPrefix: string;
  password: string;
  domain: string;
  /** An already running server: no server is started. */
  external: { host: string; port: number; pid: number | undefined; register: boolean } | undefined;
  out: string;
}

export const USAGE = `Usage: npm run bench -- [options]    (or: node dist/bench/run.js [options])

Starts each server on loopback with a throwaway config, then measures over real TLS sockets:
  logins/s     connect + TLS + SASL PLAIN + bind + close, by --concurrency workers
  msgs/s       one-to-one chat to full JIDs, --pairs pairs, --window in flight per pair;
               p50/p99 = receive time - send time
  KiB/conn     server RSS growth per idle bound session, over --connections sessions

Options (each also as an environment variable, e.g. --duration 5 = BENCH_DURATION=5):
  --target T          parley | prosody | ejabberd | all, or a comma list
                      (default: all whose binaries exist; parley always)
  --duration S        seconds per timed phase (default 10)
  --concurrency N     login workers (default 20)
  --pairs N           message pairs (default 50)
  --window N          messages in flight per pair (default 10)
  --connections N     idle sessions for the memory phase (default 1000)
  --phases LIST       any of idle,logins,messages (default all three)
  --tls MODE          starttls (default) or direct
  --out FILE          JSON results (default .bench/latest.json)

Against a server that is already running (nothing is started):
  --host H --port P   where it listens (both required; --tls direct for a XEP-0368 port)
  --domain D          its XMPP domain (default localhost)
  --user-prefix U     accounts are U0, U1, ... (default bench); they must exist, or pass
  --register          to create them by in-band registration (XEP-0077)
  --password PW       their password (default bench-password)
  --pid PID           the server's process id, to report its memory and CPU (optional)
`;

const FLAGS = {
  target: { type: 'string' },
  duration: { type: 'string' },
  concurrency: { type: 'string' },
  pairs: { type: 'string' },
  window: { type: 'string' },
  connections: { type: 'string' },
  phases: { type: 'string' },
  tls: { type: 'string' },
  out: { type: 'string' },
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

  let targets: BenchOptions['targets'] = 'all';
  const target = get('target');
  if (target !== undefined && target !== 'all') {
    targets = [];
    for (const t of target.split(',').map((s) => s.trim()).filter(Boolean)) {
      if (!(TARGETS as readonly string[]).includes(t)) throw new OptionsError(`unknown --target "${t}" (use ${TARGETS.join(', ')} or all)`);
      targets.push(t as TargetName);
    }
    if (targets.length === 0) throw new OptionsError('--target is empty');
  }

  let phases: Phase[] = [...PHASES];
  const phasesRaw = get('phases');
  if (phasesRaw !== undefined) {
    phases = [];
    for (const p of phasesRaw.split(',').map((s) => s.trim()).filter(Boolean)) {
      if (!(PHASES as readonly string[]).includes(p)) throw new OptionsError(`unknown phase "${p}" (use ${PHASES.join(', ')})`);
      phases.push(p as Phase);
    }
  }

  const tlsMode = get('tls') ?? 'starttls';
  if (tlsMode !== 'starttls' && tlsMode !== 'direct') throw new OptionsError(`--tls must be starttls or direct, got "${tlsMode}"`);

  return {
    targets: external ? [] : targets,
    duration: number('duration', 10, { min: 0.5, integer: false }),
    concurrency: number('concurrency', 20),
    pairs: number('pairs', 50),
    window: number('window', 10),
    connections: number('connections', 1000),
    phases,
    tls: tlsMode,
    userPrefix: get('user-prefix') ?? 'bench',
    password: get('password') ?? 'bench-password',
    domain: get('domain') ?? 'localhost',
    external,
    out: get('out') ?? '.bench/latest.json',
  };
}
