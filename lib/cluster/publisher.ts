// Publishes this node's sessions to the cluster: the hash of its sessions (what a node reads at
// start, and what the node cleaning up after this one ends) and a pub/sub event per change (what
// the others' replicas follow). Changes made in one turn go out together; an entry whose content
// did not change is not sent again. The per-account index (keys.account) changes with the hash,
// in the same transaction, so that a node reading an account through it never misses a session
// the hash has (account-lookup.ts).
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import type { C2sSession } from '../sessions/c2s-session.js';
import type { ClusterKeys } from './keys.js';
import { entryOf, type SessionEntry } from './session-entry.js';

export type DirectoryEvent =
  | { t: 'up'; e: SessionEntry }
  | { t: 'rm'; id: string; node: string }
  | { t: 'down'; node: string };

interface Change {
  readonly session: C2sSession;
  readonly removed: boolean;
}

export class DirectoryPublisher {
  private readonly changes = new Map<string, Change>();
  /** What was last published per session, without its version. */
  private readonly published = new Map<string, string>();
  private flushScheduled = false;
  private version = 0;

  constructor(
    private readonly cmd: Redis,
    private readonly keys: ClusterKeys,
    private readonly node: string,
    private readonly log: Logger,
  ) {}

  changed(session: C2sSession): void {
    this.changes.delete(session.id);
    this.changes.set(session.id, { session, removed: false });
    this.schedule();
  }

  removed(session: C2sSession): void {
    this.changes.delete(session.id);
    this.changes.set(session.id, { session, removed: true });
    this.schedule();
  }

  /** Publishes every session again (after the cluster took this node for dead). */
  republish(sessions: readonly C2sSession[]): void {
    this.published.clear();
    for (const s of sessions) this.changed(s);
  }

  private schedule(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      void this.flush();
    });
  }

  async flush(): Promise<void> {
    if (this.changes.size === 0) return;
    const k = this.keys;
    const tx = this.cmd.multi();
    let writes = 0;
    for (const [id, { session, removed }] of this.changes) {
      if (removed) {
        writes++;
        this.published.delete(id);
        tx.hdel(k.sessions(this.node), id);
        tx.hdel(k.account(session.jid.bare().toString()), id);
        tx.publish(k.directory, JSON.stringify({ t: 'rm', id, node: this.node } satisfies DirectoryEvent));
        continue;
      }
      const entry = entryOf(session, this.node, 0);
      const { v: _v, ...content } = entry;
      const key = JSON.stringify(content);
      const previous = this.published.get(id);
      if (previous === key) continue;
      writes++;
      this.published.set(id, key);
      const text = JSON.stringify({ ...entry, v: ++this.version });
      tx.hset(k.sessions(this.node), id, text);
      // A session's account and node never change: indexed once, when first published.
      if (previous === undefined) tx.hset(k.account(session.jid.bare().toString()), id, this.node);
      tx.publish(k.directory, `{"t":"up","e":${text}}`);
    }
    this.changes.clear();
    // Nothing queued is sent (MULTI goes out with EXEC only).
    if (writes === 0) return;
    try {
      await tx.exec();
    } catch (err) {
      this.log.warn({ err }, 'publishing session changes failed');
    }
  }
}
