// Reads one account's sessions on the other nodes straight from Redis into the replica, for when
// the replica shows none to deliver to. The replica follows the other nodes' pub/sub events and
// can be a little behind them: a user who has just come online on another node would otherwise
// look offline here (a message to them stored offline or bounced). One round trip, on that path
// only, bounded by a timeout; when Redis does not answer, the caller goes on as before.
//
// The read races with the events: a session removed after Redis answered has its removal event
// on the subscriber connection, which may be handled here before the answer. So removals handled
// while a read is in flight are remembered (tombstones), and the answer does not bring them back.
import type { Logger } from '../log.js';
import type { ClusterKeys } from './keys.js';
import type { RemoteSessions } from './replica.js';
import { parseEntry, type SessionEntry } from './session-entry.js';

/** What this needs of the command connection (ioredis). */
export interface LookupRedis {
  readonly status: string;
  eval(script: string, numKeys: number, ...args: string[]): Promise<unknown>;
}

// KEYS[1]: an account's index (session id -> node); ARGV[1], ARGV[2]: the key prefixes of the
// nodes' session hashes and heartbeats. Returns the entries of the live nodes' sessions, and
// forgets index fields whose session is gone (left by a cleanup that stopped half-way).
const LOOKUP = `
local index = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #index, 2 do
  local id, node = index[i], index[i + 1]
  local entry = redis.call('HGET', ARGV[1] .. node, id)
  if not entry then
    redis.call('HDEL', KEYS[1], id)
  elseif redis.call('EXISTS', ARGV[2] .. node) == 1 then
    out[#out + 1] = entry
  end
end
return out`;

/** How long a read may take; an answer coming later is not used. */
export const LOOKUP_TIMEOUT_MS = 1000;
/** Tombstones kept at most (removals within one timeout while reads are in flight). */
const MAX_TOMBSTONES = 50_000;
/** At most one warning per this interval when Redis does not answer (one per message would flood). */
const WARN_INTERVAL_MS = 10_000;
/** Tombstone keys of nodes, apart from session ids. */
const NODE = '\u0000node:';

interface Tombstone {
  readonly seq: number;
  readonly at: number;
}

export class AccountLookup {
  private inFlight = 0;
  private seq = 0;
  /** Sessions (and, under NODE, nodes) that left the replica while a read was in flight. */
  private readonly tombstones = new Map<string, Tombstone>();
  /** Reads started before this sequence number lost a tombstone they needed to the bound. */
  private lostBefore = 0;
  private warnedAt = -Infinity;

  constructor(
    private readonly redis: LookupRedis,
    private readonly keys: ClusterKeys,
    private readonly node: string,
    private readonly replica: RemoteSessions,
    private readonly isDead: (node: string) => boolean,
    private readonly log: Logger,
  ) {}

  /** A session left the replica (its removal event, a snapshot without it). */
  sessionRemoved(id: string): void {
    this.bury(id);
  }

  /** A node's sessions left the replica (it was cleaned up after). */
  nodeRemoved(node: string): void {
    this.bury(NODE + node);
  }

  /**
   * Reads an account's sessions (a bare JID, prepared) into the replica; resolves whether the
   * replica changed. False as well when Redis did not answer in time (logged).
   */
  async refresh(bare: string): Promise<boolean> {
    if (this.redis.status !== 'ready') {
      this.warn(`Redis connection ${this.redis.status}`);
      return false;
    }
    const startSeq = this.seq;
    const started = performance.now();
    this.inFlight++;
    try {
      let reply: unknown;
      try {
        reply = await within(this.redis.eval(LOOKUP, 1, this.keys.account(bare), this.keys.sessions(''), this.keys.heartbeat('')), LOOKUP_TIMEOUT_MS);
      } catch (err) {
        this.warn((err as Error).message);
        return false;
      }
      // Its timer may fire after the answer was read: the tombstones it needs may be gone.
      if (performance.now() - started > LOOKUP_TIMEOUT_MS) {
        this.warn('no answer in time');
        return false;
      }
      if (startSeq < this.lostBefore) {
        this.log.warn({ account: bare }, 'too many sessions ended during a cluster directory read; its answer is not used');
        return false;
      }
      if (!Array.isArray(reply)) return false;
      const entries: SessionEntry[] = [];
      for (const text of reply) {
        const e = typeof text === 'string' ? parseEntry(text) : undefined;
        if (!e || e.node === this.node || this.isDead(e.node)) continue;
        if (this.buriedSince(e.id, startSeq) || this.buriedSince(NODE + e.node, startSeq)) continue;
        entries.push(e);
      }
      return this.replica.learn(bare, entries);
    } finally {
      if (--this.inFlight === 0) this.tombstones.clear();
    }
  }

  private bury(key: string): void {
    if (this.inFlight === 0) return;
    const now = performance.now();
    this.tombstones.delete(key);
    this.tombstones.set(key, { seq: ++this.seq, at: now });
    // Oldest first: those older than a timeout serve no read still in flight.
    for (const [k, t] of this.tombstones) {
      const useful = t.at >= now - LOOKUP_TIMEOUT_MS;
      if (useful && this.tombstones.size <= MAX_TOMBSTONES) break;
      this.tombstones.delete(k);
      if (useful) this.lostBefore = t.seq;
    }
  }

  private buriedSince(key: string, seq: number): boolean {
    return (this.tombstones.get(key)?.seq ?? 0) > seq;
  }

  private warn(reason: string): void {
    const now = performance.now();
    if (now - this.warnedAt < WARN_INTERVAL_MS) return;
    this.warnedAt = now;
    this.log.warn({ reason }, 'could not read an account\'s sessions from the cluster directory; delivering as this node knows them');
  }
}

function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
