// Two nodes on one database: a FAST token or app password revoked through one node fails at
// once on the other, and a TOTP code used on one node is refused on the other (replay).
import { join } from 'node:path';
import { expect } from 'chai';
import { base32Decode, totp } from '../../lib/accounts/totp.js';
import { DEFAULT_PASSWORD, loggedIn, type RawClient } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { authenticate, CAM, failureCondition, FAST, iq, newClientId, nextTotp, runCommand, securedStream } from './helpers-security.js';
import { postgresSkipReason, sharedPostgres } from '../storage/backends.js';

const NODE = 'urn:parley:security';

/** The storage both nodes share: one SQLite file, or one PostgreSQL schema (the cluster backend). */
type SharedStorage = () => Promise<{ first: Record<string, unknown>; second: (firstDir: string) => Record<string, unknown> } | string>;

const BACKENDS: Array<[string, SharedStorage]> = [
  ['SQLite file', async () => ({ first: {}, second: (dir) => ({ storage: { driver: 'sqlite', path: join(dir, 'parley.db') } }) })],
  [
    'PostgreSQL',
    async () => {
      const skip = await postgresSkipReason();
      if (skip) return skip;
      const db = await sharedPostgres();
      const storage = { driver: 'postgres', url: db.url(await db.schema()) };
      return { first: { storage }, second: () => ({ storage }) };
    },
  ],
];

for (const [backend, shared] of BACKENDS)
describe(`e2e: revocation and replay refusal across two nodes sharing storage (${backend})`, function () {
  this.timeout(30_000);
  let a: TestServer;
  let b: TestServer;
  const open: RawClient[] = [];
  const track = (c: RawClient) => (open.push(c), c);

  before(async function () {
    const storage = await shared();
    if (typeof storage === 'string') {
      console.log(`    (skipped: ${storage})`);
      this.skip();
    }
    const modules = { security: { codeAttempts: { max: 3, window: '10m' } } };
    a = await startTestServer({ modules, ...storage.first });
    b = await startTestServer({ modules, ...storage.second(a.dir) });
    await a.addUser('dave', DEFAULT_PASSWORD);
    await a.addUser('erin', DEFAULT_PASSWORD);
  });
  after(async () => {
    for (const c of open) c.destroy();
    await b?.stop();
    await a?.stop();
  });

  it('a FAST token revoked on node A fails on node B', async () => {
    const phone = newClientId();
    const c = track(await securedStream(a));
    const ok = await authenticate(c, { user: 'dave', mechanism: 'PLAIN', secret: DEFAULT_PASSWORD, clientId: phone, software: 'Phone', requestToken: true });
    expect(ok.name, ok.toString()).to.equal('success');
    const token = ok.child('token', FAST)!.attrs.token!;
    c.close();

    const onB = track(await securedStream(b));
    expect((await authenticate(onB, { user: 'dave', mechanism: 'HT-SHA-256-NONE', secret: token, clientId: phone })).name).to.equal('success');
    onB.close();

    const manager = track(await loggedIn(a, 'dave', { resource: 'manager' }));
    const list = await iq(manager, 'get', undefined, `<list xmlns='${CAM}'/>`);
    const entry = list.child('clients', CAM)!.children.find((x) => x.child('auth')?.child('fast'))!;
    expect((await iq(manager, 'set', undefined, `<revoke xmlns='${CAM}' id='${entry.attrs.id}'/>`)).attrs.type).to.equal('result');

    const retry = track(await securedStream(b));
    const fail = await authenticate(retry, { user: 'dave', mechanism: 'HT-SHA-256-NONE', secret: token, clientId: phone });
    expect(fail.name).to.equal('failure');
    expect(failureCondition(fail)).to.equal('credentials-expired');
  });

  it('an app password revoked on node A fails on node B', async () => {
    const manager = track(await loggedIn(a, 'dave', { resource: 'manager2' }));
    const created = (await runCommand(manager, a.domain, `${NODE}#app-password-create`, { label: 'Desktop' })).last;
    const password = created.field('password')[0]!;
    const id = created.field('id')[0]!;
    track(await loggedIn(b, 'dave', { password, resource: 'legacy' }));
    expect((await iq(manager, 'set', undefined, `<revoke xmlns='${CAM}' id='a-${id}'/>`)).attrs.type).to.equal('result');
    let error = '';
    await loggedIn(b, 'dave', { password }).catch((e: Error) => (error = e.message));
    expect(error).to.match(/not-authorized/);
  });

  it('a TOTP code used on node A is refused on node B, and code guesses count across nodes', async () => {
    const c = track(await loggedIn(a, 'erin', { resource: 'enrol' }));
    const { first } = await runCommand(c, a.domain, `${NODE}#totp-enable`);
    const secret = base32Decode(first.field('secret')[0]!)!;
    const done = await iq(
      c, 'set', a.domain,
      `<command xmlns='http://jabber.org/protocol/commands' node='${NODE}#totp-enable' sessionid='${first.sessionId}' action='complete'><x xmlns='jabber:x:data' type='submit'><field var='code'><value>${totp(secret, Date.now())}</value></field></x></command>`,
    );
    expect(done.child('command', 'http://jabber.org/protocol/commands')!.attrs.status).to.equal('completed');
    const code = totp(secret, Date.now() + 30_000);
    const onA = track(await securedStream(a));
    expect((await authenticate(onA, { user: 'erin', mechanism: 'PLAIN', secret: DEFAULT_PASSWORD, clientId: newClientId() })).name).to.equal('continue');
    expect((await nextTotp(onA, code)).name).to.equal('success');
    const onB = track(await securedStream(b));
    expect((await authenticate(onB, { user: 'erin', mechanism: 'PLAIN', secret: DEFAULT_PASSWORD, clientId: newClientId() })).name).to.equal('continue');
    const replay = await nextTotp(onB, code);
    expect(failureCondition(replay)).to.equal('not-authorized');

    // Guesses spread over both nodes add up: with the replay above, two more wrong codes reach
    // the limit of 3, and then even a right code is refused on either node.
    for (const node of [a, b]) {
      const c2 = track(await securedStream(node));
      expect((await authenticate(c2, { user: 'erin', mechanism: 'PLAIN', secret: DEFAULT_PASSWORD, clientId: newClientId() })).name).to.equal('continue');
      expect(failureCondition(await nextTotp(c2, '000000'))).to.equal('not-authorized');
    }
    const last = track(await securedStream(a));
    expect((await authenticate(last, { user: 'erin', mechanism: 'PLAIN', secret: DEFAULT_PASSWORD, clientId: newClientId() })).name).to.equal('continue');
    expect(failureCondition(await nextTotp(last, totp(secret, Date.now() + 30_000)))).to.equal('temporary-auth-failure');
  });
});
