// Copies every table of one Parley database into another (`parley migrate`): SQLite, the
// embedded default, into PostgreSQL when a server outgrows one node.
//
// Both databases must already be at the same schema versions (the caller applies the core,
// accounts and module migrations to both first). The copy reads the source in one transaction,
// a consistent snapshot even if something still writes to it, and writes the target in one
// transaction: it lands whole, with its row counts verified, or not at all.
import { sql, type Kysely, type Transaction } from 'kysely';
import { StorageError, oneLine } from './errors.js';
import type { Database, Dialect } from './types.js';

export interface CopyOptions {
  /** Replace whatever the target holds instead of refusing a target that is not empty. */
  force?: boolean;
  /** Called after each table, in copy order. */
  onTable?(table: string, rows: number): void;
}

export interface CopySummary {
  /** Every copied table, in copy order (parents before the tables that reference them). */
  tables: Array<{ table: string; rows: number }>;
  rows: number;
  /** Tables that exist only in the target (nothing to copy) or only in the source but empty. */
  skipped: string[];
  /** Rows the target held and --force deleted. */
  replaced: number;
}

/** The schema-version table: each side keeps its own records, which must match. */
const SCHEMA_TABLE = 'parley_schema';
/** Stay far below PostgreSQL's 65,535 parameters per statement (and SQLite's 32,766). */
const MAX_PARAMETERS = 30_000;
const MAX_BATCH_ROWS = 1000;

type Db = Kysely<any>;

export async function copyDatabase(source: Database, target: Database, options: CopyOptions = {}): Promise<CopySummary> {
  if (source.dialect !== 'sqlite') {
    throw new StorageError('PARLEY_ERR_COPY', 'the source of a copy must be an SQLite database (sqlite:PATH)');
  }
  return source.db.transaction().execute((src) =>
    target.db.transaction().execute((dst) => copyIn(src, dst, target.dialect, options)),
  );
}

async function copyIn(src: Transaction<any>, dst: Transaction<any>, targetDialect: Dialect, options: CopyOptions): Promise<CopySummary> {
  await checkVersions(src, dst);
  const sourceTables = await tablesOf(src, 'sqlite');
  const targetTables = await tablesOf(dst, targetDialect);
  const skipped: string[] = [];

  for (const [table] of sourceTables) {
    if (targetTables.has(table)) continue;
    const rows = await countRows(src, table);
    if (rows > 0) {
      throw new StorageError(
        'PARLEY_ERR_COPY',
        `table ${table} (${rows} rows) has no counterpart in the target: the module that owns it is not part of this Parley; upgrade Parley or empty that table first`,
      );
    }
    skipped.push(table);
  }
  for (const [table, columns] of sourceTables) {
    const known = targetTables.get(table);
    if (known === undefined) continue;
    const missing = columns.filter((c) => !known.includes(c));
    if (missing.length > 0) {
      throw new StorageError('PARLEY_ERR_COPY', `table ${table}: the target has no column ${missing.join(', ')}; both databases must be at the same schema version`);
    }
  }
  for (const table of targetTables.keys()) if (!sourceTables.has(table)) skipped.push(table);

  const order = await dependencyOrder(dst, targetDialect, [...targetTables.keys()].filter((t) => sourceTables.has(t)));

  // The target must hold nothing yet, unless the admin asked to replace it.
  const present: Array<{ table: string; rows: number }> = [];
  for (const table of targetTables.keys()) {
    const rows = await countRows(dst, table);
    if (rows > 0) present.push({ table, rows });
  }
  let replaced = 0;
  if (present.length > 0) {
    if (options.force !== true) {
      const list = present.map((p) => `${p.table}: ${p.rows}`).join(', ');
      throw new StorageError('PARLEY_ERR_TARGET_NOT_EMPTY', `the target database already holds data (${list} rows); migrate into an empty database, or pass --force to replace what it holds`);
    }
    const dependents = await dependencyOrder(dst, targetDialect, [...targetTables.keys()]);
    for (const table of dependents.reverse()) replaced += Number((await dst.deleteFrom(table).executeTakeFirst()).numDeletedRows);
  }

  const copied: CopySummary['tables'] = [];
  for (const table of order) {
    const columns = sourceTables.get(table)!;
    const rows = await copyTable(src, dst, table, columns);
    copied.push({ table, rows });
    options.onTable?.(table, rows);
  }

  if (targetDialect === 'postgres') await advanceSequences(dst);

  // Verify: every table holds exactly what the source held.
  for (const { table, rows } of copied) {
    const [inSource, inTarget] = [await countRows(src, table), await countRows(dst, table)];
    if (inSource !== rows || inTarget !== rows) {
      throw new StorageError('PARLEY_ERR_COPY', `table ${table}: ${inSource} rows in the source, ${rows} read, ${inTarget} in the target; nothing was kept`);
    }
  }
  return { tables: copied, rows: copied.reduce((n, t) => n + t.rows, 0), skipped: skipped.sort(), replaced };
}

/** The source must not be at a schema version the target does not know (a newer Parley wrote it). */
async function checkVersions(src: Db, dst: Db): Promise<void> {
  const read = async (db: Db) =>
    new Set((await db.selectFrom(SCHEMA_TABLE).select(['owner', 'version']).execute()).map((r) => `${r.owner} version ${Number(r.version)}`));
  const [theirs, ours] = [await read(src), await read(dst)];
  const unknown = [...theirs].filter((v) => !ours.has(v));
  if (unknown.length > 0) {
    throw new StorageError('PARLEY_ERR_COPY', `the source database has schema steps this Parley does not know (${unknown.join(', ')}): it was written by a newer Parley; migrate with that version`);
  }
}

/** Table name → column names, of the tables Parley uses (not the schema-version table). */
async function tablesOf(db: Db, dialect: Dialect): Promise<Map<string, string[]>> {
  let tables = await db.introspection.getTables();
  if (dialect === 'postgres') {
    const { rows } = await sql<{ schema: string }>`select current_schema() as schema`.execute(db);
    tables = tables.filter((t) => t.schema === rows[0]?.schema);
  }
  return new Map(
    tables
      .filter((t) => !t.isView && t.name !== SCHEMA_TABLE && !t.name.startsWith('sqlite_'))
      .map((t) => [t.name, t.columns.map((c) => c.name)] as const)
      .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)),
  );
}

async function countRows(db: Db, table: string): Promise<number> {
  const row = await db.selectFrom(table).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Tables ordered so that a table comes after every table its foreign keys reference. */
async function dependencyOrder(db: Db, dialect: Dialect, tables: string[]): Promise<string[]> {
  const parents = new Map<string, Set<string>>(tables.map((t) => [t, new Set<string>()]));
  if (dialect === 'postgres') {
    const { rows } = await sql<{ child: string; parent: string }>`
      select ch.relname as child, pa.relname as parent
      from pg_constraint c
      join pg_class ch on ch.oid = c.conrelid
      join pg_class pa on pa.oid = c.confrelid
      where c.contype = 'f' and ch.relnamespace = (select oid from pg_namespace where nspname = current_schema())`.execute(db);
    for (const r of rows) if (r.child !== r.parent) parents.get(r.child)?.add(r.parent);
  } else {
    for (const t of tables) {
      const { rows } = await sql<{ table: string }>`select "table" from pragma_foreign_key_list(${t})`.execute(db);
      for (const r of rows) if (r.table !== t) parents.get(t)?.add(r.table);
    }
  }
  const out: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (t: string, path: string[]) => {
    if (state.get(t) === 'done') return;
    if (state.get(t) === 'visiting') {
      throw new StorageError('PARLEY_ERR_COPY', `tables ${[...path, t].join(' -> ')} reference each other in a cycle; cannot order the copy`);
    }
    state.set(t, 'visiting');
    for (const p of [...(parents.get(t) ?? [])].sort()) if (parents.has(p)) visit(p, [...path, t]);
    state.set(t, 'done');
    out.push(t);
  };
  for (const t of [...tables].sort()) visit(t, []);
  return out;
}

/** Streams one table from the source into the target in multi-row INSERTs; returns the row count. */
async function copyTable(src: Db, dst: Db, table: string, columns: string[]): Promise<number> {
  const batchRows = Math.max(1, Math.min(MAX_BATCH_ROWS, Math.floor(MAX_PARAMETERS / Math.max(1, columns.length))));
  let batch: Record<string, unknown>[] = [];
  let rows = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    try {
      await dst.insertInto(table).values(batch).execute();
    } catch (err) {
      throw new StorageError('PARLEY_ERR_COPY', `copying table ${table} failed in rows ${rows + 1}-${rows + batch.length}: ${oneLine(err)}; nothing was kept`, { cause: err });
    }
    rows += batch.length;
    batch = [];
  };
  for await (const row of src.selectFrom(table).select(columns).stream()) {
    batch.push(row as Record<string, unknown>);
    if (batch.length >= batchRows) await flush();
  }
  await flush();
  return rows;
}

/**
 * Rows keep their identity values (the archive's seq, the order of messages); each sequence then
 * moves past the largest one copied, so that new rows never collide with them.
 */
async function advanceSequences(db: Db): Promise<void> {
  const { rows } = await sql<{ table: string; column: string }>`
    select table_name as "table", column_name as "column" from information_schema.columns
    where table_schema = current_schema() and (is_identity = 'YES' or column_default like 'nextval(%')`.execute(db);
  for (const { table, column } of rows) {
    await sql`select setval(pg_get_serial_sequence(quote_ident(${table}), ${column}), coalesce(max(${sql.ref(column)}), 0) + 1, false) from ${sql.table(table)}`.execute(db);
  }
}
