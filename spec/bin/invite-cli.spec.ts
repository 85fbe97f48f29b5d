// `parley invite create|list`: links made offline that the server then honours.
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runParley } from './run-parley.js';

describe('parley invite', function () {
  this.timeout(30_000);
  let dir: string;
  const config = (modules: string) =>
    writeFileSync(join(dir, 'parley.yaml'), `hosts: [localhost]\nlisteners:\n  - { type: c2s, port: 0 }\n  - { type: http, port: 5280, address: 127.0.0.1 }\nstorage: { driver: sqlite, path: data/parley.db }\n${modules}`);
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'parley-invite-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('prints a landing page and an xmpp: link for a multi-use invite, and lists it', async () => {
    config('modules: { invites: {} }\n');
    const made = await runParley(['invite', 'create', '--multi', '3', '--expires', '2d', '--config', 'parley.yaml'], dir);
    expect(made.code, made.stderr).to.equal(0);
    const [page, uri] = made.stdout.trim().split('\n');
    expect(page).to.match(/^http:\/\/localhost:5280\/invite\/[A-Za-z0-9_-]{24}$/);
    expect(uri).to.match(/^xmpp:localhost\?register;preauth=[A-Za-z0-9_-]{24}$/);
    expect(made.stderr).to.match(/invite for 3 accounts on localhost/);
    const list = await runParley(['invite', 'list', '--config', 'parley.yaml'], dir);
    expect(list.code).to.equal(0);
    const [line] = list.stdout.trim().split('\n');
    expect(line).to.match(/^[A-Za-z0-9_-]{24} account uses-left=3 expires=\S+ by=cli$/);
    const expires = Date.parse(/expires=(\S+)/.exec(line!)![1]!);
    expect(expires - Date.now()).to.be.within(2 * 86_400_000 - 60_000, 2 * 86_400_000);
  });

  it('makes a contact invite for an existing account, and refuses a missing one', async () => {
    config('modules: { invites: {} }\n');
    expect((await runParley(['user', 'add', 'romeo@localhost', '--password', 'pw', '--config', 'parley.yaml'], dir)).code).to.equal(0);
    const made = await runParley(['invite', 'create', '--contact', 'romeo', '--config', 'parley.yaml'], dir);
    expect(made.code, made.stderr).to.equal(0);
    expect(made.stdout).to.match(/xmpp:romeo@localhost\?roster;preauth=[^;\s]+;ibr=y/);
    const missing = await runParley(['invite', 'create', '--contact', 'nobody', '--config', 'parley.yaml'], dir);
    expect(missing.code).to.equal(3);
    expect(missing.stderr).to.include('there is no account nobody@localhost');
  });

  it('explains in one line that the invites module must be enabled', async () => {
    config('');
    const result = await runParley(['invite', 'create', '--config', 'parley.yaml'], dir);
    expect(result.code).to.equal(3);
    expect(result.stderr.trim()).to.equal('parley: the invites module is not enabled on localhost (add `invites: {}` under modules: in the config)');
  });

  it('rejects a bad --multi and a lifetime beyond maxLifetime as usage errors', async () => {
    config('modules: { invites: { maxLifetime: 30d } }\n');
    expect((await runParley(['invite', 'create', '--multi', '0', '--config', 'parley.yaml'], dir)).code).to.equal(1);
    const long = await runParley(['invite', 'create', '--expires', '60d', '--config', 'parley.yaml'], dir);
    expect(long.code).to.equal(1);
    expect(long.stderr).to.include('maxLifetime');
  });
});
