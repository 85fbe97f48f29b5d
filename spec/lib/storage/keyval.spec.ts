import { expect } from 'chai';
import { openDatabase } from '../../../lib/storage/database.js';
import type { Database, KeyValStore } from '../../../lib/storage/types.js';

describe('KeyValStore (SQLite)', () => {
  let database: Database;
  let store: KeyValStore;

  beforeEach(async () => {
    database = await openDatabase({ driver: 'sqlite', path: ':memory:' });
    store = database.keyval('private');
  });
  afterEach(() => database.close());

  it('returns undefined for a key never set', async () => {
    expect(await store.get('example.org', 'juliet', 'missing')).to.equal(undefined);
  });

  it('returns what was set', async () => {
    await store.set('example.org', 'juliet', 'storage:bookmarks', '<storage xmlns="storage:bookmarks"/>');
    expect(await store.get('example.org', 'juliet', 'storage:bookmarks')).to.equal('<storage xmlns="storage:bookmarks"/>');
  });

  it('replaces the value when a key is set again', async () => {
    await store.set('example.org', 'juliet', 'k', 'one');
    await store.set('example.org', 'juliet', 'k', 'two');
    expect(await store.get('example.org', 'juliet', 'k')).to.equal('two');
    expect(await store.keys('example.org', 'juliet')).to.deep.equal(['k']);
  });

  it('stores an empty string as a value distinct from absence', async () => {
    await store.set('example.org', 'juliet', 'k', '');
    expect(await store.get('example.org', 'juliet', 'k')).to.equal('');
  });

  it('records when a value was last written', async () => {
    const before = Date.now();
    await store.set('example.org', 'juliet', 'k', 'v');
    const row = await database.db.selectFrom('keyval').select('updated_at').executeTakeFirstOrThrow();
    expect(row.updated_at).to.be.within(before, Date.now());
  });

  it('deletes one key and leaves the others', async () => {
    await store.set('example.org', 'juliet', 'a', '1');
    await store.set('example.org', 'juliet', 'b', '2');
    await store.delete('example.org', 'juliet', 'a');
    expect(await store.get('example.org', 'juliet', 'a')).to.equal(undefined);
    expect(await store.get('example.org', 'juliet', 'b')).to.equal('2');
  });

  it('treats deleting an absent key as done', async () => {
    await store.delete('example.org', 'juliet', 'never');
    expect(await store.keys('example.org', 'juliet')).to.deep.equal([]);
  });

  it('lists the keys of an account in order', async () => {
    for (const k of ['c', 'a', 'b']) await store.set('example.org', 'juliet', k, k);
    expect(await store.keys('example.org', 'juliet')).to.deep.equal(['a', 'b', 'c']);
  });

  it('keeps the same user on two hosts apart', async () => {
    await store.set('example.org', 'juliet', 'k', 'org');
    await store.set('example.net', 'juliet', 'k', 'net');
    expect(await store.get('example.org', 'juliet', 'k')).to.equal('org');
    expect(await store.get('example.net', 'juliet', 'k')).to.equal('net');
  });

  it('keeps users of one host apart', async () => {
    await store.set('example.org', 'juliet', 'k', 'j');
    expect(await store.get('example.org', 'romeo', 'k')).to.equal(undefined);
    expect(await store.keys('example.org', 'romeo')).to.deep.equal([]);
  });

  it('keeps stores apart for the same account and key', async () => {
    const vcards = database.keyval('vcard');
    await store.set('example.org', 'juliet', 'k', 'private');
    await vcards.set('example.org', 'juliet', 'k', 'vcard');
    expect(await store.get('example.org', 'juliet', 'k')).to.equal('private');
    expect(await vcards.get('example.org', 'juliet', 'k')).to.equal('vcard');
    await vcards.delete('example.org', 'juliet', 'k');
    expect(await store.get('example.org', 'juliet', 'k')).to.equal('private');
  });

  it('deletes an account only in this store, host and user', async () => {
    const vcards = database.keyval('vcard');
    await store.set('example.org', 'juliet', 'a', '1');
    await store.set('example.org', 'juliet', 'b', '2');
    await store.set('example.org', 'romeo', 'a', 'r');
    await store.set('example.net', 'juliet', 'a', 'n');
    await vcards.set('example.org', 'juliet', 'a', 'v');

    await store.deleteAccount('example.org', 'juliet');

    expect(await store.keys('example.org', 'juliet')).to.deep.equal([]);
    expect(await store.get('example.org', 'romeo', 'a')).to.equal('r');
    expect(await store.get('example.net', 'juliet', 'a')).to.equal('n');
    expect(await vcards.get('example.org', 'juliet', 'a')).to.equal('v');
  });

  it('refuses a store without a name', () => {
    expect(() => database.keyval('')).to.throw(TypeError);
  });
});
