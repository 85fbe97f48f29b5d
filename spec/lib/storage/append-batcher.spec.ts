import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { openDatabase } from '../../../lib/storage/database.js';
import type { Database } from '../../../lib/storage/types.js';

describe('archive appends (group commit)', () => {
  let dir: string;
  let database: Database;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'parley-batch-'));
    database = await openDatabase({ driver: 'sqlite', path: join(dir, 'p.db') });
  });
  afterEach(async () => {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the order of appends made at once, across stores, and resolves each', async () => {
    const a = database.archive('a');
    const b = database.archive('b');
    await Promise.all(Array.from({ length: 1200 }, (_, i) => (i % 2 ? a : b).append('h', 'u', { id: `m${i}`, when: 1000, value: String(i) })));
    const page = await a.query('h', 'u', { limit: 1000 });
    expect(page.items.map((x) => x.id)).to.deep.equal(Array.from({ length: 600 }, (_, i) => `m${2 * i + 1}`));
    expect(await b.count('h', 'u')).to.equal(600);
  });

  it('fails only the append with a duplicate id, not the others of its batch', async () => {
    const a = database.archive('a');
    await a.append('h', 'u', { id: 'dup', when: 1, value: 'x' });
    const results = await Promise.allSettled([
      a.append('h', 'u', { id: 'one', when: 2, value: 'x' }),
      a.append('h', 'u', { id: 'dup', when: 3, value: 'x' }),
      a.append('h', 'u', { id: 'two', when: 4, value: 'x' }),
    ]);
    expect(results.map((r) => r.status)).to.deep.equal(['fulfilled', 'rejected', 'fulfilled']);
    expect((await a.query('h', 'u', { limit: 10 })).items.map((x) => x.id)).to.deep.equal(['dup', 'one', 'two']);
  });

  it('has nothing to wait for when idle, and durable() settles once appends nobody awaited are committed', async () => {
    expect(database.durable()).to.equal(undefined);
    const a = database.archive('a');
    const written = Array.from({ length: 50 }, (_, i) => a.append('h', 'u', { id: `m${i}`, when: 1000 + i, value: String(i) }));
    const durable = database.durable();
    expect(durable).to.be.instanceOf(Promise);
    // Another connection to the file sees nothing yet: the rows wait for the group commit.
    const other = new BetterSqlite3(join(dir, 'p.db'), { readonly: true });
    try {
      const rows = () => (other.prepare('select count(*) as n from archive').get() as { n: number }).n;
      expect(rows()).to.equal(0);
      await durable;
      expect(rows()).to.equal(50);
    } finally {
      other.close();
    }
    await Promise.all(written);
    expect(database.durable()).to.equal(undefined);
  });

  it('lets reads see appends nobody awaited', async () => {
    const a = database.archive('a');
    void a.append('h', 'u', { id: 'x', when: 1, value: 'x' });
    expect((await a.query('h', 'u', { limit: 10 })).items.map((i) => i.id)).to.deep.equal(['x']);
    expect(await a.count('h', 'u')).to.equal(1);
  });

  it('writes appends nobody awaited before the database closes', async () => {
    void database.archive('a').append('h', 'u', { id: 'late', when: 1, value: 'x' });
    await database.close();
    database = await openDatabase({ driver: 'sqlite', path: join(dir, 'p.db') });
    expect((await database.archive('a').query('h', 'u', { limit: 10 })).items.map((i) => i.id)).to.deep.equal(['late']);
  });

  it('commits in order, one batch after the other, when appends keep coming while one is written', async () => {
    const a = database.archive('a');
    const all: Promise<void>[] = [];
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 20; i++) all.push(a.append('h', 'u', { id: `r${round}-${i}`, when: 1000, value: 'x' }));
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await Promise.all(all);
    const ids = (await a.query('h', 'u', { limit: 200 })).items.map((i) => i.id);
    expect(ids).to.deep.equal(Array.from({ length: 100 }, (_, n) => `r${Math.floor(n / 20)}-${n % 20}`));
  });
});
