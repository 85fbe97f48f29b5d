// This node's copy of the sessions bound on the other nodes, kept up to date from their
// directory changes (pub/sub) and a snapshot at start; read synchronously by the router and
// the modules through SessionDirectory.
import type { SessionHandle } from '../sessions/types.js';
import { RemoteSession, type RemoteLink } from './remote-session.js';
import type { SessionEntry } from './session-entry.js';

export class RemoteSessions {
  private readonly byAccount = new Map<string, Map<string, RemoteSession>>();
  private readonly byId = new Map<string, RemoteSession>();
  private readonly byNode = new Map<string, Set<string>>();

  constructor(private readonly link: RemoteLink) {}

  upsert(entry: SessionEntry): void {
    const known = this.byId.get(entry.id);
    if (known) {
      if (known.v < entry.v) known.update(entry);
      return;
    }
    const session = this.sessionOf(entry);
    if (session) this.add(session);
  }

  /**
   * Takes one account's sessions as Redis holds them now, read when this replica showed none to
   * deliver to (it follows the events a little behind). A known session is updated if the read
   * is newer; a new one is added, unless its full JID is held here by another session the read
   * found too (a resource conflict being resolved: the events settle which one stays). Returns
   * whether anything changed.
   */
  learn(bare: string, entries: readonly SessionEntry[]): boolean {
    const found = new Set(entries.map((e) => e.id));
    let changed = false;
    for (const entry of entries) {
      const known = this.byId.get(entry.id);
      if (known) {
        if (known.v < entry.v) {
          known.update(entry);
          changed = true;
        }
        continue;
      }
      const session = this.sessionOf(entry);
      if (!session || session.jid.bare().toString() !== bare) continue;
      const holder = this.byAccount.get(bare)?.get(session.jid.resource!);
      if (holder && found.has(holder.id)) continue;
      this.add(session);
      changed = true;
    }
    return changed;
  }

  private sessionOf(entry: SessionEntry): RemoteSession | undefined {
    try {
      return new RemoteSession(entry, this.link);
    } catch {
      return undefined; // not a JID: ignore what cannot be routed to
    }
  }

  /** Adds a session not known yet; it replaces one bound on the same full JID before. */
  private add(session: RemoteSession): void {
    const bare = session.jid.bare().toString();
    let resources = this.byAccount.get(bare);
    if (!resources) this.byAccount.set(bare, (resources = new Map()));
    const previous = resources.get(session.jid.resource!);
    if (previous) this.drop(previous);
    resources.set(session.jid.resource!, session);
    this.byAccount.set(bare, resources);
    this.byId.set(session.id, session);
    let ids = this.byNode.get(session.node);
    if (!ids) this.byNode.set(session.node, (ids = new Set()));
    ids.add(session.id);
  }

  remove(id: string): RemoteSession | undefined {
    const session = this.byId.get(id);
    if (session) this.drop(session);
    return session;
  }

  /** Forgets every session of a node; returns them. */
  removeNode(node: string): RemoteSession[] {
    const ids = this.byNode.get(node);
    if (!ids) return [];
    const out: RemoteSession[] = [];
    for (const id of [...ids]) {
      const s = this.remove(id);
      if (s) out.push(s);
    }
    this.byNode.delete(node);
    return out;
  }

  private drop(session: RemoteSession): void {
    this.byId.delete(session.id);
    this.byNode.get(session.node)?.delete(session.id);
    const bare = session.jid.bare().toString();
    const resources = this.byAccount.get(bare);
    if (resources?.get(session.jid.resource!) === session) {
      resources.delete(session.jid.resource!);
      if (resources.size === 0) this.byAccount.delete(bare);
    }
  }

  idsOf(node: string): string[] {
    return [...(this.byNode.get(node) ?? [])];
  }

  of(bare: string): SessionHandle[] {
    const resources = this.byAccount.get(bare);
    return resources ? [...resources.values()] : [];
  }

  get(bare: string, resource: string): SessionHandle | undefined {
    return this.byAccount.get(bare)?.get(resource);
  }

  countOf(bare: string): number {
    return this.byAccount.get(bare)?.size ?? 0;
  }

  all(host?: string): SessionHandle[] {
    const out: SessionHandle[] = [];
    for (const s of this.byId.values()) if (host === undefined || s.host === host) out.push(s);
    return out;
  }

  nodes(): string[] {
    return [...this.byNode.keys()];
  }

  get size(): number {
    return this.byId.size;
  }
}
