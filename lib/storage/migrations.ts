// Versioned schema steps (ARCHITECTURE.md §7): each owner (a module, or 'core') applies its
// pending migrations in version order, all in one transaction, recorded in `parley_schema`.
//
// On PostgreSQL several nodes of a cluster may start at once against one database. Every
// schema change therefore runs in a transaction that first takes one transaction-scoped
// advisory lock: the nodes migrate one after the other, and each reads the versions applied
// after it got the lock, so a step never runs twice. (SQLite serialises writers by itself.)
import { sql, type Kysely, type Transaction } from 'kysely';
import { StorageError, oneLine } from './errors.js';
import type { Dialect, Migration } from './types.js';
import type { CoreTables } from './tables.js';

/**
 * The advisory lock key of schema changes: "parley" in ASCII. Advisory locks are per database,
 * so two Parley databases on one PostgreSQL server never wait for each other.
 */
export const SCHEMA_LOCK = 0x7061726c6579;

async function lockSchema(trx: Transaction<CoreTables>, dialect: Dialect): Promise<void> {
  if (dialect === 'postgres') await sql`select pg_advisory_xact_lock(${sql.lit(SCHEMA_LOCK)})`.execute(trx);
}

/** Creates `parley_schema` unless it exists (under the lock: PostgreSQL's IF NOT EXISTS can race). */
export async function createSchemaTable(db: Kysely<CoreTables>, dialect: Dialect): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await lockSchema(trx, dialect);
    await createSchemaTableIn(trx);
  });
}

async function createSchemaTableIn(db: Kysely<CoreTables>): Promise<void> {
  await db.schema
    .createTable('parley_schema')
    .ifNotExists()
    .addColumn('owner', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    // bigint: milliseconds overflow PostgreSQL's 32-bit integer.
    .addColumn('applied_at', 'bigint', (c) => c.notNull())
    .addPrimaryKeyConstraint('parley_schema_pk', ['owner', 'version'])
    .execute();
}

/** Versions already applied for an owner, ascending. */
export async function appliedVersions(db: Kysely<CoreTables>, owner: string): Promise<number[]> {
  const rows = await db
    .selectFrom('parley_schema')
    .select('version')
    .where('owner', '=', owner)
    .orderBy('version')
    .execute();
  return rows.map((r) => Number(r.version));
}

function checkMigrations(owner: string, migrations: readonly Migration[]): Migration[] {
  if (owner === '') throw new StorageError('PARLEY_ERR_MIGRATION', 'a migration owner must be a non-empty name');
  const seen = new Set<number>();
  for (const m of migrations) {
    if (!Number.isSafeInteger(m.version) || m.version < 1) {
      throw new StorageError('PARLEY_ERR_MIGRATION', `migrations of ${owner}: version ${m.version} is not a positive integer`);
    }
    if (seen.has(m.version)) {
      throw new StorageError('PARLEY_ERR_MIGRATION', `migrations of ${owner}: version ${m.version} is declared twice`);
    }
    seen.add(m.version);
  }
  return [...migrations].sort((a, b) => a.version - b.version);
}

/**
 * Applies the owner's pending migrations. One transaction for the whole batch: if any step
 * fails, none of this call's steps stay applied, and the error names the owner and version.
 * Each step must use the `db` it is given (the transaction); on SQLite the outer handle would
 * wait for the transaction's connection forever.
 */
export async function migrate(db: Kysely<CoreTables>, dialect: Dialect, owner: string, migrations: readonly Migration[]): Promise<void> {
  const ordered = checkMigrations(owner, migrations);
  if (ordered.length === 0) return;
  await db.transaction().execute(async (trx) => {
    await lockSchema(trx, dialect);
    const applied = new Set(await appliedVersions(trx, owner));
    for (const m of ordered) {
      if (applied.has(m.version)) continue;
      try {
        // The contract hands migrations an untyped builder: their tables are their own.
        await m.up(trx as Kysely<any>);
      } catch (err) {
        throw new StorageError(
          'PARLEY_ERR_MIGRATION',
          `migration ${owner} version ${m.version} failed (all of ${owner}'s pending migrations were rolled back): ${oneLine(err)}`,
          { cause: err },
        );
      }
      await trx.insertInto('parley_schema').values({ owner, version: m.version, applied_at: Date.now() }).execute();
    }
  });
}
