// Every login lists the user's pending subscription requests: that query must read an index in
// its order, not sort through a temporary b-tree (whose page cache SQLite allocates and frees on
// each run, leaving resident freed memory behind, see the migration in pending.ts).
import { expect } from 'chai';
import { CompiledQuery } from 'kysely';
import { xml } from '../../../lib/module-api.js';
import presence from '../../../modules/presence/index.js';
import roster from '../../../modules/roster/index.js';
import { PENDING_LIST_SQL, PendingStore } from '../../../modules/presence/pending.js';
import { Harness } from '../../helpers/harness.js';

describe('presence: the pending requests a login lists', () => {
  let h: Harness;
  afterEach(() => h.stop());

  it('come from an index in their order, with no temporary b-tree (SQLite)', async () => {
    h = await Harness.start({ modules: [roster, presence], storage: 'sqlite' });
    const store = new PendingStore(h.storage);
    await store.put('example.com', 'alice', 'romeo@remote.example', xml('presence', { type: 'subscribe' }));
    await store.put('example.com', 'alice', 'juliet@remote.example', xml('presence', { type: 'subscribe' }));

    const listed = await store.list('example.com', 'alice', 10);
    expect(listed.map((r) => r.contact)).to.have.members(['romeo@remote.example', 'juliet@remote.example']);
    // The statement the store runs (a prepared fast statement, not a Kysely query).
    const sql = PENDING_LIST_SQL(10);
    const plan = await h.storage.db.executeQuery<{ detail: string }>(CompiledQuery.raw(`explain query plan ${sql}`, ['example.com', 'alice']));
    const text = plan.rows.map((r) => r.detail).join(' | ');
    expect(text, text).not.to.include('TEMP B-TREE');
    expect(text, text).to.include('presence_pending_age_idx');
  });
});
