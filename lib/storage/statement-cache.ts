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

export function withStatementCache(sqlite: BetterSqlite3.Database, wrote: () => void = () => undefined, capacity = STATEMENT_CACHE_SIZE): SqliteDatabase {
  const cache = new Map<string, SqliteStatement>();
  const make = (sql: string): SqliteStatement => {
    const statement = sqlite.prepare(sql);
    if (statement.readonly && !ENDS_TRANSACTION.test(sql)) return statement;
    return {
      reader: statement.reader,
      get busy() { return statement.busy; },
      all(parameters) {
        try {
          return statement.all(parameters);
        } finally {
          wrote();
        }
      },
      run(parameters) {
        try {
          return statement.run(parameters);
        } finally {
          wrote();
        }
      },
      iterate(parameters) {
        wrote();
        return statement.iterate(parameters);
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
