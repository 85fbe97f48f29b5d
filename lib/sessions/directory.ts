// Who is online where. The sessions bound on this process are kept here, authoritative; in a
// cluster, `replica` adds what the other nodes have (lib/cluster), read synchronously so that
// routing to a local session never waits for Redis. The replica follows the other nodes a little
// behind: where finding no session means a stanza is stored offline, bounced or dropped, the
// caller asks again with `recheck`, which reads Redis (one round trip, on that path only).
import type { Jid } from '../jid/jid.js';
import type { C2sSession } from './c2s-session.js';
import type { SessionHandle } from './types.js';

/** The sessions of the other cluster nodes, as this node last heard of them. */
export interface DirectoryReplica {
  of(bare: string): SessionHandle[];
  get(bare: string, resource: string): SessionHandle | undefined;
  countOf(bare: string): number;
  /** Every session of the other nodes (optionally of one host). */
  all(host?: string): SessionHandle[];
  /** A local session was bound, changed (presence, state) or removed: tell the other nodes. */
  bound(session: C2sSession): void;
  removed(session: C2sSession): void;
  /**
   * Reads an account's (a prepared bare JID's) sessions on the other nodes from Redis into the
   * replica; resolves whether it changed (false too when Redis did not answer in time).
   */
  refresh(bare: string): Promise<boolean>;
}

export class SessionDirectory {
  private readonly byAccount = new Map<string, Map<string, C2sSession>>();
  private count = 0;
  /** Set by lib/cluster in cluster mode; undefined on a single node. */
  private replica: DirectoryReplica | undefined;

  attachReplica(replica: DirectoryReplica | undefined): void {
    this.replica = replica;
    for (const s of this.all()) {
      s.observer = replica ? (x) => replica.bound(x) : undefined;
      replica?.bound(s);
    }
  }

  /** Binds a session; returns the session it replaces on the same full JID, if any. */
  add(session: C2sSession): C2sSession | undefined {
    const bare = session.jid.bare().toString();
    let resources = this.byAccount.get(bare);
    if (!resources) this.byAccount.set(bare, (resources = new Map()));
    const resource = session.jid.resource!;
    const previous = resources.get(resource);
    resources.set(resource, session);
    if (!previous) this.count++;
    const replica = this.replica;
    if (replica) {
      session.observer = (s) => replica.bound(s);
      replica.bound(session);
    }
    return previous;
  }

  remove(session: C2sSession): boolean {
    const bare = session.jid.bare().toString();
    const resources = this.byAccount.get(bare);
    if (!resources || resources.get(session.jid.resource!) !== session) return false;
    resources.delete(session.jid.resource!);
    if (resources.size === 0) this.byAccount.delete(bare);
    this.count--;
    if (this.replica) {
      session.observer = undefined;
      this.replica.removed(session);
    }
    return true;
  }

  /** The session bound to a full JID on this node or, in a cluster, on another. */
  get(full: Jid): SessionHandle | undefined {
    if (full.resource === undefined) return undefined;
    const bare = full.bare().toString();
    const mine = this.byAccount.get(bare)?.get(full.resource);
    if (mine || !this.replica) return mine;
    return this.replica.get(bare, full.resource);
  }

  /** Whether other nodes' sessions are known here (the `recheck` methods read Redis). */
  get clustered(): boolean {
    return this.replica !== undefined;
  }

  /**
   * After `get` found none: in a cluster, the session bound to a full JID on another node a
   * moment ago, which this node had not heard of yet (read from Redis); undefined when there is
   * none, and at once on a single node.
   */
  async recheck(full: Jid): Promise<SessionHandle | undefined> {
    if (!this.replica || full.local === undefined || full.resource === undefined) return undefined;
    await this.replica.refresh(full.bare().toString());
    // Whatever the read found: the replica's events may have caught up meanwhile.
    return this.get(full);
  }

  /**
   * After `of` found no session to deliver to: an account's sessions on every node, in a cluster
   * once those of the other nodes were read from Redis (one round trip; the replica may lag).
   */
  async recheckOf(account: Jid): Promise<SessionHandle[]> {
    if (this.replica && account.local !== undefined) await this.replica.refresh(account.bare().toString());
    return this.of(account);
  }

  /** The session bound to a full JID on this node. */
  local(full: Jid): C2sSession | undefined {
    if (full.resource === undefined) return undefined;
    return this.byAccount.get(full.bare().toString())?.get(full.resource);
  }

  /** An account's sessions on every node: this node's first. */
  of(account: Jid): SessionHandle[] {
    const bare = account.bare().toString();
    const resources = this.byAccount.get(bare);
    const mine: SessionHandle[] = resources ? [...resources.values()] : [];
    if (!this.replica) return mine;
    const remote = this.replica.of(bare);
    if (remote.length === 0) return mine;
    // A resource bound here wins over a stale entry of another node (a conflict being resolved).
    for (const r of remote) if (!resources?.has(r.jid.resource!)) mine.push(r);
    return mine;
  }

  /** An account's sessions on this node. */
  localOf(account: Jid): C2sSession[] {
    const resources = this.byAccount.get(account.bare().toString());
    return resources ? [...resources.values()] : [];
  }

  countOf(account: Jid): number {
    const bare = account.bare().toString();
    const mine = this.byAccount.get(bare)?.size ?? 0;
    return this.replica ? mine + this.replica.countOf(bare) : mine;
  }

  /** The sessions bound on this node (optionally of one host). */
  all(host?: string): C2sSession[] {
    const out: C2sSession[] = [];
    for (const resources of this.byAccount.values()) {
      for (const s of resources.values()) if (host === undefined || s.host === host) out.push(s);
    }
    return out;
  }

  /** The sessions bound on every node of a cluster (this node's first), or on this one alone. */
  everywhere(host?: string): SessionHandle[] {
    const mine: SessionHandle[] = this.all(host);
    return this.replica ? mine.concat(this.replica.all(host)) : mine;
  }

  /** Sessions bound on every node of a cluster. */
  get sizeEverywhere(): number {
    return this.replica ? this.count + this.replica.all().length : this.count;
  }

  /** Sessions bound on this node. */
  get size(): number {
    return this.count;
  }
}
