// What Parley on PostgreSQL (and, with --nodes N, Redis) needs around the server itself: a
// throw-away database created on the given server and dropped afterwards, accounts copied in SQL
// (the SQLite path's cloneAccounts, for PostgreSQL), a Redis key prefix of its own that is swept
// afterwards, and a readiness check that waits for every node's heartbeat, not just the shared port.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import pg from 'pg';
import type { Database } from '../lib/storage/types.js';
import { sleep } from './server-common.js';

function withDatabase(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

async function adminQuery(adminUrl: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A fresh database parley_bench_<random> on the server of `adminUrl`; drop() removes it. */
export async function createBenchDatabase(adminUrl: string): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = `parley_bench_${randomBytes(5).toString('hex')}`;
  try {
    await adminQuery(adminUrl, `create database ${name}`);
  } catch (err) {
    const where = new URL(adminUrl).host || 'localhost:5432';
    throw new Error(`cannot create a database on PostgreSQL at ${where} (${err instanceof Error ? err.message : String(err)}); start it or pass --pg URL`);
  }
  return {
    url: withDatabase(adminUrl, name),
    name,
    drop: () => adminQuery(adminUrl, `drop database if exists ${name} with (force)`),
  };
}

/** Accounts uniqueSalts..accounts-1 get the SCRAM rows of account (i mod uniqueSalts), as on SQLite. */
export async function clonePgAccounts(database: Database, ctx: { domain: string; userPrefix: string; accounts: number }, uniqueSalts: number): Promise<void> {
  const last = ctx.accounts - 1;
  await database.db.transaction().execute(async (trx) => {
    await sql`insert into accounts (host, "user", created_at, bcrypt)
      select ${ctx.domain}, ${ctx.userPrefix} || g, ${Date.now()}, null from generate_series(${uniqueSalts}::int, ${last}::int) g`.execute(trx);
    const copied = await sql`insert into account_scram (host, "user", hash, salt, iterations, stored_key, server_key)
      select s.host, ${ctx.userPrefix} || g, s.hash, s.salt, s.iterations, s.stored_key, s.server_key
      from generate_series(${uniqueSalts}::int, ${last}::int) g
      join account_scram s on s.host = ${ctx.domain} and s."user" = ${ctx.userPrefix} || (g % ${uniqueSalts}::int)`.execute(trx);
    if (Number(copied.numAffectedRows ?? 0) === 0) throw new Error('no SCRAM rows to copy: has the accounts schema changed?');
  });
}

/** A Redis key prefix no other run uses. */
export function benchRedisPrefix(): string {
  return `parley-bench-${randomBytes(4).toString('hex')}:`;
}

/** Deletes every key under `prefix` (SCAN, not KEYS: the Redis may be shared). */
export async function removeRedisPrefix(redisUrl: string, prefix: string): Promise<number> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  let removed = 0;
  try {
    await redis.connect();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) removed += await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
  return removed;
}

/** Whether Redis answers at `redisUrl`; the reason when it does not. */
export async function redisProblem(redisUrl: string): Promise<string | undefined> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 3000, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
    return undefined;
  } catch (err) {
    return `Redis not reachable at ${redisUrl} (${err instanceof Error ? err.message : String(err)}); start it or pass --redis URL`;
  } finally {
    redis.disconnect();
  }
}

/**
 * Resolves once every node `<node>-1` .. `<node>-<count>` has its heartbeat in Redis: the shared
 * port opens with the first node, and a phase started then would measure one node.
 */
export async function waitForNodes(redisUrl: string, prefix: string, node: string, count: number, timeoutMs: number, died: () => string | undefined): Promise<void> {
  const redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  const keys = Array.from({ length: count }, (_, i) => `${prefix}node:${node}-${i + 1}`);
  const deadline = Date.now() + timeoutMs;
  try {
    await redis.connect();
    for (;;) {
      if ((await redis.exists(...keys)) === count) return;
      const end = died();
      if (end !== undefined) throw new Error(`it ended while its nodes started (${end})`);
      if (Date.now() > deadline) throw new Error(`not all ${count} nodes had a heartbeat in Redis after ${timeoutMs / 1000} s`);
      await sleep(200);
    }
  } finally {
    redis.disconnect();
  }
}
