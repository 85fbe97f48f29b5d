// The account self-service API (/account/api/) on a real server: who gets in (the password, and
// with TOTP on also a one-time code, throttled, never replayed), the cookie and CSRF rules, that
// one user never reaches another's clients or events, and the admin's audited 2FA reset.
import { expect } from 'chai';
import { base32Decode, totp } from '../../../lib/accounts/totp.js';
import { AdminTokens } from '../../../lib/admin/tokens.js';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { loggedIn } from '../../helpers/raw-client.js';

interface Reply {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

interface Login {
  cookie: string;
  csrf: string;
}

describe('account self-service API', function () {
  this.timeout(30_000);
  let srv: TestServer;
  let base: string;

  async function call(method: string, path: string, opts: { cookie?: string; csrf?: string; body?: unknown; headers?: Record<string, string> } = {}): Promise<Reply> {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.cookie !== undefined) headers.cookie = opts.cookie;
    if (opts.csrf !== undefined) headers['x-csrf-token'] = opts.csrf;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${base}${path}`, { method, headers, redirect: 'manual', body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
    const text = await res.text();
    let body: Record<string, unknown> = {};
    try {
      body = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
    } catch {
      body = { text };
    }
    return { status: res.status, headers: res.headers, body };
  }

  async function login(username: string, password = 'secret-pw', code?: string): Promise<Login> {
    const r = await call('POST', '/account/api/login', { body: { username, password, ...(code ? { code } : {}) } });
    expect(r.status, JSON.stringify(r.body)).to.equal(200);
    return { cookie: r.headers.get('set-cookie')!.split(';')[0]!, csrf: String(r.body.csrf) };
  }

  const as = (s: Login) => ({ cookie: s.cookie, csrf: s.csrf });

  /** Turns TOTP on for a logged-in user through the API; returns the secret. */
  async function enrol(s: Login): Promise<Buffer> {
    const started = await call('POST', '/account/api/totp/start', as(s));
    expect(started.status).to.equal(200);
    expect(String(started.body.qr)).to.match(/^data:image\/png;base64,/);
    const secret = base32Decode(String(started.body.secret))!;
    const confirmed = await call('POST', '/account/api/totp/confirm', { ...as(s), body: { code: totp(secret, Date.now()) } });
    expect(confirmed.status, JSON.stringify(confirmed.body)).to.equal(200);
    expect(confirmed.body.recoveryCodes).to.have.length(10);
    return secret;
  }

  before(async () => {
    // The login throttle is raised so that the second-factor code limit is what these specs meet.
    srv = await startTestServer({ admins: ['root@localhost'], auth: { scramIterations: 4096, throttle: { accountFailures: 100, ipFailures: 100 } } });
    base = `http://127.0.0.1:${srv.port('http')}`;
    for (const u of ['alice', 'bob', 'carol', 'dave', 'root']) await srv.addUser(u, 'secret-pw');
  });

  after(async () => {
    await srv?.stop();
  });

  describe('without a session', () => {
    it('redirects the pages to the login page and answers the API with 401', async () => {
      for (const page of ['/account/', '/account/clients', '/account/events']) {
        const r = await call('GET', page);
        expect(r.status, page).to.equal(303);
        expect(r.headers.get('location')).to.equal('/account/login');
      }
      expect((await call('GET', '/account/login')).status).to.equal(200);
      for (const [method, path] of [['GET', 'session'], ['GET', 'events'], ['GET', 'clients'], ['GET', 'totp'], ['POST', 'totp/start'], ['POST', 'app-passwords'], ['DELETE', 'clients/a-x']] as const) {
        expect((await call(method, `/account/api/${path}`, { body: method === 'POST' ? { label: 'x' } : undefined })).status, path).to.equal(401);
      }
    });

    it('does not take the web admin cookie, or a made-up one', async () => {
      const admin = await call('POST', '/admin/api/login', { body: { username: 'root', password: 'secret-pw' } });
      const adminCookie = admin.headers.get('set-cookie')!.split(';')[0]!;
      expect((await call('GET', '/account/api/session', { cookie: adminCookie })).status).to.equal(401);
      expect((await call('GET', '/account/api/session', { cookie: `parley_account=${adminCookie.split('=')[1]}` })).status).to.equal(401);
    });
  });

  describe('login', () => {
    it('refuses a wrong password and a cross-origin login, and sets a strict session cookie', async () => {
      expect((await call('POST', '/account/api/login', { body: { username: 'alice', password: 'nope' } })).status).to.equal(401);
      expect((await call('POST', '/account/api/login', { body: { username: 'alice', password: 'secret-pw' }, headers: { origin: 'https://evil.example' } })).status).to.equal(403);
      const r = await call('POST', '/account/api/login', { body: { username: 'alice', password: 'secret-pw' } });
      expect(r.status).to.equal(200);
      expect(r.body.account).to.equal('alice@localhost');
      const cookie = r.headers.get('set-cookie')!;
      expect(cookie).to.match(/^parley_account=[\w-]{40,};/);
      expect(cookie).to.contain('HttpOnly').and.contain('SameSite=Strict').and.contain('Path=/account');
      expect(cookie).not.to.contain('Secure');
      // Behind a TLS-terminating proxy on loopback the cookie is Secure.
      const proxied = await call('POST', '/account/api/login', { body: { username: 'alice', password: 'secret-pw' }, headers: { 'x-forwarded-proto': 'https' } });
      expect(proxied.headers.get('set-cookie')).to.contain('; Secure');
    });

    it('with TOTP on, asks for a code; refuses a wrong one, a replayed one, and every code after too many wrong ones', async () => {
      const secret = await enrol(await login('carol'));
      const noCode = await call('POST', '/account/api/login', { body: { username: 'carol', password: 'secret-pw' } });
      expect(noCode.status).to.equal(401);
      expect(noCode.body.error).to.equal('code_required');
      expect(noCode.headers.get('set-cookie')).to.equal(null);
      // The code of the enrolment's time step was used up by the enrolment: a replay.
      const replay = await call('POST', '/account/api/login', { body: { username: 'carol', password: 'secret-pw', code: totp(secret, Date.now()) } });
      expect(replay.status).to.equal(401);
      expect(replay.body.error).to.equal('wrong_code');
      // A stolen code without the password gets nowhere either.
      expect((await call('POST', '/account/api/login', { body: { username: 'carol', password: 'wrong', code: totp(secret, Date.now() + 30_000) } })).status).to.equal(401);
      const next = totp(secret, Date.now() + 30_000);
      await login('carol', 'secret-pw', next);
      const again = await call('POST', '/account/api/login', { body: { username: 'carol', password: 'secret-pw', code: next } });
      expect(again.status, 'the same code twice').to.equal(401);
      // The security module's limit (codeAttempts.max, 5 wrong codes since the last good one,
      // the replay above being the first): after that, even the right code is refused.
      for (let i = 0; i < 4; i++) await call('POST', '/account/api/login', { body: { username: 'carol', password: 'secret-pw', code: '000000' } });
      const locked = await call('POST', '/account/api/login', { body: { username: 'carol', password: 'secret-pw', code: totp(secret, Date.now() + 60_000) } });
      expect(locked.status).to.equal(429);
      expect(locked.body.message).to.contain('too many wrong codes');
    });

    it('accepts a recovery code once instead of a TOTP code', async () => {
      const s = await login('dave');
      const started = await call('POST', '/account/api/totp/start', as(s));
      const secret = base32Decode(String(started.body.secret))!;
      const confirmed = await call('POST', '/account/api/totp/confirm', { ...as(s), body: { code: totp(secret, Date.now()) } });
      const recovery = (confirmed.body.recoveryCodes as string[])[0]!;
      await login('dave', 'secret-pw', recovery);
      expect((await call('POST', '/account/api/login', { body: { username: 'dave', password: 'secret-pw', code: recovery } })).status).to.equal(401);
      expect((await call('GET', '/account/api/totp', as(await login('dave', 'secret-pw', totp(secret, Date.now() + 30_000))))).body.recoveryCodesLeft).to.equal(9);
    });
  });

  it('turns TOTP off only with a valid code, and records it', async () => {
    await srv.addUser('frank', 'secret-pw');
    const s = await login('frank');
    const secret = await enrol(s);
    const wrong = await call('POST', '/account/api/totp/disable', { ...as(s), body: { code: '000000' } });
    expect(wrong.status).to.equal(401);
    expect((await call('GET', '/account/api/totp', as(s))).body.enabled).to.equal(true);
    // The code used at enrolment is spent.
    expect((await call('POST', '/account/api/totp/disable', { ...as(s), body: { code: totp(secret, Date.now()) } })).status).to.equal(401);
    expect((await call('POST', '/account/api/totp/disable', { ...as(s), body: { code: totp(secret, Date.now() + 30_000) } })).status).to.equal(200);
    expect((await call('GET', '/account/api/totp', as(s))).body.enabled).to.equal(false);
    const events = (await call('GET', '/account/api/events', as(s))).body.events as Array<{ kind: string; detail: Record<string, unknown> }>;
    expect(events[0]).to.deep.equal({ ...events[0], kind: 'second-factor-disabled', detail: { by: 'frank@localhost (web)' } });
    expect(events[1]!.kind).to.equal('second-factor-enabled');
    // Off: the password alone opens the page again.
    await login('frank');
  });

  describe('with a session', () => {
    it('refuses a state-changing request without the CSRF token, or with a wrong one (403)', async () => {
      const s = await login('alice');
      expect((await call('POST', '/account/api/app-passwords', { cookie: s.cookie, body: { label: 'x' } })).status).to.equal(403);
      expect((await call('POST', '/account/api/app-passwords', { cookie: s.cookie, csrf: 'wrong', body: { label: 'x' } })).status).to.equal(403);
      expect((await call('POST', '/account/api/totp/start', { cookie: s.cookie, csrf: s.csrf.slice(1) + 'A' })).status).to.equal(403);
      expect((await call('DELETE', '/account/api/clients/a-x', { cookie: s.cookie })).status).to.equal(403);
      expect((await call('POST', '/account/api/logout', { cookie: s.cookie })).status).to.equal(403);
      // Nothing was created by the refused requests.
      expect((await call('GET', '/account/api/clients', { cookie: s.cookie })).body.clients).to.deep.equal([]);
    });

    it('never reaches another user\'s clients or events', async () => {
      const bob = await login('bob');
      const created = await call('POST', '/account/api/app-passwords', { ...as(bob), body: { label: 'Bob laptop' } });
      expect(created.status).to.equal(201);
      const bobId = `a-${String(created.body.id)}`;
      const alice = await login('alice');
      const alicesView = await call('GET', '/account/api/clients', as(alice));
      expect((alicesView.body.clients as Array<{ id: string }>).map((c) => c.id)).not.to.include(bobId);
      expect((await call('DELETE', `/account/api/clients/${encodeURIComponent(bobId)}`, as(alice))).status).to.equal(404);
      // Bob's app password still works.
      const c = await loggedIn(srv, 'bob', { password: String(created.body.password), mechanism: 'PLAIN' });
      c.destroy();
      const aliceEvents = (await call('GET', '/account/api/events', as(alice))).body.events as Array<{ kind: string; detail: Record<string, unknown> }>;
      expect(aliceEvents.some((e) => e.kind === 'app-password-created')).to.equal(false);
      const bobEvents = (await call('GET', '/account/api/events', as(bob))).body.events as Array<{ kind: string; detail: Record<string, unknown> }>;
      expect(bobEvents.find((e) => e.kind === 'app-password-created')?.detail).to.include({ label: 'Bob laptop', by: 'bob@localhost (web)' });
    });

    it('keeps at most five sessions per account: a sixth login ends that account\'s oldest, nobody else\'s', async () => {
      const bob = await login('bob');
      const alice = [];
      for (let i = 0; i < 6; i++) alice.push(await login('alice'));
      expect((await call('GET', '/account/api/session', as(alice[0]!))).status).to.equal(401);
      for (const s of alice.slice(1)) expect((await call('GET', '/account/api/session', as(s))).status).to.equal(200);
      expect((await call('GET', '/account/api/session', as(bob))).status).to.equal(200);
    });

    it('ends the sessions of an account an admin disables', async () => {
      await srv.addUser('erin', 'secret-pw');
      const s = await login('erin');
      expect((await call('GET', '/account/api/events', as(s))).status).to.equal(200);
      await srv.server.operations.setDisabled('erin@localhost', true);
      expect((await call('GET', '/account/api/events', as(s))).status).to.equal(401);
      expect((await call('POST', '/account/api/login', { body: { username: 'erin', password: 'secret-pw' } })).status).to.equal(401);
      await srv.server.operations.setDisabled('erin@localhost', false);
      expect((await call('GET', '/account/api/events', as(s))).status, 'the old session stays ended').to.equal(401);
    });

    it('ends the web sessions of an account whose password changes, on both the account and the admin pages', async () => {
      await srv.addUser('gina', 'secret-pw');
      const s = await login('gina');
      expect((await call('GET', '/account/api/events', as(s))).status).to.equal(200);
      const admin = await call('POST', '/admin/api/login', { body: { username: 'root', password: 'secret-pw' } });
      const adminCookie = admin.headers.get('set-cookie')!.split(';')[0]!;
      expect((await call('GET', '/admin/api/stats', { cookie: adminCookie })).status).to.equal(200);

      await srv.server.operations.resetPassword('gina@localhost', 'new-secret-pw');
      await srv.server.operations.resetPassword('root@localhost', 'new-secret-pw');
      try {
        const gone = await call('GET', '/account/api/events', as(s));
        expect(gone.status).to.equal(401);
        expect(String(gone.body.message)).to.match(/password changed/);
        expect((await call('GET', '/admin/api/stats', { cookie: adminCookie })).status).to.equal(401);
        const fresh = await login('gina', 'new-secret-pw');
        expect((await call('GET', '/account/api/events', as(fresh))).status).to.equal(200);
      } finally {
        await srv.server.operations.resetPassword('root@localhost', 'secret-pw');
      }
    });

    it('ends the session at logout', async () => {
      const s = await login('alice');
      expect((await call('POST', '/account/api/logout', as(s))).status).to.equal(200);
      expect((await call('GET', '/account/api/session', as(s))).status).to.equal(401);
    });
  });

  it('shares the web admin\'s login throttle: wrong passwords on either page lock both', async () => {
    const other = await startTestServer({ admins: ['root@localhost'], auth: { scramIterations: 4096, throttle: { accountFailures: 3, ipFailures: 100 } } });
    try {
      await other.addUser('root', 'secret-pw');
      const at = `http://127.0.0.1:${other.port('http')}`;
      const post = (path: string, password: string) => fetch(`${at}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'root', password }) });
      expect((await post('/admin/api/login', 'wrong')).status).to.equal(401);
      expect((await post('/account/api/login', 'wrong')).status).to.equal(401);
      expect((await post('/admin/api/login', 'wrong')).status).to.equal(401);
      const locked = await post('/account/api/login', 'secret-pw');
      expect(locked.status).to.equal(429);
      expect(Number(locked.headers.get('retry-after'))).to.be.greaterThan(0);
      expect((await post('/admin/api/login', 'secret-pw')).status).to.equal(429);
    } finally {
      await other.stop();
    }
  });

  it('asks an admin with TOTP on for a code at the web admin login too', async () => {
    const secret = await enrol(await login('root'));
    const noCode = await call('POST', '/admin/api/login', { body: { username: 'root', password: 'secret-pw' } });
    expect(noCode.status).to.equal(401);
    expect(noCode.body.error).to.equal('code_required');
    expect(noCode.headers.get('set-cookie')).to.equal(null);
    expect((await call('POST', '/admin/api/login', { body: { username: 'root', password: 'secret-pw', code: '000000' } })).body.error).to.equal('wrong_code');
    const ok = await call('POST', '/admin/api/login', { body: { username: 'root', password: 'secret-pw', code: totp(secret, Date.now() + 30_000) } });
    expect(ok.status).to.equal(200);
    await srv.server.operations.resetSecondFactor('root@localhost', 'spec');
  });

  describe('admin reset of a second factor', () => {
    it('turns TOTP off through the admin API (users:write), lists 2FA per user, and records who did it', async () => {
      const tokens = new AdminTokens(srv.server.storage);
      const writer = await tokens.create('helpdesk', ['users:read', 'users:write']);
      const reader = await tokens.create('viewer', ['users:read']);
      const users = await (await fetch(`${base}/admin/api/users`, { headers: { authorization: `Bearer ${reader}` } })).json() as { users: Array<{ jid: string; twoFactor: boolean }> };
      expect(users.users.filter((u) => u.twoFactor).map((u) => u.jid)).to.deep.equal(['carol@localhost', 'dave@localhost']);
      const path = `${base}/admin/api/users/dave%40localhost/second-factor`;
      expect((await fetch(path, { method: 'DELETE', headers: { authorization: `Bearer ${reader}` } })).status).to.equal(403);
      const r = await fetch(path, { method: 'DELETE', headers: { authorization: `Bearer ${writer}` } });
      expect(r.status).to.equal(200);
      expect(await r.json()).to.deep.equal({ jid: 'dave@localhost', twoFactor: false });
      expect((await fetch(path, { method: 'DELETE', headers: { authorization: `Bearer ${writer}` } })).status, 'nothing left to reset').to.equal(404);
      // The password alone opens the page again, and dave sees who reset it.
      const dave = await login('dave');
      const events = (await call('GET', '/account/api/events', as(dave))).body.events as Array<{ kind: string; detail: Record<string, unknown> }>;
      expect(events[1]).to.deep.include({ kind: 'second-factor-reset', detail: { by: 'admin token helpdesk' } });
      expect(events[0]!.kind).to.equal('login');
    });
  });
});

describe('adminHttp switches: the admin pages and the account pages each on their own', function () {
  this.timeout(30_000);
  const status = async (srv: TestServer, path: string) => (await fetch(`http://127.0.0.1:${srv.port('http')}${path}`, { redirect: 'manual' })).status;

  it('serves /account/ without the admin API and pages (enabled: false)', async () => {
    const srv = await startTestServer({ adminHttp: { enabled: false } });
    try {
      expect(await status(srv, '/account/')).to.be.oneOf([200, 302, 303]);
      expect(await status(srv, '/admin/api/openapi.json')).to.equal(404);
    } finally {
      await srv.stop();
    }
  });

  it('serves the admin API and pages without /account/ (accountPages: false)', async () => {
    const srv = await startTestServer({ adminHttp: { accountPages: false } });
    try {
      expect(await status(srv, '/account/')).to.equal(404);
      expect(await status(srv, '/admin/api/openapi.json')).to.equal(200);
    } finally {
      await srv.stop();
    }
  });
});
