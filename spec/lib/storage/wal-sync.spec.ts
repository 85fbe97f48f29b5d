import { expect } from 'chai';
import { mkdtempSync, rmSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDatabase } from '../../../lib/storage/database.js';
import type { Database } from '../../../lib/storage/types.js';

describe('SQLite commits made durable off the event loop (WalSync)', () => {
  let dir: string;
  let database: Database;
  let syncs: string[];
  let proto: { datasync: FileHandle['datasync'] };
  let original: FileHandle['datasync'];

  before(async () => {
    // Every FileHandle shares one prototype: count the fdatasync calls made on any of them.
    dir = mkdtempSync(join(tmpdir(), 'parley-walsync-'));
    const probe = await open(join(dir, 'probe'), 'w');
    proto = Object.getPrototypeOf(probe) as typeof proto;
    await probe.close();
    original = proto.datasync;
  });
  beforeEach(async () => {
    database = await openDatabase({ driver: 'sqlite', path: join(dir, `p-${Date.now()}-${Math.random()}.db`) });
    syncs = [];
    proto.datasync = function (this: FileHandle) {
      syncs.push('datasync');
      return original.call(this);
    };
  });
  afterEach(async () => {
    proto.datasync = original;
    await database.close();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('has nothing to wait for after opening', () => {
    expect(database.durable()).to.equal(undefined);
  });

  it('syncs the log after a write made through the query builder, and durable() waits for it', async () => {
    await database.keyval('k').set('h', 'u', 'key', 'value');
    const durable = database.durable();
    expect(durable).to.be.instanceOf(Promise);
    await durable;
    expect(syncs.length).to.be.at.least(1);
    expect(database.durable()).to.equal(undefined);
  });

  it('does not sync for reads', async () => {
    await database.keyval('k').get('h', 'u', 'key');
    expect(database.durable()).to.equal(undefined);
    expect(syncs).to.deep.equal([]);
  });

  it('covers many writes of one moment with one or two syncs, not one each', async () => {
    const kv = database.keyval('k');
    await Promise.all(Array.from({ length: 20 }, (_, i) => kv.set('h', 'u', `key${i}`, 'v')));
    await database.durable();
    expect(syncs.length).to.be.within(1, 2);
  });

  it('resolves an archive append only once the log holding it is synced', async () => {
    await database.archive('a').append('h', 'u', { id: 'x', when: 1, value: 'v' });
    expect(syncs.length).to.be.at.least(1);
  });
});
