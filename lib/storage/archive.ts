// The generic archive: append-only ordered logs per account (offline queues, message archives).
//
// Archive order is (ts, seq): time order, ties broken by insertion order. Items appended in time
// order (the normal case) therefore come back in insertion order, and an item stored with an
// older timestamp takes its place in time, which is what XEP-0313 §4.1 asks of an archive.
//
// better-sqlite3 blocks the event loop while a query runs, so every query here is one ordered
// index range bounded by LIMIT (ARCHITECTURE.md §7): cursors and time bounds become a single
// range on (ts, seq) in archive_ts_idx or archive_with_idx, the `ids` filter goes through the
// unique index, and purges run in small batches.
import { sql, type Expression, type ExpressionBuilder, type Kysely, type SqlBool } from 'kysely';
import { StorageError } from './errors.js';
import type { ArchiveItem, ArchivePage, ArchiveQuery, ArchiveStore, Dialect } from './types.js';
import type { CoreTables } from './tables.js';
import type { AppendBatcher } from './append-batcher.js';
import { limitedStatements, type FastStatement, type StatementFactory } from './fast-statement.js';

/** Ids per `IN (…)` list: far below SQLite's and PostgreSQL's bound-parameter limits. */
const ID_CHUNK = 500;
/** Rows per purge statement, so a large purge never holds the event loop for long. */
const DELETE_BATCH = 1000;

interface Position {
  ts: number;
  seq: number;
}

/** One side of the range: a time bound (inclusive) or an item position (exclusive). */
type Bound = { ts: number; pos?: undefined } | { pos: Position; ts?: undefined };

interface Filters {
  with?: string | undefined;
  lower?: Bound | undefined;
  upper?: Bound | undefined;
}

interface Row {
  seq: number;
  id: string;
  ts: number;
  with_jid: string | null;
  value: string;
}

type ArchiveEb = ExpressionBuilder<CoreTables, 'archive'>;

type PageRow = { seq: number | string; id: string; ts: number | string; with_jid: string | null; value: string };

/**
 * The first (or last) page of a store without filters, which every login reads (the offline
 * queue, empty almost always): statements prepared once, shared by every store.
 */
export interface ArchivePageStatements {
  forward(limit: number): FastStatement<PageRow>;
  backward(limit: number): FastStatement<PageRow>;
}

export function archivePageStatements(statement: StatementFactory): ArchivePageStatements {
  const select = 'select "seq", "id", "ts", "with_jid", "value" from "archive" where "host" = ? and "user" = ? and "store" = ?';
  return {
    forward: limitedStatements<PageRow>(statement, (n) => `${select} order by "ts" asc, "seq" asc limit ${n}`),
    backward: limitedStatements<PageRow>(statement, (n) => `${select} order by "ts" desc, "seq" desc limit ${n}`),
  };
}

/** `batcher` is the database's one group commit, shared by every archive store on it (one fsync for all). */
export function createArchiveStore(db: Kysely<CoreTables>, dialect: Dialect, store: string, batcher: AppendBatcher, pages: ArchivePageStatements): ArchiveStore {
  if (store === '') throw new TypeError('an archive store needs a non-empty name');

  // Both indexes can serve a query that filters on the peer; without table statistics SQLite's
  // planner sometimes prefers archive_ts_idx and then walks every message of every peer in the
  // time range. Telling it the peer test is selective makes it pick archive_with_idx, which is
  // never worse. (SQLite: lang_corefunc.html#likelihood; PostgreSQL plans from statistics.)
  const withIs = (eb: ArchiveEb, jid: string): Expression<SqlBool> =>
    dialect === 'sqlite' ? sql<SqlBool>`likelihood(${eb('with_jid', '=', jid)}, 0.0625)` : eb('with_jid', '=', jid);

  const conditions = (eb: ArchiveEb, host: string, user: string, f: Filters): Expression<SqlBool>[] => {
    const c: Expression<SqlBool>[] = [eb('host', '=', host), eb('user', '=', user), eb('store', '=', store)];
    if (f.with !== undefined) c.push(withIs(eb, f.with));
    if (f.lower?.pos) c.push(eb(eb.refTuple('ts', 'seq'), '>', eb.tuple(f.lower.pos.ts, f.lower.pos.seq)));
    else if (f.lower) c.push(eb('ts', '>=', f.lower.ts));
    if (f.upper?.pos) c.push(eb(eb.refTuple('ts', 'seq'), '<', eb.tuple(f.upper.pos.ts, f.upper.pos.seq)));
    else if (f.upper) c.push(eb('ts', '<=', f.upper.ts));
    return c;
  };

  const columns = ['seq', 'id', 'ts', 'with_jid', 'value'] as const;

  /** Reads and deletes see every append made before them, even one nobody awaited. */
  const settled = async (): Promise<void> => {
    const pending = batcher.durable();
    if (pending) await pending;
  };

  const position = async (host: string, user: string, id: string): Promise<Position> => {
    const row = await db
      .selectFrom('archive')
      .select(['ts', 'seq'])
      .where('host', '=', host)
      .where('user', '=', user)
      .where('store', '=', store)
      .where('id', '=', id)
      .executeTakeFirst();
    if (row === undefined) {
      throw new StorageError('PARLEY_ERR_ITEM_NOT_FOUND', `archive "${store}" of ${user}@${host} has no item with id "${id}"`);
    }
    return { ts: Number(row.ts), seq: Number(row.seq) };
  };

  /** The rows with these ids, through the unique index; at most ids.length rows. */
  const rowsByIds = async (host: string, user: string, ids: readonly string[], f: Filters): Promise<Row[]> => {
    const rows: Row[] = [];
    for (const chunk of chunks([...new Set(ids)], ID_CHUNK)) {
      const found = await db
        .selectFrom('archive')
        .select(columns)
        .where('host', '=', host)
        .where('user', '=', user)
        .where('store', '=', store)
        .where('id', 'in', chunk)
        .execute();
      for (const r of found) {
        const row = normalise(r);
        if (matches(row, f)) rows.push(row);
      }
    }
    return rows;
  };

  return {
    async append(host, user, item) {
      if (!Number.isSafeInteger(item.when)) {
        throw new TypeError(`archive item "${item.id}": when must be whole milliseconds since the epoch, got ${item.when}`);
      }
      await batcher.append({ host, user, store, id: item.id, ts: item.when, with_jid: item.with ?? null, value: item.value });
    },

    async query(host, user, q) {
      if (!Number.isSafeInteger(q.limit) || q.limit < 0) {
        throw new RangeError(`archive query limit must be a whole number >= 0, got ${q.limit}`);
      }
      await settled();
      checkTime('start', q.start);
      checkTime('end', q.end);
      const after = q.after === undefined ? undefined : await position(host, user, q.after);
      const before = q.before === undefined ? undefined : await position(host, user, q.before);
      const f: Filters = { with: q.with, lower: lowerBound(q.start, after), upper: upperBound(q.end, before) };
      const reverse = q.reverse === true;

      let rows: Row[];
      if (q.ids === undefined && f.with === undefined && f.lower === undefined && f.upper === undefined) {
        rows = (await (reverse ? pages.backward : pages.forward)(q.limit + 1).all([host, user, store])).map(normalise);
      } else if (q.ids !== undefined) {
        rows = (await rowsByIds(host, user, q.ids, f)).sort((a, b) => (reverse ? compare(b, a) : compare(a, b)));
        rows = rows.slice(0, q.limit + 1);
      } else {
        const dir = reverse ? 'desc' : 'asc';
        // One row past the page tells whether the page is the last one in this direction.
        const found = await db
          .selectFrom('archive')
          .select(columns)
          .where((eb) => eb.and(conditions(eb, host, user, f)))
          .orderBy('ts', dir)
          .orderBy('seq', dir)
          .limit(q.limit + 1)
          .execute();
        rows = found.map(normalise);
      }
      return page(rows, q.limit);
    },

    async count(host, user, q = {}) {
      await settled();
      checkTime('start', q.start);
      checkTime('end', q.end);
      const f: Filters = { with: q.with, lower: lowerBound(q.start, undefined), upper: upperBound(q.end, undefined) };
      if (q.ids !== undefined) return (await rowsByIds(host, user, q.ids, f)).length;
      const row = await db
        .selectFrom('archive')
        .select((eb) => eb.fn.countAll<number | string | bigint>().as('n'))
        .where((eb) => eb.and(conditions(eb, host, user, f)))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    delete: remove,

    async replace(host, user, id, value) {
      await settled();
      const result = await db
        .updateTable('archive')
        .set({ value })
        .where('host', '=', host)
        .where('user', '=', user)
        .where('store', '=', store)
        .where('id', '=', id)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },

    async deleteAccount(host, user) {
      await remove(host, user);
    },
  };

  async function remove(host: string, user: string, which: { ids?: string[]; olderThan?: number } = {}): Promise<number> {
    const { ids, olderThan } = which;
    checkTime('olderThan', olderThan);
    await settled();
    let total = 0;
    if (ids !== undefined) {
      // An empty list deletes nothing: it must never widen into "delete everything".
      for (const chunk of chunks([...new Set(ids)], ID_CHUNK)) {
        let del = db
          .deleteFrom('archive')
          .where('host', '=', host)
          .where('user', '=', user)
          .where('store', '=', store)
          .where('id', 'in', chunk);
        if (olderThan !== undefined) del = del.where('ts', '<', olderThan);
        total += Number((await del.executeTakeFirst()).numDeletedRows);
      }
      return total;
    }
    for (;;) {
      let batch = db
        .selectFrom('archive')
        .select('seq')
        .where('host', '=', host)
        .where('user', '=', user)
        .where('store', '=', store);
      if (olderThan !== undefined) batch = batch.where('ts', '<', olderThan);
      const result = await db
        .deleteFrom('archive')
        .where('seq', 'in', batch.limit(DELETE_BATCH))
        .executeTakeFirst();
      const n = Number(result.numDeletedRows);
      total += n;
      if (n < DELETE_BATCH) return total;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
}

/** `start` (inclusive) and `after` (exclusive) folded into the one bound that implies the other. */
function lowerBound(start: number | undefined, after: Position | undefined): Bound | undefined {
  if (after === undefined) return start === undefined ? undefined : { ts: start };
  // (ts, seq) > after implies ts >= after.ts >= start; otherwise ts >= start > after.ts implies it.
  return start === undefined || after.ts >= start ? { pos: after } : { ts: start };
}

/** `end` (inclusive) and `before` (exclusive) folded likewise. */
function upperBound(end: number | undefined, before: Position | undefined): Bound | undefined {
  if (before === undefined) return end === undefined ? undefined : { ts: end };
  return end === undefined || before.ts <= end ? { pos: before } : { ts: end };
}

function compare(a: Position, b: Position): number {
  return a.ts - b.ts || a.seq - b.seq;
}

/** The SQL conditions of `conditions`, for the few rows fetched by id. */
function matches(r: Row, f: Filters): boolean {
  if (f.with !== undefined && r.with_jid !== f.with) return false;
  if (f.lower?.pos ? compare(r, f.lower.pos) <= 0 : f.lower !== undefined && r.ts < f.lower.ts) return false;
  if (f.upper?.pos ? compare(r, f.upper.pos) >= 0 : f.upper !== undefined && r.ts > f.upper.ts) return false;
  return true;
}

function page(rows: Row[], limit: number): ArchivePage {
  return { items: rows.slice(0, limit).map(toItem), complete: rows.length <= limit };
}

// PostgreSQL returns bigint columns as strings.
function normalise(r: { seq: number | string; id: string; ts: number | string; with_jid: string | null; value: string }): Row {
  return { seq: Number(r.seq), id: r.id, ts: Number(r.ts), with_jid: r.with_jid, value: r.value };
}

function toItem(r: Row): ArchiveItem {
  const item: ArchiveItem = { id: r.id, when: r.ts, value: r.value };
  if (r.with_jid !== null) item.with = r.with_jid;
  return item;
}

function checkTime(name: string, value: number | undefined): void {
  if (value !== undefined && !Number.isFinite(value)) {
    throw new RangeError(`archive ${name} must be milliseconds since the epoch, got ${value}`);
  }
}

function chunks<T>(list: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}
