import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcrypt';
import { expect } from 'chai';
import { openAccounts } from '../../../lib/accounts/service.js';
import { AccountError, type AccountService } from '../../../lib/accounts/types.js';
import { scramMechanism } from '../../../lib/sasl/scram.js';
import { openDatabase } from '../../../lib/storage/database.js';
import type { Database } from '../../../lib/storage/types.js';
import { ScramClient } from '../sasl/scram-client.js';

const HOST = 'example.org';
const ALG = { 'SHA-1': 'sha1', 'SHA-256': 'sha256', 'SHA-512': 'sha512' } as const;
const LEN = { 'SHA-1': 20, 'SHA-256': 32, 'SHA-512': 64 } as const;

interface ScramRow {
  hash: string;
  salt: string;
  iterations: number;
  stored_key: string;
  server_key: string;
}

async function expectCode(p: Promise<unknown>, code: AccountError['code']): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(AccountError);
    expect((err as AccountError).code).to.equal(code);
    return;
  }
  expect.fail(`expected ${code}`);
}

describe('AccountService on SQLite', () => {
  let dir: string;
  let path: string;
  let database: Database;
  let accounts: AccountService;

  const scramRows = (user: string) =>
    database.db
      .selectFrom('account_scram')
      .select(['hash', 'salt', 'iterations', 'stored_key', 'server_key'])
      .where('host', '=', HOST)
      .where('user', '=', user)
      .orderBy('hash')
      .execute() as Promise<ScramRow[]>;
  const bcryptOf = async (user: string) =>
    ((await database.db.selectFrom('accounts').select(['bcrypt']).where('host', '=', HOST).where('user', '=', user).executeTakeFirst()) as
      | { bcrypt: string | null }
      | undefined)?.bcrypt;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'parley-accounts-'));
    path = join(dir, 'parley.db');
    database = await openDatabase({ driver: 'sqlite', path });
    accounts = await openAccounts(database);
  });
  afterEach(async () => {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('create and verify', () => {
    it('stores SCRAM keys for SHA-1, SHA-256 and SHA-512 and never the password', async () => {
      await accounts.create(HOST, 'juliet', 'r0m30');
      const rows = await scramRows('juliet');
      expect(rows.map((r) => r.hash)).to.deep.equal(['SHA-1', 'SHA-256', 'SHA-512']);
      for (const r of rows) {
        const hash = r.hash as keyof typeof ALG;
        expect(Number(r.iterations)).to.equal(4096);
        const salt = Buffer.from(r.salt, 'base64');
        expect(salt.length).to.equal(16);
        const salted = pbkdf2Sync('r0m30', salt, 4096, LEN[hash], ALG[hash]);
        const clientKey = createHmac(ALG[hash], salted).update('Client Key').digest();
        expect(r.stored_key).to.equal(createHash(ALG[hash]).update(clientKey).digest('base64'));
        expect(r.server_key).to.equal(createHmac(ALG[hash], salted).update('Server Key').digest('base64'));
      }
      expect(await bcryptOf('juliet')).to.equal(null);
      const everything = JSON.stringify(await database.db.selectFrom('accounts').selectAll().execute()) + JSON.stringify(rows);
      expect(everything).to.not.contain('r0m30');
    });

    it('verifies the right password and refuses a wrong one or an unknown user', async () => {
      await accounts.create(HOST, 'juliet', 'r0m30');
      expect(await accounts.verifyPassword(HOST, 'juliet', 'r0m30')).to.equal(true);
      expect(await accounts.verifyPassword(HOST, 'juliet', 'r0m31')).to.equal(false);
      expect(await accounts.verifyPassword(HOST, 'nobody', 'r0m30')).to.equal(false);
      expect(await accounts.verifyPassword('example.net', 'juliet', 'r0m30')).to.equal(false);
      expect(await accounts.verifyPassword(HOST, 'bad user', 'r0m30')).to.equal(false);
    });

    it('returns the real credential of an account for each hash', async () => {
      await accounts.create(HOST, 'juliet', 'r0m30');
      const rows = await scramRows('juliet');
      for (const hash of ['SHA-1', 'SHA-256', 'SHA-512'] as const) {
        const { credential, real } = await accounts.scram(HOST, 'juliet', hash);
        expect(real).to.equal(true);
        expect(credential.storedKey.toString('base64')).to.equal(rows.find((r) => r.hash === hash)!.stored_key);
      }
    });

    it('prepares usernames, so "Juliet" and "juliet" are one account', async () => {
      await accounts.create(HOST, 'Juliet', 'r0m30');
      expect(await accounts.exists(HOST, 'juliet')).to.equal(true);
      expect(await accounts.list()).to.deep.equal([{ host: HOST, user: 'juliet' }]);
      expect(await accounts.verifyPassword(HOST, 'JULIET', 'r0m30')).to.equal(true);
      await expectCode(accounts.create(HOST, 'juliet', 'x'), 'PARLEY_ERR_ACCOUNT_EXISTS');
    });

    it('refuses an invalid username with PARLEY_ERR_BAD_USERNAME', async () => {
      for (const user of ['', 'two words', 'a@b', 'a/b', 'x'.repeat(1100)]) {
        await expectCode(accounts.create(HOST, user, 'pw'), 'PARLEY_ERR_BAD_USERNAME');
      }
      expect(await accounts.list()).to.deep.equal([]);
    });

    it('refuses an empty password, or one SASLprep prohibits, with PARLEY_ERR_BAD_PASSWORD', async () => {
      await expectCode(accounts.create(HOST, 'juliet', ''), 'PARLEY_ERR_BAD_PASSWORD');
      await expectCode(accounts.create(HOST, 'juliet', 'bell\u0007'), 'PARLEY_ERR_BAD_PASSWORD');
      expect(await accounts.exists(HOST, 'juliet')).to.equal(false);
    });

    it('refuses a second account of the same name with PARLEY_ERR_ACCOUNT_EXISTS', async () => {
      await accounts.create(HOST, 'juliet', 'r0m30');
      await expectCode(accounts.create(HOST, 'juliet', 'other'), 'PARLEY_ERR_ACCOUNT_EXISTS');
      await expectCode(accounts.importBcrypt(HOST, 'juliet', bcrypt.hashSync('x', 4)), 'PARLEY_ERR_ACCOUNT_EXISTS');
      expect(await accounts.verifyPassword(HOST, 'juliet', 'r0m30')).to.equal(true);
      await accounts.create('example.net', 'juliet', 'other');
      expect(await accounts.verifyPassword('example.net', 'juliet', 'other')).to.equal(true);
    });

    it('stores keys with the configured iteration count and refuses fewer than 4096', async () => {
      const five = await openAccounts(database, { scramIterations: 5000 });
      await five.create(HOST, 'juliet', 'r0m30');
      expect((await scramRows('juliet')).map((r) => Number(r.iterations))).to.deep.equal([5000, 5000, 5000]);
      expect((await five.scram(HOST, 'nobody', 'SHA-256')).credential.iterations).to.equal(5000);
      let error: unknown;
      await openAccounts(database, { scramIterations: 1000 }).catch((e: unknown) => (error = e));
      expect(error).to.be.instanceOf(RangeError);
    });
  });

  describe('administration', () => {
    it('lists accounts in order, for all hosts or one', async () => {
      await accounts.create('b.example', 'zed', 'pw');
      await accounts.create(HOST, 'romeo', 'pw');
      await accounts.create(HOST, 'juliet', 'pw');
      expect(await accounts.list()).to.deep.equal([
        { host: 'b.example', user: 'zed' },
        { host: HOST, user: 'juliet' },
        { host: HOST, user: 'romeo' },
      ]);
      expect(await accounts.list(HOST)).to.deep.equal([
        { host: HOST, user: 'juliet' },
        { host: HOST, user: 'romeo' },
      ]);
    });

    it('changes the password: the new one verifies, the old one no longer does', async () => {
      await accounts.create(HOST, 'juliet', 'r0m30');
      const before = await scramRows('juliet');
      await accounts.setPassword(HOST, 'juliet', 'tybalt');
      expect(await accounts.verifyPassword(HOST, 'juliet', 'tybalt')).to.equal(true);
      expect(await accounts.verifyPassword(HOST, 'juliet', 'r0m30')).to.equal(false);
      const after = await scramRows('juliet');
      expect(after).to.have.length(3);
      expect(after[0]!.salt).to.not.equal(before[0]!.salt);
    });

    it('refuses to set the password of a missing account with PARLEY_ERR_NO_ACCOUNT', async () => {
      await expectCode(accounts.setPassword(HOST, 'nobody', 'pw'), 'PARLEY_ERR_NO_ACCOUNT');
      expect(await scramRows('nobody')).to.deep.equal([]);
    });

    it('deletes the account and its keys, then awaits the deleted listeners', async () => {
      await accounts.create(HOST, 'juliet', 'r0m30');
      const seen: string[] = [];
      accounts.onDeleted(async (host, user) => {
        seen.push(`${user}@${host} exists=${await accounts.exists(host, user)}`);
        await new Promise((r) => setTimeout(r, 20));
        seen.push('first done');
      });
      accounts.onDeleted((host, user) => {
        seen.push(`second ${user}@${host}`);
      });
      expect(await accounts.delete(HOST, 'Juliet')).to.equal(true);
      expect(seen).to.deep.equal(['juliet@example.org exists=false', 'first done', 'second juliet@example.org']);
      expect(await scramRows('juliet')).to.deep.equal([]);
      expect(await accounts.verifyPassword(HOST, 'juliet', 'r0m30')).to.equal(false);
      expect((await accounts.scram(HOST, 'juliet', 'SHA-256')).real).to.equal(false);
    });

    it('returns false and fires no listener when deleting a missing account', async () => {
      let fired = false;
      accounts.onDeleted(() => {
        fired = true;
      });
      expect(await accounts.delete(HOST, 'nobody')).to.equal(false);
      expect(fired).to.equal(false);
    });

    it('runs every deleted listener even when one throws, then reports the error', async () => {
      await accounts.create(HOST, 'juliet', 'r0m30');
      let second = false;
      accounts.onDeleted(() => {
        throw new Error('module failed');
      });
      accounts.onDeleted(() => {
        second = true;
      });
      let error: unknown;
      await accounts.delete(HOST, 'juliet').catch((e: unknown) => (error = e));
      expect((error as Error).message).to.equal('module failed');
      expect(second).to.equal(true);
      expect(await accounts.exists(HOST, 'juliet')).to.equal(false);
    });

    it('lets a deleted name be created again with a new password only', async () => {
      await accounts.create(HOST, 'juliet', 'r0m30');
      await accounts.delete(HOST, 'juliet');
      await accounts.create(HOST, 'juliet', 'again');
      expect(await accounts.verifyPassword(HOST, 'juliet', 'again')).to.equal(true);
      expect(await accounts.verifyPassword(HOST, 'juliet', 'r0m30')).to.equal(false);
    });
  });

  describe('bcrypt import', () => {
    it('verifies an imported bcrypt hash, then replaces it with SCRAM keys', async function () {
      this.timeout(10_000);
      await accounts.importBcrypt(HOST, 'juliet', await bcrypt.hash('hunter2', 4));
      expect(await scramRows('juliet')).to.deep.equal([]);
      expect((await accounts.scram(HOST, 'juliet', 'SHA-256')).real).to.equal(false);

      expect(await accounts.verifyPassword(HOST, 'juliet', 'hunter3')).to.equal(false);
      expect(await bcryptOf('juliet')).to.be.a('string');

      expect(await accounts.verifyPassword(HOST, 'juliet', 'hunter2')).to.equal(true);
      expect(await bcryptOf('juliet')).to.equal(null);
      expect((await scramRows('juliet')).map((r) => r.hash)).to.deep.equal(['SHA-1', 'SHA-256', 'SHA-512']);

      // SCRAM now works for the account, and the password still verifies (against the keys).
      const client = new ScramClient({ hash: 'SHA-256', username: 'juliet', password: 'hunter2' });
      const ex = scramMechanism('SHA-256', false).create({ host: HOST, tls: undefined, credentials: accounts });
      const first = await ex.start(client.first());
      if (first.kind !== 'challenge') expect.fail(JSON.stringify(first));
      expect(await ex.step(client.final(first.data))).to.include({ kind: 'success', user: 'juliet' });
      expect(await accounts.verifyPassword(HOST, 'juliet', 'hunter2')).to.equal(true);
    });

    it('accepts $2a$, $2b$ and $2y$ hashes and refuses anything else with PARLEY_ERR_BAD_PASSWORD', async () => {
      const b = bcrypt.hashSync('pw', 4);
      await accounts.importBcrypt(HOST, 'a', b.replace(/^\$2b\$/, '$2a$'));
      await accounts.importBcrypt(HOST, 'b', b);
      expect(await accounts.verifyPassword(HOST, 'a', 'pw')).to.equal(true);
      expect(await accounts.verifyPassword(HOST, 'b', 'pw')).to.equal(true);
      for (const bad of ['', 'pw', '$1$abc$def', b.slice(0, -1), '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA']) {
        await expectCode(accounts.importBcrypt(HOST, 'c', bad), 'PARLEY_ERR_BAD_PASSWORD');
      }
      expect(await accounts.exists(HOST, 'c')).to.equal(false);
    });
  });

  describe('fake credentials', () => {
    it('gives an unknown user the same salt after the database is reopened', async () => {
      const first = await accounts.scram(HOST, 'nobody', 'SHA-256');
      expect(first.real).to.equal(false);
      expect(first.credential.salt.length).to.equal(16);
      expect(first.credential.iterations).to.equal(4096);
      expect(first.credential.storedKey.length).to.equal(32);
      await database.close();

      database = await openDatabase({ driver: 'sqlite', path });
      accounts = await openAccounts(database);
      const second = await accounts.scram(HOST, 'nobody', 'SHA-256');
      expect(second.real).to.equal(false);
      expect(second.credential.salt.toString('hex')).to.equal(first.credential.salt.toString('hex'));
    });

    it('gives different names and hashes different salts, and keys nobody can know', async () => {
      const a = await accounts.scram(HOST, 'nobody', 'SHA-256');
      const b = await accounts.scram(HOST, 'someone', 'SHA-256');
      const c = await accounts.scram(HOST, 'nobody', 'SHA-512');
      const again = await accounts.scram(HOST, 'nobody', 'SHA-256');
      expect(a.credential.salt.equals(b.credential.salt)).to.equal(false);
      expect(a.credential.salt.equals(c.credential.salt)).to.equal(false);
      expect(c.credential.storedKey.length).to.equal(64);
      expect(a.credential.storedKey.equals(again.credential.storedKey)).to.equal(false);
    });

    it('gives a bcrypt-only account a fake credential that looks like any other', async () => {
      await accounts.importBcrypt(HOST, 'imported', bcrypt.hashSync('pw', 4));
      const { credential, real } = await accounts.scram(HOST, 'imported', 'SHA-1');
      expect(real).to.equal(false);
      expect(credential.salt.length).to.equal(16);
      expect(credential.iterations).to.equal(4096);
    });

    it('derives fake salts from the configured secret when one is given', async () => {
      const s1 = await openAccounts(database, { secret: Buffer.alloc(32, 1) });
      const s1again = await openAccounts(database, { secret: Buffer.alloc(32, 1) });
      const s2 = await openAccounts(database, { secret: Buffer.alloc(32, 2) });
      const salt = async (svc: AccountService) => (await svc.scram(HOST, 'nobody', 'SHA-256')).credential.salt.toString('hex');
      expect(await salt(s1)).to.equal(await salt(s1again));
      expect(await salt(s1)).to.not.equal(await salt(s2));
      expect(await salt(s1)).to.not.equal(await salt(accounts));
    });
  });
});
