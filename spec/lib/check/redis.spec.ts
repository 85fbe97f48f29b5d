// `parley check` asks the cluster's Redis for its version and the nodes whose heartbeat is alive.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { checkRedis, redactRedisUrl } from '../../../lib/check/redis.js';
import { REDIS_SKIP_MESSAGE, REDIS_URL, redisReachable } from '../cluster/nodes.js';

describe('checkRedis (parley check)', function () {
  this.timeout(20_000);

  it('reports the Redis version and the nodes alive under the prefix, not those of another cluster', async function () {
    if (!(await redisReachable())) {
      console.warn(`      skipped: ${REDIS_SKIP_MESSAGE}`);
      return this.skip();
    }
    const prefix = `parley-check-${randomBytes(4).toString('hex')}:`;
    const redis = new Redis(REDIS_URL);
    try {
      expect((await checkRedis(REDIS_URL, prefix)).detail).to.match(/^Redis \d+\.\d+\.\d+; no node running$/);
      await redis.set(`${prefix}node:b`, '1', 'PX', 10_000);
      await redis.set(`${prefix}node:a`, '1', 'PX', 10_000);
      await redis.set(`other-${prefix}node:c`, '1', 'PX', 10_000);
      const line = await checkRedis(REDIS_URL, prefix);
      expect(line.status).to.equal('ok');
      expect(line.detail).to.match(/; nodes alive: a, b$/);
    } finally {
      await redis.del(`${prefix}node:a`, `${prefix}node:b`, `other-${prefix}node:c`);
      redis.disconnect();
    }
  });

  it('fails in one line naming redis-server when nothing answers', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((r) => server.close(() => r()));
    const line = await checkRedis(`redis://user:secret@127.0.0.1:${port}`, 'parley:', 1000);
    expect(line.status).to.equal('FAIL');
    expect(line.what).to.equal(`redis redis://***@127.0.0.1:${port}`);
    expect(line.detail).to.contain('start redis-server or fix cluster.redis').and.not.contain('secret').and.not.contain('\n');
  });

  it('hides credentials in the URL it prints', () => {
    expect(redactRedisUrl('rediss://u:p@h:6380/1')).to.equal('rediss://***@h:6380/1');
    expect(redactRedisUrl('redis://h:6379')).to.equal('redis://h:6379');
  });
});
