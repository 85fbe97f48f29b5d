// The generic key-value store: small per-account documents (private XML, vCards, preferences).
// Every query is a primary-key lookup or a primary-key prefix range.
import { sql, type Kysely } from 'kysely';
import type { Dialect, KeyValStore } from './types.js';
import type { CoreTables } from './tables.js';

export function createKeyValStore(db: Kysely<CoreTables>, dialect: Dialect, store: string): KeyValStore {
  if (store === '') throw new TypeError('a key-value store needs a non-empty name');
  // Keys come back in byte order on both dialects: SQLite compares text as bytes, PostgreSQL by
  // the database's collation unless told "C" (a sort of one account's few keys).
  const byKey = dialect === 'postgres' ? sql<string>`${sql.ref('key')} collate "C"` : sql<string>`${sql.ref('key')}`;
  const account = (host: string, user: string) =>
    db.selectFrom('keyval').where('host', '=', host).where('user', '=', user).where('store', '=', store);

  return {
    async get(host, user, key) {
      const row = await account(host, user).select('value').where('key', '=', key).executeTakeFirst();
      return row?.value;
    },

    async set(host, user, key, value) {
      const updated_at = Date.now();
      await db
        .insertInto('keyval')
        .values({ host, user, store, key, value, updated_at })
        .onConflict((oc) => oc.columns(['host', 'user', 'store', 'key']).doUpdateSet({ value, updated_at }))
        .execute();
    },

    async delete(host, user, key) {
      await db
        .deleteFrom('keyval')
        .where('host', '=', host)
        .where('user', '=', user)
        .where('store', '=', store)
        .where('key', '=', key)
        .execute();
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
