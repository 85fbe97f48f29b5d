// Parley under test: `node dist/bin/parley.js start` as a child process (so its RSS is its own),
// with a throwaway YAML config, SQLite file and the shared certificate in a temp dir. Accounts
// (SCRAM keys, as Parley always stores them) go straight into the database before the first
// start: Parley has no in-band registration, and a `parley user add` per account would take
// minutes. With the mam phase, a one-to-one archive is prefilled too (server-parley-archive.ts).
//
// With `storage: {nodes, pgUrl, redisUrl}` (--parley-nodes / --compare-nodes), the data lives in a
// throw-away PostgreSQL database instead, and with nodes > 1 start() spawns `parley start --nodes
// N` with a cluster config on its own Redis prefix (server-parley-pg.ts). The pid is the root of
// the process tree, so the CPU and RSS of every node are measured; capacityPct is N cores.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import { openDatabase } from '../lib/storage/database.js';
import { openAccounts } from '../lib/accounts/service.js';
import { MODULE_CATALOG } from '../lib/modules/catalog.js';
import type { ParleyModules } from './options.js';
import { pool } from './pool.js';
import { fillArchive, type ArchiveShape } from './server-parley-archive.js';
import { benchRedisPrefix, clonePgAccounts, createBenchDatabase, redisProblem, removeRedisPrefix, waitForNodes } from './server-parley-pg.js';
import { freePort, removeDir, spawnServer, startTracked, tempDir, trackForCleanup, type LaunchContext, type PreparedServer } from './server-common.js';

/** PBKDF2 iterations for stored keys; ejabberd's fixed SCRAM count, set on all three. */
export const SCRAM_ITERATIONS = 4096;

/**
 * Accounts created one by one through the account service, each with its own salts; the rest
 * get copies of their SCRAM rows. Three PBKDF2 derivations per account (SHA-1, -256, -512) make
 * 10,000 accounts minutes of CPU on a small machine; a login does the same work whatever the salt.
 */
const UNIQUE_SALTS = 200;

function cloneAccounts(dbFile: string, ctx: Pick<LaunchContext, 'domain' | 'userPrefix' | 'accounts'>): void {
  const db = new BetterSqlite3(dbFile);
  try {
    const account = db.prepare('INSERT INTO accounts (host, user, created_at, bcrypt) VALUES (?, ?, ?, NULL)');
    const keys = db.prepare(
      'INSERT INTO account_scram (host, user, hash, salt, iterations, stored_key, server_key) ' +
        'SELECT host, ?, hash, salt, iterations, stored_key, server_key FROM account_scram WHERE host = ? AND user = ?',
    );
    db.transaction(() => {
      for (let i = UNIQUE_SALTS; i < ctx.accounts; i++) {
        const user = `${ctx.userPrefix}${i}`;
        account.run(ctx.domain, user, Date.now());
        if (keys.run(user, ctx.domain, `${ctx.userPrefix}${i % UNIQUE_SALTS}`).changes === 0) throw new Error('no SCRAM rows to copy: has the accounts schema changed?');
      }
    })();
  } finally {
    db.close();
  }
}

/** Parley on PostgreSQL: `nodes` processes (1 = no cluster, so only the database differs from SQLite). */
export interface ParleyPgVariant {
  nodes: number;
  pgUrl: string;
  redisUrl: string;
}

/** The column of a variant: "parley" on SQLite, "parley-pg-1", "parley-pg-2", ... */
export function parleyServerName(variant: ParleyPgVariant | undefined): string {
  return variant === undefined ? 'parley' : `parley-pg-${variant.nodes}`;
}

const CLUSTER_NODE = 'bench';

/** The features Prosody and ejabberd are configured with in the bench (server-prosody.ts). */
const SAME_AS_OTHERS = new Set(['roster', 'presence', 'disco', 'ping', 'time', 'version', 'register', 'muc']);

/** Rate limits off, as on the other servers: the benchmark measures the server, not its policy. */
const MUC_UNLIMITED = { messageRate: { perSecond: 1_000_000, burst: 1_000_000 } };

/**
 * The `modules` section: 'same' turns off every default module the other servers don't run
 * (archive, carbons, offline, push, ...); 'all' keeps Parley's defaults.
 */
export function benchModules(set: ParleyModules, opts: { archive?: boolean } = {}): Record<string, unknown> {
  const modules: Record<string, unknown> = { muc: MUC_UNLIMITED };
  // BENCH_PARLEY_ENABLE=mam,carbons: default modules kept in the 'same' set, to price one feature.
  const extra = (process.env.BENCH_PARLEY_ENABLE ?? '').split(',').filter((m) => m !== '');
  const keep = new Set([...SAME_AS_OTHERS, ...extra, ...(opts.archive === true ? ['mam'] : [])]);
  if (set === 'same') for (const m of MODULE_CATALOG) if (m.defaultEnabled && !keep.has(m.name)) modules[m.name] = false;
  return modules;
}

/** The column of a module set: "parley" with the others' features, "parley-all" with the defaults. */
export function parleyModulesName(set: ParleyModules): string {
  return set === 'same' ? 'parley' : 'parley-all';
}

/**
 * Extra `node` flags for the server under test, from BENCH_PARLEY_NODE_ARGS (space separated),
 * e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof": Node refuses profiling flags in NODE_OPTIONS.
 */
export function parleyNodeArgs(): string[] {
  return (process.env.BENCH_PARLEY_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
}

export async function prepareParley(
  ctx: LaunchContext,
  opts: { archive?: ArchiveShape; pg?: ParleyPgVariant; modules?: ParleyModules } = {},
): Promise<PreparedServer & { archiveMessages: number; fillSeconds: number }> {
  const modulesSet = opts.modules ?? 'same';
  if (opts.pg !== undefined) return preparePgParley(ctx, opts.pg, modulesSet);
  const cli = fileURLToPath(new URL('../bin/parley.js', import.meta.url));
  if (!existsSync(cli)) throw new Error(`${cli} is missing; build first (npx tsc -p .)`);
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string };

  const dir = tempDir('parley');
  const dbFile = join(dir, 'parley.db');
  const started = Date.now();
  const database = await openDatabase({ driver: 'sqlite', path: dbFile });
  try {
    const accounts = await openAccounts(database, { scramIterations: SCRAM_ITERATIONS });
    await pool(Math.min(ctx.accounts, UNIQUE_SALTS), 8, (i) => accounts.create(ctx.domain, `${ctx.userPrefix}${i}`, ctx.password));
  } finally {
    await database.close();
  }
  if (ctx.accounts > UNIQUE_SALTS) cloneAccounts(dbFile, ctx);
  ctx.say(`parley: created ${ctx.accounts} accounts in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const archive = opts.archive !== undefined && opts.archive.messages > 0 ? opts.archive : undefined;
  const fill = archive === undefined ? { messages: 0, seconds: 0 } : fillArchive(dbFile, ctx, archive);
  if (archive !== undefined) {
    ctx.say(`parley: filled the archive of ${ctx.userPrefix}${archive.owner} with ${archive.messages.toLocaleString('en-US')} messages in ${fill.seconds.toFixed(1)} s`);
  }

  let runs = 0;
  return {
    name: parleyModulesName(modulesSet),
    label: `Parley ${pkg.version}${modulesSet === 'all' ? ' (defaults)' : ''}`,
    capacityPct: 100,
    archiveMessages: fill.messages,
    fillSeconds: fill.seconds,
    notes: [
      `node ${process.versions.node}, one process, SQLite, log level warn, rate limits (and the MUC message rate) raised out of the way`,
      modulesSet === 'same'
        ? `modules: the others' feature set (${[...SAME_AS_OTHERS].join(', ')}); archive, carbons, offline, push and the rest off`
        : 'modules: Parley\'s defaults (archive, carbons, offline, stream management, push, PEP, ... on)',
      `SCRAM keys PBKDF2 ${SCRAM_ITERATIONS} iterations, stored` +
        (ctx.accounts > UNIQUE_SALTS ? `; accounts from ${UNIQUE_SALTS} on reuse the keys of one of the first ${UNIQUE_SALTS} (same salt), the same work per login` : ''),
      ...(archive === undefined ? [] : [`archive of ${ctx.userPrefix}${archive.owner} prefilled with ${archive.messages.toLocaleString('en-US')} messages`]),
    ],
    async start() {
      const port = await freePort();
      const config = {
        hosts: [ctx.domain],
        listeners: [{ type: ctx.tls === 'direct' ? 'c2s-tls' : 'c2s', port, address: '127.0.0.1' }],
        tls: { certificates: dir, hosts: { [ctx.domain]: { cert: ctx.cert.certFile, key: ctx.cert.keyFile } } },
        storage: { driver: 'sqlite', path: dbFile },
        auth: { scramIterations: SCRAM_ITERATIONS },
        // The bench opens thousands of connections a minute from 127.0.0.1.
        limits: { connectionsPerIp: 1_000_000, newConnectionsPerIpPerMinute: 1_000_000_000, stanzasPerSecond: 1_000_000, bytesPerSecond: '1 GiB' },
        // The mam phase needs the archive, whatever the set.
        modules: benchModules(modulesSet, { archive: archive !== undefined }),
        log: { level: 'warn', pretty: false },
      };
      const configFile = join(dir, 'parley.yaml');
      writeFileSync(configFile, `# Written by bench/server-parley.ts; JSON is YAML.\n${JSON.stringify(config, null, 2)}\n`);
      const child = spawnServer(process.execPath, [...parleyNodeArgs(), cli, 'start', '--config', configFile], {
        cwd: dir,
        // Kept after the run (the temp dir is removed): a server that ends mid-run leaves its stderr here.
        logFile: join(ctx.logDir, `parley-${new Date().toISOString().replace(/[:.]/g, '-')}-run${++runs}.log`),
        openFiles: ctx.openFiles,
      });
      const { pid, stop, died } = await startTracked(child, { port, timeoutMs: 60_000, dir });
      return { endpoint: { host: '127.0.0.1', port, domain: ctx.domain, tls: ctx.tls }, pid, logFile: child.logFile, stop, died };
    },
    async dispose() {
      removeDir(dir);
    },
  };
}

/** A pg variant: a fresh database (dropped by dispose), and with nodes > 1 a fresh Redis prefix per start. */
async function preparePgParley(ctx: LaunchContext, variant: ParleyPgVariant, modules: ParleyModules): Promise<PreparedServer & { archiveMessages: number; fillSeconds: number }> {
  const cli = fileURLToPath(new URL('../bin/parley.js', import.meta.url));
  if (!existsSync(cli)) throw new Error(`${cli} is missing; build first (npx tsc -p .)`);
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string };
  const clustered = variant.nodes > 1;
  if (clustered) {
    const problem = await redisProblem(variant.redisUrl);
    if (problem !== undefined) throw new Error(problem);
  }
  const created = await createBenchDatabase(variant.pgUrl);
  const dir = tempDir('parley-pg');
  const started = Date.now();
  try {
    const database = await openDatabase({ driver: 'postgres', url: created.url });
    try {
      const accounts = await openAccounts(database, { scramIterations: SCRAM_ITERATIONS });
      await pool(Math.min(ctx.accounts, UNIQUE_SALTS), 8, (i) => accounts.create(ctx.domain, `${ctx.userPrefix}${i}`, ctx.password));
      if (ctx.accounts > UNIQUE_SALTS) await clonePgAccounts(database, ctx, UNIQUE_SALTS);
    } finally {
      await database.close();
    }
  } catch (err) {
    removeDir(dir);
    await created.drop().catch(() => undefined);
    throw err;
  }
  ctx.say(`parley: created ${ctx.accounts} accounts in PostgreSQL database ${created.name} in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  let runs = 0;
  const prefixes: string[] = [];
  const name = parleyServerName(variant);
  const dispose = async (): Promise<void> => {
    untrack();
    removeDir(dir);
    for (const p of prefixes) await removeRedisPrefix(variant.redisUrl, p).catch(() => undefined);
    await created.drop();
  };
  // Ctrl-C or a crash of the bench still drops the database and sweeps the prefixes.
  const untrack = trackForCleanup(dispose);
  return {
    name,
    label: `Parley ${pkg.version} (${clustered ? `${variant.nodes} nodes` : '1 node, pg'})`,
    capacityPct: variant.nodes * 100,
    archiveMessages: 0,
    fillSeconds: 0,
    notes: [
      clustered
        ? `node ${process.versions.node}, \`parley start --nodes ${variant.nodes}\` (one port, node:cluster hands connections to the nodes in turn), ` +
          `PostgreSQL (throw-away database) + Redis (own key prefix); most message pairs cross nodes through Redis`
        : `node ${process.versions.node}, one process, no cluster, PostgreSQL (throw-away database): only the clustering differs from the node columns`,
      'log level warn, rate limits (and the MUC message rate) raised out of the way',
      `SCRAM keys PBKDF2 ${SCRAM_ITERATIONS} iterations, stored` +
        (ctx.accounts > UNIQUE_SALTS ? `; accounts from ${UNIQUE_SALTS} on reuse the keys of one of the first ${UNIQUE_SALTS} (same salt), the same work per login` : ''),
    ],
    async start() {
      const port = await freePort();
      const prefix = benchRedisPrefix();
      if (clustered) {
        prefixes.push(prefix);
        ctx.say(`${name}: ${variant.nodes} nodes on Redis key prefix ${prefix}`);
      }
      const config = {
        hosts: [ctx.domain],
        listeners: [{ type: ctx.tls === 'direct' ? 'c2s-tls' : 'c2s', port, address: '127.0.0.1' }],
        tls: { certificates: dir, hosts: { [ctx.domain]: { cert: ctx.cert.certFile, key: ctx.cert.keyFile } } },
        storage: { driver: 'postgres', url: created.url },
        auth: { scramIterations: SCRAM_ITERATIONS },
        limits: { connectionsPerIp: 1_000_000, newConnectionsPerIpPerMinute: 1_000_000_000, stanzasPerSecond: 1_000_000, bytesPerSecond: '1 GiB' },
        modules: benchModules(modules),
        log: { level: 'warn', pretty: false },
        ...(clustered ? { cluster: { redis: variant.redisUrl, node: CLUSTER_NODE, prefix } } : {}),
      };
      const configFile = join(dir, `parley-${runs + 1}.yaml`);
      writeFileSync(configFile, `# Written by bench/server-parley.ts; JSON is YAML.\n${JSON.stringify(config, null, 2)}\n`);
      const args = [...parleyNodeArgs(), cli, 'start', '--config', configFile, ...(clustered ? ['--nodes', String(variant.nodes)] : [])];
      const child = spawnServer(process.execPath, args, {
        cwd: dir,
        logFile: join(ctx.logDir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}-run${++runs}.log`),
        openFiles: ctx.openFiles,
      });
      const tracked = await startTracked(child, { port, timeoutMs: 60_000, dir });
      if (clustered) {
        try {
          await waitForNodes(variant.redisUrl, prefix, CLUSTER_NODE, variant.nodes, 60_000, tracked.died);
        } catch (err) {
          await tracked.stop();
          throw err;
        }
      }
      const stop = async (): Promise<void> => {
        await tracked.stop();
        if (clustered) await removeRedisPrefix(variant.redisUrl, prefix).catch(() => undefined);
      };
      return { endpoint: { host: '127.0.0.1', port, domain: ctx.domain, tls: ctx.tls }, pid: tracked.pid, logFile: child.logFile, stop, died: tracked.died };
    },
    dispose,
  };
}
