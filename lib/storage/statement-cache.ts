// Prepared statements kept for reuse on the SQLite connection. Kysely asks better-sqlite3 to
// prepare every statement it runs, every time; SQLite's parse and plan of the same few dozen
// statements (the login and message paths run the same ones over and over) was a measurable share
// of the server's time. better-sqlite3 statements are reusable, and re-prepare themselves when
// the schema changes.
//
// Every statement that may change the database tells `wrote` once it ran (WalSync: the commit
// must reach the disk).
import type BetterSqlite3 from 'better-sqlite3';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

/** Distinct statements kept, least recently used first (statements with inlined values vary). */
export const STATEMENT_CACHE_SIZE = 500;

/** Transaction control counts as read-only to SQLite, but a COMMIT is when writes land. */
const ENDS_TRANSACTION = /^\s*(commit|end|release)\b/i;

/**
 * SQLite has no boolean type and better-sqlite3 refuses to bind a JS boolean ("SQLite3 can only
 * bind numbers, strings, bigints, buffers, and null"), while PostgreSQL has `boolean`: so that a
 * module can write `flag: true` once for both dialects, booleans are bound as 1 and 0 here. (A
 * Kysely plugin did it by rebuilding every query's tree, a tenth of a simple query's cost.) Reads
 * differ: a boolean column reads back as 1/0 on SQLite and true/false on PostgreSQL, so read it
 * with `Boolean(row.flag)` (or store 0/1 in an integer column).
 */
function bindable(parameters: readonly unknown[]): readonly unknown[] {
  for (let i = 0; i < parameters.length; i++) {
    if (typeof parameters[i] === 'boolean') return parameters.map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : p));
  }
  return parameters;
}

export function withStatementCache(sqlite: BetterSqlite3.Database, wrote: () => void = () => undefined, capacity = STATEMENT_CACHE_SIZE): SqliteDatabase {
  const cache = new Map<string, SqliteStatement>();
  const make = (sql: string): SqliteStatement => {
    const statement = sqlite.prepare(sql);
    if (statement.readonly && !ENDS_TRANSACTION.test(sql)) {
      return {
        reader: statement.reader,
        get busy() { return statement.busy; },
        all: (parameters) => statement.all(bindable(parameters)),
        run: (parameters) => statement.run(bindable(parameters)),
        iterate: (parameters) => statement.iterate(bindable(parameters)),
      } as SqliteStatement & { busy: boolean };
    }
    return {
      reader: statement.reader,
      get busy() { return statement.busy; },
      all(parameters) {
        try {
          return statement.all(bindable(parameters));
        } finally {
          wrote();
        }
      },
      run(parameters) {
        try {
          return statement.run(bindable(parameters));
        } finally {
          wrote();
        }
      },
      iterate(parameters) {
        wrote();
        return statement.iterate(bindable(parameters));
      },
    } as SqliteStatement & { busy: boolean };
  };
  return {
    close: () => {
      cache.clear();
      sqlite.close();
    },
    prepare(sql: string): SqliteStatement {
      const hit = cache.get(sql) as (SqliteStatement & { busy?: boolean }) | undefined;
      if (hit !== undefined) {
        // One still iterating (a streamed query) cannot run again until it is done: a fresh one.
        if (hit.busy) return make(sql);
        cache.delete(sql);
        cache.set(sql, hit);
        return hit;
      }
      const statement = make(sql);
      cache.set(sql, statement);
      if (cache.size > capacity) cache.delete(cache.keys().next().value!);
      return statement;
    },
  };
}
