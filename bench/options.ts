// Benchmark options: each flag `--some-name` can also be given as BENCH_SOME_NAME; flags win.
import { parseArgs } from 'node:util';

export const TARGETS = ['parley', 'prosody', 'ejabberd'] as const;
export type TargetName = (typeof TARGETS)[number];
export const PHASES = ['idle', 'logins', 'messages', 'mam', 'muc'] as const;
export type Phase = (typeof PHASES)[number];
/** The phases a run without --phases does: all five (about 3.5 minutes for the three servers). */
export const DEFAULT_PHASES: readonly Phase[] = PHASES;

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
  /** mam: messages prefilled into one account's archive (Parley only). */
  mamMessages: number;
  /** mam: sessions querying at once. */
  mamClients: number;
  /** mam: items per page (RSM <max/>). */
  mamPage: number;
  /** muc: accounts in the room. */
  mucOccupants: number;
  /** muc: occupants sending. */
  mucSenders: number;
  /** muc: messages in flight per sender. */
  mucWindow: number;
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
  MAM pages/s  random archive pages (XEP-0313, RSM before/after, with and without a with
               filter) on a prefilled archive, Parley only; p50/p99 = IQ result - query sent
  MUC deliv/s  groupchat copies received per second in one room of --muc-occupants;
               p50/p99 = receive time - send time over every copy

Options (each also as an environment variable, e.g. --duration 5 = BENCH_DURATION=5):
  --target T          parley | prosody | ejabberd | all, or a comma list
                      (default: all whose binaries exist; parley always)
  --duration S        seconds per timed phase (default 10)
  --concurrency N     login workers (default 20)
  --pairs N           message pairs (default 50)
  --window N          messages in flight per pair (default 10)
  --connections N     idle sessions for the memory phase (default 1000)
  --phases LIST       any of idle,logins,messages,mam,muc (default all five; the mam phase
                      fills a 1,000,000-message archive, ~430 MiB of SQLite in the temp dir;
                      --phases idle,logins,messages for the short run, mam,muc for those two)
  --mam-messages N    mam: items prefilled into one archive before Parley starts (default
                      1000000; Parley only), then random pages over TLS
  --mam-clients N     mam: sessions of the archive owner querying at once (default 4)
  --mam-page N        mam: items per page, RSM <max/> (default 50)
  --muc-occupants N   muc: accounts joined to one room on conference.<domain> (default 100)
  --muc-senders N     muc: occupants sending groupchat messages (default 5)
  --muc-window N      muc: messages in flight per sender (default 2)
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
  'mam-messages': { type: 'string' },
  'mam-clients': { type: 'string' },
  'mam-page': { type: 'string' },
  'muc-occupants': { type: 'string' },
  'muc-senders': { type: 'string' },
  'muc-window': { type: 'string' },
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

  let phases: Phase[] = [...DEFAULT_PHASES];
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
    mamMessages: number('mam-messages', 1_000_000),
    mamClients: number('mam-clients', 4),
    mamPage: number('mam-page', 50),
    mucOccupants: number('muc-occupants', 100, { min: 2 }),
    mucSenders: number('muc-senders', 5),
    mucWindow: number('muc-window', 2),
    tls: tlsMode,
    userPrefix: get('user-prefix') ?? 'bench',
    password: get('password') ?? 'bench-password',
    domain: get('domain') ?? 'localhost',
    external,
    out: get('out') ?? '.bench/latest.json',
  };
}
