// The tables of the generic stores, owned by 'core'. Every per-account table has `host` from its
// first migration (ARCHITECTURE.md §7): one database serves many domains.
import type { Kysely } from 'kysely';
import type { Dialect, Migration } from './types.js';

export const CORE_OWNER = 'core';

export function coreMigrations(dialect: Dialect): Migration[] {
  return [
    {
      version: 1,
      async up(db: Kysely<any>): Promise<void> {
        await db.schema
          .createTable('keyval')
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('user', 'text', (c) => c.notNull())
          .addColumn('store', 'text', (c) => c.notNull())
          .addColumn('key', 'text', (c) => c.notNull())
          .addColumn('value', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint('keyval_pk', ['host', 'user', 'store', 'key'])
          .execute();

        // `seq` is the insertion order. On SQLite an INTEGER PRIMARY KEY AUTOINCREMENT is the
        // rowid and is never reused, even after the newest rows are deleted. On PostgreSQL a
        // bigint identity (a sequence, never reused either); BY DEFAULT rather than ALWAYS so
        // that `parley migrate` can copy rows with their seq (then moves the sequence past them).
        let archive = db.schema.createTable('archive');
        archive =
          dialect === 'sqlite'
            ? archive.addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
            : archive.addColumn('seq', 'bigint', (c) => c.primaryKey().generatedByDefaultAsIdentity());
        await archive
          .addColumn('host', 'text', (c) => c.notNull())
          .addColumn('user', 'text', (c) => c.notNull())
          .addColumn('store', 'text', (c) => c.notNull())
          .addColumn('id', 'text', (c) => c.notNull())
          .addColumn('ts', 'bigint', (c) => c.notNull())
          .addColumn('with_jid', 'text')
          .addColumn('value', 'text', (c) => c.notNull())
          .addUniqueConstraint('archive_id_unique', ['host', 'user', 'store', 'id'])
          .execute();
        // Archive order is (ts, seq); `seq` is spelled out in both indexes so that every page,
        // cursor and time range is one ordered index range on any dialect, never a sort.
        await db.schema
          .createIndex('archive_ts_idx')
          .on('archive')
          .columns(['host', 'user', 'store', 'ts', 'seq'])
          .execute();
        await db.schema
          .createIndex('archive_with_idx')
          .on('archive')
          .columns(['host', 'user', 'store', 'with_jid', 'ts', 'seq'])
          .execute();
      },
    },
  ];
}
