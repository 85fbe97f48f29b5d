// Every login lists the user's pending subscription requests: that query must read an index in
// its order, not sort through a temporary b-tree (whose page cache SQLite allocates and frees on
// each run, leaving resident freed memory behind, see the migration in pending.ts).
import { expect } from 'chai';
import { CompiledQuery, type KyselyPlugin, type PluginTransformQueryArgs, type PluginTransformResultArgs } from 'kysely';
import { xml } from '../../../lib/module-api.js';
import presence from '../../../modules/presence/index.js';
import roster from '../../../modules/roster/index.js';
import { PendingStore } from '../../../modules/presence/pending.js';
import { Harness } from '../../helpers/harness.js';

class Capture implements KyselyPlugin {
  readonly queries: PluginTransformQueryArgs[] = [];

  transformQuery(args: PluginTransformQueryArgs) {
    this.queries.push(args);
    return args.node;
  }

  async transformResult(args: PluginTransformResultArgs) {
    return args.result;
  }
}

describe('presence: the pending requests a login lists', () => {
  let h: Harness;
  afterEach(() => h.stop());

  it('come from an index in their order, with no temporary b-tree (SQLite)', async () => {
    h = await Harness.start({ modules: [roster, presence], storage: 'sqlite' });
    const capture = new Capture();
    const store = new PendingStore({ ...h.storage, db: h.storage.db.withPlugin(capture) });
    await store.put('example.com', 'alice', 'romeo@remote.example', xml('presence', { type: 'subscribe' }));
    await store.put('example.com', 'alice', 'juliet@remote.example', xml('presence', { type: 'subscribe' }));
    capture.queries.length = 0;

    const listed = await store.list('example.com', 'alice', 10);
    expect(listed.map((r) => r.contact)).to.have.members(['romeo@remote.example', 'juliet@remote.example']);
    expect(capture.queries).to.have.length(1);
    const q = capture.queries[0]!;
    const compiled = h.storage.db.getExecutor().compileQuery(q.node, q.queryId);
    const plan = await h.storage.db.executeQuery<{ detail: string }>(CompiledQuery.raw(`explain query plan ${compiled.sql}`, [...compiled.parameters]));
    const text = plan.rows.map((r) => r.detail).join(' | ');
    expect(text, text).not.to.include('TEMP B-TREE');
    expect(text, text).to.include('presence_pending_age_idx');
  });
});
