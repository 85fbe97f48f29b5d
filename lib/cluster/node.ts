// One node of a Parley cluster (README "Operating a cluster"). Nodes share one Redis:
//
// - each node renews a heartbeat key with an expiry; a node whose key expired is dead, and one
//   surviving node (elected with SET NX) cleans up after it (`reap`);
// - each node publishes its sessions (publisher.ts: a hash per node, a pub/sub event per change)
//   and keeps a replica of everyone else's, which SessionDirectory reads synchronously: a delivery to a
//   local session never waits for Redis; where it shows no session to deliver to, the account
//   is read from Redis once (SessionDirectory.recheck, account-lookup.ts), as the replica lags;
// - a stanza for a session or a room on another node is appended to that node's inbox stream
//   (inbox.ts: XADD on one connection, one blocking XREAD there), so that what one node sends
//   another arrives once and in order, and survives a brief disconnection;
// - each service JID (a MUC room) has one owner node, claimed in Redis; the others forward to it.
import { Redis } from 'ioredis';
import type { ParleyConfig } from '../config/schema.js';
import { AdminError } from '../config/errors.js';
import { Jid } from '../jid/jid.js';
import type { Logger } from '../log.js';
import type { HostRuntime } from '../routing/host-runtime.js';
import type { ClusterRoutes, Router } from '../routing/router.js';
import type { C2sSession } from '../sessions/c2s-session.js';
import type { DirectoryReplica, SessionDirectory } from '../sessions/directory.js';
import type { SessionHandle } from '../sessions/types.js';
import type { Element } from '../xml/element.js';
import { parseXml } from '../xml/parse.js';
import { ClusterKeys } from './keys.js';
import { RemoteSession, type RemoteLink } from './remote-session.js';
import { RemoteSessions } from './replica.js';
import { parseEntry, type SessionEntry } from './session-entry.js';
import { BoundedMap } from './bounded-map.js';
import { Inbox, unhandled, type InboxEntry } from './inbox.js';
import { DirectoryPublisher, type DirectoryEvent } from './publisher.js';
import { AccountLookup } from './account-lookup.js';

export type ClusterConfig = NonNullable<ParleyConfig['cluster']>;

export interface ClusterDeps {
  readonly config: ClusterConfig;
  readonly sessions: SessionDirectory;
  readonly router: Router;
  readonly runtimes: ReadonlyMap<string, HostRuntime>;
  readonly log: Logger;
}

// Claims a service JID for ARGV[1] unless a live node (its heartbeat key exists) owns it.
const CLAIM = `
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] and redis.call('EXISTS', ARGV[2] .. cur) == 1 then return cur end
if cur ~= ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SADD', KEYS[2], ARGV[3])
end
return ARGV[1]`;
// Deletes KEYS[1] if it still holds ARGV[1].
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

const REPLY_ROUTE_TTL_MS = 120_000;

export class ClusterNode implements ClusterRoutes, RemoteLink, DirectoryReplica {
  readonly name: string;
  readonly keys: ClusterKeys;
  private readonly cmd: Redis;
  private readonly sub: Redis;
  private readonly blocker: Redis;
  private readonly replica: RemoteSessions;
  private readonly log: Logger;
  /** Nodes known dead (heartbeat expired), until they register again. */
  private readonly dead = new Set<string>();
  private readonly owners = new BoundedMap<string, string>(100_000);
  /** IQ requests other nodes sent to sessions here: reply key -> the node waiting for it. */
  private readonly replyRoutes = new BoundedMap<string, { node: string; at: number }>(20_000);
  private readonly publisher: DirectoryPublisher;
  private readonly inbox: Inbox;
  private readonly lookup: AccountLookup;
  /**
   * Specs only: ignore the other nodes' directory events, as a replica lagging behind them would
   * (spec/e2e/cluster-lag.spec.ts).
   */
  ignoreDirectoryEventsForTests = false;
  private beatTimer: NodeJS.Timeout | undefined;
  private stopping = false;
  private beating: Promise<void> = Promise.resolve();
  private readonly otherHosts = new Map<string, string>();

  private constructor(private readonly deps: ClusterDeps) {
    const { config } = deps;
    this.name = config.node;
    this.keys = new ClusterKeys(config.prefix);
    this.log = deps.log.child({ node: this.name });
    const options = { lazyConnect: true, maxRetriesPerRequest: 3, connectionName: `parley-${this.name}` };
    // Stanzas sent in one turn of the event loop go to Redis in one write.
    this.cmd = new Redis(config.redis, { ...options, enableAutoPipelining: true });
    this.sub = new Redis(config.redis, options);
    this.blocker = new Redis(config.redis, { ...options, maxRetriesPerRequest: null });
    for (const r of [this.cmd, this.sub, this.blocker]) r.on('error', (err: Error) => this.log.warn({ err: err.message }, 'redis connection error'));
    this.replica = new RemoteSessions(this);
    this.publisher = new DirectoryPublisher(this.cmd, this.keys, this.name, this.log);
    this.inbox = new Inbox(this.cmd, this.blocker, this.keys, this.name, config.inboxLength, this.log);
    this.lookup = new AccountLookup(this.cmd, this.keys, this.name, this.replica, (node) => this.dead.has(node), this.log);
  }

  static async start(deps: ClusterDeps): Promise<ClusterNode> {
    const node = new ClusterNode(deps);
    try {
      await node.connect();
      await node.join();
    } catch (err) {
      node.disconnect();
      throw err;
    }
    return node;
  }

  private async connect(): Promise<void> {
    const url = this.deps.config.redis;
    try {
      await Promise.all([this.cmd.connect(), this.sub.connect(), this.blocker.connect()]);
    } catch (err) {
      throw new AdminError('PARLEY_ERR_REDIS', `cannot reach Redis at ${redactUrl(url)} (${(err as Error).message})`, 'start redis-server or fix cluster.redis');
    }
  }

  private async join(): Promise<void> {
    const k = this.keys;
    await this.sub.subscribe(k.directory);
    this.sub.on('message', (_channel: string, text: string) => this.onEvent(text));
    // The snapshot comes after the subscription, so that no change falls between the two.
    await this.snapshot();
    // Changes published while the subscriber was disconnected are lost: read everything again.
    this.sub.on('ready', () => {
      if (this.stopping) return;
      this.removedDuringSync = new Set();
      this.snapshot().catch((err: unknown) => this.log.warn({ err }, 'reading the cluster directory again failed'));
    });
    this.deps.sessions.attachReplica(this);
    this.deps.router.cluster = this;
    // A previous run of this node that died: its sessions are gone, its contacts must hear it.
    if ((await this.cmd.exists(k.sessions(this.name), k.inbox(this.name), k.owned(this.name))) > 0) {
      this.log.warn('a previous run of this node left sessions behind; cleaning up');
      await this.reap(this.name, { replay: true });
    }
    await this.beat();
    this.beatTimer = setInterval(() => {
      this.beating = this.beat().catch((err: unknown) => this.log.warn({ err }, 'cluster heartbeat failed'));
    }, this.deps.config.heartbeat);
    this.beatTimer.unref();
    this.inbox.start((entry) => this.handle(entry));
    this.log.info({ prefix: this.keys.prefix, peers: this.replica.nodes().length }, 'cluster node joined');
  }

  /** Reads every other node's sessions from Redis, dropping what this replica has and they no longer do. */
  private async snapshot(): Promise<void> {
    const k = this.keys;
    try {
      for (const node of await this.cmd.smembers(k.nodes)) {
        if (node === this.name) continue;
        if ((await this.cmd.exists(k.heartbeat(node))) === 0) {
          this.nodeDown(node);
          continue;
        }
        const all = await this.cmd.hgetall(k.sessions(node));
        for (const id of this.replica.idsOf(node)) if (!(id in all)) this.forget(id);
        for (const text of Object.values(all)) {
          const e = parseEntry(text);
          if (e && !this.removedDuringSync?.has(e.id)) this.replica.upsert(e);
        }
      }
    } finally {
      this.removedDuringSync = undefined;
    }
  }

  /** Sessions removed while the snapshot was read, which it must not bring back. */
  private removedDuringSync: Set<string> | undefined = new Set<string>();

  // ------------------------------------------------------------------ heartbeat and failures

  private async beat(): Promise<void> {
    if (this.stopping) return;
    const k = this.keys;
    const info = JSON.stringify({ seeOtherHost: this.deps.config.seeOtherHost });
    const [, added] = await Promise.all([
      this.cmd.set(k.heartbeat(this.name), info, 'PX', this.deps.config.expiry),
      this.cmd.sadd(k.nodes, this.name),
    ]);
    if (added === 1 && this.beatTimer) {
      // Another node took this one for dead (a long pause) and cleaned up: publish everything again.
      this.log.warn('this node was taken for dead by the cluster; publishing its sessions again');
      this.publisher.republish(this.deps.sessions.all());
    }
    const nodes = (await this.cmd.smembers(k.nodes)).filter((n) => n !== this.name);
    if (nodes.length === 0) return;
    const beats = await this.cmd.mget(nodes.map((n) => k.heartbeat(n)));
    for (const [i, node] of nodes.entries()) {
      const beat = beats[i];
      if (beat === null || beat === undefined) this.nodeDown(node);
      else {
        this.dead.delete(node);
        this.rememberOtherHost(node, beat);
      }
    }
  }

  private rememberOtherHost(node: string, beat: string): void {
    try {
      const host = (JSON.parse(beat) as { seeOtherHost?: unknown }).seeOtherHost;
      if (typeof host === 'string') this.otherHosts.set(node, host);
    } catch {
      // an older format: no address
    }
  }

  /** The see-other-host address of a live node, when it has one. */
  otherHostOf(node: string): string | undefined {
    return this.dead.has(node) ? undefined : this.otherHosts.get(node);
  }

  /** A node's heartbeat expired: its sessions are gone from here at once; one node cleans up. */
  private nodeDown(node: string): void {
    const first = !this.dead.has(node);
    this.dead.add(node);
    if (first) {
      const gone = this.replica.removeNode(node);
      this.lookup.nodeRemoved(node);
      this.owners.deleteWhere((owner) => owner === node);
      this.log.warn({ dead: node, sessions: gone.length }, 'cluster node stopped beating');
    }
    void this.cmd.set(this.keys.reaper(node), this.name, 'PX', this.deps.config.expiry * 10, 'NX').then(
      (won) => (won === 'OK' ? this.reap(node, { replay: true }) : undefined),
    ).catch((err: unknown) => this.log.error({ err, dead: node }, 'cleaning up after a dead node failed'));
  }

  /**
   * Removes a node from the cluster: its sessions end (session/closed fires here for each, so the
   * presence module tells their contacts), its rooms are released, and what was sent to it and
   * not yet handled is delivered again (messages then go to offline storage).
   */
  private async reap(node: string, opts: { replay: boolean }): Promise<void> {
    const k = this.keys;
    const entries = Object.values(await this.cmd.hgetall(k.sessions(node))).map(parseEntry).filter((e): e is SessionEntry => e !== undefined);
    await this.cmd.del(k.sessions(node));
    // After the hash: an index field without its session is ignored (and dropped) by a lookup,
    // a session without its index field would be missed.
    const index = this.cmd.pipeline();
    for (const e of entries) {
      const bare = Jid.tryParse(e.jid)?.bare().toString();
      if (bare !== undefined) index.hdel(k.account(bare), e.id);
    }
    if (entries.length > 0) await index.exec();
    for (const e of entries) {
      let session: RemoteSession;
      try {
        session = new RemoteSession(e, this);
      } catch {
        continue;
      }
      this.forget(e.id);
      const runtime = this.deps.runtimes.get(session.host);
      if (!runtime) continue;
      await runtime.hooks.notify('session/closed', { session, reason: `cluster node ${node} failed` }, (err) => this.log.error({ err }, 'session/closed handler failed'));
    }
    for (const jid of await this.cmd.smembers(k.owned(node))) await this.cmd.eval(RELEASE, 1, k.owner(jid), node);
    if (opts.replay) await this.replay(node);
    await this.cmd.del(k.owned(node), k.inbox(node), k.cursor(node));
    await this.cmd.srem(k.nodes, node);
    await this.cmd.publish(k.directory, JSON.stringify({ t: 'down', node } satisfies DirectoryEvent));
    if (entries.length > 0 || node !== this.name) this.log.info({ dead: node, sessions: entries.length }, 'cleaned up after a cluster node');
  }

  /** What a node was sent after the last entry it handled: messages go on (to offline storage). */
  private async replay(node: string): Promise<void> {
    for await (const entry of unhandled(this.cmd, this.keys, node)) {
      const el = entry.x === undefined ? undefined : safeParse(entry.x);
      if (!el) continue;
      try {
        if (entry.k === 's') await this.deps.router.deliverStray(el);
        else if (entry.k === 'r' && node !== this.name) await this.deps.router.route(el);
      } catch (err) {
        this.log.warn({ err }, 'replaying a stanza of a dead node failed');
      }
    }
  }

  // ------------------------------------------------------------------ directory

  bound(session: C2sSession): void {
    this.publisher.changed(session);
  }

  removed(session: C2sSession): void {
    this.publisher.removed(session);
  }

  private onEvent(text: string): void {
    if (this.ignoreDirectoryEventsForTests) return;
    let event: DirectoryEvent;
    try {
      event = JSON.parse(text) as DirectoryEvent;
    } catch {
      return;
    }
    if (event.t === 'up') {
      const e = parseEntry(JSON.stringify(event.e));
      if (!e || e.node === this.name) return;
      this.dead.delete(e.node);
      this.replica.upsert(e);
    } else if (event.t === 'rm') {
      if (event.node === this.name) return;
      this.removedDuringSync?.add(event.id);
      this.forget(event.id);
    } else if (event.t === 'down') {
      if (event.node === this.name) return;
      this.replica.removeNode(event.node);
      this.lookup.nodeRemoved(event.node);
      this.owners.deleteWhere((owner) => owner === event.node);
    }
  }

  private forget(id: string): void {
    this.replica.remove(id);
    this.lookup.sessionRemoved(id);
  }

  refresh(bare: string): Promise<boolean> {
    if (this.stopping) return Promise.resolve(false);
    return this.lookup.refresh(bare);
  }

  of(bare: string): SessionHandle[] { return this.replica.of(bare); }
  get(bare: string, resource: string): SessionHandle | undefined { return this.replica.get(bare, resource); }
  countOf(bare: string): number { return this.replica.countOf(bare); }
  all(host?: string): SessionHandle[] { return this.replica.all(host); }

  /** The sessions of the other nodes this node knows of. */
  get remoteCount(): number { return this.replica.size; }

  // ------------------------------------------------------------------ stanzas between nodes

  send(session: RemoteSession, stanza: Element): void {
    if (this.dead.has(session.node) || this.stopping) {
      // Its node died after the router picked the session: a message goes on, from here.
      if (stanza.name === 'message') void this.deps.router.deliverStray(stanza).catch((err: unknown) => this.log.warn({ err }, 'delivery failed'));
      return;
    }
    void this.inbox.append(session.node, { k: 's', n: this.name, s: session.id, j: session.jid.toString(), x: stanza.toString() });
  }

  close(session: RemoteSession, condition?: string, text?: string): void {
    void this.inbox.append(session.node, { k: 'c', n: this.name, s: session.id, j: session.jid.toString(), c: condition, t: text });
  }

  forward(node: string, el: Element): Promise<void> {
    return this.inbox.append(node, { k: 'r', n: this.name, x: el.toString() });
  }

  private async handle(entry: InboxEntry): Promise<void> {
    if (entry.k === 'c') {
      const session = this.localSession(entry);
      session?.close(entry.c, entry.t);
      return;
    }
    const el = entry.x === undefined ? undefined : safeParse(entry.x);
    if (!el) return;
    if (entry.k === 'r') {
      // A request the sending node made itself (an admin tool asking a room it does not own):
      // its waiter is there, so the reply goes back there. A reply to a full JID (a session)
      // finds its way through the directory.
      if (el.name === 'iq' && (el.attrs.type === 'get' || el.attrs.type === 'set') && typeof el.attrs.id === 'string' && Jid.tryParse(el.attrs.from as string | undefined)?.resource === undefined) {
        this.replyRoutes.set(`${prep(el.attrs.to)}\u0000${prep(el.attrs.from)}\u0000${el.attrs.id}`, { node: entry.n, at: Date.now() });
      }
      await this.deps.router.route(el);
      return;
    }
    if (entry.k !== 's') return;
    const session = this.localSession(entry);
    if (!session) {
      if (el.name === 'message') await this.deps.router.deliverStray(el);
      return;
    }
    if (el.name === 'iq' && (el.attrs.type === 'get' || el.attrs.type === 'set') && typeof el.attrs.id === 'string') {
      const from = prep(el.attrs.from);
      this.replyRoutes.set(`${session.jid.toString()}\u0000${from}\u0000${el.attrs.id}`, { node: entry.n, at: Date.now() });
    }
    session.send(el);
  }

  private localSession(entry: InboxEntry): C2sSession | undefined {
    const jid = Jid.tryParse(entry.j);
    const session = jid ? this.deps.sessions.local(jid) : undefined;
    return session && session.id === entry.s ? session : undefined;
  }

  replyNode(from: string, to: string, id: string): string | undefined {
    const key = `${from}\u0000${to}\u0000${id}`;
    const route = this.replyRoutes.get(key);
    if (!route) return undefined;
    this.replyRoutes.delete(key);
    return Date.now() - route.at < REPLY_ROUTE_TTL_MS ? route.node : undefined;
  }

  async serviceOwner(bare: Jid): Promise<string | undefined> {
    const jid = bare.toString();
    let owner = this.owners.get(jid);
    if (owner === undefined || this.dead.has(owner)) {
      const k = this.keys;
      owner = (await this.cmd.eval(CLAIM, 2, k.owner(jid), k.owned(this.name), this.name, k.heartbeat(''), jid)) as string;
      this.owners.set(jid, owner);
    }
    return owner === this.name ? undefined : owner;
  }

  /** The service JIDs of a domain (MUC rooms) that the other live nodes hold. */
  async servicesElsewhere(domain: string): Promise<string[]> {
    const k = this.keys;
    const out: string[] = [];
    const suffix = `@${domain}`;
    for (const node of await this.cmd.smembers(k.nodes)) {
      if (node === this.name || this.dead.has(node)) continue;
      const claimed = (await this.cmd.smembers(k.owned(node))).filter((jid) => jid.endsWith(suffix));
      if (claimed.length === 0) continue;
      // The owned set keeps what a node once claimed: the owner key says who holds it now.
      const owners = await this.cmd.mget(claimed.map((jid) => k.owner(jid)));
      for (const [i, jid] of claimed.entries()) if (owners[i] === node) out.push(jid);
    }
    return out;
  }

  /** Whether this node owns a service JID (as far as its cache knows). */
  ownsLocally(jid: string): boolean {
    return this.owners.get(Jid.parse(jid).bare().toString()) === this.name;
  }

  // ------------------------------------------------------------------ leaving

  /** Leaves the cluster: called once this node's sessions have ended. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    await this.publisher.flush();
    this.stopping = true;
    if (this.beatTimer) clearInterval(this.beatTimer);
    await this.beating;
    await this.inbox.stop();
    this.deps.router.cluster = undefined;
    this.deps.sessions.attachReplica(undefined);
    try {
      await this.cmd.del(this.keys.heartbeat(this.name));
      await this.reap(this.name, { replay: true });
    } catch (err) {
      this.log.warn({ err }, 'leaving the cluster cleanly failed; the others will notice the missing heartbeat');
    }
    this.disconnect();
    this.log.info('left the cluster');
  }

  private disconnect(): void {
    for (const r of [this.cmd, this.sub, this.blocker]) r.disconnect();
  }
}

function safeParse(text: string): Element | undefined {
  try {
    return parseXml(text);
  } catch {
    return undefined;
  }
}

function prep(raw: unknown): string {
  return Jid.tryParse(raw as string | undefined)?.toString() ?? String(raw);
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
