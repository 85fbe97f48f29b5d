// Runs a XEP-0313 query against the generic archive store and pages it with XEP-0059.
//
// The store pages by one cursor on each side, so the bounds of a query are folded here: the
// form's after-id/before-id delimit the result set; RSM after/before page inside it; the tighter
// of each pair is the cursor. A page is one ordered index range: no page counts anything.
//
// RSM <count/> and <first index/> are left out of pages unless the page is the whole result set
// (then both are exact and free). Counting the rows of a range is a scan of the index over the
// whole range: on a million-message archive two such counts per page made a page take hundreds
// of milliseconds of blocked event loop where the page itself takes one. XEP-0059 §2.1 allows
// leaving both out when they are "exceptionally resource intensive" to work out, which a scan
// per page is. A client that asks for the count alone (<max>0</max>, §2.7) gets it counted: that
// is one count, asked for on purpose. A kept per-archive counter was considered and not done: it
// is a second write for every archived message (the hot path) and it answers only the unfiltered
// query, not `with`, start/end or cursors.
import { StanzaError } from '../../lib/module-api.js';
import type { ArchiveItem, ArchiveQuery as ArchiveStoreQuery, ArchiveStore, Jid } from '../../lib/module-api.js';
import type { MamQuery } from './query.js';

/** Items examined in one millisecond when counting around a cursor; beyond, counts are approximate (XEP-0059 allows it). */
const SAME_MS_CAP = 1000;
/** A query `with` a full JID filters the peer's bare-JID range item by item; it reads at most this many. */
const SCAN_CAP = 10_000;
const SCAN_BATCH = 200;

interface Filters {
  with?: string;
  start?: number;
  end?: number;
  ids?: string[];
}

export interface QueryPage {
  /** In archive (chronological) order. */
  items: ArchiveItem[];
  /** No more items in the direction of paging. */
  complete: boolean;
  /** RSM count of the whole result set; undefined when it would cost a scan. */
  count: number | undefined;
  /** RSM index of the first item of the page in the result set; undefined with count. */
  index: number | undefined;
}

/** Whether an archived item is a message to or from exactly this (full) JID. */
export type ItemMatcher = (item: ArchiveItem) => boolean;

export class ArchiveQuery {
  constructor(
    private readonly store: ArchiveStore,
    private readonly host: string,
    private readonly user: string,
  ) {}

  /**
   * Runs the query. `limit` is the page size already capped by the server. `fullJidMatch` is
   * given when `with` names a resource: the store filters on bare JIDs, the rest is done here.
   */
  async run(q: MamQuery, limit: number, fullJidMatch: ItemMatcher | undefined): Promise<QueryPage> {
    const named = [q.afterId, q.beforeId, q.after, q.before || undefined, ...(q.ids ?? [])].filter((x): x is string => x !== undefined);
    const known = await this.lookup(named);
    for (const id of named) {
      // XEP-0313 §4.1.3 (ids, after-id, before-id) and §4.3.2 (RSM after/before).
      if (!known.has(id)) throw StanzaError.itemNotFound(`no archived message with id ${id}`);
    }
    const at = (id: string | undefined) => (id === undefined ? undefined : known.get(id));
    const order = (x: Located) => x.order;
    const setLower = at(q.afterId);
    const setUpper = at(q.beforeId);
    const lower = pick(setLower, at(q.after), (a, b) => (order(a) >= order(b) ? a : b));
    const upper = pick(setUpper, at(q.before || undefined), (a, b) => (order(a) <= order(b) ? a : b));

    const f: Filters = {};
    if (q.with !== undefined) f.with = q.with.bare().toString();
    if (q.start !== undefined) f.start = q.start;
    if (q.end !== undefined) f.end = q.end;
    if (q.ids !== undefined) f.ids = q.ids;
    // XEP-0059 §2.5: <before/> pages backwards (an empty one from the end).
    const reverse = q.before !== undefined;

    let items: ArchiveItem[];
    let complete: boolean;
    if (lower && upper && lower.order >= upper.order) {
      items = [];
      complete = true;
    } else if (fullJidMatch) {
      ({ items, complete } = await this.scan(f, lower?.item, upper?.item, limit, reverse, fullJidMatch));
    } else {
      const page = await this.store.query(this.host, this.user, {
        ...f,
        after: lower?.item.id,
        before: upper?.item.id,
        limit,
        reverse,
      });
      ({ items, complete } = page);
    }
    if (reverse) items = [...items].reverse();

    const empty = setLower !== undefined && setUpper !== undefined && setLower.order >= setUpper.order;
    if (empty) return { items, complete, count: 0, index: undefined };
    // No RSM cursor and nothing beyond the page: the page is the whole result set.
    const whole = complete && q.after === undefined && !q.before;
    if (whole) return { items, complete, count: items.length, index: items.length === 0 ? undefined : 0 };
    // §2.7: <max>0</max> asks for the count alone (the full-JID filter cannot count without a scan).
    if (limit === 0 && !fullJidMatch) return { items, complete, count: await this.countRange(f, setLower?.item, setUpper?.item), index: undefined };
    return { items, complete, count: undefined, index: undefined };
  }

  /** The items with these ids, with their rank in archive order (the store sorts an ids query). */
  private async lookup(ids: readonly string[]): Promise<Map<string, Located>> {
    const unique = [...new Set(ids)];
    const out = new Map<string, Located>();
    if (unique.length === 0) return out;
    const found = await this.store.query(this.host, this.user, { ids: unique, limit: unique.length });
    found.items.forEach((item, order) => out.set(item.id, { item, order }));
    return out;
  }

  /** Items matching `f` strictly between `lower` and `upper` (either may be absent). */
  async countRange(f: Filters, lower: ArchiveItem | undefined, upper: ArchiveItem | undefined): Promise<number> {
    let start = f.start;
    let end = f.end;
    // A cursor outside the time range bounds nothing; inside, it narrows the range to its millisecond.
    const lowerCuts = lower !== undefined && (start === undefined || lower.when >= start);
    const upperCuts = upper !== undefined && (end === undefined || upper.when <= end);
    if (lowerCuts) start = lower.when;
    if (upperCuts) end = upper.when;
    if (start !== undefined && end !== undefined && start > end) return 0;
    const range: Filters = { ...f };
    if (start !== undefined) range.start = start;
    if (end !== undefined) range.end = end;
    let n = await this.store.count(this.host, this.user, range);
    if (lowerCuts) n -= await this.sameMs(f, lower, 'before');
    if (upperCuts) n -= await this.sameMs(f, upper, 'after');
    return Math.max(0, n);
  }

  /** Items matching `f` in the cursor's millisecond on one side of it, the cursor included when it matches. */
  private async sameMs(f: Filters, cursor: ArchiveItem, side: 'before' | 'after'): Promise<number> {
    const q: ArchiveStoreQuery = { start: cursor.when, end: cursor.when, limit: SAME_MS_CAP };
    if (f.with !== undefined) q.with = f.with;
    if (f.ids !== undefined) q.ids = f.ids;
    if (side === 'before') q.before = cursor.id;
    else q.after = cursor.id;
    const page = await this.store.query(this.host, this.user, q);
    const itself = (f.with === undefined || cursor.with === f.with) && (f.ids === undefined || f.ids.includes(cursor.id));
    return page.items.length + (itself ? 1 : 0);
  }

  /** A page of the bare-JID range filtered item by item, reading at most SCAN_CAP items. */
  private async scan(
    f: Filters,
    lower: ArchiveItem | undefined,
    upper: ArchiveItem | undefined,
    limit: number,
    reverse: boolean,
    match: ItemMatcher,
  ): Promise<{ items: ArchiveItem[]; complete: boolean }> {
    const out: ArchiveItem[] = [];
    let after = lower?.id;
    let before = upper?.id;
    let read = 0;
    for (;;) {
      const batch = await this.store.query(this.host, this.user, { ...f, after, before, limit: SCAN_BATCH, reverse });
      for (const item of batch.items) {
        if (!match(item)) continue;
        out.push(item);
        if (out.length > limit) return { items: out.slice(0, limit), complete: false };
      }
      read += batch.items.length;
      if (batch.complete) return { items: out, complete: true };
      if (read >= SCAN_CAP) return { items: out, complete: false };
      const last = batch.items[batch.items.length - 1]!.id;
      if (reverse) before = last;
      else after = last;
    }
  }
}

interface Located {
  item: ArchiveItem;
  /** Rank in archive order among the looked-up items. */
  order: number;
}

function pick<T>(a: T | undefined, b: T | undefined, both: (a: T, b: T) => T): T | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return both(a, b);
}

/** For `with` = a full JID: the item is a message whose from or to is exactly that JID (XEP-0313 §4.1.1). */
export function peerMatcher(withJid: Jid, parse: (value: string) => { from: Jid | undefined; to: Jid | undefined } | undefined): ItemMatcher {
  return (item) => {
    const m = parse(item.value);
    return m !== undefined && (withJid.equals(m.from) || withJid.equals(m.to));
  };
}
