// The databases the storage specs run against (ARCHITECTURE.md §11): SQLite in memory or in a
// temporary file, and a real PostgreSQL server. Every PostgreSQL run gets its own database,
// parley_test_<random>, created on first use and dropped when mocha finishes, so that runs
// never collide; inside it each test opens a fresh schema (its search_path), which is as empty
// as a new database and much cheaper to make.
//
// PARLEY_TEST_PG_URL names the server (default postgres://postgres@127.0.0.1:5432/postgres, a
// database to connect to for CREATE DATABASE). When it cannot be reached, PostgreSQL specs skip
// with PG_SKIP_MESSAGE rather than fail.
import { createHash, randomBytes } from 'node:crypto';
import { CompiledQuery, sql, type Kysely } from 'kysely';
import pg from 'pg';
import { openDatabase } from '../../lib/storage/database.js';
import type { Database, Dialect } from '../../lib/storage/types.js';

export const PG_ADMIN_URL = process.env.PARLEY_TEST_PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres';

function serverOf(url: string): string {
  const u = new URL(url);
  return `${u.hostname || 'localhost'}:${u.port || '5432'}`;
}

export const PG_SKIP_MESSAGE = `PostgreSQL not reachable at ${serverOf(PG_ADMIN_URL)}: start it (pg_ctlcluster 15 main start) to run these tests`;

let reachable: Promise<boolean> | undefined;

/** Whether the test server answers (checked once per process). */
export function postgresReachable(): Promise<boolean> {
  reachable ??= (async () => {
    const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('select 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  })();
  return reachable;
}

/** The reason to skip PostgreSQL specs, or undefined when the server is there. */
export async function postgresSkipReason(): Promise<string | undefined> {
  return (await postgresReachable()) ? undefined : PG_SKIP_MESSAGE;
}

function withDatabase(url: string, database: string, params: Record<string, string> = {}): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

/** Runs statements on the server's admin database, one connection each time. */
async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** One throw-away database on the test server. */
export class PostgresTestDatabase {
  private schemas = 0;
  private dropped = false;

  private constructor(readonly name: string) {}

  /**
   * CREATE DATABASE parley_test_<random>. It sorts text like most production servers (ICU
   * en-US) rather than by bytes, so that an ORDER BY that relies on byte order shows up here.
   */
  static async create(): Promise<PostgresTestDatabase> {
    const name = `parley_test_${randomBytes(6).toString('hex')}`;
    await admin(async (client) => {
      try {
        await client.query(`create database ${name} template template0 encoding 'UTF8' locale_provider icu icu_locale 'en-US' locale 'C.UTF-8'`);
      } catch {
        await client.query(`create database ${name} template template0 encoding 'UTF8'`);
      }
    });
    return new PostgresTestDatabase(name);
  }

  /** The URL of this database, with `schema` first on the search_path. */
  url(schema?: string): string {
    return withDatabase(PG_ADMIN_URL, this.name, schema === undefined ? {} : { options: `-c search_path=${schema}` });
  }

  /** Runs one statement on this database (outside any schema). */
  async query(text: string): Promise<pg.QueryResult> {
    const client = new pg.Client({ connectionString: this.url(), connectionTimeoutMillis: 5000 });
    client.on('error', () => undefined);
    await client.connect();
    try {
      return await client.query(text);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  /** A new empty schema; `name` reuses (or creates) a schema of that name. */
  async schema(name?: string): Promise<string> {
    const schema = name ?? `s${++this.schemas}_${randomBytes(3).toString('hex')}`;
    await this.query(`create schema if not exists ${schema}`);
    return schema;
  }

  /** Opens Parley storage on a fresh schema (or the named one). */
  async open(options: { schema?: string; pool?: number } = {}): Promise<Database> {
    const schema = await this.schema(options.schema);
    return openDatabase({ driver: 'postgres', url: this.url(schema), ...(options.pool === undefined ? {} : { pool: options.pool }) });
  }

  async drop(): Promise<void> {
    if (this.dropped) return;
    this.dropped = true;
    await admin((client) => client.query(`drop database if exists ${this.name} with (force)`));
  }
}

let shared: Promise<PostgresTestDatabase> | undefined;

// A root-level hook, registered while mocha loads the spec files (this module is imported then),
// so that it runs once after the whole run, whoever created the database.
if (typeof after === 'function') {
  after(async () => {
    const db = await shared?.catch(() => undefined);
    await db?.drop();
  });
}

/** The database this process shares between spec files (the harness, the contract suite). */
export function sharedPostgres(): Promise<PostgresTestDatabase> {
  shared ??= PostgresTestDatabase.create();
  return shared;
}

/** What the contract suite needs from a dialect. */
export interface StorageBackend {
  readonly dialect: Dialect;
  /** A fresh, empty database with the core migrations applied. */
  open(): Promise<Database>;
  /** Gathers table statistics the planner uses. */
  analyze(db: Kysely<any>): Promise<void>;
  /** The plan of one statement, normalised for `planChecks`. */
  plan(db: Kysely<any>, query: CompiledQuery): Promise<string[]>;
  /** Whether the plans are checked without statistics too (SQLite plans from its schema alone). */
  readonly plansWithoutStatistics: boolean;
  /** The name of the unique (host, user, store, id) index. */
  readonly idIndex: RegExp;
  /** The names of the tables in the database Parley uses. */
  tables(db: Kysely<any>): Promise<string[]>;
  /** Runs once after the suite. */
  tearDown(): Promise<void>;
}

export function sqliteBackend(): StorageBackend {
  return {
    dialect: 'sqlite',
    open: () => openDatabase({ driver: 'sqlite', path: ':memory:' }),
    async analyze(db) {
      await sql`analyze`.execute(db);
    },
    async plan(db, query) {
      const result = await db.executeQuery<{ detail: string }>(CompiledQuery.raw(`explain query plan ${query.sql}`, [...query.parameters]));
      return result.rows.map((r) => r.detail);
    },
    plansWithoutStatistics: true,
    idIndex: /\bsqlite_autoindex_archive_\d+\b/,
    async tables(db) {
      const { rows } = await sql<{ name: string }>`select name from sqlite_master where type = 'table' and name not like 'sqlite_%' order by name`.execute(db);
      return rows.map((r) => r.name);
    },
    async tearDown() {},
  };
}

export function postgresBackend(): StorageBackend {
  return {
    dialect: 'postgres',
    open: async () => (await sharedPostgres()).open(),
    async analyze(db) {
      // VACUUM fills the visibility map, which lets counts read the index alone.
      await sql`vacuum analyze`.execute(db);
    },
    async plan(db, query) {
      const result = await db.executeQuery<{ 'QUERY PLAN': string }>(CompiledQuery.raw(`explain ${query.sql}`, [...query.parameters]));
      return result.rows.map((r) => r['QUERY PLAN']);
    },
    plansWithoutStatistics: false,
    idIndex: /\barchive_id_unique\b/,
    async tables(db) {
      const { rows } = await sql<{ name: string }>`select table_name as name from information_schema.tables
        where table_schema = current_schema() and table_type = 'BASE TABLE' order by table_name`.execute(db);
      return rows.map((r) => r.name);
    },
    async tearDown() {},
  };
}

/**
 * Opens the storage of one harness: SQLite (`path` or `:memory:`) unless `dialect` or
 * PARLEY_TEST_STORAGE says `postgres`; then a fresh schema of the shared test database, or, for
 * a `path`, a schema named after it, so that a harness restarted on the same path finds its
 * data again.
 */
export async function openHarnessStorage(path: string | undefined, dialect?: Dialect): Promise<Database> {
  const wanted = dialect ?? (process.env.PARLEY_TEST_STORAGE === 'postgres' ? 'postgres' : 'sqlite');
  if (wanted === 'sqlite') return openDatabase({ driver: 'sqlite', path: path ?? ':memory:' });
  if (!(await postgresReachable())) throw new Error(PG_SKIP_MESSAGE);
  const db = await sharedPostgres();
  return db.open(path === undefined ? {} : { schema: harnessSchema(path) });
}

/** The PostgreSQL schema a harness started with `storagePath: path` uses. */
export function harnessSchema(path: string): string {
  return `path_${createHash('sha256').update(path).digest('hex').slice(0, 16)}`;
}
