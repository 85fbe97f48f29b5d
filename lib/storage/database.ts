// Opens the database behind every store (ARCHITECTURE.md §7): SQLite through better-sqlite3 (the
// embedded default) or PostgreSQL through a pg pool (for clusters), both behind Kysely so module
// code is written once. Opening also applies the core migrations, so the generic stores are
// ready when this resolves.
import { mkdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { dirname, resolve } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import {
  Kysely,
  PostgresDialect,
  SqliteDialect,
  type Dialect as KyselyDialect,
  type KyselyPlugin,
  type LogEvent,
  type RootOperationNode,
} from 'kysely';
import pg from 'pg';
import type { Metrics } from '../metrics.js';
import { AppendBatcher } from './append-batcher.js';
import { archivePageStatements, createArchiveStore } from './archive.js';
import { CORE_OWNER, coreMigrations } from './core-migrations.js';
import { StorageError, oneLine } from './errors.js';
import { createKeyValStore, keyValStatements } from './keyval.js';
import { statementFactory, type FastSql, type FastStatement, type StatementFactory } from './fast-statement.js';
import { createSchemaTable, migrate } from './migrations.js';
import { withStatementCache } from './statement-cache.js';
import { WalSync } from './wal-sync.js';
import type { CoreTables } from './tables.js';
import type { Database, Dialect, StorageConfig } from './types.js';

/** Connections per node when storage.pool is not set. */
export const DEFAULT_POOL_SIZE = 10;
/** How long opening a PostgreSQL connection may take before the query fails. */
const CONNECT_TIMEOUT_MS = 10_000;

export interface OpenOptions {
  /** Records every query's latency in `parley_storage_seconds`. */
  metrics?: Metrics;
}

interface Connection {
  dialect: Dialect;
  /** SQLite: the connection itself, for the archive's prepared group commit. */
  sqlite?: BetterSqlite3.Database;
  /** SQLite: makes commits durable off the event loop. */
  walSync?: WalSync;
  kysely: KyselyDialect;
  plugins: KyselyPlugin[];
  /** The one-line error for a failure while opening: names the file, or host:port (never a password). */
  openError(err: unknown): StorageError;
}

export async function openDatabase(config: StorageConfig, options: OpenOptions = {}): Promise<Database> {
  const connection = connect(config);
  const { metrics } = options;
  const db = new Kysely<CoreTables>({
    dialect: connection.kysely,
    plugins: connection.plugins,
    ...(metrics && {
      log: (event: LogEvent) =>
        metrics.storageSeconds.observe({ operation: operationOf(event.query.query) }, event.queryDurationMillis / 1000),
    }),
  });
  const dialect = connection.dialect;
  try {
    await createSchemaTable(db, dialect);
    await migrate(db, dialect, CORE_OWNER, coreMigrations(dialect));
    await connection.walSync?.durable();
  } catch (err) {
    await db.destroy().catch(() => undefined);
    throw err instanceof StorageError ? err : connection.openError(err);
  }

  const walSync = connection.walSync;
  const batcher = new AppendBatcher(db, connection.sqlite, walSync);
  const statements = statementFactory(dialect, db, connection.sqlite, walSync);
  const statement = metrics === undefined ? statements.statement : timedStatements(statements.statement, metrics);
  const keyval = keyValStatements(statement);
  const pages = archivePageStatements(statement);
  let closed = false;
  return {
    dialect,
    db: db as Kysely<any>,
    migrate: (owner, migrations) => migrate(db, dialect, owner, migrations),
    keyval: (store) => createKeyValStore(db, dialect, store, keyval),
    statement,
    archive: (store) => createArchiveStore(db, dialect, store, batcher, pages),
    durable: () => {
      const appends = batcher.durable();
      // Batched writes commit at the end of this turn; the log is synced after them.
      const batched = statements.batchedSettled();
      const writes = batched === undefined ? walSync?.durable() : batched.then(() => walSync?.durable());
      if (appends === undefined) return writes;
      if (writes === undefined) return appends;
      return Promise.all([appends, writes]).then(() => undefined);
    },
    async close() {
      if (closed) return;
      closed = true;
      // Appends and batched writes nobody waited for are written before the connection goes.
      await batcher.durable();
      await statements.batchedSettled();
      await walSync?.close();
      await db.destroy();
    },
  };
}

function connect(config: StorageConfig): Connection {
  switch (config.driver) {
    case 'sqlite':
      return openSqlite(config.path);
    case 'postgres':
      return openPostgres(config.url, config.pool);
    default:
      throw new StorageError('PARLEY_ERR_STORAGE', `unknown storage driver "${String(config.driver)}"; use driver: sqlite or driver: postgres`);
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
    // WAL: readers never block the writer. synchronous=NORMAL with WalSync doing FULL's fsync
    // of the log in the thread pool: a stanza acknowledged after a write survives a power cut, not
    // only a crash of the process, and no commit stops the event loop for the disk (WalSync).
    // (The first statement is also the first read of the file, so a file that is not a database
    // fails here, at open.)
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
  } catch (err) {
    sqlite?.close();
    throw sqliteOpenError(where, err);
  }
  const walSync = new WalSync(memory ? undefined : `${where}-wal`);
  return {
    dialect: 'sqlite',
    sqlite,
    walSync,
    kysely: new SqliteDialect({ database: withStatementCache(sqlite, () => walSync.wrote()) }),
    // Booleans are bound as 1/0 by the statement cache (SQLite has no boolean type).
    plugins: [],
    openError: (err) => sqliteOpenError(where, err),
  };
}

function sqliteOpenError(where: string, err: unknown): StorageError {
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

/** Where a PostgreSQL URL points, for messages: never the password. */
export interface PostgresTarget {
  host: string;
  port: string;
  database: string;
  user: string;
}

/** Parses a postgres:// (or postgresql://) URL enough to name its server in messages. */
export function postgresTarget(url: string | undefined): PostgresTarget {
  if (url === undefined || url === '') {
    throw new StorageError('PARLEY_ERR_STORAGE', 'storage.url is empty; set it to postgres://USER:PASSWORD@HOST:PORT/DATABASE for driver: postgres');
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new StorageError('PARLEY_ERR_STORAGE', 'storage.url is not a URL; write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new StorageError('PARLEY_ERR_STORAGE', `storage.url must start with postgres:// (got ${u.protocol}//); write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE`);
  }
  const param = (name: string) => u.searchParams.get(name) ?? undefined;
  const user = param('user') ?? (decodeURIComponent(u.username) || process.env.PGUSER || process.env.USER || 'postgres');
  return {
    // A Unix socket directory comes as ?host=/run/postgresql.
    host: param('host') ?? (decodeURIComponent(u.hostname) || 'localhost'),
    port: param('port') ?? (u.port || '5432'),
    database: decodeURIComponent(u.pathname.replace(/^\//, '')) || user,
    user,
  };
}

// bigint (int8) columns hold times in milliseconds, sequence numbers and counts; pg returns them
// as strings to be safe beyond 2^53. Parley's never get there, so they come back as numbers, as
// they do from SQLite; a value that could not be exact stays a string rather than be rounded.
const INT8 = pg.types.builtins.INT8;
function parseInt8(text: string): number | string {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : text;
}
const typeParsers = {
  getTypeParser(oid: number, format?: string) {
    if (oid === INT8 && format !== 'binary') return parseInt8;
    return pg.types.getTypeParser(oid, format as 'text');
  },
} as pg.CustomTypesConfig;

function openPostgres(url: string | undefined, pool: number | undefined): Connection {
  const target = postgresTarget(url);
  const size = pool ?? DEFAULT_POOL_SIZE;
  if (!Number.isSafeInteger(size) || size < 1) {
    throw new StorageError('PARLEY_ERR_STORAGE', `storage.pool must be a whole number of connections >= 1, got ${size}`);
  }
  const pgPool = new pg.Pool({
    connectionString: url,
    max: size,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    types: typeParsers,
  });
  // An idle connection that the server closes (a restart, a failover) is dropped by the pool and
  // replaced at the next query; without a listener its error would end the process.
  pgPool.on('error', () => undefined);
  return {
    dialect: 'postgres',
    kysely: new PostgresDialect({ pool: pgPool }),
    plugins: [],
    openError: (err) => postgresOpenError(target, err),
  };
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'ENOENT', 'EPIPE']);

/** The error codes of an error and of the errors it aggregates (a host with two addresses). */
function codesOf(err: unknown): string[] {
  const codes: string[] = [];
  const e = err as { code?: unknown; errors?: unknown } | undefined;
  if (typeof e?.code === 'string') codes.push(e.code);
  if (Array.isArray(e?.errors)) for (const inner of e.errors) codes.push(...codesOf(inner));
  return codes;
}

function messageOf(err: unknown): string {
  const text = oneLine(err);
  if (text !== '') return text;
  const inner = (err as { errors?: unknown } | undefined)?.errors;
  return Array.isArray(inner) && inner.length > 0 ? inner.map(oneLine).join('; ') : String(err);
}

/** One line for a failure to open a PostgreSQL database, with what to do about it. */
export function postgresOpenError(target: PostgresTarget, err: unknown): StorageError {
  const at = `${target.host}:${target.port}`;
  const codes = codesOf(err);
  const detail = messageOf(err);
  let message: string;
  if (codes.some((c) => UNREACHABLE.has(c)) || /timeout|terminated unexpectedly|Connection terminated/i.test(detail)) {
    message = `cannot reach PostgreSQL at ${at}: ${detail} (start PostgreSQL or fix storage.url)`;
  } else if (codes.includes('3D000')) {
    message = `PostgreSQL at ${at} has no database "${target.database}" (create it: createdb -h ${target.host} -p ${target.port} -U ${target.user} ${target.database}; or fix storage.url)`;
  } else if (codes.includes('28P01') || codes.includes('28000')) {
    message = `PostgreSQL at ${at} refused the login of "${target.user}": ${detail} (fix the user or password in storage.url, or pg_hba.conf)`;
  } else if (codes.includes('42501')) {
    message = `PostgreSQL at ${at}: user "${target.user}" may not create tables in database "${target.database}": ${detail} (grant it: GRANT CREATE ON SCHEMA public TO "${target.user}", or make it the database owner)`;
  } else {
    message = `cannot use PostgreSQL database "${target.database}" at ${at}: ${detail} (check storage.url and the server log)`;
  }
  return new StorageError('PARLEY_ERR_STORAGE', message, { cause: err });
}

/** Fast statements count in `parley_storage_seconds` as Kysely's queries do (its log hook). */
function timedStatements(factory: StatementFactory, metrics: Metrics): StatementFactory {
  return <Row>(text: FastSql): FastStatement<Row> => {
    const inner = factory<Row>(text);
    const source = typeof text === 'string' ? text : text.sqlite;
    const operation = /^\s*(select|insert|update|delete)\b/i.exec(source)?.[1]?.toLowerCase() ?? 'raw';
    const timed = <T>(run: () => Promise<T>): Promise<T> => {
      const started = performance.now();
      return run().finally(() => metrics.storageSeconds.observe({ operation }, (performance.now() - started) / 1000));
    };
    return {
      all: (params) => timed(() => inner.all(params)),
      first: (params) => timed(() => inner.first(params)),
      run: (params) => timed(() => inner.run(params)),
      batched: (params) => timed(() => inner.batched(params)),
    };
  };
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
