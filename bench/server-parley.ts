// Parley under test: `node dist/bin/parley.js start` as a child process (so its RSS is its own),
// with a throwaway YAML config, SQLite file and the shared certificate in a temp dir.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '../lib/storage/database.js';
import { openAccounts } from '../lib/accounts/service.js';
import { pool } from './pool.js';
import {
  freePort,
  removeDir,
  spawnServer,
  startFailure,
  stopChild,
  tempDir,
  trackForCleanup,
  waitForPort,
  type LaunchContext,
  type ServerUnderTest,
} from './server-common.js';

/** PBKDF2 iterations for stored keys; ejabberd's fixed SCRAM count, set on all three. */
export const SCRAM_ITERATIONS = 4096;

export async function launchParley(ctx: LaunchContext): Promise<ServerUnderTest> {
  const cli = fileURLToPath(new URL('../bin/parley.js', import.meta.url));
  if (!existsSync(cli)) throw new Error(`${cli} is missing; build first (npx tsc -p .)`);
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string };

  const dir = tempDir('parley');
  const port = await freePort();
  const dbFile = join(dir, 'parley.db');
  const config = {
    hosts: [ctx.domain],
    listeners: [{ type: ctx.tls === 'direct' ? 'c2s-tls' : 'c2s', port, address: '127.0.0.1' }],
    tls: { certificates: dir, hosts: { [ctx.domain]: { cert: ctx.cert.certFile, key: ctx.cert.keyFile } } },
    storage: { driver: 'sqlite', path: dbFile },
    auth: { scramIterations: SCRAM_ITERATIONS },
    // Rate limits off, as on the other servers: the benchmark measures the server, not its policy.
    limits: { connectionsPerIp: 1_000_000, stanzasPerSecond: 1_000_000, bytesPerSecond: '1 GiB' },
    log: { level: 'warn', pretty: false },
  };
  const configFile = join(dir, 'parley.yaml');
  writeFileSync(configFile, `# Written by bench/server-parley.ts; JSON is YAML.\n${JSON.stringify(config, null, 2)}\n`);

  // Accounts go straight into the database before the server opens it: Parley has no in-band
  // registration, and one `parley user add` process per account would take minutes.
  const started = Date.now();
  const database = await openDatabase({ driver: 'sqlite', path: dbFile });
  try {
    const accounts = await openAccounts(database, { scramIterations: SCRAM_ITERATIONS });
    await pool(ctx.accounts, 8, (i) => accounts.create(ctx.domain, `${ctx.userPrefix}${i}`, ctx.password));
  } finally {
    await database.close();
  }
  ctx.say(`created ${ctx.accounts} accounts in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const child = spawnServer(process.execPath, [cli, 'start', '--config', configFile], { cwd: dir, logFile: join(dir, 'parley.log') });
  const halt = async (): Promise<void> => {
    untrack();
    await stopChild(child);
  };
  const stop = async (): Promise<void> => {
    await halt();
    removeDir(dir);
  };
  const untrack = trackForCleanup(stop);
  try {
    await waitForPort('127.0.0.1', port, child, 30_000);
  } catch (err) {
    await halt();
    throw startFailure(err, dir);
  }
  return {
    name: 'parley',
    label: `Parley ${pkg.version}`,
    endpoint: { host: '127.0.0.1', port, domain: ctx.domain, tls: ctx.tls },
    pid: child.process.pid,
    notes: [
      `node ${process.versions.node}, SQLite, log level warn, rate limits raised out of the way`,
      `SCRAM keys PBKDF2 ${SCRAM_ITERATIONS} iterations; PLAIN is checked against the SHA-256 keys`,
    ],
    logFile: child.logFile,
    stop,
  };
}
