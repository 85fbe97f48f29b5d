// Cluster benchmark: logins/s and messages/s against one Parley node and against a two-node
// cluster (`parley start --nodes 2`, sharing one port), both on the local PostgreSQL (a fresh
// throw-away database) and, for the cluster, the local Redis. With node:cluster handing
// connections to the workers in turn, the two sides of most message pairs sit on different nodes,
// so the message figure is the cross-node path (Redis stream hop included).
//
//   node dist/bench/cluster.js [--seconds 10] [--pairs 50] [--window 10] [--concurrency 20]
//                              [--accounts 200] [--pg postgres://...] [--redis redis://...]
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Redis } from 'ioredis';
import { openAccounts } from '../lib/accounts/service.js';
import { openDatabase } from '../lib/storage/database.js';
import { measureLogins, measureMessages, type LoadTarget } from './load.js';
import { pool } from './pool.js';
import { freePort, removeDir, spawnServer, stopChild, tempDir, trackForCleanup, stopAll, waitForPort, writeCertificate } from './server-common.js';

const DOMAIN = 'bench.localhost';
const PASSWORD = 'bench-pw';
const PREFIX = 'u';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    pairs: { type: 'string', default: '50' },
    window: { type: 'string', default: '10' },
    concurrency: { type: 'string', default: '20' },
    accounts: { type: 'string', default: '200' },
    pg: { type: 'string', default: process.env.PARLEY_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
    redis: { type: 'string', default: process.env.PARLEY_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
});
const seconds = Number(values.seconds);
const pairs = Number(values.pairs);
const windowSize = Number(values.window);
const concurrency = Number(values.concurrency);
const accountCount = Math.max(Number(values.accounts), pairs * 2);

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

async function adminQuery(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: values.pg });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

interface Scenario {
  label: string;
  nodes: number | undefined;
}

async function run(scenario: Scenario, pgUrl: string): Promise<{ logins: number; messages: number; p50: number | undefined; errors: number }> {
  const dir = tempDir('cluster');
  const port = await freePort();
  const cert = writeCertificate(dir, DOMAIN);
  const prefix = `parley-bench-${randomBytes(4).toString('hex')}:`;
  const config = {
    hosts: [DOMAIN],
    listeners: [{ type: 'c2s', port, address: '127.0.0.1' }],
    tls: { certificates: dir, hosts: { [DOMAIN]: { cert: cert.certFile, key: cert.keyFile } } },
    storage: { driver: 'postgres', url: pgUrl },
    auth: { scramIterations: 4096 },
    limits: { connectionsPerIp: 1_000_000, stanzasPerSecond: 1_000_000, bytesPerSecond: '1 GiB' },
    log: { level: 'warn', pretty: false },
    ...(scenario.nodes === undefined ? {} : { cluster: { redis: values.redis, node: 'bench', prefix } }),
  };
  const file = join(dir, 'parley.yaml');
  writeFileSync(file, JSON.stringify(config, null, 2));
  const cli = fileURLToPath(new URL('../bin/parley.js', import.meta.url));
  const args = [cli, 'start', '--config', file, ...(scenario.nodes === undefined ? [] : ['--nodes', String(scenario.nodes)])];
  const child = spawnServer(process.execPath, args, { cwd: dir, logFile: join(dir, 'parley.log') });
  const stop = async () => {
    untrack();
    await stopChild(child);
    removeDir(dir);
    if (scenario.nodes !== undefined) {
      const r = new Redis(values.redis);
      const keys = await r.keys(`${prefix}*`);
      if (keys.length > 0) await r.del(...keys);
      r.disconnect();
    }
  };
  const untrack = trackForCleanup(stop);
  try {
    await waitForPort('127.0.0.1', port, child, 30_000);
    // Workers start one after the other: give the last one time to join.
    await new Promise((r) => setTimeout(r, 2000));
    const target: LoadTarget = {
      endpoint: { host: '127.0.0.1', port, domain: DOMAIN, tls: 'starttls' },
      userPrefix: PREFIX,
      password: PASSWORD,
      pid: scenario.nodes === undefined ? child.process.pid : undefined,
    };
    process.stdout.write(`${scenario.label}: logins for ${seconds} s ...\n`);
    const logins = await measureLogins(target, { seconds, concurrency, accounts: accountCount });
    process.stdout.write(`${scenario.label}: messages for ${seconds} s (${pairs} pairs, window ${windowSize}) ...\n`);
    const messages = await measureMessages(target, { seconds, warmupSeconds: 2, pairs, window: windowSize });
    return {
      logins: logins.perSecond,
      messages: messages.perSecond,
      p50: messages.p50Ms,
      errors: logins.errors + messages.errors + messages.lost,
    };
  } finally {
    await stop();
  }
}

async function main(): Promise<void> {
  const dbName = `parley_bench_${randomBytes(5).toString('hex')}`;
  await adminQuery(`create database ${dbName}`);
  const pgUrl = withDatabase(values.pg, dbName);
  try {
    const db = await openDatabase({ driver: 'postgres', url: pgUrl });
    try {
      const accounts = await openAccounts(db, { scramIterations: 4096 });
      await pool(accountCount, 8, (i) => accounts.create(DOMAIN, `${PREFIX}${i}`, PASSWORD));
    } finally {
      await db.close();
    }
    const scenarios: Scenario[] = [
      { label: 'one node (no cluster)', nodes: undefined },
      { label: 'cluster, --nodes 2', nodes: 2 },
    ];
    const rows: string[] = [];
    for (const s of scenarios) {
      const r = await run(s, pgUrl);
      rows.push(`| ${s.label.padEnd(22)} | ${r.logins.toFixed(1).padStart(9)} | ${r.messages.toFixed(0).padStart(10)} | ${(r.p50?.toFixed(1) ?? '-').padStart(8)} | ${String(r.errors).padStart(6)} |`);
    }
    process.stdout.write([
      '',
      `| setup                  | logins/s  | messages/s | p50 ms   | errors |`,
      `|------------------------|-----------|------------|----------|--------|`,
      ...rows,
      '',
    ].join('\n'));
  } finally {
    await stopAll();
    await adminQuery(`drop database if exists ${dbName} with (force)`).catch(() => undefined);
  }
}

main().catch(async (err: unknown) => {
  process.stderr.write(`bench/cluster: ${err instanceof Error ? err.message : String(err)}\n`);
  await stopAll();
  process.exit(1);
});
