// Parley under test: `node dist/bin/parley.js start` as a child process (so its RSS is its own),
// with a throwaway YAML config, SQLite file and the shared certificate in a temp dir. Accounts
// (SCRAM keys, as Parley always stores them) go straight into the database before the first
// start: Parley has no in-band registration, and a `parley user add` per account would take
// minutes. With the mam phase, a one-to-one archive is prefilled too (server-parley-archive.ts).
//
// Extension point for the cluster comparison: --parley-nodes N (options.ts) is refused above 1
// until `parley start --nodes N` exists. Then start() below spawns that, on PostgreSQL + Redis
// instead of SQLite, and sets capacityPct to N x 100; the pid is already the root of a process
// tree, so the CPU and RSS of every node are measured without further change.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import { openDatabase } from '../lib/storage/database.js';
import { openAccounts } from '../lib/accounts/service.js';
import { pool } from './pool.js';
import { fillArchive, type ArchiveShape } from './server-parley-archive.js';
import { freePort, removeDir, spawnServer, startTracked, tempDir, type LaunchContext, type PreparedServer } from './server-common.js';

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

export async function prepareParley(ctx: LaunchContext, opts: { archive?: ArchiveShape } = {}): Promise<PreparedServer & { archiveMessages: number; fillSeconds: number }> {
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
    name: 'parley',
    label: `Parley ${pkg.version}`,
    capacityPct: 100,
    archiveMessages: fill.messages,
    fillSeconds: fill.seconds,
    notes: [
      `node ${process.versions.node}, one process, SQLite, log level warn, rate limits (and the MUC message rate) raised out of the way`,
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
        // Rate limits off, as on the other servers: the benchmark measures the server, not its policy.
        limits: { connectionsPerIp: 1_000_000, newConnectionsPerIpPerMinute: 1_000_000, stanzasPerSecond: 1_000_000, bytesPerSecond: '1 GiB' },
        modules: { muc: { messageRate: { perSecond: 1_000_000, burst: 1_000_000 } } },
        log: { level: 'warn', pretty: false },
      };
      const configFile = join(dir, 'parley.yaml');
      writeFileSync(configFile, `# Written by bench/server-parley.ts; JSON is YAML.\n${JSON.stringify(config, null, 2)}\n`);
      const child = spawnServer(process.execPath, [cli, 'start', '--config', configFile], {
        cwd: dir,
        logFile: join(dir, `parley-${++runs}.log`),
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
