import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { sql, type Kysely } from 'kysely';
import { Metrics } from '../../../lib/metrics.js';
import { openDatabase } from '../../../lib/storage/database.js';
import type { Database, Migration } from '../../../lib/storage/types.js';

async function pragma(db: Kysely<any>, name: string): Promise<unknown> {
  const { rows } = await sql<Record<string, unknown>>`${sql.raw(`pragma ${name}`)}`.execute(db);
  return Object.values(rows[0] ?? {})[0];
}

async function tables(db: Kysely<any>): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`select name from sqlite_master where type = 'table' order by name`.execute(db);
  return rows.map((r) => r.name);
}

async function schemaRows(db: Kysely<any>, owner: string): Promise<Array<{ version: number; applied_at: number }>> {
  return db.selectFrom('parley_schema').select(['version', 'applied_at']).where('owner', '=', owner).orderBy('version').execute();
}

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string; cause?: unknown }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

function table(name: string, version: number): Migration {
  return {
    version,
    async up(db) {
      await db.schema.createTable(name).addColumn('host', 'text', (c) => c.notNull()).execute();
    },
  };
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

    it('sets WAL, synchronous=FULL, foreign keys and a 5 s busy timeout', async () => {
      database = await openDatabase({ driver: 'sqlite', path: join(dir, 'p.db') });
      expect(await pragma(database.db, 'journal_mode')).to.equal('wal');
      expect(await pragma(database.db, 'synchronous')).to.equal(2); // FULL
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

  describe('PostgreSQL', () => {
    it('refuses clearly until it is implemented', async () => {
      const err = await rejection(openDatabase({ driver: 'postgres', url: 'postgres://localhost/parley' }));
      expect(err.message).to.equal('PostgreSQL storage is not available yet; use driver: sqlite');
    });
  });

  describe('migrate', () => {
    beforeEach(async () => {
      database = await openDatabase({ driver: 'sqlite', path: join(dir, 'm.db') });
    });

    it('records the core migrations under the owner "core"', async () => {
      const rows = await schemaRows(database!.db, 'core');
      expect(rows.map((r) => r.version)).to.deep.equal([1]);
    });

    it('applies pending migrations in version order and records each with its time', async () => {
      const order: number[] = [];
      const step = (version: number): Migration => ({
        version,
        async up(db) {
          order.push(version);
          await db.schema.createTable(`t${version}`).addColumn('host', 'text').execute();
        },
      });
      const before = Date.now();
      await database!.migrate('roster', [step(3), step(1), step(2)]);
      expect(order).to.deep.equal([1, 2, 3]);
      const rows = await schemaRows(database!.db, 'roster');
      expect(rows.map((r) => r.version)).to.deep.equal([1, 2, 3]);
      for (const r of rows) expect(r.applied_at).to.be.within(before, Date.now());
    });

    it('does nothing when run again with the same migrations', async () => {
      let runs = 0;
      const m: Migration = {
        version: 1,
        async up(db) {
          runs++;
          await db.schema.createTable('once').addColumn('host', 'text').execute();
        },
      };
      await database!.migrate('once', [m]);
      await database!.migrate('once', [m]);
      expect(runs).to.equal(1);
      expect(await schemaRows(database!.db, 'once')).to.have.length(1);
    });

    it('applies only the new versions when an owner adds a migration', async () => {
      await database!.migrate('vcard', [table('vcard_a', 1)]);
      let ranOld = false;
      await database!.migrate('vcard', [
        { version: 1, up: async () => void (ranOld = true) },
        table('vcard_b', 2),
      ]);
      expect(ranOld).to.equal(false);
      expect(await tables(database!.db)).to.include.members(['vcard_a', 'vcard_b']);
    });

    it('keeps versions of different owners apart', async () => {
      await database!.migrate('alpha', [table('alpha_1', 1)]);
      await database!.migrate('beta', [table('beta_1', 1)]);
      expect((await schemaRows(database!.db, 'alpha')).map((r) => r.version)).to.deep.equal([1]);
      expect((await schemaRows(database!.db, 'beta')).map((r) => r.version)).to.deep.equal([1]);
    });

    it('rolls back the whole batch of an owner when one step fails, naming owner and version', async () => {
      const failing: Migration = {
        version: 2,
        async up(db) {
          await db.schema.createTable('half_done').addColumn('host', 'text').execute();
          throw new Error('boom');
        },
      };
      const err = await rejection(database!.migrate('mam', [table('mam_ok', 1), failing]));
      expect(err.message).to.include('mam').and.include('version 2').and.include('boom');
      expect(err.code).to.equal('PARLEY_ERR_MIGRATION');
      expect((err.cause as Error).message).to.equal('boom');
      expect(await tables(database!.db)).not.to.include.oneOf(['mam_ok', 'half_done']);
      expect(await schemaRows(database!.db, 'mam')).to.deep.equal([]);
    });

    it('leaves earlier batches of the same owner in place when a later batch fails', async () => {
      await database!.migrate('muc', [table('muc_1', 1)]);
      await rejection(
        database!.migrate('muc', [
          table('muc_1', 1),
          { version: 2, up: async () => Promise.reject(new Error('nope')) },
        ]),
      );
      expect(await tables(database!.db)).to.include('muc_1');
      expect((await schemaRows(database!.db, 'muc')).map((r) => r.version)).to.deep.equal([1]);
    });

    it('rejects a list that declares a version twice before touching the schema', async () => {
      const err = await rejection(database!.migrate('dup', [table('dup_a', 1), table('dup_b', 1)]));
      expect(err.code).to.equal('PARLEY_ERR_MIGRATION');
      expect(err.message).to.include('dup').and.include('version 1');
      expect(await tables(database!.db)).not.to.include.oneOf(['dup_a', 'dup_b']);
    });
  });
});
