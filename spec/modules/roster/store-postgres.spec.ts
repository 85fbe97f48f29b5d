// The roster store on PostgreSQL with concurrent writers (pool connections or cluster nodes): an
// account's very first changes, made at once, each get their own version.
import { expect } from 'chai';
import { Jid } from '../../../lib/jid/jid.js';
import type { Database } from '../../../lib/storage/types.js';
import { emptyItem } from '../../../modules/roster/items.js';
import { RosterStore, rosterMigrations } from '../../../modules/roster/store.js';
import { postgresSkipReason, sharedPostgres } from '../../storage/backends.js';

describe('roster store on PostgreSQL: concurrent first changes', function () {
  this.timeout(20_000);
  let db: Database;

  before(async function () {
    const skip = await postgresSkipReason();
    if (skip) {
      console.log(`      skipped: ${skip}`);
      this.skip();
    }
    db = await (await sharedPostgres()).open({ pool: 8 });
    await db.migrate('roster', rosterMigrations);
  });
  after(async () => db?.close());

  it('gives ten simultaneous first changes ten distinct versions, none failing', async () => {
    const store = new RosterStore(db);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) =>
      store.mutate('example.com', 'racer', `c${i}@example.com`, () => emptyItem(Jid.parse(`c${i}@example.com`)))));
    const vers = results.map((r) => r.ver);
    expect(new Set(vers).size).to.equal(10);
    const epochs = new Set(vers.map((v) => v!.split('-')[0]));
    expect(epochs.size, 'one epoch').to.equal(1);
    expect(vers.map((v) => Number(v!.split('-')[1])).sort((a, b) => a - b)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('leaves a roster that never changed at version "0" after a change that changed nothing', async () => {
    const store = new RosterStore(db);
    await store.mutate('example.com', 'quiet', 'x@example.com', () => undefined);
    expect(await store.version('example.com', 'quiet')).to.deep.equal({ n: 0, epoch: undefined });
  });
});
