// Reading one account's sessions from Redis when the replica may lag: what the read brings into
// the replica, what it must not bring back (sessions removed while it was in flight), how it
// gives up; and, on the local Redis, the per-account index the publisher keeps with the hash.
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { AccountLookup, LOOKUP_TIMEOUT_MS, type LookupRedis } from '../../../lib/cluster/account-lookup.js';
import { ClusterKeys } from '../../../lib/cluster/keys.js';
import { DirectoryPublisher } from '../../../lib/cluster/publisher.js';
import { RemoteSessions } from '../../../lib/cluster/replica.js';
import type { RemoteLink } from '../../../lib/cluster/remote-session.js';
import type { SessionEntry } from '../../../lib/cluster/session-entry.js';
import { Jid } from '../../../lib/jid/jid.js';
import { silentLogger } from '../../../lib/log.js';
import { C2sSession } from '../../../lib/sessions/c2s-session.js';
import { xml } from '../../../lib/xml/element.js';
import { REDIS_SKIP_MESSAGE, REDIS_URL, redisReachable } from './nodes.js';

function entry(id: string, jid: string, node: string, v = 1): SessionEntry {
  return { id, jid, node, v, available: true, priority: 0, interested: false, hibernating: false, secure: true, state: {} };
}

const link: RemoteLink = { send: () => undefined, close: () => undefined, otherHostOf: () => undefined };

/** A command connection whose answers the spec gives, one read at a time. */
class FakeRedis implements LookupRedis {
  status = 'ready';
  readonly reads: string[] = [];
  private readonly waiting: Array<(value: unknown) => void> = [];

  eval(_script: string, _keys: number, ...args: string[]): Promise<unknown> {
    this.reads.push(args[0]!);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  answer(entries: readonly SessionEntry[]): void {
    this.waiting.shift()!(entries.map((e) => JSON.stringify(e)));
  }
}

describe('cluster: reading an account from Redis when the replica lags', () => {
  const keys = new ClusterKeys('t:');
  let redis: FakeRedis;
  let replica: RemoteSessions;
  let dead: Set<string>;
  let lookup: AccountLookup;

  beforeEach(() => {
    redis = new FakeRedis();
    replica = new RemoteSessions(link);
    dead = new Set();
    lookup = new AccountLookup(redis, keys, 'a', replica, (n) => dead.has(n), silentLogger());
  });

  it('brings the sessions of live other nodes into the replica', async () => {
    dead.add('d');
    const read = lookup.refresh('alice@x');
    expect(redis.reads).to.deep.equal(['t:account:alice@x']);
    redis.answer([entry('s1', 'alice@x/phone', 'b'), entry('mine', 'alice@x/here', 'a'), entry('s3', 'alice@x/gone', 'd')]);
    expect(await read).to.equal(true);
    expect(replica.of('alice@x').map((s) => s.id)).to.deep.equal(['s1']);
  });

  it('does not bring back a session whose removal was handled while the read was in flight', async () => {
    const read = lookup.refresh('alice@x');
    lookup.sessionRemoved('s1');
    redis.answer([entry('s1', 'alice@x/phone', 'b'), entry('s2', 'alice@x/laptop', 'b')]);
    expect(await read).to.equal(true);
    expect(replica.of('alice@x').map((s) => s.id)).to.deep.equal(['s2']);
  });

  it('does not bring back the sessions of a node cleaned up while the read was in flight', async () => {
    const read = lookup.refresh('alice@x');
    lookup.nodeRemoved('b');
    redis.answer([entry('s1', 'alice@x/phone', 'b'), entry('s2', 'alice@x/laptop', 'c')]);
    expect(await read).to.equal(true);
    expect(replica.of('alice@x').map((s) => s.id)).to.deep.equal(['s2']);
  });

  it('forgets removals once no read is in flight: a read started after one is not affected by it', async () => {
    const first = lookup.refresh('bob@x');
    lookup.sessionRemoved('s1');
    redis.answer([]);
    expect(await first).to.equal(false);
    // The same id found again by a later read (removed, then Redis had it again: a republish).
    const second = lookup.refresh('alice@x');
    redis.answer([entry('s1', 'alice@x/phone', 'b')]);
    expect(await second).to.equal(true);
  });

  it('keeps the tombstones of overlapping reads for each of them', async () => {
    const first = lookup.refresh('alice@x');
    lookup.sessionRemoved('s1');
    const second = lookup.refresh('alice@x');
    lookup.sessionRemoved('s2');
    redis.answer([entry('s1', 'alice@x/phone', 'b'), entry('s2', 'alice@x/laptop', 'b')]);
    expect(await first).to.equal(false);
    redis.answer([entry('s1', 'alice@x/phone', 'b'), entry('s3', 'alice@x/tablet', 'b')]);
    // s1 was removed before the second read was sent: Redis answering with it means it is back.
    expect(await second).to.equal(true);
    expect(replica.of('alice@x').map((s) => s.id).sort()).to.deep.equal(['s1', 's3']);
  });

  it('gives up at once when Redis is not connected, and after the timeout when it does not answer', async () => {
    redis.status = 'reconnecting';
    expect(await lookup.refresh('alice@x')).to.equal(false);
    expect(redis.reads).to.deep.equal([]);
    redis.status = 'ready';
    const started = Date.now();
    expect(await lookup.refresh('alice@x')).to.equal(false);
    expect(Date.now() - started).to.be.within(LOOKUP_TIMEOUT_MS - 50, LOOKUP_TIMEOUT_MS + 1000);
    // The late answer changes nothing.
    redis.answer([entry('s1', 'alice@x/phone', 'b')]);
    await new Promise((r) => setImmediate(r));
    expect(replica.size).to.equal(0);
  });
});

describe('cluster: the per-account index in Redis', function () {
  let r: Redis;
  let keys: ClusterKeys;

  before(async function () {
    if (!(await redisReachable())) {
      console.log(`      skipped: ${REDIS_SKIP_MESSAGE}`);
      this.skip();
    }
    r = new Redis(REDIS_URL);
    keys = new ClusterKeys(`parley-test-${randomBytes(5).toString('hex')}:`);
  });
  after(async () => {
    if (!r) return;
    const left = await r.keys(`${keys.prefix}*`);
    if (left.length > 0) await r.del(...left);
    r.disconnect();
  });

  function session(jid: string): C2sSession {
    return new C2sSession(Jid.parse(jid), { write: () => undefined, close: () => undefined, remoteAddress: '127.0.0.1', secure: true }, undefined);
  }

  it('is written with the session hash, read by a lookup, and removed with the session', async () => {
    const pub = new DirectoryPublisher(r, keys, 'b', silentLogger());
    const s = session('alice@x/phone');
    pub.changed(s);
    await pub.flush();
    expect(await r.hgetall(keys.account('alice@x'))).to.deep.equal({ [s.id]: 'b' });
    s.setPresence(xml('presence'));
    pub.changed(s);
    await pub.flush();

    const replica = new RemoteSessions(link);
    const lookup = new AccountLookup(r, keys, 'a', replica, () => false, silentLogger());
    // Node b has no heartbeat (dead, not cleaned up yet): none of its sessions.
    expect(await lookup.refresh('alice@x')).to.equal(false);
    await r.set(keys.heartbeat('b'), '{}');
    expect(await lookup.refresh('alice@x')).to.equal(true);
    expect(replica.get('alice@x', 'phone')?.available).to.equal(true);

    pub.removed(s);
    await pub.flush();
    expect(await r.exists(keys.account('alice@x'), keys.sessions('b'))).to.equal(0);
  });

  it('loses a field whose session is gone when a lookup meets it', async () => {
    await r.hset(keys.account('bob@x'), 'ghost', 'b');
    const lookup = new AccountLookup(r, keys, 'a', new RemoteSessions(link), () => false, silentLogger());
    expect(await lookup.refresh('bob@x')).to.equal(false);
    expect(await r.exists(keys.account('bob@x'))).to.equal(0);
  });
});
