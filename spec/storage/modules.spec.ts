// Every module of the catalog on both dialects (ARCHITECTURE.md §7): its migrations apply, once,
// through the server's own boot; deleting an account makes every module purge it without an
// error; and afterwards no per-account table holds a row of that account, while the other
// accounts keep theirs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { sql, type Kysely } from 'kysely';
import { parseConfig } from '../../lib/config/load.js';
import type { ParleyConfig } from '../../lib/config/schema.js';
import { createLogger, type Logger } from '../../lib/log.js';
import { MODULE_CATALOG, MODULES } from '../../lib/modules/catalog.js';
import { bootCore } from '../../lib/server.js';
import { ACCOUNT_MIGRATIONS } from '../../lib/accounts/service.js';
import { NS, xml } from '../../lib/module-api.js';
import type { Dialect, StorageConfig } from '../../lib/storage/types.js';
import { Harness, type TestClient } from '../helpers/harness.js';
import { postgresSkipReason, sharedPostgres } from './backends.js';

const HOST = 'example.com';
const pgSkip = await postgresSkipReason();

/** A logger that keeps every warning and error, to show that no handler failed. */
function recordingLogger(): { log: Logger; problems: Array<{ msg: string; err?: { message?: string } }> } {
  const problems: Array<{ msg: string; err?: { message?: string } }> = [];
  const log = createLogger({ level: 'warn', destination: { write: (line: string) => void problems.push(JSON.parse(line)) } });
  return { log, problems };
}

function configFor(storage: StorageConfig): ParleyConfig {
  // Every module of the catalog, on or off by default: an empty mapping turns one on.
  const modules = Object.fromEntries(MODULE_CATALOG.map((m) => [m.name, {}]));
  return parseConfig({ hosts: [HOST], storage, modules, listeners: [] }, MODULE_CATALOG, tmpdir());
}

/** Columns of each table in the database Parley uses (the current schema on PostgreSQL). */
async function tableColumns(db: Kysely<any>, dialect: Dialect): Promise<Map<string, string[]>> {
  let tables = await db.introspection.getTables();
  if (dialect === 'postgres') {
    const { rows } = await sql<{ s: string }>`select current_schema() as s`.execute(db);
    tables = tables.filter((t) => t.schema === rows[0]!.s);
  }
  return new Map(tables.map((t) => [t.name, t.columns.map((c) => c.name)]));
}

/** Rows per table of one account, in every table with `host` and `user` columns. */
async function accountRows(db: Kysely<any>, dialect: Dialect, user: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [table, columns] of await tableColumns(db, dialect)) {
    if (!columns.includes('host') || !columns.includes('user')) continue;
    const row = await db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll().as('n'))
      .where('host', '=', HOST)
      .where('user', '=', user)
      .executeTakeFirstOrThrow();
    out[table] = Number(row.n);
  }
  return out;
}

const total = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

for (const dialect of ['sqlite', 'postgres'] as const) {
  const name = dialect === 'sqlite' ? 'SQLite' : 'PostgreSQL';

  describe(`every module's storage (${name})`, function () {
    this.timeout(60_000);
    let dir: string;
    let storage: StorageConfig;

    before(function () {
      if (dialect === 'postgres' && pgSkip !== undefined) {
        console.log(`      (skipped: ${pgSkip})`);
        this.skip();
      }
    });
    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'parley-modules-'));
      storage =
        dialect === 'sqlite'
          ? { driver: 'sqlite', path: join(dir, 'parley.db') }
          : { driver: 'postgres', url: (await sharedPostgres()).url(await (await sharedPostgres()).schema()) };
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('applies the migrations of core, accounts and every module once, through the server boot', async () => {
      const config = configFor(storage);
      const { log, problems } = recordingLogger();
      let core = await bootCore(config, log);
      const first = await core.storage.db.selectFrom('parley_schema').select(['owner', 'version', 'applied_at']).orderBy('owner').orderBy('version').execute();
      await core.close();
      core = await bootCore(config, log);
      try {
        const again = await core.storage.db.selectFrom('parley_schema').select(['owner', 'version', 'applied_at']).orderBy('owner').orderBy('version').execute();
        expect(again).to.deep.equal(first);
        const expected = [
          { owner: 'core', versions: [1] },
          { owner: 'accounts', versions: ACCOUNT_MIGRATIONS.map((m) => m.version) },
          ...MODULES.filter((m) => m.migrations?.length).map((m) => ({ owner: m.name, versions: m.migrations!.map((x) => x.version) })),
        ];
        for (const { owner, versions } of expected) {
          expect(first.filter((r) => r.owner === owner).map((r) => r.version), owner).to.deep.equal([...versions].sort((a, b) => a - b));
        }
        expect(problems).to.deep.equal([]);
      } finally {
        await core.close();
      }
    });

    it("runs every module's account/deleted purge without an error, through the server boot", async () => {
      const { log, problems } = recordingLogger();
      const core = await bootCore(configFor(storage), log);
      try {
        await core.accounts.create(HOST, 'juliet', 'pw-juliet');
        await core.accounts.create(HOST, 'romeo', 'pw-romeo');
        expect(await core.accounts.delete(HOST, 'juliet')).to.equal(true);
        expect(await core.accounts.exists(HOST, 'juliet')).to.equal(false);
        expect(await core.accounts.exists(HOST, 'romeo')).to.equal(true);
        expect(problems).to.deep.equal([]);
      } finally {
        await core.close();
      }
    });

    describe('with data in every store', () => {
      let h: Harness;
      let problems: Array<{ msg: string }>;

      beforeEach(async () => {
        const recorder = recordingLogger();
        problems = recorder.problems;
        h = await Harness.start({ modules: MODULES, storage: dialect, log: recorder.log });
        for (const user of ['juliet', 'romeo', 'nurse']) await h.createAccount(user);
        const nurse = await h.connect(`nurse@${HOST}/station`);
        await nurse.sendPresence();
        for (const user of ['juliet', 'romeo']) await useEverything(h, nurse, user);
        await h.settle(20);
      });
      afterEach(() => h?.stop());

      it('leaves no row of a deleted account in any per-account table and keeps the other accounts', async () => {
        const julietBefore = await accountRows(h.storage.db, dialect, 'juliet');
        const romeoBefore = await accountRows(h.storage.db, dialect, 'romeo');
        // The modules really stored something of hers: roster, pending requests, key-value
        // documents, the offline queue.
        expect(total(julietBefore), JSON.stringify(julietBefore)).to.be.above(5);
        for (const table of ['keyval', 'archive', 'roster_items', 'presence_pending']) {
          if (table in julietBefore) expect(julietBefore[table], table).to.be.above(0);
        }

        expect(await h.deleteAccount('juliet')).to.equal(true);
        await h.settle(20);

        const julietAfter = await accountRows(h.storage.db, dialect, 'juliet');
        expect(julietAfter).to.deep.equal(Object.fromEntries(Object.keys(julietAfter).map((t) => [t, 0])));
        expect(await accountRows(h.storage.db, dialect, 'romeo')).to.deep.equal(romeoBefore);
        expect(problems).to.deep.equal([]);
      });
    });
  });
}

/** One account's use of every basic feature, leaving data in each module's storage. */
async function useEverything(h: Harness, nurse: TestClient, user: string): Promise<void> {
  const me: TestClient = await h.connect(`${user}@${HOST}/balcony`);
  await me.sendPresence();
  const ok = async (reply: Promise<unknown>) => {
    const el = (await reply) as { attrs: { type?: string }; toString(): string };
    expect(el.attrs.type, el.toString()).to.equal('result');
  };
  // Account IQs go to the account's own bare JID (RFC 6120 §10.5.4).
  const self = `${user}@${HOST}`;
  await ok(me.set(xml('query', { xmlns: NS.roster }, xml('item', { jid: `tybalt@${HOST}`, name: 'Tybalt' }, xml('group', {}, 'Capulets'))), self));
  await ok(me.set(xml('query', { xmlns: NS.privateXml }, xml('storage', { xmlns: 'storage:bookmarks' }, xml('conference', { jid: `room@conference.${HOST}` }))), self));
  await ok(me.set(xml('vCard', { xmlns: NS.vcard }, xml('FN', {}, user)), self));
  await ok(me.set(xml('block', { xmlns: NS.blocking }, xml('item', { jid: 'spam@example.net' })), self));
  await me.send(xml('presence', { to: `nurse@${HOST}`, type: 'subscribe' }));
  await h.settle();
  await me.disconnect();
  // While the account is offline: a subscription request to it and a message for it.
  await nurse.send(xml('presence', { to: `${user}@${HOST}`, type: 'subscribe' }));
  await nurse.send(xml('message', { to: `${user}@${HOST}`, type: 'chat', id: `for-${user}` }, xml('body', {}, `hello ${user}`)));
  await h.settle();
}
