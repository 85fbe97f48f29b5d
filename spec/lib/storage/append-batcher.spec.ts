import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
});
