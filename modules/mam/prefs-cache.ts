// Archiving preferences in memory, per account, least recently used first: every archived
// message needs its account's preferences, and reading them from the key-value store was a
// query per message in each direction. This module's instance is the only writer of its host's
// preferences and updates the entry as it writes; a cluster will need the change announced to
// the other nodes, as the blocking module's lists do.
import type { Prefs } from './prefs.js';

/** Accounts whose preferences are kept; beyond, the least recently used are read again. */
export const PREFS_CACHE_SIZE = 10_000;

export class PrefsCache {
  private readonly entries = new Map<string, Prefs>();
  /** Bumped by every change: preferences read from storage before a change are not cached. */
  private changes = 0;

  constructor(private readonly capacity = PREFS_CACHE_SIZE) {}

  get(user: string): Prefs | undefined {
    const hit = this.entries.get(user);
    if (hit) {
      this.entries.delete(user);
      this.entries.set(user, hit);
    }
    return hit;
  }

  /** A token for `fill`, taken before reading storage. */
  mark(): number {
    return this.changes;
  }

  /** Caches preferences read from storage, unless they changed since `mark`. */
  fill(user: string, prefs: Prefs, mark: number): void {
    if (mark === this.changes) this.put(user, prefs);
  }

  /** The account's preferences are now these (or, undefined, unknown: read them again). */
  set(user: string, prefs: Prefs | undefined): void {
    this.changes++;
    if (prefs === undefined) this.entries.delete(user);
    else this.put(user, prefs);
  }

  get size(): number {
    return this.entries.size;
  }

  private put(user: string, prefs: Prefs): void {
    this.entries.delete(user);
    this.entries.set(user, prefs);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }
}
