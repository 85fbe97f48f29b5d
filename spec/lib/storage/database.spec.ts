import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { createServer, type AddressInfo } from 'node:net';
import { sql, type Kysely } from 'kysely';
import { Metrics } from '../../../lib/metrics.js';
import { openDatabase } from '../../../lib/storage/database.js';
import type { Database, Migration } from '../../../lib/storage/types.js';
import { PG_ADMIN_URL, postgresSkipReason, sharedPostgres } from '../../storage/backends.js';

// Behaviour every dialect shares (stores, migrations, query plans) is in the contract suite,
// spec/storage/; this file covers what opening each kind of database involves.

const pgSkip = await postgresSkipReason();

async function pragma(db: Kysely<any>, name: string): Promise<unknown> {
  const { rows } = await sql<Record<string, unknown>>`${sql.raw(`pragma ${name}`)}`.execute(db);
  return Object.values(rows[0] ?? {})[0];
}

async function tables(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`select name from sqlite_master where type = 'table' order by name`.execute(db);
  return rows.map((r) => r.name);
}

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string; cause?: unknown }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

function urlOf(database: string, params: Record<string, string> = {}): string {
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${database}`;
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

describe('openDatabase', () => {
  let dir: string;
  let database: Database | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'parley-db-'));
  });
  afterEach(async () => {
    await database?.close();
    database = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  describe('SQLite', () => {
    it('creates the missing parent directories of the database file', async () => {
      const path = join(dir, 'nested', 'deeper', 'parley.db');
      database = await openDatabase({ driver: 'sqlite', path });
      expect(database.dialect).to.equal('sqlite');
      expect(await tables(database.db)).to.include('archive');
    });

    it('sets WAL, synchronous=NORMAL (the log is synced off the event loop), foreign keys and a 5 s busy timeout', async () => {
      database = await openDatabase({ driver: 'sqlite', path: join(dir, 'p.db') });
      expect(await pragma(database.db, 'journal_mode')).to.equal('wal');
      expect(await pragma(database.db, 'synchronous')).to.equal(1); // NORMAL, with WalSync
      expect(await pragma(database.db, 'foreign_keys')).to.equal(1);
      expect(await pragma(database.db, 'busy_timeout')).to.equal(5000);
    });

    it('opens an in-memory database with the core tables', async () => {
      database = await openDatabase({ driver: 'sqlite', path: ':memory:' });
      expect(await tables(database.db)).to.include.members(['parley_schema', 'keyval', 'archive']);
      expect(await pragma(database.db, 'foreign_keys')).to.equal(1);
    });

    it('keeps data across a close and a reopen of the same file', async () => {
      const path = join(dir, 'p.db');
      database = await openDatabase({ driver: 'sqlite', path });
      await database.keyval('private').set('example.org', 'juliet', 'k', 'v');
      await database.close();
      database = await openDatabase({ driver: 'sqlite', path });
      expect(await database.keyval('private').get('example.org', 'juliet', 'k')).to.equal('v');
    });

    it('fails with PARLEY_ERR_STORAGE naming the path when a parent of the path is a file', async () => {
      const blocker = join(dir, 'file');
      writeFileSync(blocker, 'x');
      const path = join(blocker, 'parley.db');
      const err = await rejection(openDatabase({ driver: 'sqlite', path }));
      expect(err.code).to.equal('PARLEY_ERR_STORAGE');
      expect(err.message).to.include(path).and.include('storage.path');
      expect(err.message).not.to.include('\n');
    });

    it('fails with PARLEY_ERR_STORAGE and a hint when the file is not a database', async () => {
      const path = join(dir, 'garbage.db');
      writeFileSync(path, 'this is not an SQLite file, it is long enough to have a header '.repeat(20));
      const err = await rejection(openDatabase({ driver: 'sqlite', path }));
      expect(err.code).to.equal('PARLEY_ERR_STORAGE');
      expect(err.message).to.include(path).and.include('not a usable SQLite database');
      expect(err.message).not.to.include('\n');
    });

    it('fails with PARLEY_ERR_STORAGE when no path is configured', async () => {
      const err = await rejection(openDatabase({ driver: 'sqlite' }));
      expect(err.code).to.equal('PARLEY_ERR_STORAGE');
      expect(err.message).to.include('storage.path');
    });

    it('can be closed twice', async () => {
      database = await openDatabase({ driver: 'sqlite', path: ':memory:' });
      await database.close();
      await database.close();
    });

    it('records query latency per operation when given metrics', async () => {
      const metrics = new Metrics();
      database = await openDatabase({ driver: 'sqlite', path: ':memory:' }, { metrics });
      await database.keyval('private').set('example.org', 'juliet', 'k', 'v');
      await database.keyval('private').get('example.org', 'juliet', 'k');
      const { body } = await metrics.render();
      expect(body).to.match(/^parley_storage_seconds_count\{operation="insert"\} [1-9]/m);
      expect(body).to.match(/^parley_storage_seconds_count\{operation="select"\} [1-9]/m);
    });
  });

  describe('PostgreSQL, without a server', () => {
    it('fails with one PARLEY_ERR_STORAGE line naming host and port when nothing listens there', async () => {
      const port = await closedPort();
      const err = await rejection(openDatabase({ driver: 'postgres', url: `postgres://parley:s3cret@127.0.0.1:${port}/parley` }));
      expect(err.code).to.equal('PARLEY_ERR_STORAGE');
      expect(err.message).to.match(new RegExp(`^cannot reach PostgreSQL at 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED.* \\(start PostgreSQL or fix storage\\.url\\)$`));
      expect(err.message).not.to.include('\n');
      expect(err.message).not.to.include('s3cret');
    });

    it('fails with PARLEY_ERR_STORAGE when the url is empty, not a URL, or not postgres://', async () => {
      for (const url of [undefined, '', 'not a url', 'mysql://localhost/parley']) {
        const err = await rejection(openDatabase({ driver: 'postgres', ...(url === undefined ? {} : { url }) }));
        expect(err.code, String(url)).to.equal('PARLEY_ERR_STORAGE');
        expect(err.message, String(url)).to.include('storage.url');
      }
    });

    it('refuses a pool of no connections', async () => {
      const err = await rejection(openDatabase({ driver: 'postgres', url: 'postgres://localhost/parley', pool: 0 }));
      expect(err.code).to.equal('PARLEY_ERR_STORAGE');
      expect(err.message).to.include('storage.pool');
    });
  });

  describe('PostgreSQL', function () {
    this.timeout(30_000);
    before(function () {
      if (pgSkip !== undefined) {
        console.log(`      (skipped: ${pgSkip})`);
        this.skip();
      }
    });

    /** A URL on a fresh schema of this run's test database. */
    async function freshUrl(params: Record<string, string> = {}): Promise<string> {
      const test = await sharedPostgres();
      const schema = await test.schema();
      const u = new URL(test.url(schema));
      for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
      return u.toString();
    }

    it('opens with dialect "postgres" and the core tables', async () => {
      database = await openDatabase({ driver: 'postgres', url: await freshUrl() });
      expect(database.dialect).to.equal('postgres');
      const { rows } = await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = current_schema() order by 1`.execute(database.db);
      expect(rows.map((r) => r.name)).to.deep.equal(['archive', 'keyval', 'parley_schema']);
    });

    it('keeps data across a close and a reopen', async () => {
      const url = await freshUrl();
      database = await openDatabase({ driver: 'postgres', url });
      await database.keyval('private').set('example.org', 'juliet', 'k', 'v');
      await database.close();
      database = await openDatabase({ driver: 'postgres', url });
      expect(await database.keyval('private').get('example.org', 'juliet', 'k')).to.equal('v');
    });

    it('says which database is missing and how to create it', async () => {
      const err = await rejection(openDatabase({ driver: 'postgres', url: urlOf('parley_no_such_database') }));
      expect(err.code).to.equal('PARLEY_ERR_STORAGE');
      expect(err.message).to.include('no database "parley_no_such_database"').and.include('createdb');
      expect(err.message).not.to.include('\n');
    });

    it('says when the server refuses the login', async () => {
      const u = new URL(urlOf('postgres'));
      u.username = 'parley_no_such_role';
      const err = await rejection(openDatabase({ driver: 'postgres', url: u.toString() }));
      expect(err.code).to.equal('PARLEY_ERR_STORAGE');
      expect(err.message).to.include('refused the login of "parley_no_such_role"').and.include('storage.url');
    });

    it('returns bigint values as numbers, and one beyond 2^53 as its exact digits', async () => {
      database = await openDatabase({ driver: 'postgres', url: await freshUrl() });
      const { rows } = await sql<{ small: unknown; big: unknown; n: unknown }>`
        select 1700000000000::bigint as small, 9007199254740993::bigint as big, count(*) as n from keyval`.execute(database.db);
      expect(rows[0]).to.deep.equal({ small: 1_700_000_000_000, big: '9007199254740993', n: 0 });
    });

    it('keeps at most storage.pool connections (default 10)', async () => {
      const url = await freshUrl({ application_name: 'parley-pool-test' });
      const test = await sharedPostgres();
      const peak = async (db: Database, queries: number): Promise<number> => {
        const sleeping = Promise.all(Array.from({ length: queries }, () => sql`select pg_sleep(0.3)`.execute(db.db)));
        await new Promise((r) => setTimeout(r, 150));
        const { rows } = await test.query(`select count(*)::int as n from pg_stat_activity where datname = '${test.name}' and application_name = 'parley-pool-test'`);
        await sleeping;
        return rows[0].n as number;
      };
      database = await openDatabase({ driver: 'postgres', url, pool: 2 });
      expect(await peak(database, 5)).to.equal(2);
      await database.close();
      database = await openDatabase({ driver: 'postgres', url });
      expect(await peak(database, 14)).to.equal(10);
    });

    it('migrates once when several nodes start at the same moment (advisory lock)', async () => {
      const url = await freshUrl();
      let runs = 0;
      const slow: Migration = {
        version: 1,
        async up(db) {
          runs++;
          await sql`select pg_sleep(0.2)`.execute(db);
          await db.schema.createTable('raced').addColumn('host', 'text').execute();
        },
      };
      // Four nodes open the same empty database at once: schema table, core tables, then a module.
      const nodes = await Promise.all(Array.from({ length: 4 }, () => openDatabase({ driver: 'postgres', url })));
      try {
        await Promise.all(nodes.map((n) => n.migrate('raced', [slow])));
        expect(runs).to.equal(1);
        const rows = await nodes[0]!.db.selectFrom('parley_schema').select(['owner', 'version']).orderBy('owner').execute();
        expect(rows).to.deep.equal([
          { owner: 'core', version: 1 },
          { owner: 'raced', version: 1 },
        ]);
      } finally {
        await Promise.all(nodes.map((n) => n.close()));
      }
    });

    it('records query latency per operation when given metrics', async () => {
      const metrics = new Metrics();
      database = await openDatabase({ driver: 'postgres', url: await freshUrl() }, { metrics });
      await database.keyval('private').set('example.org', 'juliet', 'k', 'v');
      await database.keyval('private').get('example.org', 'juliet', 'k');
      const { body } = await metrics.render();
      expect(body).to.match(/^parley_storage_seconds_count\{operation="insert"\} [1-9]/m);
      expect(body).to.match(/^parley_storage_seconds_count\{operation="select"\} [1-9]/m);
    });

    it('can be closed twice', async () => {
      database = await openDatabase({ driver: 'postgres', url: await freshUrl() });
      await database.close();
      await database.close();
    });

    it('serves queries again after the server ends an idle connection', async () => {
      const url = await freshUrl({ application_name: 'parley-kill-test' });
      database = await openDatabase({ driver: 'postgres', url });
      await database.keyval('private').set('example.org', 'juliet', 'k', 'v');
      const test = await sharedPostgres();
      await test.query(`select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'parley-kill-test'`);
      await new Promise((r) => setTimeout(r, 100));
      expect(await database.keyval('private').get('example.org', 'juliet', 'k')).to.equal('v');
    });
  });
});
