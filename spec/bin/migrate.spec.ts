// `parley migrate --from sqlite:PATH --to postgres://URL`: data made through the modules on
// SQLite comes out the same when Parley boots on PostgreSQL.
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NS, xml } from '../../lib/module-api.js';
import { MODULES } from '../../lib/modules/catalog.js';
import { openDatabase } from '../../lib/storage/database.js';
import { Harness } from '../helpers/harness.js';
import { harnessSchema, postgresSkipReason, sharedPostgres } from '../storage/backends.js';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

const BIN = join(repoRoot(), 'dist', 'bin', 'parley.js');
const pgSkip = await postgresSkipReason();

function run(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, PARLEY_CONFIG: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const lines = (text: string) => text.split('\n').filter((l) => l !== '');

describe('parley migrate', function () {
  this.timeout(60_000);
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'parley-migrate-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  describe('arguments', () => {
    it('needs both --from and --to', async () => {
      const result = await run(['migrate', '--from', 'sqlite:data/parley.db'], dir);
      expect(result.code).to.equal(1);
      expect(lines(result.stderr)).to.have.length(1);
      expect(result.stderr).to.include('migrate needs --from sqlite:PATH and --to postgres://URL');
    });

    it('accepts only sqlite: sources and postgres:// targets', async () => {
      const a = await run(['migrate', '--from', 'data/parley.db', '--to', 'postgres://localhost/parley'], dir);
      expect(a.code).to.equal(1);
      expect(a.stderr).to.include('--from must be sqlite:PATH');
      const b = await run(['migrate', '--from', 'sqlite:data/parley.db', '--to', 'mysql://localhost/parley'], dir);
      expect(b.code).to.equal(1);
      expect(b.stderr).to.include('--to must be a postgres:// URL');
    });

    it('refuses a source that does not exist, without creating it', async () => {
      const result = await run(['migrate', '--from', 'sqlite:data/nothing.db', '--to', 'postgres://localhost/parley'], dir);
      expect(result.code).to.equal(3);
      expect(lines(result.stderr)).to.deep.equal([`parley: there is no SQLite database at ${join(dir, 'data', 'nothing.db')} (give the path of storage.path in the config, as --from sqlite:PATH)`]);
      expect(existsSync(join(dir, 'data', 'nothing.db'))).to.equal(false);
    });

    it('says in one line that PostgreSQL cannot be reached, and how to fix it', async () => {
      const h = await Harness.start({ modules: [], storage: 'sqlite', storagePath: join(dir, 'parley.db') });
      await h.stop();
      const server = createServer();
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const { port } = server.address() as AddressInfo;
      await new Promise<void>((r) => server.close(() => r()));
      const result = await run(['migrate', '--from', 'sqlite:parley.db', '--to', `postgres://parley:secret@127.0.0.1:${port}/parley`], dir);
      expect(result.code).to.equal(3);
      expect(lines(result.stderr)).to.have.length(1);
      expect(result.stderr).to.match(new RegExp(`^parley: cannot reach PostgreSQL at 127\\.0\\.0\\.1:${port}: .* \\(start PostgreSQL or fix storage\\.url\\)\\n$`));
      expect(result.stderr).not.to.include('secret');
    });
  });

  describe('copying', () => {
    before(function () {
      if (pgSkip !== undefined) {
        console.log(`      (skipped: ${pgSkip})`);
        this.skip();
      }
    });

    /** SQLite data made through the modules: two accounts, a roster, a queued message, a vCard. */
    async function sqliteWithData(path: string): Promise<void> {
      const h = await Harness.start({ modules: MODULES, storage: 'sqlite', storagePath: path });
      try {
        await h.createAccount('alice', 'alice-pw');
        await h.createAccount('bob', 'bob-pw');
        const alice = await h.connect('alice@example.com/phone');
        await alice.set(xml('query', { xmlns: NS.roster }, xml('item', { jid: 'bob@example.com', name: 'Bob' }, xml('group', {}, 'Friends'))), 'alice@example.com');
        await alice.set(xml('vCard', { xmlns: NS.vcard }, xml('FN', {}, 'Alice A.')), 'alice@example.com');
        await alice.disconnect();
        const bob = await h.connect('bob@example.com/laptop');
        for (const body of ['first', 'second']) {
          await bob.send(xml('message', { to: 'alice@example.com', type: 'chat', id: body }, xml('body', {}, body)));
        }
        await h.settle(10);
      } finally {
        await h.stop();
      }
    }

    it('copies accounts, roster, vCards and the offline queue, which Parley then serves from PostgreSQL', async () => {
      const path = join(dir, 'data', 'parley.db');
      await sqliteWithData(path);
      const pg = await sharedPostgres();
      // The schema a harness started with `storagePath: key` on PostgreSQL opens.
      const key = join(dir, 'on-postgres');
      const url = pg.url(await pg.schema(harnessSchema(key)));

      const result = await run(['migrate', '--from', 'sqlite:data/parley.db', '--to', url], dir);
      expect(result.stderr).to.equal('');
      expect(result.code).to.equal(0);
      const out = lines(result.stdout);
      expect(out[0]).to.equal(`copying ${path} into PostgreSQL 127.0.0.1:5432/${pg.name}`);
      for (const table of ['accounts', 'account_scram', 'archive', 'keyval', 'roster_items']) {
        expect(out.some((l) => new RegExp(`^  ${table} +[1-9]\\d* rows?$`).test(l)), `${table} in\n${result.stdout}`).to.equal(true);
      }
      expect(out.at(-2)).to.match(/^copied \d+ rows in \d+ tables in [\d.]+ s; row counts verified\.$/);

      const h = await Harness.start({ modules: MODULES, storage: 'postgres', storagePath: key });
      try {
        expect(h.storage.dialect).to.equal('postgres');
        expect(await h.accounts.verifyPassword('example.com', 'alice', 'alice-pw')).to.equal(true);
        expect(await h.accounts.verifyPassword('example.com', 'bob', 'nope')).to.equal(false);
        const alice = await h.connect('alice@example.com/tablet');
        const roster = await alice.get(xml('query', { xmlns: NS.roster }), 'alice@example.com');
        const items = roster.getChild('query', NS.roster)!.getChildren('item');
        expect(items.map((i) => [i.attrs.jid, i.attrs.name, i.getChildText('group')])).to.deep.equal([['bob@example.com', 'Bob', 'Friends']]);
        const vcard = await alice.get(xml('vCard', { xmlns: NS.vcard }), 'alice@example.com');
        expect(vcard.getChild('vCard', NS.vcard)!.getChildText('FN')).to.equal('Alice A.');
        await alice.sendPresence();
        await h.settle(10);
        const bodies = alice.received.filter((s) => s.name === 'message').map((s) => s.getChildText('body'));
        expect(bodies).to.deep.equal(['first', 'second']);
        // New rows continue after the copied ones (the archive's identity moved past them).
        await h.storage.archive('offline').append('example.com', 'bob', { id: 'new', when: Date.now(), value: '<m/>' });
        await h.storage.archive('offline').append('example.com', 'bob', { id: 'newer', when: Date.now(), value: '<m/>' });
        expect(await h.storage.archive('offline').count('example.com', 'bob')).to.equal(2);
      } finally {
        await h.stop();
      }
    });

    it('refuses a target that holds data, and replaces it with --force', async () => {
      await sqliteWithData(join(dir, 'parley.db'));
      const pg = await sharedPostgres();
      const url = pg.url(await pg.schema());
      expect((await run(['migrate', '--from', 'sqlite:parley.db', '--to', url], dir)).code).to.equal(0);

      const again = await run(['migrate', '--from', 'sqlite:parley.db', '--to', url], dir);
      expect(again.code).to.equal(3);
      expect(lines(again.stderr)).to.have.length(1);
      expect(again.stderr).to.match(/^parley: the target database already holds data \(.*accounts: 2.*\); migrate into an empty database, or pass --force to replace what it holds\n$/);

      const forced = await run(['migrate', '--from', 'sqlite:parley.db', '--to', url, '--force'], dir);
      expect(forced.stderr).to.equal('');
      expect(forced.code).to.equal(0);
      expect(forced.stdout).to.match(/^replaced \d+ rows the target held \(--force\)$/m);
      const db = await openDatabase({ driver: 'postgres', url });
      try {
        const accounts = await db.db.selectFrom('accounts').select(['host', 'user']).orderBy('user').execute();
        expect(accounts).to.deep.equal([
          { host: 'example.com', user: 'alice' },
          { host: 'example.com', user: 'bob' },
        ]);
        expect(await db.archive('offline').count('example.com', 'alice')).to.equal(2);
      } finally {
        await db.close();
      }
    });
  });
});
