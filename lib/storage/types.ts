// The storage contract. Implementations: SQLite (better-sqlite3, the embedded default) and
// PostgreSQL (pg, for clusters), both through Kysely so module code is written once. The same
// contract suite (spec/storage/) runs against both.
//
// Writing module SQL that both accept: build queries with Kysely (identifiers are quoted, so a
// column may be called `user`); time in milliseconds as `bigint` (read back as numbers on both);
// booleans as `integer` 0/1, or `boolean` read through Boolean(); upserts with onConflict();
// `forUpdate()` only when dialect is 'postgres'; order text with care (PostgreSQL sorts by the
// database's collation, SQLite by bytes). SQLite runs one transaction at a time; PostgreSQL runs
// a pool's worth at once (and other nodes'), so a transaction that reads, then writes what it
// read (a max()+1, a counter) must lock the row it read (forUpdate) or rest on a unique key.
import type { Kysely } from 'kysely';
import type { FastSql, FastStatement } from './fast-statement.js';

export type { FastSql, FastStatement, SqlParam } from './fast-statement.js';

export type Dialect = 'sqlite' | 'postgres';

export interface StorageConfig {
  driver: 'sqlite' | 'postgres';
  /** SQLite: a file path, or ':memory:'. */
  path?: string;
  /** PostgreSQL: a connection string, postgres://USER:PASSWORD@HOST:PORT/DATABASE. */
  url?: string;
  /** PostgreSQL: connections in the pool of this node; default 10. */
  pool?: number;
}

/** One versioned schema step of one owner (a module, or 'core'). Applied once, in order. */
export interface Migration {
  version: number;
  up(db: Kysely<any>): Promise<void>;
}

export interface Database {
  readonly dialect: Dialect;
  /** The query builder; table types are the owning module's business. */
  readonly db: Kysely<any>;
  /** Applies the owner's pending migrations in one transaction, recording them in `parley_schema`. */
  migrate(owner: string, migrations: readonly Migration[]): Promise<void>;
  keyval(store: string): KeyValStore;
  archive(store: string): ArchiveStore;
  /**
   * A statement in SQL both dialects accept (double-quoted identifiers, `?` parameters), run
   * without Kysely's query building: for the few statements on the hottest paths (a login's
   * credential read, say). Everything else is clearer written with `db`. lib/storage/fast-statement.ts.
   */
  statement<Row>(sql: FastSql): FastStatement<Row>;
  /**
   * Resolves once every archive append and batched write (FastStatement.batched) made so far is
   * committed and on disk (each one's own promise says whether it succeeded); undefined when none
   * is waiting. For callers that let appends
   * run while they go on, and must know when what they did is on disk (XEP-0198 acks).
   */
  durable(): Promise<void> | undefined;
  /** Writes the appends still waiting, then closes. */
  close(): Promise<void>;
}

/** Per-account small documents: private XML, vCards, preferences. Values are strings (XML or JSON). */
export interface KeyValStore {
  get(host: string, user: string, key: string): Promise<string | undefined>;
  set(host: string, user: string, key: string, value: string): Promise<void>;
  /**
   * `set` for a write nobody waits on (a last-logout time): batched with the other writes of
   * this turn of the event loop into one transaction (FastStatement.batched).
   */
  setBatched(host: string, user: string, key: string, value: string): Promise<void>;
  delete(host: string, user: string, key: string): Promise<void>;
  keys(host: string, user: string): Promise<string[]>;
  /** Removes everything this store holds for the account. */
  deleteAccount(host: string, user: string): Promise<void>;
}

export interface ArchiveItem {
  /** Unique within (store, host, user); e.g. a stanza-id. */
  id: string;
  /** Milliseconds since the epoch. */
  when: number;
  /** The peer (a bare JID) for filtering; optional. */
  with?: string;
  /** The stored payload, usually serialised XML. */
  value: string;
}

export interface ArchiveQuery {
  with?: string;
  start?: number;
  end?: number;
  /** Items strictly after this id (in archive order). */
  after?: string;
  /** Items strictly before this id (in archive order). */
  before?: string;
  ids?: string[];
  /** Page size; required so that no query is unbounded. */
  limit: number;
  /** Newest first when true (for a "before" page or "last page" query). */
  reverse?: boolean;
}

export interface ArchivePage {
  items: ArchiveItem[];
  /** True when no item exists beyond this page in the query direction. */
  complete: boolean;
}

/** Ordered logs per account (offline queues, message archives): appended to; a value may be replaced in place (tombstones). */
export interface ArchiveStore {
  append(host: string, user: string, item: ArchiveItem): Promise<void>;
  query(host: string, user: string, q: ArchiveQuery): Promise<ArchivePage>;
  count(host: string, user: string, q?: Omit<ArchiveQuery, 'limit' | 'after' | 'before' | 'reverse'>): Promise<number>;
  /** Deletes the given ids, or everything older than `before` (ms), or all when neither is given. */
  delete(host: string, user: string, which?: { ids?: string[]; olderThan?: number }): Promise<number>;
  /**
   * Replaces the stored value of one item in place (a tombstone), in one statement: its id, time,
   * peer and place in archive order stay. Waits for appends still pending, so an item appended
   * just before is found. False when the account has no item with that id.
   */
  replace(host: string, user: string, id: string, value: string): Promise<boolean>;
  deleteAccount(host: string, user: string): Promise<void>;
}
