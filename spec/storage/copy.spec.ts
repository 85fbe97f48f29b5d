// copyDatabase (lib/storage/copy.ts), the engine of `parley migrate`: all or nothing, in
// dependency order, verified, with identities continuing after the copied rows.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { sql } from 'kysely';
import { copyDatabase } from '../../lib/storage/copy.js';
import { openDatabase } from '../../lib/storage/database.js';
import type { Database, Migration } from '../../lib/storage/types.js';
import { postgresSkipReason, sharedPostgres } from './backends.js';

const pgSkip = await postgresSkipReason();

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

/** Two tables where `child` references `aaa_parent` (so name order would insert it first). */
const familyMigrations: Migration[] = [
  {
    version: 1,
    async up(db) {
      await db.schema.createTable('aaa_parent').addColumn('id', 'integer', (c) => c.primaryKey()).addColumn('name', 'text', (c) => c.notNull()).execute();
      await db.schema
        .createTable('child')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('parent', 'integer', (c) => c.notNull().references('aaa_parent.id'))
        .addColumn('flag', 'boolean', (c) => c.notNull().defaultTo(false))
        .execute();
    },
  },
];

describe('copyDatabase (SQLite into PostgreSQL)', function () {
  this.timeout(30_000);
  let dir: string;
  let source: Database;
  let target: Database;

  before(function () {
    if (pgSkip !== undefined) {
      console.log(`      (skipped: ${pgSkip})`);
      this.skip();
    }
  });
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'parley-copy-'));
    source = await openDatabase({ driver: 'sqlite', path: join(dir, 'source.db') });
    target = await (await sharedPostgres()).open();
  });
  afterEach(async () => {
    await source?.close();
    await target?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('copies parents before the tables that reference them, values intact', async () => {
    for (const db of [source, target]) await db.migrate('family', familyMigrations);
    // 2,500 children: several insert batches.
    await source.db.insertInto('aaa_parent').values([{ id: 1, name: 'Capulet' }, { id: 2, name: 'Montague' }]).execute();
    await source.db
      .insertInto('child')
      .values(Array.from({ length: 2500 }, (_, i) => ({ id: i + 1, parent: (i % 2) + 1, flag: i % 3 === 0 })))
      .execute();
    await source.archive('mam').append('example.org', 'juliet', { id: 'a', when: 1_700_000_000_000, with: 'romeo@example.net', value: 'Grüße 🎭' });

    const order: string[] = [];
    const summary = await copyDatabase(source, target, { onTable: (t) => order.push(t) });
    expect(order.indexOf('aaa_parent')).to.be.below(order.indexOf('child'));
    expect(summary.tables.find((t) => t.table === 'child')!.rows).to.equal(2500);
    expect(summary.rows).to.equal(2 + 2500 + 1);
    const flags = await target.db.selectFrom('child').select((eb) => eb.fn.countAll().as('n')).where('flag', '=', true).executeTakeFirstOrThrow();
    expect(Number(flags.n)).to.equal(834);
    expect((await target.archive('mam').query('example.org', 'juliet', { limit: 5 })).items).to.deep.equal([
      { id: 'a', when: 1_700_000_000_000, with: 'romeo@example.net', value: 'Grüße 🎭' },
    ]);
  });

  it('moves identities past the copied rows, so new rows never collide', async () => {
    const archive = source.archive('offline');
    for (const id of ['a', 'b', 'c']) await archive.append('example.org', 'juliet', { id, when: 1000, value: id });
    await archive.delete('example.org', 'juliet', { ids: ['a'] });
    await copyDatabase(source, target);
    await target.archive('offline').append('example.org', 'juliet', { id: 'd', when: 1000, value: 'd' });
    const rows = await target.db.selectFrom('archive').select(['id', 'seq']).orderBy('seq').execute();
    expect(rows).to.deep.equal([
      { id: 'b', seq: 2 },
      { id: 'c', seq: 3 },
      { id: 'd', seq: 4 },
    ]);
  });

  it('keeps nothing when a row cannot be stored, naming the table', async () => {
    await source.keyval('private').set('example.org', 'juliet', 'ok', 'fine');
    // PostgreSQL text cannot hold NUL; SQLite's can.
    await source.archive('mam').append('example.org', 'juliet', { id: 'nul', when: 1, value: 'a\u0000b' });
    const err = await rejection(copyDatabase(source, target));
    expect(err.code).to.equal('PARLEY_ERR_COPY');
    expect(err.message).to.include('copying table archive failed').and.include('nothing was kept');
    expect(await target.keyval('private').get('example.org', 'juliet', 'ok')).to.equal(undefined);
  });

  it('refuses a target that holds data unless forced, then replaces it', async () => {
    await source.keyval('private').set('example.org', 'juliet', 'k', 'from sqlite');
    await target.keyval('private').set('example.org', 'romeo', 'k', 'already there');
    const err = await rejection(copyDatabase(source, target));
    expect(err.code).to.equal('PARLEY_ERR_TARGET_NOT_EMPTY');
    expect(err.message).to.include('keyval: 1');
    const summary = await copyDatabase(source, target, { force: true });
    expect(summary.replaced).to.equal(1);
    expect(await target.keyval('private').get('example.org', 'romeo', 'k')).to.equal(undefined);
    expect(await target.keyval('private').get('example.org', 'juliet', 'k')).to.equal('from sqlite');
  });

  it('refuses a source written by a newer Parley (schema steps this one does not know)', async () => {
    await source.migrate('roster', [{ version: 1, up: async () => undefined }, { version: 2, up: async () => undefined }]);
    await target.migrate('roster', [{ version: 1, up: async () => undefined }]);
    const err = await rejection(copyDatabase(source, target));
    expect(err.code).to.equal('PARLEY_ERR_COPY');
    expect(err.message).to.include('roster version 2').and.include('newer Parley');
  });

  it('refuses a source table with rows that the target lacks, and skips an empty one', async () => {
    await sql`create table gone_module (host text, n integer)`.execute(source.db);
    const summary = await copyDatabase(source, target);
    expect(summary.skipped).to.include('gone_module');
    await target.keyval('x').set('h', 'u', 'k', 'v');
    await sql`insert into gone_module values ('example.org', 1)`.execute(source.db);
    const err = await rejection(copyDatabase(source, target, { force: true }));
    expect(err.code).to.equal('PARLEY_ERR_COPY');
    expect(err.message).to.include('table gone_module (1 rows) has no counterpart');
    // Refused before anything changed, even with --force.
    expect(await target.keyval('x').get('h', 'u', 'k')).to.equal('v');
  });
});
