// Smoke test of the cluster comparison (never the benchmark as such): `bench/run.js
// --compare-nodes 1,2` at tiny sizes must print the two Parley columns side by side, measure
// logins and messages on each with no errors, the two-node column on a process tree with two
// cores of capacity, and leave neither its throw-away database nor its Redis keys behind.
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { clusterSkipReason, REDIS_URL } from '../lib/cluster/nodes.js';
import { PG_ADMIN_URL } from '../storage/backends.js';

const RUN = fileURLToPath(new URL('../../bench/run.js', import.meta.url));

interface Line {
  server: string;
  label: string;
  scenario: string;
  result: Record<string, unknown> & { error?: string };
}

interface Cpu {
  serverPct: number;
  serverCapacityPct: number;
}

function runBench(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [RUN, ...args], { timeout: 240_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

async function databaseExists(name: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    return (await client.query('select 1 from pg_database where datname = $1', [name])).rowCount === 1;
  } finally {
    await client.end();
  }
}

describe('bench --compare-nodes (smoke: Parley on PostgreSQL, 1 node vs 2 nodes, tiny sizes)', function () {
  this.timeout(300_000);
  let dir: string;
  before(async function () {
    const skip = await clusterSkipReason();
    if (skip) {
      console.log(`      skipped: ${skip}`);
      this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), 'parley-bench-cluster-spec-'));
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('prints both Parley columns, measures logins and messages on each, and cleans up', async () => {
    const results = join(dir, 'results.jsonl');
    const { code, stdout, stderr } = await runBench([
      '--compare-nodes', '1,2',
      '--phases', 'logins,messages',
      '--logins', '20',
      '--login-concurrency', '5',
      '--users', '10',
      '--duration', '1',
      '--pg', PG_ADMIN_URL,
      '--redis', REDIS_URL,
      '--results', results,
    ]);
    expect(code, `bench exited with ${code}:\n${stderr}\n${stdout}`).to.equal(0);
    const header = stdout.split('\n').find((l) => l.includes('(1 node, pg)'));
    expect(header, stdout).to.match(/\(1 node, pg\)\s+Parley \S+ \(2 nodes\)/);
    for (const row of ['logins/s (20 @ 5)', '1:1 msgs/s closed (10 x 2)', 'errors (all runs)']) expect(stdout).to.include(row);

    const lines = readFileSync(results, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Line);
    expect(lines.map((l) => `${l.server} ${l.scenario}`)).to.deep.equal(['parley-pg-1 logins', 'parley-pg-1 messages', 'parley-pg-2 logins', 'parley-pg-2 messages']);
    for (const l of lines) expect(l.result.error, `${l.server} ${l.scenario}: ${l.result.error}`).to.equal(undefined);
    const [login1, , login2, messages2] = lines.map((l) => l.result) as [
      { logins: number; errors: number; cpu: Cpu },
      unknown,
      { logins: number; errors: number; cpu: Cpu },
      { closed: { delivered: number; cpu: Cpu }; errors: number },
    ];
    for (const l of [login1, login2]) {
      expect(l.logins).to.equal(20);
      expect(l.errors).to.equal(0);
    }
    expect(login1.cpu.serverCapacityPct).to.equal(100);
    expect(login2.cpu.serverCapacityPct).to.equal(200);
    expect(messages2.errors).to.equal(0);
    expect(messages2.closed.delivered).to.be.greaterThan(0);
    expect(messages2.closed.cpu.serverPct).to.be.greaterThan(0);

    // The throw-away databases are dropped and the cluster's Redis keys swept.
    const databases = [...`${stdout}\n${stderr}`.matchAll(/PostgreSQL database (parley_bench_[0-9a-f]+)/g)].map((m) => m[1]!);
    expect(databases).to.have.length(2);
    for (const name of databases) expect(await databaseExists(name), name).to.equal(false);
    const prefixes = [...`${stdout}\n${stderr}`.matchAll(/Redis key prefix (parley-bench-[0-9a-f]+:)/g)].map((m) => m[1]!);
    expect(prefixes).to.have.length(1);
    const redis = new Redis(REDIS_URL);
    try {
      expect(await redis.keys(`${prefixes[0]}*`)).to.deep.equal([]);
    } finally {
      redis.disconnect();
    }
  });
});
