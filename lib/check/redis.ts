// `parley check`: can this node reach the cluster's Redis, and which nodes does it see alive.
import { Redis } from 'ioredis';
import { ClusterKeys } from '../cluster/keys.js';
import type { CheckLine } from './types.js';

export function redactRedisUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

/** One line about the Redis at `url`: its version and the live nodes under `prefix`, or why it failed. */
export async function checkRedis(url: string, prefix: string, timeoutMs = 3000): Promise<CheckLine> {
  const what = `redis ${redactRedisUrl(url)}`;
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: timeoutMs, retryStrategy: () => null });
  redis.on('error', () => undefined); // reported below, once
  try {
    await redis.connect();
    const info = await redis.info('server');
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown version';
    const nodes = await liveNodes(redis, new ClusterKeys(prefix));
    const seen = nodes.length === 0 ? 'no node running' : `nodes alive: ${nodes.sort().join(', ')}`;
    return { status: 'ok', what, detail: `Redis ${version}; ${seen}` };
  } catch (err) {
    return { status: 'FAIL', what, detail: `cannot reach Redis (${(err as Error).message}); start redis-server or fix cluster.redis` };
  } finally {
    redis.disconnect();
  }
}

async function liveNodes(redis: Redis, keys: ClusterKeys): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', keys.heartbeat('*'), 'COUNT', 100);
    cursor = next;
    for (const k of batch) out.push(k.slice(keys.heartbeat('').length));
  } while (cursor !== '0' && out.length < 1000);
  return out;
}
