// Prepared statements kept for reuse on the SQLite connection. Kysely asks better-sqlite3 to
// prepare every statement it runs, every time; SQLite's parse and plan of the same few dozen
// statements (the login and message paths run the same ones over and over) was a measurable share
// of the server's time. better-sqlite3 statements are reusable, and re-prepare themselves when
// the schema changes.
import type BetterSqlite3 from 'better-sqlite3';
import type { SqliteDatabase, SqliteStatement } from 'kysely';

/** Distinct statements kept, least recently used first (statements with inlined values vary). */
export const STATEMENT_CACHE_SIZE = 500;

export function withStatementCache(sqlite: BetterSqlite3.Database, capacity = STATEMENT_CACHE_SIZE): SqliteDatabase {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => {
      cache.clear();
      sqlite.close();
    },
    prepare(sql: string): SqliteStatement {
      const hit = cache.get(sql);
      if (hit !== undefined) {
        // One still iterating (a streamed query) cannot run again until it is done: a fresh one.
        if (hit.busy) return sqlite.prepare(sql);
        cache.delete(sql);
        cache.set(sql, hit);
        return hit;
      }
      const statement = sqlite.prepare(sql);
      cache.set(sql, statement);
      if (cache.size > capacity) cache.delete(cache.keys().next().value!);
      return statement;
    },
  };
}
