// Statements written once in SQL and run without Kysely's query builder, for the few that every
// login or message runs. Building a query with Kysely (immutable nodes, then a compile pass) and
// running it through its driver (a promise-based connection mutex on SQLite) cost several times
// what SQLite takes to run a primary-key lookup; a login ran a dozen of them.
//
// The SQL is written for both dialects: identifiers in double quotes, `?` for each parameter
// (turned into $1, $2, ... for PostgreSQL), nothing else dialect-specific (or one text per
// dialect). Rows come back as the drivers return them, as from Kysely.
//
// On SQLite the statement is prepared once and run synchronously on the connection, except
// while a Kysely transaction holds it (between BEGIN and COMMIT, across awaits): then it goes
// through Kysely, which waits for the transaction to end, so that it neither reads nor joins
// another caller's uncommitted work. A statement that writes tells WalSync, as the statement
// cache does for Kysely's.
import type BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, type Kysely, type QueryResult } from 'kysely';
import type { Dialect } from './types.js';
import type { WalSync } from './wal-sync.js';

export type SqlParam = string | number | bigint | boolean | null | Buffer;

export interface FastStatement<Row> {
  /** Every row the statement returns. */
  all(params: readonly SqlParam[]): Promise<Row[]>;
  /** The first row, or undefined. */
  first(params: readonly SqlParam[]): Promise<Row | undefined>;
  /** Runs it for its effect: the number of rows it changed. */
  run(params: readonly SqlParam[]): Promise<number>;
  /**
   * Like `run`, for a write off the caller's critical path (an audit record, a last-logout
   * time): it runs at the end of this turn of the event loop with the other batched writes of
   * the turn, in order, in one transaction (one commit, one lock, one WAL sync instead of one
   * each); one that fails does not fail the others. Resolves once committed; `Database.durable()`
   * covers it. A read made before it resolves may not see it.
   */
  batched(params: readonly SqlParam[]): Promise<number>;
}

/** One text for both dialects, or one each. */
export type FastSql = string | { sqlite: string; postgres: string };

export type StatementFactory = <Row>(text: FastSql) => FastStatement<Row>;

export interface Statements {
  statement: StatementFactory;
  /** Settles once every batched write made so far is committed; undefined when none waits. */
  batchedSettled(): Promise<void> | undefined;
}

/** SQLite has no boolean type and better-sqlite3 binds none: 1 and 0, as the Kysely path binds them. */
function bindable(params: readonly SqlParam[]): unknown[] {
  for (let i = 0; i < params.length; i++) {
    if (typeof params[i] === 'boolean') return params.map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : p));
  }
  return params as unknown[];
}

/** `?` → `$1`, `$2`, ...: the statements are ours, so no `?` hides in a string literal. */
export function numberedPlaceholders(text: string): string {
  let n = 0;
  return text.replace(/\?/g, () => `$${++n}`);
}

const changed = (r: QueryResult<unknown>): number => Number(r.numAffectedRows ?? 0);

interface BatchedWrite {
  /** The statement as given to Kysely (the fallback, and PostgreSQL). */
  compiled: CompiledQuery;
  /** SQLite: the prepared statement and its parameters. */
  prepared?: () => BetterSqlite3.Statement;
  params: readonly SqlParam[];
  resolve(changes: number): void;
  reject(err: unknown): void;
}

/**
 * The batched writes of one database: collected during a turn of the event loop, written at
 * its end by `writeAll` in one transaction, batch after batch. When the transaction fails, each
 * write is tried again on its own (`writeOne`), so that only the bad one fails.
 */
class WriteBatches {
  private queue: BatchedWrite[] = [];
  /** The batch being written (and those before it); undefined when all are done. */
  private tail: Promise<void> | undefined;
  /** Set while the queue waits for the end of the turn. */
  private scheduled: Promise<void> | undefined;

  constructor(
    private readonly writeAll: (batch: readonly BatchedWrite[]) => Promise<number[]>,
    private readonly writeOne: (write: BatchedWrite) => Promise<number>,
  ) {}

  add(write: Omit<BatchedWrite, 'resolve' | 'reject'>): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      if (this.queue.length === 0) this.schedule();
      this.queue.push({ ...write, resolve, reject });
    });
  }

  settled(): Promise<void> | undefined {
    return this.scheduled ?? this.tail;
  }

  private schedule(): void {
    this.scheduled = new Promise<void>((started) => {
      setImmediate(() => {
        const batch = this.queue;
        this.queue = [];
        this.scheduled = undefined;
        const next: Promise<void> = (this.tail ?? Promise.resolve()).then(() => this.write(batch)).finally(() => {
          if (this.tail === next) this.tail = undefined;
        });
        this.tail = next;
        started(next);
      });
    });
  }

  private async write(batch: readonly BatchedWrite[]): Promise<void> {
    let changes: number[] | undefined;
    try {
      changes = await this.writeAll(batch);
    } catch {
      changes = undefined;
    }
    if (changes !== undefined) {
      batch.forEach((w, i) => w.resolve(changes[i]!));
      return;
    }
    for (const w of batch) await this.writeOne(w).then(w.resolve, w.reject);
  }
}

export function sqliteStatements(sqlite: BetterSqlite3.Database, db: Kysely<any>, walSync: WalSync | undefined): Statements {
  const viaKysely = (w: BatchedWrite) => db.executeQuery(w.compiled).then(changed);
  let runAll: ((batch: readonly BatchedWrite[]) => number[]) | undefined;
  const batches = new WriteBatches(
    async (batch) => {
      // A Kysely transaction holds the connection across awaits: ours would nest in it.
      if (sqlite.inTransaction) throw new Error('busy');
      runAll ??= sqlite.transaction((writes: readonly BatchedWrite[]) => writes.map((w) => w.prepared!().run(...bindable(w.params)).changes));
      try {
        return runAll(batch);
      } finally {
        walSync?.wrote();
      }
    },
    async (w) => {
      if (sqlite.inTransaction) return viaKysely(w);
      try {
        return w.prepared!().run(...bindable(w.params)).changes;
      } finally {
        walSync?.wrote();
      }
    },
  );

  const statement = <Row>(text: FastSql): FastStatement<Row> => {
    const source = typeof text === 'string' ? text : text.sqlite;
    // Prepared at first use: the table may be created by a migration after this is made.
    let prepared: BetterSqlite3.Statement | undefined;
    const prepare = (): BetterSqlite3.Statement => (prepared ??= sqlite.prepare(source));
    const viaKyselyRows = (params: readonly SqlParam[]) => db.executeQuery<Row>(CompiledQuery.raw(source, bindable(params)));
    /** Runs `use` on the prepared statement now, or through Kysely while a transaction holds the connection. */
    const now = <T>(params: readonly SqlParam[], use: (s: BetterSqlite3.Statement, p: unknown[]) => T, fallback: (r: QueryResult<Row>) => T): Promise<T> => {
      if (sqlite.inTransaction) return viaKyselyRows(params).then(fallback);
      try {
        const s = prepare();
        try {
          return Promise.resolve(use(s, bindable(params)));
        } finally {
          if (!s.readonly) walSync?.wrote();
        }
      } catch (err) {
        return Promise.reject(err);
      }
    };
    return {
      all: (params) => now(params, (s, p) => s.all(...p) as Row[], (r) => r.rows),
      first: (params) => now(params, (s, p) => s.get(...p) as Row | undefined, (r) => r.rows[0]),
      run: (params) => now(params, (s, p) => s.run(...p).changes, changed),
      batched: (params) => batches.add({ compiled: CompiledQuery.raw(source, bindable(params)), prepared: prepare, params }),
    };
  };
  return { statement, batchedSettled: () => batches.settled() };
}

export function postgresStatements(db: Kysely<any>): Statements {
  const batches = new WriteBatches(
    (batch) => db.transaction().execute(async (trx) => {
      const changes: number[] = [];
      for (const w of batch) changes.push(changed(await trx.executeQuery(w.compiled)));
      return changes;
    }),
    async (w) => changed(await db.executeQuery(w.compiled)),
  );
  const statement = <Row>(text: FastSql): FastStatement<Row> => {
    const source = numberedPlaceholders(typeof text === 'string' ? text : text.postgres);
    const execute = (params: readonly SqlParam[]) => db.executeQuery<Row>(CompiledQuery.raw(source, params as unknown[]));
    return {
      all: async (params) => (await execute(params)).rows,
      first: async (params) => (await execute(params)).rows[0],
      run: async (params) => changed(await execute(params)),
      batched: (params) => batches.add({ compiled: CompiledQuery.raw(source, params as unknown[]), params }),
    };
  };
  return { statement, batchedSettled: () => batches.settled() };
}

/**
 * A statement whose LIMIT is written into its text, one per distinct limit (the `keep` most
 * recent kept). SQLite plans a statement again at every run when its LIMIT is a bound parameter
 * (the value may change the plan): that doubled the cost of a one-row read.
 */
export function limitedStatements<Row>(statement: StatementFactory, text: (limit: number) => FastSql, keep = 16): (limit: number) => FastStatement<Row> {
  const made = new Map<number, FastStatement<Row>>();
  return (limit) => {
    if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`a LIMIT must be a whole number >= 0, got ${limit}`);
    let s = made.get(limit);
    if (s === undefined) {
      s = statement<Row>(text(limit));
      if (made.size >= keep) made.delete(made.keys().next().value!);
      made.set(limit, s);
    }
    return s;
  };
}

export function statementFactory(dialect: Dialect, db: Kysely<any>, sqlite: BetterSqlite3.Database | undefined, walSync: WalSync | undefined): Statements {
  return dialect === 'sqlite' && sqlite !== undefined ? sqliteStatements(sqlite, db, walSync) : postgresStatements(db);
}
