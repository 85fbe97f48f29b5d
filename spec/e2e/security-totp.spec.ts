// Two-factor login end to end: enrol TOTP through the ad-hoc command, log in over SASL2 with the
// password and a code computed here, fail without it, reconnect with FAST and no code, revoke the
// token from another client (XEP-0494) and see the reconnect fail; app passwords for legacy
// SASL; replay and brute-force refusal.
import { expect } from 'chai';
import { base32Decode, base32Encode, totp } from '../../lib/accounts/totp.js';
import { loggedIn, RawClient, DEFAULT_PASSWORD } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { createLogger } from '../../lib/log.js';
import {
  authenticate, CAM, failureCondition, FAST, iq, newClientId, nextTotp, runCommand, securedStream, TOTP_NS, taskDataTotp,
} from './helpers-security.js';

const NODE = 'urn:parley:security';
const PERIOD_MS = 30_000;

describe('e2e: TOTP second factor over SASL2, FAST, app passwords, client access management', function () {
  this.timeout(60_000);
  let srv: TestServer;
  const open: RawClient[] = [];
  let secret: Buffer;
  let recovery: string[];
  const logLines: string[] = [];
  /** Secrets handed out during the run: none may reach the logs. */
  const secrets: string[] = [DEFAULT_PASSWORD];

  const track = (c: RawClient) => (open.push(c), c);

  async function enrol(user: string): Promise<{ secret: Buffer; recovery: string[] }> {
    const c = track(await loggedIn(srv, user, { resource: 'enrol' }));
    const { first } = await runCommand(c, srv.domain, `${NODE}#totp-enable`);
    expect(first.status).to.equal('executing');
    const uri = first.field('uri')[0]!;
    expect(uri).to.match(new RegExp(`^otpauth://totp/${srv.domain}:${user}%40${srv.domain}\\?secret=`));
    expect(first.media('qr')).to.match(/^data:image\/png;base64,iVBOR/);
    const s2 = base32Decode(new URL(uri).searchParams.get('secret')!)!;
    expect(base32Decode(first.field('secret')[0]!)!.equals(s2)).to.equal(true);
    const reply = await iq(
      c, 'set', srv.domain,
      `<command xmlns='http://jabber.org/protocol/commands' node='${NODE}#totp-enable' sessionid='${first.sessionId}' action='complete'><x xmlns='jabber:x:data' type='submit'><field var='code'><value>${totp(s2, Date.now())}</value></field></x></command>`,
    );
    const cmd = reply.child('command', 'http://jabber.org/protocol/commands')!;
    expect(cmd.attrs.status, reply.toString()).to.equal('completed');
    const codes = cmd.child('x', 'jabber:x:data')!.children.find((f) => f.attrs.var === 'recovery-codes')!.children.map((v) => v.text);
    expect(codes).to.have.length(10);
    c.close();
    return { secret: s2, recovery: codes };
  }

  /** A code for the next time step: accepted (one step of drift) and later than the step enrolment used. */
  const nextCode = (s: Buffer, steps = 1) => totp(s, Date.now() + steps * PERIOD_MS);

  before(async () => {
    const log = createLogger({ level: 'debug', destination: { write: (line: string) => void logLines.push(line) } });
    srv = await startTestServer({ modules: { security: { codeAttempts: { max: 3, window: '10m' } } } }, 'localhost', { log });
    await srv.addUser('alice', DEFAULT_PASSWORD);
    await srv.addUser('bob', DEFAULT_PASSWORD);
    await srv.addUser('carol', DEFAULT_PASSWORD);
    await srv.addUser('dave', DEFAULT_PASSWORD);
    ({ secret, recovery } = await enrol('alice'));
  });
  after(async () => {
    for (const c of open) c.destroy();
    await srv?.stop();
  });

  it('asks for the second factor as a SASL2 task after the password, and fails without a valid code', async () => {
    const c = track(await securedStream(srv));
    const cont = await authenticate(c, { user: 'alice', mechanism: 'PLAIN', secret: DEFAULT_PASSWORD, clientId: newClientId() });
    expect(cont.name, cont.toString()).to.equal('continue');
    expect(cont.child('tasks')!.children.map((t) => t.text)).to.deep.equal(['TOTP']);
    // No code in <next/>: the server asks for it in <task-data/>.
    const ask = await nextTotp(c, undefined);
    expect(ask.name).to.equal('task-data');
    expect(ask.child('totp', TOTP_NS)).to.not.equal(undefined);
    const wrong = String((Number(totp(secret, Date.now())) + 1) % 1_000_000).padStart(6, '0');
    const fail = await taskDataTotp(c, wrong);
    expect(fail.name).to.equal('failure');
    expect(failureCondition(fail)).to.equal('not-authorized');
    // Not authenticated: a stanza now is refused.
    c.send(`<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`);
    const err = await c.waitForElement((e) => e.name === 'error', 5000);
    expect(err.child('not-authorized', 'urn:ietf:params:xml:ns:xmpp-streams')).to.not.equal(undefined);
  });

  it('refuses an unknown task, and a new <authenticate/> after <continue/> with a stream error', async () => {
    const c = track(await securedStream(srv));
    expect((await authenticate(c, { user: 'alice', mechanism: 'PLAIN', secret: DEFAULT_PASSWORD, clientId: newClientId() })).name).to.equal('continue');
    const from = c.elements.length;
    c.send(`<next xmlns='urn:xmpp:sasl:2' task='HOTP'/>`);
    const unknown = await c.waitForElement((e) => e.name === 'failure', 5000, from);
    expect(failureCondition(unknown)).to.equal('invalid-mechanism');

    const d = track(await securedStream(srv));
    expect((await authenticate(d, { user: 'alice', mechanism: 'PLAIN', secret: DEFAULT_PASSWORD, clientId: newClientId() })).name).to.equal('continue');
    const at = d.elements.length;
    d.send(`<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>${Buffer.from(`\0alice\0${DEFAULT_PASSWORD}`).toString('base64')}</initial-response></authenticate>`);
    const err = await d.waitForElement((e) => e.name === 'error', 5000, at);
    expect(err.child('policy-violation', 'urn:ietf:params:xml:ns:xmpp-streams')).to.not.equal(undefined);
  });

  it('refuses legacy SASL with the account password once TOTP is on', async () => {
    const c = track(await securedStream(srv));
    c.sendAuth('PLAIN', Buffer.from(`\0alice\0${DEFAULT_PASSWORD}`));
    const answer = await c.saslAnswer(0);
    expect(answer.name).to.equal('failure');
    expect(answer.child('not-authorized')).to.not.equal(undefined);
    expect(answer.child('text')?.text).to.match(/second factor/);
  });

  let token: string;
  const phone = newClientId();

  it('logs in with password + code, gets a FAST token, and refuses the same code again (replay)', async () => {
    const code = nextCode(secret);
    const c = track(await securedStream(srv));
    const cont = await authenticate(c, { user: 'alice', mechanism: 'PLAIN', secret: DEFAULT_PASSWORD, clientId: phone, software: 'Phone', requestToken: true });
    expect(cont.name).to.equal('continue');
    const ok = await nextTotp(c, code);
    expect(ok.name, ok.toString()).to.equal('success');
    expect(ok.child('authorization-identifier')!.text).to.match(/^alice@localhost\/spec/);
    token = ok.child('token', FAST)!.attrs.token!;
    secrets.push(token);
    expect(token).to.be.a('string');
    await c.ping();
    c.close();

    const again = track(await securedStream(srv));
    expect((await authenticate(again, { user: 'alice', mechanism: 'PLAIN', secret: DEFAULT_PASSWORD, clientId: newClientId() })).name).to.equal('continue');
    const replay = await nextTotp(again, code);
    expect(replay.name).to.equal('failure');
    expect(failureCondition(replay)).to.equal('not-authorized');
  });

  it('reconnects with the FAST token and no code; revoking it from another client ends that session and the token', async () => {
    const fastClient = track(await securedStream(srv));
    const ok = await authenticate(fastClient, { user: 'alice', mechanism: 'HT-SHA-256-NONE', secret: token, clientId: phone, software: 'Phone' });
    expect(ok.name, ok.toString()).to.equal('success');
    await fastClient.ping();

    // Another client: password + a recovery code (one-time).
    const laptop = track(await securedStream(srv));
    expect((await authenticate(laptop, { user: 'alice', mechanism: 'PLAIN', secret: DEFAULT_PASSWORD, clientId: newClientId(), software: 'Laptop' })).name).to.equal('continue');
    expect((await nextTotp(laptop, recovery[0]!)).name).to.equal('success');

    const list = await iq(laptop, 'get', undefined, `<list xmlns='${CAM}'/>`);
    const clients = list.child('clients', CAM)!.children;
    const phoneEntry = clients.find((x) => x.child('user-agent')?.child('software')?.text === 'Phone')!;
    expect(phoneEntry, list.toString()).to.not.equal(undefined);
    expect(phoneEntry.child('auth')!.child('fast')).to.not.equal(undefined);
    expect(phoneEntry.attrs.connected).to.equal('true');
    // The laptop logged in with the password only: it cannot be revoked short of a password reset.
    const laptopEntry = clients.find((x) => x.child('user-agent')?.child('software')?.text === 'Laptop')!;
    const refused = await iq(laptop, 'set', undefined, `<revoke xmlns='${CAM}' id='${laptopEntry.attrs.id}'/>`);
    expect(refused.attrs.type).to.equal('error');
    expect(refused.child('error')!.child('password-reset-required', CAM)).to.not.equal(undefined);

    const revoked = await iq(laptop, 'set', undefined, `<revoke xmlns='${CAM}' id='${phoneEntry.attrs.id}'/>`);
    expect(revoked.attrs.type, revoked.toString()).to.equal('result');
    await fastClient.closed;

    const retry = track(await securedStream(srv));
    const fail = await authenticate(retry, { user: 'alice', mechanism: 'HT-SHA-256-NONE', secret: token, clientId: phone });
    expect(fail.name).to.equal('failure');
    // XEP-0484: the token is gone, as if expired.
    expect(failureCondition(fail)).to.equal('credentials-expired');

    // A recovery code works once.
    const reuse = track(await securedStream(srv));
    expect((await authenticate(reuse, { user: 'alice', mechanism: 'PLAIN', secret: DEFAULT_PASSWORD, clientId: newClientId() })).name).to.equal('continue');
    expect((await nextTotp(reuse, recovery[0]!)).name).to.equal('failure');
  });

  it('voids the FAST tokens an account got before it turned TOTP on', async () => {
    const tablet = newClientId();
    const c = track(await securedStream(srv));
    const ok = await authenticate(c, { user: 'dave', mechanism: 'PLAIN', secret: DEFAULT_PASSWORD, clientId: tablet, software: 'Tablet', requestToken: true });
    expect(ok.name, ok.toString()).to.equal('success');
    const earned = ok.child('token', FAST)!.attrs.token!;
    secrets.push(earned);
    c.close();
    // The token works while the password alone is enough...
    const before = track(await securedStream(srv));
    expect((await authenticate(before, { user: 'dave', mechanism: 'HT-SHA-256-NONE', secret: earned, clientId: tablet })).name).to.equal('success');
    before.close();

    const enrolled = await enrol('dave');
    secrets.push(enrolled.secret.toString('hex'));
    // ...and not once the account needs a second factor: it was earned without one.
    const after = track(await securedStream(srv));
    const fail = await authenticate(after, { user: 'dave', mechanism: 'HT-SHA-256-NONE', secret: earned, clientId: tablet });
    expect(fail.name, fail.toString()).to.equal('failure');
    expect(failureCondition(fail)).to.equal('credentials-expired');
  });

  it('lets a legacy-SASL client in with an app password, and stops it once revoked', async () => {
    const manager = track(await securedStream(srv));
    expect((await authenticate(manager, { user: 'alice', mechanism: 'PLAIN', secret: DEFAULT_PASSWORD, clientId: newClientId() })).name).to.equal('continue');
    expect((await nextTotp(manager, recovery[1]!)).name).to.equal('success');
    const created = (await runCommand(manager, srv.domain, `${NODE}#app-password-create`, { label: 'Old desktop client' })).last;
    expect(created.status).to.equal('completed');
    const appPassword = created.field('password')[0]!;
    const appId = created.field('id')[0]!;
    secrets.push(appPassword);
    expect(appPassword).to.have.length.greaterThan(20);

    const legacy = track(await loggedIn(srv, 'alice', { password: appPassword, resource: 'legacy' }));
    await legacy.ping();

    const list = await iq(manager, 'get', undefined, `<list xmlns='${CAM}'/>`);
    const entry = list.child('clients', CAM)!.children.find((x) => x.attrs.id === `a-${appId}`)!;
    expect(entry.attrs.connected).to.equal('true');
    expect((await iq(manager, 'set', undefined, `<revoke xmlns='${CAM}' id='a-${appId}'/>`)).attrs.type).to.equal('result');
    await legacy.closed;

    let error = '';
    await loggedIn(srv, 'alice', { password: appPassword }).catch((e: Error) => (error = e.message));
    expect(error).to.match(/not-authorized/);
  });

  it('throttles code guessing and records the security events for the user', async () => {
    const bob = await enrol('bob');
    for (let i = 0; i < 3; i++) {
      const c = track(await securedStream(srv));
      expect((await authenticate(c, { user: 'bob', mechanism: 'PLAIN', secret: DEFAULT_PASSWORD, clientId: newClientId() })).name).to.equal('continue');
      expect(failureCondition(await nextTotp(c, '000000'))).to.equal('not-authorized');
      c.close();
    }
    // Past the limit even the right code is refused.
    const c = track(await securedStream(srv));
    expect((await authenticate(c, { user: 'bob', mechanism: 'PLAIN', secret: DEFAULT_PASSWORD, clientId: newClientId() })).name).to.equal('continue');
    const locked = await nextTotp(c, nextCode(bob.secret));
    expect(failureCondition(locked)).to.equal('temporary-auth-failure');

    // The audit log, as the user sees it through the self-service command.
    const aliceSession = track(await securedStream(srv));
    expect((await authenticate(aliceSession, { user: 'alice', mechanism: 'PLAIN', secret: DEFAULT_PASSWORD, clientId: newClientId() })).name).to.equal('continue');
    expect((await nextTotp(aliceSession, recovery[2]!)).name).to.equal('success');
    const events = (await runCommand(aliceSession, srv.domain, `${NODE}#events`)).first.field('events');
    const kinds = events.map((l) => l.split(' ')[1]);
    for (const k of ['second-factor-enabled', 'login', 'login-failed', 'fast-token-revoked', 'app-password-created', 'app-password-revoked']) {
      expect(kinds, events.join('\n')).to.include(k);
    }
    expect(events.find((l) => l.includes(' login '))).to.include('"ip":"127.0.0.1"');
  });

  it('turns TOTP off with a recovery code through the ad-hoc command; then the password alone logs in again', async () => {
    const carol = await enrol('carol');
    let refused = '';
    await loggedIn(srv, 'carol').catch((e: Error) => (refused = e.message));
    expect(refused).to.match(/not-authorized/);
    const c = track(await securedStream(srv));
    expect((await authenticate(c, { user: 'carol', mechanism: 'PLAIN', secret: DEFAULT_PASSWORD, clientId: newClientId() })).name).to.equal('continue');
    expect((await nextTotp(c, carol.recovery[0]!)).name).to.equal('success');
    const wrong = (await runCommand(c, srv.domain, `${NODE}#totp-disable`, { code: carol.recovery[0]! })).last;
    expect(wrong.iq.child('command', 'http://jabber.org/protocol/commands')!.child('note')!.attrs.type).to.equal('error');
    const off = (await runCommand(c, srv.domain, `${NODE}#totp-disable`, { code: carol.recovery[1]! })).last;
    expect(off.status).to.equal('completed');
    expect(off.iq.child('command', 'http://jabber.org/protocol/commands')!.child('note')!.attrs.type).to.equal('info');
    const legacy = track(await loggedIn(srv, 'carol', { resource: 'after' }));
    await legacy.ping();
  });

  it('writes structured audit lines (logins with IP and client, failures, throttling alert) and no secret', () => {
    const entries = logLines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const audit = (kind: string) => entries.filter((e) => e.audit === kind);
    const login = audit('login').find((e) => e.software === 'Phone')!;
    expect(login, 'a login line for the phone').to.not.equal(undefined);
    expect(login).to.include({ account: 'alice@localhost', ip: '127.0.0.1', device: 'spec', credential: 'password', sasl2: true });
    expect(audit('login').some((e) => e.credential === 'token')).to.equal(true);
    expect(audit('login').some((e) => e.credential === 'app-password')).to.equal(true);
    expect(audit('login-failed').length).to.be.greaterThan(2);
    const alert = audit('second-factor-throttled').find((e) => e.level === 40);
    expect(alert, 'a warning when codes are throttled').to.not.equal(undefined);
    expect(audit('second-factor-enabled')).to.have.length.greaterThan(0);
    const text = logLines.join('');
    for (const secretText of [...secrets, ...recovery, base32Encode(secret)]) expect(text).to.not.include(secretText);
  });
});
