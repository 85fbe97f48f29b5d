// Who is online where. In-memory for one process; a Redis implementation serves clusters later.
import type { Jid } from '../jid/jid.js';
import type { C2sSession } from './c2s-session.js';

export class SessionDirectory {
  private readonly byAccount = new Map<string, Map<string, C2sSession>>();
  private count = 0;

  /** Binds a session; returns the session it replaces on the same full JID, if any. */
  add(session: C2sSession): C2sSession | undefined {
    const bare = session.jid.bare().toString();
    let resources = this.byAccount.get(bare);
    if (!resources) this.byAccount.set(bare, (resources = new Map()));
    const resource = session.jid.resource!;
    const previous = resources.get(resource);
    resources.set(resource, session);
    if (!previous) this.count++;
    return previous;
  }

  remove(session: C2sSession): boolean {
    const bare = session.jid.bare().toString();
    const resources = this.byAccount.get(bare);
    if (!resources || resources.get(session.jid.resource!) !== session) return false;
    resources.delete(session.jid.resource!);
    if (resources.size === 0) this.byAccount.delete(bare);
    this.count--;
    return true;
  }

  get(full: Jid): C2sSession | undefined {
    if (full.resource === undefined) return undefined;
    return this.byAccount.get(full.bare().toString())?.get(full.resource);
  }

  of(account: Jid): C2sSession[] {
    const resources = this.byAccount.get(account.bare().toString());
    return resources ? [...resources.values()] : [];
  }

  countOf(account: Jid): number {
    return this.byAccount.get(account.bare().toString())?.size ?? 0;
  }

  all(host?: string): C2sSession[] {
    const out: C2sSession[] = [];
    for (const resources of this.byAccount.values()) {
      for (const s of resources.values()) if (host === undefined || s.host === host) out.push(s);
    }
    return out;
  }

  get size(): number {
    return this.count;
  }
}
