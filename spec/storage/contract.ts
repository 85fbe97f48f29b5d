// The storage contract suite (ARCHITECTURE.md §7, §11): the same behaviour sentences run against
// every dialect, so that module code written once behaves the same on SQLite and PostgreSQL.
import { expect } from 'chai';
import { CompiledQuery, sql, type Kysely, type KyselyPlugin, type PluginTransformQueryArgs, type PluginTransformResultArgs } from 'kysely';
import { AppendBatcher } from '../../lib/storage/append-batcher.js';
import { archivePageStatements, createArchiveStore } from '../../lib/storage/archive.js';
import { limitedStatements, numberedPlaceholders, type FastSql, type SqlParam, type StatementFactory } from '../../lib/storage/fast-statement.js';
import type { ArchiveItem, ArchiveStore, Database, KeyValStore, Migration } from '../../lib/storage/types.js';
import type { StorageBackend } from './backends.js';

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

async function schemaRows(db: Kysely<any>, owner: string): Promise<Array<{ version: number; applied_at: number }>> {
  return db.selectFrom('parley_schema').select(['version', 'applied_at']).where('owner', '=', owner).orderBy('version').execute();
}

/**
 * Runs the contract against one backend. When `backend` is a string, the backend is absent
 * (no server): the suite shows one pending line with that reason instead of failing.
 */
export function describeStorage(name: string, backendOrSkip: StorageBackend | string): void {
  if (typeof backendOrSkip === 'string') {
    describe(`storage contract (${name})`, () => {
      it(`skipped: ${backendOrSkip}`);
    });
    return;
  }
  const backend = backendOrSkip;

  describe(`storage contract (${name})`, function () {
    this.timeout(60_000);
    let database: Database;

    beforeEach(async () => {
      database = await backend.open();
    });
    afterEach(() => database.close());
    after(() => backend.tearDown());

    it(`reports its dialect as ${backend.dialect}`, () => {
      expect(database.dialect).to.equal(backend.dialect);
    });

    describe('KeyValStore', () => {
      let store: KeyValStore;
      beforeEach(() => {
        store = database.keyval('private');
      });

      it('returns undefined for a key never set', async () => {
        expect(await store.get(H, U, 'missing')).to.equal(undefined);
      });

      it('returns what was set', async () => {
        await store.set(H, U, 'storage:bookmarks', '<storage xmlns="storage:bookmarks"/>');
        expect(await store.get(H, U, 'storage:bookmarks')).to.equal('<storage xmlns="storage:bookmarks"/>');
      });

      it('replaces the value when a key is set again (an upsert)', async () => {
        await store.set(H, U, 'k', 'one');
        await store.set(H, U, 'k', 'two');
        expect(await store.get(H, U, 'k')).to.equal('two');
        expect(await store.keys(H, U)).to.deep.equal(['k']);
      });

      it('sets with the writes of the moment (setBatched), last one winning, covered by durable()', async () => {
        const writes = [store.setBatched(H, U, 'k', 'one'), store.setBatched(H, U, 'k', 'two'), store.setBatched(H, 'romeo', 'k', 'r')];
        await database.durable();
        expect(await store.get(H, U, 'k')).to.equal('two');
        expect(await store.get(H, 'romeo', 'k')).to.equal('r');
        await Promise.all(writes);
      });

      it('stores an empty string as a value distinct from absence', async () => {
        await store.set(H, U, 'k', '');
        expect(await store.get(H, U, 'k')).to.equal('');
      });

      it('keeps text exactly: non-ASCII, quotes, NUL-free control characters and large values', async () => {
        const values = ['Grüße, 世界 🎭', `it's "quoted" \\ back`, 'tab\tnew\nline\r', 'x'.repeat(200_000)];
        for (const [i, v] of values.entries()) await store.set(H, U, `k${i}`, v);
        for (const [i, v] of values.entries()) expect(await store.get(H, U, `k${i}`)).to.equal(v);
      });

      it('records when a value was last written, as a number of milliseconds', async () => {
        const before = Date.now();
        await store.set(H, U, 'k', 'v');
        const row = await database.db.selectFrom('keyval').select('updated_at').executeTakeFirstOrThrow();
        expect(row.updated_at).to.be.a('number').and.within(before, Date.now());
      });

      it('deletes one key and leaves the others', async () => {
        await store.set(H, U, 'a', '1');
        await store.set(H, U, 'b', '2');
        await store.delete(H, U, 'a');
        expect(await store.get(H, U, 'a')).to.equal(undefined);
        expect(await store.get(H, U, 'b')).to.equal('2');
      });

      it('treats deleting an absent key as done', async () => {
        await store.delete(H, U, 'never');
        expect(await store.keys(H, U)).to.deep.equal([]);
      });

      it('lists the keys of an account in byte order, whatever the collation', async () => {
        for (const k of ['c', 'a', 'B', '_x', 'é', 'b']) await store.set(H, U, k, k);
        expect(await store.keys(H, U)).to.deep.equal(['B', '_x', 'a', 'b', 'c', 'é']);
      });

      it('keeps the same user on two hosts apart', async () => {
        await store.set('example.org', U, 'k', 'org');
        await store.set('example.net', U, 'k', 'net');
        expect(await store.get('example.org', U, 'k')).to.equal('org');
        expect(await store.get('example.net', U, 'k')).to.equal('net');
      });

      it('keeps users of one host apart', async () => {
        await store.set(H, U, 'k', 'j');
        expect(await store.get(H, 'romeo', 'k')).to.equal(undefined);
        expect(await store.keys(H, 'romeo')).to.deep.equal([]);
      });

      it('keeps stores apart for the same account and key', async () => {
        const vcards = database.keyval('vcard');
        await store.set(H, U, 'k', 'private');
        await vcards.set(H, U, 'k', 'vcard');
        expect(await store.get(H, U, 'k')).to.equal('private');
        expect(await vcards.get(H, U, 'k')).to.equal('vcard');
        await vcards.delete(H, U, 'k');
        expect(await store.get(H, U, 'k')).to.equal('private');
      });

      it('deletes an account only in this store, host and user', async () => {
        const vcards = database.keyval('vcard');
        await store.set(H, U, 'a', '1');
        await store.set(H, U, 'b', '2');
        await store.set(H, 'romeo', 'a', 'r');
        await store.set('example.net', U, 'a', 'n');
        await vcards.set(H, U, 'a', 'v');

        await store.deleteAccount(H, U);

        expect(await store.keys(H, U)).to.deep.equal([]);
        expect(await store.get(H, 'romeo', 'a')).to.equal('r');
        expect(await store.get('example.net', U, 'a')).to.equal('n');
        expect(await vcards.get(H, U, 'a')).to.equal('v');
      });

      it('refuses a store without a name', () => {
        expect(() => database.keyval('')).to.throw(TypeError);
      });
    });

    describe('ArchiveStore', () => {
      let archive: ArchiveStore;
      beforeEach(() => {
        archive = database.archive('mam');
      });

      async function fill(n: number): Promise<void> {
        for (let i = 1; i <= n; i++) await archive.append(H, U, item(i));
      }

      describe('append and order', () => {
        it('returns what was appended, with its peer, time (a number) and payload', async () => {
          await archive.append(H, U, item(1));
          const page = await archive.query(H, U, { limit: 10 });
          expect(page.items).to.deep.equal([item(1)]);
          expect(page.items[0]!.when).to.be.a('number');
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

        it('never reuses an insertion number, even after the newest item is deleted', async () => {
          await archive.append(H, U, item(1));
          await archive.append(H, U, item(2));
          const seqOf = async (id: string) =>
            (await database.db.selectFrom('archive').select('seq').where('id', '=', id).executeTakeFirstOrThrow()).seq as unknown;
          const second = await seqOf('m2');
          expect(second).to.be.a('number');
          await archive.delete(H, U, { ids: ['m2'] });
          await archive.append(H, U, { id: 'late', when: item(1).when, value: 'late' });
          expect(await seqOf('late')).to.be.above(second as number);
          // Same timestamp as m1, inserted later: after it.
          expect(ids((await archive.query(H, U, { limit: 10 })).items)).to.deep.equal(['m1', 'late']);
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

        it('keeps times beyond 32 bits and before 1970 exactly', async () => {
          for (const when of [0, -86_400_000, 2 ** 41 + 7, Number.MAX_SAFE_INTEGER]) await archive.append(H, U, { id: `t${when}`, when, value: 'v' });
          const got = (await archive.query(H, U, { limit: 10 })).items.map((i) => i.when);
          expect(got).to.deep.equal([-86_400_000, 0, 2 ** 41 + 7, Number.MAX_SAFE_INTEGER]);
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
          const a = await archive.query(H, U, { limit: 10, after: 'm1', start: item(4).when });
          expect(ids(a.items)).to.deep.equal(['m4', 'm5', 'm6', 'm7', 'm8', 'm9']);
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

        it('counts all items of the account, as a number', async () => {
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

      describe('replace', () => {
        it('replaces the value of one item, keeping its id, time, peer and place among items of the same millisecond', async () => {
          for (const id of ['a', 'b', 'c']) await archive.append(H, U, { id, when: T0, with: ROMEO, value: `v-${id}` });
          await archive.append(H, U, { id: 'd', when: T0 + 1, value: 'v-d' });
          const before = (await archive.query(H, U, { limit: 10 })).items;

          expect(await archive.replace(H, U, 'b', '<tombstone/>')).to.equal(true);

          const after = (await archive.query(H, U, { limit: 10 })).items;
          expect(after).to.deep.equal(before.map((i) => (i.id === 'b' ? { ...i, value: '<tombstone/>' } : i)));
          expect(ids((await archive.query(H, U, { limit: 10, reverse: true })).items)).to.deep.equal(['d', 'c', 'b', 'a']);
          // Cursors on the replaced item still work: its position is unchanged.
          expect(ids((await archive.query(H, U, { after: 'b', limit: 10 })).items)).to.deep.equal(['c', 'd']);
        });

        it('answers false for an unknown id, and for an id of another account, host or store', async () => {
          await archive.append(H, 'romeo', item(1));
          await archive.append('example.net', U, item(1));
          await database.archive('offline').append(H, U, item(1));
          expect(await archive.replace(H, U, 'm1', 'x')).to.equal(false);
          expect(await archive.replace(H, U, 'nope', 'x')).to.equal(false);
          expect(ids((await archive.query(H, 'romeo', { limit: 10 })).items)).to.deep.equal(['m1']);
          expect((await archive.query(H, 'romeo', { limit: 10 })).items[0]!.value).to.equal(item(1).value);
          expect((await archive.query('example.net', U, { limit: 10 })).items[0]!.value).to.equal(item(1).value);
          expect((await database.archive('offline').query(H, U, { limit: 10 })).items[0]!.value).to.equal(item(1).value);
        });

        it('finds an item whose append is still waiting for its group commit', async () => {
          // Not awaited: the append is queued in the batcher when replace runs.
          const appended = archive.append(H, U, item(1));
          const replaced = archive.replace(H, U, 'm1', 'replaced');
          expect(await replaced).to.equal(true);
          await appended;
          expect((await archive.query(H, U, { limit: 10 })).items.map((i) => i.value)).to.deep.equal(['replaced']);
        });
      });
    });

    describe('migrate', () => {
      it('records the core migrations under the owner "core"', async () => {
        const rows = await schemaRows(database.db, 'core');
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
        await database.migrate('roster', [step(3), step(1), step(2)]);
        expect(order).to.deep.equal([1, 2, 3]);
        const rows = await schemaRows(database.db, 'roster');
        expect(rows.map((r) => r.version)).to.deep.equal([1, 2, 3]);
        for (const r of rows) expect(r.applied_at).to.be.a('number').and.within(before, Date.now());
      });

      it('applies a migration once however often it is run', async () => {
        let runs = 0;
        const m: Migration = {
          version: 1,
          async up(db) {
            runs++;
            await db.schema.createTable('once').addColumn('host', 'text').execute();
          },
        };
        await database.migrate('once', [m]);
        await database.migrate('once', [m]);
        expect(runs).to.equal(1);
        expect(await schemaRows(database.db, 'once')).to.have.length(1);
      });

      it('applies only the new versions when an owner adds a migration', async () => {
        await database.migrate('vcard', [table('vcard_a', 1)]);
        let ranOld = false;
        await database.migrate('vcard', [{ version: 1, up: async () => void (ranOld = true) }, table('vcard_b', 2)]);
        expect(ranOld).to.equal(false);
        expect(await backend.tables(database.db)).to.include.members(['vcard_a', 'vcard_b']);
      });

      it('keeps versions of different owners apart', async () => {
        await database.migrate('alpha', [table('alpha_1', 1)]);
        await database.migrate('beta', [table('beta_1', 1)]);
        expect((await schemaRows(database.db, 'alpha')).map((r) => r.version)).to.deep.equal([1]);
        expect((await schemaRows(database.db, 'beta')).map((r) => r.version)).to.deep.equal([1]);
      });

      it('rolls back the whole batch of an owner when one step fails, tables included, naming owner and version', async () => {
        const failing: Migration = {
          version: 2,
          async up(db) {
            await db.schema.createTable('half_done').addColumn('host', 'text').execute();
            throw new Error('boom');
          },
        };
        const err = await rejection(database.migrate('mam', [table('mam_ok', 1), failing]));
        expect(err.message).to.include('mam').and.include('version 2').and.include('boom');
        expect(err.code).to.equal('PARLEY_ERR_MIGRATION');
        expect((err.cause as Error).message).to.equal('boom');
        expect(await backend.tables(database.db)).not.to.include.oneOf(['mam_ok', 'half_done']);
        expect(await schemaRows(database.db, 'mam')).to.deep.equal([]);
      });

      it('rolls back when the database itself rejects a step', async () => {
        const bad: Migration = {
          version: 2,
          async up(db) {
            await sql`create table broken (host text, host text)`.execute(db);
          },
        };
        const err = await rejection(database.migrate('broken', [table('broken_ok', 1), bad]));
        expect(err.code).to.equal('PARLEY_ERR_MIGRATION');
        expect(err.message).to.include('broken version 2');
        expect(await backend.tables(database.db)).not.to.include('broken_ok');
        // The connection is usable afterwards.
        await database.keyval('private').set(H, U, 'k', 'v');
      });

      it('leaves earlier batches of the same owner in place when a later batch fails', async () => {
        await database.migrate('muc', [table('muc_1', 1)]);
        await rejection(database.migrate('muc', [table('muc_1', 1), { version: 2, up: async () => Promise.reject(new Error('nope')) }]));
        expect(await backend.tables(database.db)).to.include('muc_1');
        expect((await schemaRows(database.db, 'muc')).map((r) => r.version)).to.deep.equal([1]);
      });

      it('rejects a list that declares a version twice before touching the schema', async () => {
        const err = await rejection(database.migrate('dup', [table('dup_a', 1), table('dup_b', 1)]));
        expect(err.code).to.equal('PARLEY_ERR_MIGRATION');
        expect(err.message).to.include('dup').and.include('version 1');
        expect(await backend.tables(database.db)).not.to.include.oneOf(['dup_a', 'dup_b']);
      });
    });

    describe('portable module SQL', () => {
      interface Row {
        host: string;
        user: string;
        n: number;
        at: number;
        flag: unknown;
        note: string | null;
      }
      beforeEach(() =>
        database.migrate('portable', [
          {
            version: 1,
            async up(db) {
              await db.schema
                .createTable('portable')
                .addColumn('host', 'text', (c) => c.notNull())
                .addColumn('user', 'text', (c) => c.notNull())
                .addColumn('n', 'integer', (c) => c.notNull().defaultTo(0))
                .addColumn('at', 'bigint', (c) => c.notNull())
                .addColumn('flag', 'boolean', (c) => c.notNull().defaultTo(false))
                .addColumn('note', 'text')
                .addPrimaryKeyConstraint('portable_pk', ['host', 'user'])
                .execute();
            },
          },
        ]),
      );

      it('writes booleans as JS booleans and reads them back through Boolean()', async () => {
        await database.db.insertInto('portable').values({ host: H, user: 'a', at: T0, flag: true }).execute();
        await database.db.insertInto('portable').values([{ host: H, user: 'b', at: T0, flag: false }, { host: H, user: 'c', at: T0, flag: true }]).execute();
        const rows = (await database.db.selectFrom('portable').selectAll().orderBy('user').execute()) as Row[];
        expect(rows.map((r) => Boolean(r.flag))).to.deep.equal([true, false, true]);
        const flagged = await database.db.selectFrom('portable').select('user').where('flag', '=', true).orderBy('user').execute();
        expect(flagged.map((r) => r.user)).to.deep.equal(['a', 'c']);
      });

      it('upserts with onConflict, and counts as numbers', async () => {
        const upsert = (n: number) =>
          database.db
            .insertInto('portable')
            .values({ host: H, user: U, n, at: Date.now() })
            .onConflict((oc) => oc.columns(['host', 'user']).doUpdateSet({ n }))
            .execute();
        await upsert(1);
        await upsert(2);
        await database.db.insertInto('portable').values({ host: H, user: U, n: 3, at: T0 }).onConflict((oc) => oc.columns(['host', 'user']).doNothing()).execute();
        const row = (await database.db.selectFrom('portable').selectAll().executeTakeFirstOrThrow()) as Row;
        expect(row.n).to.equal(2);
        expect(row.at).to.be.a('number');
        expect(row.note).to.equal(null);
        const { n } = await database.db.selectFrom('portable').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
        expect(Number(n)).to.equal(1);
      });

      it('rolls back a failed transaction on a pooled connection and keeps serving', async () => {
        await rejection(
          database.db.transaction().execute(async (trx) => {
            await trx.insertInto('portable').values({ host: H, user: 'x', at: T0 }).execute();
            await trx.insertInto('portable').values({ host: H, user: 'x', at: T0 }).execute();
          }),
        );
        expect(await database.db.selectFrom('portable').selectAll().execute()).to.deep.equal([]);
      });

      describe('fast statements', () => {
        it('reads rows as Kysely does: numbers for bigint columns, null for NULL', async () => {
          await database.db.insertInto('portable').values([{ host: H, user: 'a', n: 1, at: T0 }, { host: H, user: 'b', n: 2, at: T0 + 1, note: 'x' }]).execute();
          const select = database.statement<Row>('select "user", "n", "at", "note" from "portable" where "host" = ? and "n" >= ? order by "user"');
          expect(await select.all([H, 1])).to.deep.equal([{ user: 'a', n: 1, at: T0, note: null }, { user: 'b', n: 2, at: T0 + 1, note: 'x' }]);
          expect(await select.first([H, 2])).to.deep.equal({ user: 'b', n: 2, at: T0 + 1, note: 'x' });
          expect(await select.first([H, 3])).to.equal(undefined);
          expect(await select.all(['other.example', 0])).to.deep.equal([]);
        });

        it('writes, counting the rows changed, and binds booleans on both dialects', async () => {
          const insert = database.statement('insert into "portable" ("host", "user", "at", "flag") values (?, ?, ?, ?)');
          expect(await insert.run([H, 'a', T0, true])).to.equal(1);
          expect(await insert.run([H, 'b', T0, false])).to.equal(1);
          const flagged = await database.statement<{ user: string }>('select "user" from "portable" where "flag" = ? order by "user"').all([true]);
          expect(flagged.map((r) => r.user)).to.deep.equal(['a']);
          expect(await database.statement('update "portable" set "n" = "n" + 1 where "host" = ?').run([H])).to.equal(2);
          expect(await database.statement('delete from "portable" where "user" = ?').run(['nobody'])).to.equal(0);
        });

        it('writes a LIMIT into the text, one statement per limit, refusing anything but a whole number', async () => {
          const insert = database.statement('insert into "portable" ("host", "user", "at") values (?, ?, ?)');
          for (const u of ['a', 'b', 'c']) await insert.run([H, u, T0]);
          const made: string[] = [];
          const page = limitedStatements<{ user: string }>((text) => {
            made.push(String(text));
            return database.statement(text);
          }, (n) => `select "user" from "portable" order by "user" limit ${n}`, 2);
          expect((await page(2).all([])).map((r) => r.user)).to.deep.equal(['a', 'b']);
          expect((await page(2).all([])).map((r) => r.user)).to.deep.equal(['a', 'b']);
          expect((await page(0).all([])).map((r) => r.user)).to.deep.equal([]);
          expect(made).to.have.length(2);
          expect(() => page(1.5)).to.throw(RangeError);
          expect(() => page(-1)).to.throw(RangeError);
        });

        it('takes one text per dialect', async () => {
          const row = await database.statement<{ v: string }>({ sqlite: "select 'sqlite' as v", postgres: "select 'postgres' as v" }).first([]);
          expect(row?.v).to.equal(backend.dialect);
        });

        it('fails with the database error, and keeps working', async () => {
          const insert = database.statement('insert into "portable" ("host", "user", "at") values (?, ?, ?)');
          await insert.run([H, 'a', T0]);
          await rejection(insert.run([H, 'a', T0]));
          expect(await insert.run([H, 'b', T0])).to.equal(1);
          await rejection(database.statement('select * from "no_such_table"').all([]));
        });

        it('commits batched writes in order, a failing one without its neighbours, and durable() covers them', async () => {
          const insert = database.statement('insert into "portable" ("host", "user", "n", "at") values (?, ?, ?, ?)');
          const bump = database.statement('update "portable" set "n" = "n" * 10 + ? where "user" = ?');
          const writes = [
            insert.batched([H, 'a', 1, T0]),
            bump.batched([2, 'a']),
            insert.batched([H, 'a', 9, T0]), // a duplicate key: fails alone
            insert.batched([H, 'b', 3, T0]),
            bump.batched([4, 'a']),
          ];
          const settled = Promise.allSettled(writes);
          const durable = database.durable();
          expect(durable).to.not.equal(undefined);
          await durable;
          const rows = await database.statement<{ user: string; n: number }>('select "user", "n" from "portable" order by "user"').all([]);
          expect(rows).to.deep.equal([{ user: 'a', n: 124 }, { user: 'b', n: 3 }]);
          const results = await settled;
          expect(results.map((r) => r.status)).to.deep.equal(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
          expect((results[1] as PromiseFulfilledResult<number>).value).to.equal(1);
        });

        it('writes what is batched before the database closes', async () => {
          const other = await backend.open();
          await other.migrate('portable', [
            { version: 1, up: (db) => db.schema.createTable('portable').addColumn('user', 'text', (c) => c.primaryKey()).execute() },
          ]);
          const done = other.statement('insert into "portable" ("user") values (?)').batched(['late']);
          await other.close();
          expect(await done).to.equal(1);
        });

        it("neither sees nor joins a transaction in progress: it waits for it to end", async () => {
          let inside!: () => void;
          const entered = new Promise<void>((resolve) => { inside = resolve; });
          let release!: () => void;
          const held = new Promise<void>((resolve) => { release = resolve; });
          const trx = database.db.transaction().execute(async (t) => {
            await t.insertInto('portable').values({ host: H, user: 'in-trx', at: T0 }).execute();
            inside();
            await held;
            throw new Error('roll back');
          });
          await entered;
          const read = database.statement<{ user: string }>('select "user" from "portable" order by "user"').all([]);
          const write = database.statement('insert into "portable" ("host", "user", "at") values (?, ?, ?)').run([H, 'outside', T0]);
          release();
          await rejection(trx);
          // (On PostgreSQL the read and the write run on two connections at once: either order.)
          expect((await read).map((r) => r.user)).to.not.include('in-trx');
          expect(await write).to.equal(1);
          const rows = await database.statement<{ user: string }>('select "user" from "portable" order by "user"').all([]);
          expect(rows.map((r) => r.user)).to.deep.equal(['outside']);
        });
      });
    });

    describe('query plans on a large archive', function () {
      const ITEMS = 100_000;
      const PEERS = 50;
      let big: Database;
      let plain: Kysely<any>;
      let store: ArchiveStore;
      const capture = new CapturePlugin();

      before(async () => {
        big = await backend.open();
        // Juliet's 100,000 messages with 50 peers, and 20,000 of other accounts and stores around
        // them. Numbers are inlined: better-sqlite3 binds JS numbers as REAL ('peer' || 7.0).
        await sql`
          insert into archive (host, "user", store, id, ts, with_jid, value)
          with recursive n(i) as (select 0 union all select i + 1 from n where i < ${sql.lit(ITEMS - 1)})
          select ${H}, ${U}, 'mam', 'm' || i, ${sql.lit(T0)} + i * 1000, 'peer' || (i % ${sql.lit(PEERS)}) || '@example.net', '<m/>' from n`.execute(big.db);
        await sql`
          insert into archive (host, "user", store, id, ts, with_jid, value)
          with recursive n(i) as (select 0 union all select i + 1 from n where i < 19999)
          select ${H}, 'u' || (i % 20), case when i % 2 = 0 then 'mam' else 'offline' end, 'o' || i, ${sql.lit(T0)} + i * 500, 'peer' || (i % 7) || '@example.net', '<m/>' from n`.execute(big.db);
        plain = big.db;
        // The fast statements (fast-statement.ts) are captured as they run, as Kysely's queries are.
        const captured: StatementFactory = <Row>(text: FastSql) => {
          const inner = big.statement<Row>(text);
          const source = typeof text === 'string' ? text : text[backend.dialect];
          const note = (params: readonly SqlParam[]) =>
            capture.queries?.push(CompiledQuery.raw(backend.dialect === 'postgres' ? numberedPlaceholders(source) : source, [...params]));
          return {
            all: (params) => (note(params), inner.all(params)),
            first: (params) => (note(params), inner.first(params)),
            run: (params) => (note(params), inner.run(params)),
            batched: (params) => (note(params), inner.batched(params)),
          };
        };
        store = createArchiveStore(plain.withPlugin(capture), backend.dialect, 'mam', new AppendBatcher(plain), archivePageStatements(captured));
      });
      after(() => big?.close());

      /** Runs an operation of the store and returns the plan of each statement it issued (PARLEY_SHOW_PLANS=1 prints them). */
      async function plans(run: () => Promise<unknown>): Promise<string[][]> {
        capture.queries = [];
        await run();
        const queries = capture.queries;
        capture.queries = undefined;
        const out: string[][] = [];
        for (const q of queries) out.push(await backend.plan(plain, 'sql' in q ? q : plain.getExecutor().compileQuery(q.node, q.queryId)));
        if (process.env.PARLEY_SHOW_PLANS) console.log(out.map((p) => p.join('\n')).join('\n--\n'));
        return out;
      }

      const expectIndexed = (plan: string[], index: string | RegExp) => expectIndexRange(backend, plan, index);

      const mid = `m${ITEMS / 2}`;
      const peer = 'peer7@example.net';
      const shapes: Array<{ name: string; run: () => Promise<unknown>; index: string }> = [
        { name: 'the first page', run: () => store.query(H, U, { limit: 50 }), index: 'archive_ts_idx' },
        { name: 'the last page', run: () => store.query(H, U, { limit: 50, reverse: true }), index: 'archive_ts_idx' },
        { name: 'a page after an id', run: () => store.query(H, U, { limit: 50, after: mid }), index: 'archive_ts_idx' },
        { name: 'a page before an id, backwards', run: () => store.query(H, U, { limit: 50, before: mid, reverse: true }), index: 'archive_ts_idx' },
        { name: 'a time range', run: () => store.query(H, U, { limit: 50, start: T0 + 10_000_000, end: T0 + 90_000_000 }), index: 'archive_ts_idx' },
        { name: 'a time range after an id', run: () => store.query(H, U, { limit: 50, start: T0, end: T0 + 90_000_000, after: mid }), index: 'archive_ts_idx' },
        { name: 'one peer', run: () => store.query(H, U, { limit: 50, with: peer }), index: 'archive_with_idx' },
        { name: 'one peer, last page', run: () => store.query(H, U, { limit: 50, with: peer, reverse: true }), index: 'archive_with_idx' },
        {
          name: 'one peer in a time range after an id',
          run: () => store.query(H, U, { limit: 50, with: peer, start: T0, end: T0 + 90_000_000, after: mid }),
          index: 'archive_with_idx',
        },
        {
          name: 'one peer in a time range before an id, backwards',
          run: () => store.query(H, U, { limit: 50, with: peer, start: T0 + 1000, before: mid, reverse: true }),
          index: 'archive_with_idx',
        },
      ];

      // SQLite plans from the schema alone, so its plans must be right before any ANALYZE too;
      // PostgreSQL plans from statistics, which autovacuum gathers on a real server.
      for (const statistics of backend.plansWithoutStatistics ? [false, true] : [true]) {
        describe(statistics ? 'after ANALYZE' : 'without table statistics', () => {
          before(async () => {
            if (statistics) await backend.analyze(plain);
          });

          for (const shape of shapes) {
            it(`answers ${shape.name} with an ordered index range on ${shape.index}`, async () => {
              const all = await plans(shape.run);
              expectIndexed(all[all.length - 1]!, shape.index);
              // The cursor lookups go through the unique (host, user, store, id) index.
              for (const lookup of all.slice(0, -1)) expectIndexed(lookup, backend.idIndex);
            });
          }

          it('answers an id list through the unique id index, whatever the other filters', async () => {
            const wanted = Array.from({ length: 20 }, (_, i) => `m${i * 4000}`);
            const all = await plans(() => store.query(H, U, { limit: 10, ids: wanted, with: peer, start: T0 }));
            expect(all).to.have.length(1);
            expectIndexed(all[0]!, backend.idIndex);
          });

          it('counts one peer in a time range from the peer index', async () => {
            const [plan] = await plans(() => store.count(H, U, { with: peer, start: T0 + 1000 }));
            expectIndexed(plan!, 'archive_with_idx');
          });

          it('purges old items in index-driven batches', async () => {
            // The batch subquery is compiled (and captured) on its own first; the DELETE is last.
            const all = await plans(() => store.delete(H, 'u3', { olderThan: T0 + 1000 }));
            expectIndexed(all[all.length - 1]!, 'archive_ts_idx');
          });
        });
      }

      it('returns the right pages from the large archive', async () => {
        const page = await store.query(H, U, { limit: 3, with: peer, after: mid });
        // Items with peer7 are those with i % 50 === 7; the first after i = 50,000 is 50,007.
        expect(ids(page.items)).to.deep.equal(['m50007', 'm50057', 'm50107']);
        expect(page.complete).to.equal(false);
        const last = await store.query(H, U, { limit: 2, reverse: true });
        expect(ids(last.items)).to.deep.equal([`m${ITEMS - 1}`, `m${ITEMS - 2}`]);
        expect(await store.count(H, U, { with: peer })).to.equal(ITEMS / PEERS);
      });
    });
  });
}

/** Records the statements a Kysely instance runs, to explain them afterwards. */
class CapturePlugin implements KyselyPlugin {
  queries: Array<PluginTransformQueryArgs | CompiledQuery> | undefined;

  transformQuery(args: PluginTransformQueryArgs) {
    this.queries?.push(args);
    return args.node;
  }

  async transformResult(args: PluginTransformResultArgs) {
    return args.result;
  }
}

/**
 * Every step of the plan reaches the archive through an index (named `index`): nothing walks
 * the table, nothing sorts it.
 */
function expectIndexRange(backend: StorageBackend, plan: string[], index: string | RegExp): void {
  const text = plan.join(' | ');
  const named = typeof index === 'string' ? new RegExp(`\\b${index}\\b`) : index;
  if (backend.dialect === 'sqlite') {
    expect(text, text).not.to.match(/\bSCAN\b/);
    expect(text, text).not.to.include('TEMP B-TREE');
    for (const step of plan.filter((s) => /\barchive\b/.test(s))) expect(step, text).to.match(/^SEARCH archive USING /);
    expect(text, text).to.match(new RegExp(`INDEX ${named.source}`));
  } else {
    expect(text, text).not.to.match(/Seq Scan|Bitmap/);
    // No Sort node (a line "Sort" or "-> Sort", not a "Sort Key:" detail).
    expect(plan.some((l) => /^\s*(->\s*)?(Incremental )?Sort( |$)/.test(l)), text).to.equal(false);
    // Every scan node that reads the archive (not "Delete on archive" above them).
    for (const step of plan.filter((s) => /\bScan\b.*\bon archive\b/.test(s))) {
      expect(step, text).to.match(/\bIndex (Only )?Scan( Backward)? using \w+ on archive\b/);
    }
    expect(text, text).to.match(new RegExp(`Index (Only )?Scan( Backward)? using ${named.source}`));
  }
}
