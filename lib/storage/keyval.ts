// The generic key-value store: small per-account documents (private XML, vCards, preferences).
// Every query is a primary-key lookup or a primary-key prefix range.
import { sql, type Kysely } from 'kysely';
import type { Dialect, KeyValStore } from './types.js';
import type { CoreTables } from './tables.js';
import type { FastStatement, StatementFactory } from './fast-statement.js';

/**
 * The reads and writes of one key, which run at every login for several stores (preferences,
 * last activity, legacy bookmarks): statements prepared once per database and shared by every
 * store (fast-statement.ts).
 */
export interface KeyValStatements {
  get: FastStatement<{ value: string }>;
  upsert: FastStatement<never>;
  delete: FastStatement<never>;
}

export function keyValStatements(statement: StatementFactory): KeyValStatements {
  return {
    get: statement('select "value" from "keyval" where "host" = ? and "user" = ? and "store" = ? and "key" = ?'),
    upsert: statement(
      'insert into "keyval" ("host", "user", "store", "key", "value", "updated_at") values (?, ?, ?, ?, ?, ?) ' +
        'on conflict ("host", "user", "store", "key") do update set "value" = excluded."value", "updated_at" = excluded."updated_at"',
    ),
    delete: statement('delete from "keyval" where "host" = ? and "user" = ? and "store" = ? and "key" = ?'),
  };
}

export function createKeyValStore(db: Kysely<CoreTables>, dialect: Dialect, store: string, statements: KeyValStatements): KeyValStore {
  if (store === '') throw new TypeError('a key-value store needs a non-empty name');
  // Keys come back in byte order on both dialects: SQLite compares text as bytes, PostgreSQL by
  // the database's collation unless told "C" (a sort of one account's few keys).
  const byKey = dialect === 'postgres' ? sql<string>`${sql.ref('key')} collate "C"` : sql<string>`${sql.ref('key')}`;
  const account = (host: string, user: string) =>
    db.selectFrom('keyval').where('host', '=', host).where('user', '=', user).where('store', '=', store);

  return {
    async get(host, user, key) {
      return (await statements.get.first([host, user, store, key]))?.value;
    },

    async set(host, user, key, value) {
      await statements.upsert.run([host, user, store, key, value, Date.now()]);
    },

    async setBatched(host, user, key, value) {
      await statements.upsert.batched([host, user, store, key, value, Date.now()]);
    },

    async delete(host, user, key) {
      await statements.delete.run([host, user, store, key]);
    },

    async keys(host, user) {
      const rows = await account(host, user).select('key').orderBy(byKey).execute();
      return rows.map((r) => r.key);
    },

    async deleteAccount(host, user) {
      await db.deleteFrom('keyval').where('host', '=', host).where('user', '=', user).where('store', '=', store).execute();
    },
  };
}
