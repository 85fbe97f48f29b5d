// `parley export` and `parley import`: a XEP-0227 file from one server's database into another's.
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runParley } from './run-parley.js';

describe('parley export / import', function () {
  this.timeout(40_000);
  let a: string;
  let b: string;
  const config = (dir: string) => writeFileSync(join(dir, 'parley.yaml'), 'hosts: [localhost]\nlisteners: [{ type: c2s, port: 0 }]\nstorage: { driver: sqlite, path: data/parley.db }\n');
  beforeEach(() => {
    a = mkdtempSync(join(tmpdir(), 'parley-export-a-'));
    b = mkdtempSync(join(tmpdir(), 'parley-export-b-'));
    config(a);
    config(b);
  });
  afterEach(() => {
    rmSync(a, { recursive: true, force: true });
    rmSync(b, { recursive: true, force: true });
  });

  it('moves accounts with their passwords, and reports accounts that exist on import', async () => {
    for (const u of ['alice', 'bob']) expect((await runParley(['user', 'add', `${u}@localhost`, '--password', `${u}-pw`, '--config', 'parley.yaml'], a)).code).to.equal(0);
    const out = await runParley(['export', '--config', 'parley.yaml'], a);
    expect(out.code, out.stderr).to.equal(0);
    expect(out.stdout).to.match(/^<\?xml version='1\.0' encoding='UTF-8'\?>\n<server-data xmlns='urn:xmpp:pie:0'>/);
    expect(out.stderr).to.equal('parley: exported 2 accounts\n');
    writeFileSync(join(b, 'dump.xml'), out.stdout);
    const first = await runParley(['import', 'dump.xml', '--config', 'parley.yaml'], b);
    expect(first.code, first.stderr).to.equal(0);
    expect(first.stdout).to.equal('imported 2 accounts, skipped 0\n');
    const again = await runParley(['import', 'dump.xml', '--config', 'parley.yaml'], b);
    expect(again.code).to.equal(3);
    expect(again.stderr).to.include('parley: skipped alice@localhost: the account exists already');
    // The imported keys accept the old password (PLAIN is verified against them).
    const one = await runParley(['export', '--user', 'bob', '--config', 'parley.yaml'], b);
    expect(one.stdout.match(/<user /g)).to.have.length(1);
    const { openDatabase } = await import('../../lib/storage/database.js');
    const { openAccounts } = await import('../../lib/accounts/service.js');
    const db = await openDatabase({ driver: 'sqlite', path: join(b, 'data', 'parley.db') });
    try {
      expect(await (await openAccounts(db)).verifyPassword('localhost', 'bob', 'bob-pw')).to.equal(true);
    } finally {
      await db.close();
    }
  });

  it('explains a file that is not XEP-0227 in one line', async () => {
    writeFileSync(join(b, 'bad.xml'), '<html/>');
    const r = await runParley(['import', 'bad.xml', '--config', 'parley.yaml'], b);
    expect(r.code).to.equal(3);
    expect(r.stderr.trim()).to.match(/^parley: bad\.xml: line \d+: the root is <html\/>, not a XEP-0227 <server-data\/> \(.+\)$/);
  });
});
