// Opens the database behind every store (ARCHITECTURE.md §7): SQLite through better-sqlite3 now,
// PostgreSQL through pg later, both behind Kysely so module code is written once. Opening also
// applies the core migrations, so the generic stores are ready when this resolves.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, type Dialect as KyselyDialect, type LogEvent, type RootOperationNode } from 'kysely';
import type { Metrics } from '../metrics.js';
import { createArchiveStore } from './archive.js';
import { CORE_OWNER, coreMigrations } from './core-migrations.js';
import { StorageError, oneLine } from './errors.js';
import { createKeyValStore } from './keyval.js';
import { createSchemaTable, migrate } from './migrations.js';
import type { CoreTables } from './tables.js';
import type { Database, Dialect, StorageConfig } from './types.js';

export interface OpenOptions {
  /** Records every query's latency in `parley_storage_seconds`. */
  metrics?: Metrics;
}

interface Connection {
  dialect: Dialect;
  kysely: KyselyDialect;
  /** What an admin reads in an error: the file path (never a connection string's password). */
  where: string;
}

export async function openDatabase(config: StorageConfig, options: OpenOptions = {}): Promise<Database> {
  const connection = connect(config);
  const { metrics } = options;
  const db = new Kysely<CoreTables>({
    dialect: connection.kysely,
    ...(metrics && {
      log: (event: LogEvent) =>
        metrics.storageSeconds.observe({ operation: operationOf(event.query.query) }, event.queryDurationMillis / 1000),
    }),
  });
  try {
    await createSchemaTable(db);
    await migrate(db, CORE_OWNER, coreMigrations(connection.dialect));
  } catch (err) {
    await db.destroy();
    throw err instanceof StorageError ? err : openError(connection.where, err);
  }

  let closed = false;
  return {
    dialect: connection.dialect,
    db: db as Kysely<any>,
    migrate: (owner, migrations) => migrate(db, owner, migrations),
    keyval: (store) => createKeyValStore(db, store),
    archive: (store) => createArchiveStore(db, connection.dialect, store),
    async close() {
      if (closed) return;
      closed = true;
      await db.destroy();
    },
  };
}

function connect(config: StorageConfig): Connection {
  switch (config.driver) {
    case 'sqlite':
      return openSqlite(config.path);
    case 'postgres':
      // Later: a branch returning { dialect: 'postgres', kysely: new PostgresDialect({ pool }) }.
      throw new StorageError('PARLEY_ERR_STORAGE', 'PostgreSQL storage is not available yet; use driver: sqlite');
    default:
      throw new StorageError('PARLEY_ERR_STORAGE', `unknown storage driver "${String(config.driver)}"; use driver: sqlite`);
  }
}

function openSqlite(path: string | undefined): Connection {
  if (path === undefined || path === '') {
    throw new StorageError('PARLEY_ERR_STORAGE', 'storage.path is empty; set it to a database file (or ":memory:") for driver: sqlite');
  }
  const memory = path === ':memory:';
  const where = memory ? path : resolve(path);
  let sqlite: BetterSqlite3.Database | undefined;
  try {
    if (!memory) mkdirSync(dirname(where), { recursive: true });
    sqlite = new BetterSqlite3(where, { timeout: 5000 });
    // WAL: readers never block the writer. synchronous=FULL: a stanza acknowledged after a write
    // survives a power cut, not only a crash of the process. (The first statement is also the
    // first read of the file, so a file that is not a database fails here, at open.)
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
  } catch (err) {
    sqlite?.close();
    throw openError(where, err);
  }
  return { dialect: 'sqlite', kysely: new SqliteDialect({ database: sqlite }), where };
}

function openError(where: string, err: unknown): StorageError {
  const code = err instanceof Error ? (err as Error & { code?: unknown }).code : undefined;
  let hint: string;
  switch (code) {
    case 'SQLITE_NOTADB':
    case 'SQLITE_CORRUPT':
      hint = 'the file is not a usable SQLite database: move it aside or point storage.path at another file';
      break;
    case 'ENOTDIR':
    case 'EEXIST':
      hint = 'part of that path is a file, not a directory: fix storage.path';
      break;
    default:
      hint = 'make sure its directory exists and is writable by the user running Parley, or change storage.path';
  }
  return new StorageError('PARLEY_ERR_STORAGE', `cannot open the SQLite database ${where} (${oneLine(err)}): ${hint}`, {
    cause: err,
  });
}

function operationOf(node: RootOperationNode): string {
  switch (node.kind) {
    case 'SelectQueryNode':
      return 'select';
    case 'InsertQueryNode':
      return 'insert';
    case 'UpdateQueryNode':
      return 'update';
    case 'DeleteQueryNode':
      return 'delete';
    case 'RawNode':
      return 'raw';
    default:
      return 'schema';
  }
}
