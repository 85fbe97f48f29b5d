// The pubsub item store on PostgreSQL with concurrent publishers (pool connections or cluster
// nodes): items published at once to one node each get their own place in its order.
import { expect } from 'chai';
import type { Database } from '../../../lib/storage/types.js';
import { PubsubStore, pubsubMigrations } from '../../../modules/pep/store.js';
import { postgresSkipReason, sharedPostgres } from '../../storage/backends.js';

describe('pubsub store on PostgreSQL: concurrent publishes', function () {
  this.timeout(20_000);
  let db: Database;

  before(async function () {
    const skip = await postgresSkipReason();
    if (skip) {
      console.log(`      skipped: ${skip}`);
      this.skip();
    }
    db = await (await sharedPostgres()).open({ pool: 8 });
    await db.migrate('pep', pubsubMigrations);
  });
  after(async () => db?.close());

  it('numbers twelve simultaneous items of one node 1..12', async () => {
    const store = new PubsubStore(db, 'example.com');
    await store.createNode('alice@example.com', 'urn:test', '{}', 'alice@example.com');
    await Promise.all(Array.from({ length: 12 }, (_, i) =>
      store.putItem('alice@example.com', 'urn:test', { id: `i${i}`, publisher: 'alice@example.com', payload: '<x/>' }, 100)));
    const rows = (await db.db.selectFrom('pubsub_items').select(['item_id', 'seq']).where('service', '=', 'alice@example.com').execute()) as Array<{ seq: number | string }>;
    expect(rows.map((r) => Number(r.seq)).sort((a, b) => a - b)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });
});
