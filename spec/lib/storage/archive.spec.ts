import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { expect } from 'chai';
import { CompiledQuery, Kysely, SqliteDialect, sql } from 'kysely';
import { createArchiveStore } from '../../../lib/storage/archive.js';
import { openDatabase } from '../../../lib/storage/database.js';
import type { ArchiveItem, ArchiveStore, Database } from '../../../lib/storage/types.js';

const H = 'example.org';
const U = 'juliet';
const ROMEO = 'romeo@example.net';
const NURSE = 'nurse@example.com';
const T0 = 1_700_000_000_000;

/** Item n: id "m<n>", one second apart, odd ones with Romeo, even ones with the Nurse. */
function item(n: number, extra: Partial<ArchiveItem> = {}): ArchiveItem {
  return { id: `m${n}`, when: T0 + n * 1000, with: n % 2 === 1 ? ROMEO : NURSE, value: `<message n="${n}"/>`, ...extra };
}

const ids = (items: ArchiveItem[]) => items.map((i) => i.id);

async function rejection(promise: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await promise;
  } catch (err) {
    return err as Error & { code?: string };
  }
  throw new Error('expected a rejection');
}

describe('ArchiveStore (SQLite)', () => {
  let database: Database;
  let archive: ArchiveStore;

  beforeEach(async () => {
    database = await openDatabase({ driver: 'sqlite', path: ':memory:' });
    archive = database.archive('mam');
  });
  afterEach(() => database.close());

  async function fill(n: number): Promise<void> {
    for (let i = 1; i <= n; i++) await archive.append(H, U, item(i));
  }

  describe('append and order', () => {
    it('returns what was appended, with its peer, time and payload', async () => {
      await archive.append(H, U, item(1));
      const page = await archive.query(H, U, { limit: 10 });
      expect(page.items).to.deep.equal([item(1)]);
    });

    it('leaves `with` out of an item stored without a peer', async () => {
      await archive.append(H, U, { id: 'x', when: T0, value: '<m/>' });
      const [got] = (await archive.query(H, U, { limit: 1 })).items;
      expect(got).to.deep.equal({ id: 'x', when: T0, value: '<m/>' });
      expect(got).not.to.have.property('with');
    });

    it('keeps insertion order between items with the same timestamp', async () => {
      for (const id of ['c', 'a', 'b']) await archive.append(H, U, { id, when: T0, value: id });
      expect(ids((await archive.query(H, U, { limit: 10 })).items)).to.deep.equal(['c', 'a', 'b']);
      expect(ids((await archive.query(H, U, { limit: 10, reverse: true })).items)).to.deep.equal(['b', 'a', 'c']);
    });

    it('places an item appended late with an earlier timestamp at its time', async () => {
      await archive.append(H, U, item(1));
      await archive.append(H, U, item(3));
      await archive.append(H, U, item(2));
      expect(ids((await archive.query(H, U, { limit: 10 })).items)).to.deep.equal(['m1', 'm2', 'm3']);
    });

    it('rejects a second item with the same id in the same account and store', async () => {
      await archive.append(H, U, item(1));
      await rejection(archive.append(H, U, item(1, { value: 'again' })));
      expect((await archive.query(H, U, { limit: 10 })).items).to.deep.equal([item(1)]);
    });

    it('accepts the same id in another account, host or store', async () => {
      await archive.append(H, U, item(1));
      await archive.append(H, 'romeo', item(1));
      await archive.append('example.net', U, item(1));
      await database.archive('offline').append(H, U, item(1));
      expect(await archive.count(H, U)).to.equal(1);
      expect(await archive.count(H, 'romeo')).to.equal(1);
    });

    it('rejects a time that is not whole milliseconds', async () => {
      const err = await rejection(archive.append(H, U, item(1, { when: 1.5 })));
      expect(err).to.be.instanceOf(TypeError);
    });
  });

  describe('paging', () => {
    beforeEach(() => fill(7));

    it('pages forward over three pages, complete only on the last', async () => {
      const p1 = await archive.query(H, U, { limit: 3 });
      expect(ids(p1.items)).to.deep.equal(['m1', 'm2', 'm3']);
      expect(p1.complete).to.equal(false);

      const p2 = await archive.query(H, U, { limit: 3, after: 'm3' });
      expect(ids(p2.items)).to.deep.equal(['m4', 'm5', 'm6']);
      expect(p2.complete).to.equal(false);

      const p3 = await archive.query(H, U, { limit: 3, after: 'm6' });
      expect(ids(p3.items)).to.deep.equal(['m7']);
      expect(p3.complete).to.equal(true);
    });

    it('pages backward from the end over three pages, newest first, complete only at the start', async () => {
      const p1 = await archive.query(H, U, { limit: 3, reverse: true });
      expect(ids(p1.items)).to.deep.equal(['m7', 'm6', 'm5']);
      expect(p1.complete).to.equal(false);

      const p2 = await archive.query(H, U, { limit: 3, reverse: true, before: 'm5' });
      expect(ids(p2.items)).to.deep.equal(['m4', 'm3', 'm2']);
      expect(p2.complete).to.equal(false);

      const p3 = await archive.query(H, U, { limit: 3, reverse: true, before: 'm2' });
      expect(ids(p3.items)).to.deep.equal(['m1']);
      expect(p3.complete).to.equal(true);
    });

    it('marks a page complete when it ends exactly at the last item', async () => {
      const page = await archive.query(H, U, { limit: 3, after: 'm4' });
      expect(ids(page.items)).to.deep.equal(['m5', 'm6', 'm7']);
      expect(page.complete).to.equal(true);
      const back = await archive.query(H, U, { limit: 3, reverse: true, before: 'm4' });
      expect(ids(back.items)).to.deep.equal(['m3', 'm2', 'm1']);
      expect(back.complete).to.equal(true);
    });

    it('returns an empty complete page after the last item', async () => {
      expect(await archive.query(H, U, { limit: 3, after: 'm7' })).to.deep.equal({ items: [], complete: true });
    });

    it('gives the oldest items before an id when not reversed', async () => {
      const page = await archive.query(H, U, { limit: 2, before: 'm5' });
      expect(ids(page.items)).to.deep.equal(['m1', 'm2']);
      expect(page.complete).to.equal(false);
    });

    it('walks newest first down to an `after` id when reversed', async () => {
      const page = await archive.query(H, U, { limit: 2, after: 'm4', reverse: true });
      expect(ids(page.items)).to.deep.equal(['m7', 'm6']);
      expect(page.complete).to.equal(false);
    });

    it('returns the items strictly between an `after` and a `before` id', async () => {
      const page = await archive.query(H, U, { limit: 10, after: 'm2', before: 'm6' });
      expect(ids(page.items)).to.deep.equal(['m3', 'm4', 'm5']);
      expect(page.complete).to.equal(true);
    });

    it('tells with a zero limit whether any item matches, returning none', async () => {
      expect(await archive.query(H, U, { limit: 0 })).to.deep.equal({ items: [], complete: false });
      expect(await archive.query(H, U, { limit: 0, after: 'm7' })).to.deep.equal({ items: [], complete: true });
    });

    it('pages by position among items sharing one timestamp', async () => {
      const same = database.archive('same-time');
      for (const id of ['a', 'b', 'c', 'd', 'e']) await same.append(H, U, { id, when: T0, value: id });
      const p2 = await same.query(H, U, { limit: 2, after: 'b' });
      expect(ids(p2.items)).to.deep.equal(['c', 'd']);
      expect(p2.complete).to.equal(false);
      const back = await same.query(H, U, { limit: 2, before: 'd', reverse: true });
      expect(ids(back.items)).to.deep.equal(['c', 'b']);
      expect(back.complete).to.equal(false);
    });

    it('fails with PARLEY_ERR_ITEM_NOT_FOUND for an unknown `after` id', async () => {
      const err = await rejection(archive.query(H, U, { limit: 3, after: 'nope' }));
      expect(err.code).to.equal('PARLEY_ERR_ITEM_NOT_FOUND');
      expect(err.message).to.include('nope');
    });

    it('fails with PARLEY_ERR_ITEM_NOT_FOUND for an unknown `before` id', async () => {
      const err = await rejection(archive.query(H, U, { limit: 3, before: 'nope', reverse: true }));
      expect(err.code).to.equal('PARLEY_ERR_ITEM_NOT_FOUND');
    });

    it("treats another account's id as unknown", async () => {
      await archive.append(H, 'romeo', item(100));
      const err = await rejection(archive.query(H, U, { limit: 3, after: 'm100' }));
      expect(err.code).to.equal('PARLEY_ERR_ITEM_NOT_FOUND');
    });

    it('rejects a negative or fractional limit', async () => {
      await rejection(archive.query(H, U, { limit: -1 })).then((e) => expect(e).to.be.instanceOf(RangeError));
      await rejection(archive.query(H, U, { limit: 2.5 })).then((e) => expect(e).to.be.instanceOf(RangeError));
    });
  });

  describe('filters', () => {
    beforeEach(() => fill(9));

    it('keeps only the items with one peer', async () => {
      const page = await archive.query(H, U, { limit: 10, with: ROMEO });
      expect(ids(page.items)).to.deep.equal(['m1', 'm3', 'm5', 'm7', 'm9']);
    });

    it('includes both ends of a time range', async () => {
      const page = await archive.query(H, U, { limit: 10, start: item(3).when, end: item(5).when });
      expect(ids(page.items)).to.deep.equal(['m3', 'm4', 'm5']);
    });

    it('combines peer, time range and an `after` id', async () => {
      const q = { with: ROMEO, start: item(2).when, end: item(8).when };
      const p1 = await archive.query(H, U, { ...q, limit: 2 });
      expect(ids(p1.items)).to.deep.equal(['m3', 'm5']);
      expect(p1.complete).to.equal(false);
      const p2 = await archive.query(H, U, { ...q, limit: 2, after: 'm5' });
      expect(ids(p2.items)).to.deep.equal(['m7']);
      expect(p2.complete).to.equal(true);
    });

    it('combines peer, time range and a `before` id backwards', async () => {
      const q = { with: NURSE, start: item(3).when, end: item(9).when };
      const p1 = await archive.query(H, U, { ...q, limit: 2, reverse: true });
      expect(ids(p1.items)).to.deep.equal(['m8', 'm6']);
      expect(p1.complete).to.equal(false);
      const p2 = await archive.query(H, U, { ...q, limit: 2, reverse: true, before: 'm6' });
      expect(ids(p2.items)).to.deep.equal(['m4']);
      expect(p2.complete).to.equal(true);
    });

    it('uses whichever of `start` and `after` is later', async () => {
      // `after` earlier than `start`: start decides.
      const a = await archive.query(H, U, { limit: 10, after: 'm1', start: item(4).when });
      expect(ids(a.items)).to.deep.equal(['m4', 'm5', 'm6', 'm7', 'm8', 'm9']);
      // `after` later than `start`: after decides, and excludes its own item.
      const b = await archive.query(H, U, { limit: 10, after: 'm6', start: item(4).when });
      expect(ids(b.items)).to.deep.equal(['m7', 'm8', 'm9']);
    });

    it('uses whichever of `end` and `before` is earlier', async () => {
      const a = await archive.query(H, U, { limit: 10, before: 'm9', end: item(3).when });
      expect(ids(a.items)).to.deep.equal(['m1', 'm2', 'm3']);
      const b = await archive.query(H, U, { limit: 10, before: 'm3', end: item(6).when });
      expect(ids(b.items)).to.deep.equal(['m1', 'm2']);
    });

    it('accepts an `after` id outside the filtered set as a position', async () => {
      const page = await archive.query(H, U, { limit: 10, with: ROMEO, after: 'm4' });
      expect(ids(page.items)).to.deep.equal(['m5', 'm7', 'm9']);
    });

    it('returns the requested ids in archive order, ignoring unknown ones', async () => {
      const page = await archive.query(H, U, { limit: 10, ids: ['m7', 'zzz', 'm2', 'm5'] });
      expect(ids(page.items)).to.deep.equal(['m2', 'm5', 'm7']);
      expect(page.complete).to.equal(true);
    });

    it('applies the other filters, the direction and the limit to the requested ids', async () => {
      const wanted = ['m1', 'm2', 'm3', 'm5', 'm7', 'm9'];
      const page = await archive.query(H, U, { limit: 2, ids: wanted, with: ROMEO, start: item(3).when, reverse: true });
      expect(ids(page.items)).to.deep.equal(['m9', 'm7']);
      expect(page.complete).to.equal(false);
      const next = await archive.query(H, U, { limit: 2, ids: wanted, with: ROMEO, start: item(3).when, reverse: true, before: 'm7' });
      expect(ids(next.items)).to.deep.equal(['m5', 'm3']);
      expect(next.complete).to.equal(true);
      const capped = await archive.query(H, U, { limit: 10, ids: wanted, end: item(2).when, after: 'm1' });
      expect(ids(capped.items)).to.deep.equal(['m2']);
    });

    it('matches nothing for an empty id list', async () => {
      expect(await archive.query(H, U, { limit: 10, ids: [] })).to.deep.equal({ items: [], complete: true });
      expect(await archive.count(H, U, { ids: [] })).to.equal(0);
    });

    it('finds ids in another account as absent', async () => {
      await archive.append(H, 'romeo', item(50));
      expect((await archive.query(H, U, { limit: 10, ids: ['m50'] })).items).to.deep.equal([]);
    });
  });

  describe('count', () => {
    beforeEach(() => fill(9));

    it('counts all items of the account', async () => {
      await archive.append(H, 'romeo', item(1));
      expect(await archive.count(H, U)).to.equal(9);
    });

    it('counts with peer, time and id filters', async () => {
      expect(await archive.count(H, U, { with: ROMEO })).to.equal(5);
      expect(await archive.count(H, U, { start: item(3).when, end: item(6).when })).to.equal(4);
      expect(await archive.count(H, U, { with: NURSE, start: item(3).when })).to.equal(3);
      expect(await archive.count(H, U, { ids: ['m1', 'm2', 'nope'], with: NURSE })).to.equal(1);
    });
  });

  describe('delete', () => {
    beforeEach(() => fill(6));

    it('deletes the given ids and reports how many went', async () => {
      expect(await archive.delete(H, U, { ids: ['m2', 'm4', 'nope'] })).to.equal(2);
      expect(ids((await archive.query(H, U, { limit: 10 })).items)).to.deep.equal(['m1', 'm3', 'm5', 'm6']);
    });

    it('deletes nothing for an empty id list', async () => {
      expect(await archive.delete(H, U, { ids: [] })).to.equal(0);
      expect(await archive.count(H, U)).to.equal(6);
    });

    it('deletes the items older than a time, keeping that time itself', async () => {
      expect(await archive.delete(H, U, { olderThan: item(3).when })).to.equal(2);
      expect(ids((await archive.query(H, U, { limit: 10 })).items)).to.deep.equal(['m3', 'm4', 'm5', 'm6']);
    });

    it('deletes only the given ids that are also older than the time when both are given', async () => {
      expect(await archive.delete(H, U, { ids: ['m1', 'm5'], olderThan: item(3).when })).to.equal(1);
      expect(ids((await archive.query(H, U, { limit: 10 })).items)).to.deep.equal(['m2', 'm3', 'm4', 'm5', 'm6']);
    });

    it('deletes everything of the account in this store when given nothing', async () => {
      const offline = database.archive('offline');
      await offline.append(H, U, item(1));
      await archive.append(H, 'romeo', item(1));
      expect(await archive.delete(H, U)).to.equal(6);
      expect(await archive.count(H, U)).to.equal(0);
      expect(await offline.count(H, U)).to.equal(1);
      expect(await archive.count(H, 'romeo')).to.equal(1);
    });

    it('purges more items than one batch holds', async () => {
      const big = database.archive('big');
      await database.db
        .insertInto('archive')
        .values(Array.from({ length: 2500 }, (_, i) => ({ host: H, user: U, store: 'big', id: `b${i}`, ts: T0 + i, with_jid: null, value: 'v' })))
        .execute();
      expect(await big.delete(H, U, { olderThan: T0 + 2100 })).to.equal(2100);
      expect(await big.count(H, U)).to.equal(400);
      expect(await big.delete(H, U)).to.equal(400);
      expect(await big.count(H, U)).to.equal(0);
    });

    it('deletes an account without touching other users, hosts or stores', async () => {
      const offline = database.archive('offline');
      await archive.append(H, 'romeo', item(1));
      await archive.append('example.net', U, item(1));
      await offline.append(H, U, item(1));

      await archive.deleteAccount(H, U);

      expect(await archive.count(H, U)).to.equal(0);
      expect(ids((await archive.query(H, 'romeo', { limit: 10 })).items)).to.deep.equal(['m1']);
      expect(ids((await archive.query('example.net', U, { limit: 10 })).items)).to.deep.equal(['m1']);
      expect(ids((await offline.query(H, U, { limit: 10 })).items)).to.deep.equal(['m1']);
    });
  });
});

describe('ArchiveStore query plans on 100,000 items (SQLite)', function () {
  this.timeout(60_000);
  const ITEMS = 100_000;
  const PEERS = 50;
  let dir: string;
  let sqlite: BetterSqlite3.Database;
  let db: Kysely<any>;
  let archive: ArchiveStore;
  let captured: CompiledQuery[] | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'parley-plan-'));
    const path = join(dir, 'plan.db');
    const database = await openDatabase({ driver: 'sqlite', path });
    // Numbers are inlined: better-sqlite3 binds JS numbers as REAL, and 'peer' || 7.0 is not 'peer7'.
    // Juliet's 100,000 messages with 50 peers, and 20,000 of other accounts and stores around them.
    await sql`
      insert into archive (host, user, store, id, ts, with_jid, value)
      with recursive n(i) as (select 0 union all select i + 1 from n where i < ${sql.lit(ITEMS - 1)})
      select ${H}, ${U}, 'mam', 'm' || i, ${sql.lit(T0)} + i * 1000, 'peer' || (i % ${sql.lit(PEERS)}) || '@example.net', '<m/>' from n`.execute(database.db);
    await sql`
      insert into archive (host, user, store, id, ts, with_jid, value)
      with recursive n(i) as (select 0 union all select i + 1 from n where i < 19999)
      select ${H}, 'u' || (i % 20), case when i % 2 = 0 then 'mam' else 'offline' end, 'o' || i, ${sql.lit(T0)} + i * 500, 'peer' || (i % 7) || '@example.net', '<m/>' from n`.execute(database.db);
    await database.close();

    // The real store on a connection whose queries the test can see.
    sqlite = new BetterSqlite3(path);
    db = new Kysely<any>({
      dialect: new SqliteDialect({ database: sqlite }),
      log: (event) => void captured?.push(event.query),
    });
    archive = createArchiveStore(db, 'sqlite', 'mam');
  });

  after(async () => {
    await db.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs an operation of the store and returns the query plan of each statement it issued. */
  async function plans(run: () => Promise<unknown>): Promise<string[][]> {
    captured = [];
    await run();
    const queries = captured;
    captured = undefined;
    const out: string[][] = [];
    for (const q of queries) {
      const result = await db.executeQuery<{ detail: string }>(CompiledQuery.raw(`explain query plan ${q.sql}`, [...q.parameters]));
      out.push(result.rows.map((r) => r.detail));
    }
    return out;
  }

  /** Every step reaches the archive through an index search: nothing walks the table or sorts it. */
  function expectIndexed(plan: string[], index: string | RegExp): void {
    const text = plan.join(' | ');
    expect(text, text).not.to.match(/\bSCAN\b/);
    expect(text, text).not.to.include('TEMP B-TREE');
    for (const step of plan.filter((s) => /\barchive\b/.test(s))) expect(step, text).to.match(/^SEARCH archive USING /);
    expect(text, text).to.match(typeof index === 'string' ? new RegExp(`INDEX ${index}\\b`) : index);
  }

  const mid = `m${ITEMS / 2}`;
  const peer = 'peer7@example.net';
  const shapes: Array<{ name: string; run: () => Promise<unknown>; index: string }> = [
    { name: 'the first page', run: () => archive.query(H, U, { limit: 50 }), index: 'archive_ts_idx' },
    { name: 'the last page', run: () => archive.query(H, U, { limit: 50, reverse: true }), index: 'archive_ts_idx' },
    { name: 'a page after an id', run: () => archive.query(H, U, { limit: 50, after: mid }), index: 'archive_ts_idx' },
    { name: 'a page before an id, backwards', run: () => archive.query(H, U, { limit: 50, before: mid, reverse: true }), index: 'archive_ts_idx' },
    { name: 'a time range', run: () => archive.query(H, U, { limit: 50, start: T0 + 10_000_000, end: T0 + 90_000_000 }), index: 'archive_ts_idx' },
    { name: 'a time range after an id', run: () => archive.query(H, U, { limit: 50, start: T0, end: T0 + 90_000_000, after: mid }), index: 'archive_ts_idx' },
    { name: 'one peer', run: () => archive.query(H, U, { limit: 50, with: peer }), index: 'archive_with_idx' },
    { name: 'one peer, last page', run: () => archive.query(H, U, { limit: 50, with: peer, reverse: true }), index: 'archive_with_idx' },
    {
      name: 'one peer in a time range after an id',
      run: () => archive.query(H, U, { limit: 50, with: peer, start: T0, end: T0 + 90_000_000, after: mid }),
      index: 'archive_with_idx',
    },
    {
      name: 'one peer in a time range before an id, backwards',
      run: () => archive.query(H, U, { limit: 50, with: peer, start: T0 + 1000, before: mid, reverse: true }),
      index: 'archive_with_idx',
    },
  ];

  for (const statistics of [false, true]) {
    describe(statistics ? 'after ANALYZE' : 'without table statistics', () => {
      before(async () => {
        if (statistics) await sql`analyze`.execute(db);
      });

      for (const shape of shapes) {
        it(`answers ${shape.name} with an ordered index range on ${shape.index}`, async () => {
          const all = await plans(shape.run);
          const page = all[all.length - 1]!;
          expectIndexed(page, shape.index);
          // The cursor lookups go through the unique (host, user, store, id) index.
          for (const lookup of all.slice(0, -1)) expectIndexed(lookup, /INDEX sqlite_autoindex_archive_\d+ \(host=\? AND user=\? AND store=\? AND id=\?\)/);
        });
      }

      it('answers an id list through the unique id index, whatever the other filters', async () => {
        const wanted = Array.from({ length: 20 }, (_, i) => `m${i * 4000}`);
        const all = await plans(() => archive.query(H, U, { limit: 10, ids: wanted, with: peer, start: T0 }));
        expect(all).to.have.length(1);
        expectIndexed(all[0]!, /INDEX sqlite_autoindex_archive_\d+ \(host=\? AND user=\? AND store=\? AND id=\?\)/);
      });

      it('counts one peer in a time range from the peer index alone', async () => {
        const [plan] = await plans(() => archive.count(H, U, { with: peer, start: T0 + 1000 }));
        expectIndexed(plan!, /COVERING INDEX archive_with_idx/);
      });
    });
  }

  it('returns the right page from the large archive', async () => {
    const page = await archive.query(H, U, { limit: 3, with: peer, after: mid });
    // Items with peer7 are those with i % 50 === 7; the first after i = 50,000 is 50,007.
    expect(ids(page.items)).to.deep.equal(['m50007', 'm50057', 'm50107']);
    expect(page.complete).to.equal(false);
    const last = await archive.query(H, U, { limit: 2, reverse: true });
    expect(ids(last.items)).to.deep.equal([`m${ITEMS - 1}`, `m${ITEMS - 2}`]);
  });

  it('purges old items in index-driven batches', async () => {
    const [plan] = await plans(() => archive.delete(H, 'u3', { olderThan: T0 + 1000 }));
    expect(plan!.join(' | ')).not.to.match(/\bSCAN\b/);
    expect(plan!.join(' | ')).to.match(/SEARCH archive USING (COVERING )?INDEX archive_ts_idx/);
  });
});
