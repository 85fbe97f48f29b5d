// The HTTP admin API on a real server (real sockets): every route, its authorization failures
// (no token, wrong token: 401 with WWW-Authenticate; a token without the scope: 403), the
// OpenAPI document, and the web admin's cookie login with CSRF protection.
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestServer, type TestServer } from '../../helpers/server.js';
import { loggedIn, type RawClient } from '../../helpers/raw-client.js';
import { Jid } from '../../../lib/jid/jid.js';
import { AdminTokens, TOKEN_SCOPES, type TokenScope } from '../../../lib/admin/tokens.js';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

interface Reply {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

/** Every route: method, path template, an example path, and the scope it needs. */
const ROUTES: Array<{ method: string; template: string; path: string; scope: TokenScope }> = [
  { method: 'GET', template: '/users', path: 'users', scope: 'users:read' },
  { method: 'POST', template: '/users', path: 'users', scope: 'users:write' },
  { method: 'DELETE', template: '/users/{jid}', path: 'users/nobody%40localhost', scope: 'users:write' },
  { method: 'POST', template: '/users/{jid}/disable', path: 'users/nobody%40localhost/disable', scope: 'users:write' },
  { method: 'POST', template: '/users/{jid}/enable', path: 'users/nobody%40localhost/enable', scope: 'users:write' },
  { method: 'POST', template: '/users/{jid}/password', path: 'users/nobody%40localhost/password', scope: 'users:write' },
  { method: 'DELETE', template: '/users/{jid}/second-factor', path: 'users/nobody%40localhost/second-factor', scope: 'users:write' },
  { method: 'GET', template: '/sessions', path: 'sessions', scope: 'sessions:read' },
  { method: 'DELETE', template: '/sessions/{jid}', path: 'sessions/nobody%40localhost%2Fx', scope: 'sessions:write' },
  { method: 'GET', template: '/rooms', path: 'rooms', scope: 'rooms:read' },
  { method: 'DELETE', template: '/rooms/{jid}', path: 'rooms/none%40conference.localhost', scope: 'rooms:write' },
  { method: 'GET', template: '/reports', path: 'reports', scope: 'reports:read' },
  { method: 'DELETE', template: '/reports/{host}/{id}', path: 'reports/localhost/nobody%2Fx', scope: 'reports:write' },
  { method: 'POST', template: '/reports/{host}/{id}/disable', path: 'reports/localhost/nobody%2Fx/disable', scope: 'reports:write' },
  { method: 'GET', template: '/stats', path: 'stats', scope: 'stats:read' },
  { method: 'POST', template: '/reload', path: 'reload', scope: 'server:reload' },
];

describe('HTTP admin API', function () {
  this.timeout(30_000);
  let srv: TestServer;
  let token: string;
  let base: string;
  const clients: RawClient[] = [];

  async function call(method: string, path: string, opts: { token?: string | null; body?: unknown; headers?: Record<string, string> } = {}): Promise<Reply> {
    const headers: Record<string, string> = { ...opts.headers };
    const t = opts.token === undefined ? token : opts.token;
    if (t !== null) headers.authorization = `Bearer ${t}`;
    if (opts.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(`${base}/admin/api/${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
  }

  before(async () => {
    srv = await startTestServer({ admins: ['root@localhost'] });
    base = `http://127.0.0.1:${srv.port('http')}`;
    token = await new AdminTokens(srv.server.storage).create('all', [...TOKEN_SCOPES]);
    await srv.addUser('root', 'root-pw');
    await srv.addUser('alice', 'secret-pw');
  });
  after(async () => {
    for (const c of clients) c.destroy();
    await srv?.stop();
  });

  describe('authorization', () => {
    for (const [i, r] of ROUTES.entries()) {
      it(`${r.method} ${r.template}: 401 with WWW-Authenticate without a token, 401 invalid_token with a wrong one, 403 without the scope ${r.scope}`, async () => {
        const none = await call(r.method, r.path, { token: null });
        expect(none.status).to.equal(401);
        expect(none.headers.get('www-authenticate')).to.match(/^Bearer realm="parley-admin"/);
        const wrong = await call(r.method, r.path, { token: 'parley_not-a-real-token' });
        expect(wrong.status).to.equal(401);
        expect(wrong.headers.get('www-authenticate')).to.contain('error="invalid_token"');
        const scopes = TOKEN_SCOPES.filter((s) => s !== r.scope);
        const narrow = await new AdminTokens(srv.server.storage).create(`no-${r.scope.replace(':', '-')}-${i}`, scopes);
        const denied = await call(r.method, r.path, { token: narrow });
        expect(denied.status).to.equal(403);
        expect(denied.body.error).to.equal('insufficient_scope');
        expect(denied.headers.get('www-authenticate')).to.contain(`scope="${r.scope}"`);
      });
    }

    it('refuses a revoked token', async () => {
      const tokens = new AdminTokens(srv.server.storage);
      const t = await tokens.create('short-lived', ['stats:read']);
      expect((await call('GET', 'stats', { token: t })).status).to.equal(200);
      expect(await tokens.revoke('short-lived')).to.equal(true);
      expect((await call('GET', 'stats', { token: t })).status).to.equal(401);
    });
  });

  describe('OpenAPI', () => {
    it('serves an OpenAPI 3.1 document that describes every route', async () => {
      const doc = await call('GET', 'openapi.json', { token: null });
      expect(doc.status).to.equal(200);
      expect(doc.body.openapi).to.equal('3.1.0');
      const paths = doc.body.paths as Record<string, Record<string, { security: unknown[] }>>;
      for (const r of ROUTES) {
        expect(paths[r.template], r.template).to.be.an('object');
        expect(paths[r.template]![r.method.toLowerCase()], `${r.method} ${r.template}`).to.be.an('object');
        expect(JSON.stringify(paths[r.template]![r.method.toLowerCase()]!.security)).to.contain(r.scope);
      }
      const described = Object.values(paths).reduce((n, p) => n + Object.keys(p).length, 0);
      expect(described).to.equal(ROUTES.length);
    });

    it('serves exactly the committed docs/admin-api.openapi.json (regenerate it when routes change)', async () => {
      const served = (await call('GET', 'openapi.json', { token: null })).body;
      const file = JSON.parse(readFileSync(join(repoRoot(), 'docs', 'admin-api.openapi.json'), 'utf8')) as unknown;
      expect(served).to.deep.equal(file);
    });

    it('answers an unknown route with 404 and a wrong method with 405 and Allow', async () => {
      expect((await call('GET', 'nothing-here')).status).to.equal(404);
      const r = await call('PUT', 'users');
      expect(r.status).to.equal(405);
      expect(r.headers.get('allow')).to.equal('GET, POST');
    });
  });

  describe('users', () => {
    it('creates an account that can log in, and refuses a duplicate with 409', async () => {
      const created = await call('POST', 'users', { body: { jid: 'carol@localhost', password: 'carol-pw' } });
      expect(created.status).to.equal(201);
      expect(created.body.jid).to.equal('carol@localhost');
      expect(await srv.server.accounts.verifyPassword('localhost', 'carol', 'carol-pw')).to.equal(true);
      const again = await call('POST', 'users', { body: { jid: 'carol@localhost', password: 'x' } });
      expect(again.status).to.equal(409);
      expect(again.body.error).to.equal('PARLEY_ERR_ACCOUNT_EXISTS');
    });

    it('refuses a non-JSON body with 415, a missing password with 400 and an unknown host with 404', async () => {
      const res = await fetch(`${base}/admin/api/users`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'text/plain' }, body: 'jid=x' });
      expect(res.status).to.equal(415);
      expect((await call('POST', 'users', { body: { jid: 'x@localhost' } })).status).to.equal(400);
      expect((await call('POST', 'users', { body: { jid: 'x@elsewhere.test', password: 'p' } })).status).to.equal(404);
    });

    it('lists accounts a page at a time with a cursor', async () => {
      for (const u of ['p1', 'p2', 'p3', 'p4', 'p5']) await srv.addUser(u, 'pw');
      const seen: string[] = [];
      let after: string | undefined;
      let pages = 0;
      do {
        const page = await call('GET', `users?limit=2${after ? `&after=${encodeURIComponent(after)}` : ''}`);
        expect(page.status).to.equal(200);
        const users = page.body.users as Array<{ jid: string; disabled: boolean }>;
        expect(users.length).to.be.at.most(2);
        seen.push(...users.map((u) => u.jid));
        after = page.body.next as string | undefined;
        pages++;
      } while (after !== undefined);
      const all = (await srv.server.accounts.list('localhost')).map((a) => `${a.user}@${a.host}`).sort();
      expect(seen).to.deep.equal(all);
      expect(pages).to.equal(Math.ceil(all.length / 2));
    });

    it('disables an account (ending its session, refusing logins) and enables it again', async () => {
      await srv.addUser('dave', 'secret-pw');
      const c = await loggedIn(srv, 'dave');
      clients.push(c);
      const r = await call('POST', 'users/dave%40localhost/disable');
      expect(r.status).to.equal(200);
      await c.waitClosed();
      expect(await srv.server.accounts.isDisabled('localhost', 'dave')).to.equal(true);
      const listed = (await call('GET', 'users?limit=500')).body.users as Array<{ jid: string; disabled: boolean }>;
      expect(listed.find((u) => u.jid === 'dave@localhost')?.disabled).to.equal(true);
      let refused = false;
      try {
        clients.push(await loggedIn(srv, 'dave'));
      } catch {
        refused = true;
      }
      expect(refused, 'a disabled account logged in').to.equal(true);
      expect((await call('POST', 'users/dave%40localhost/enable')).status).to.equal(200);
      clients.push(await loggedIn(srv, 'dave'));
    });

    it('resets a password', async () => {
      const r = await call('POST', 'users/alice%40localhost/password', { body: { password: 'new-alice-pw' } });
      expect(r.status).to.equal(200);
      expect(await srv.server.accounts.verifyPassword('localhost', 'alice', 'new-alice-pw')).to.equal(true);
      expect(await srv.server.accounts.verifyPassword('localhost', 'alice', 'secret-pw')).to.equal(false);
      await srv.server.accounts.setPassword('localhost', 'alice', 'secret-pw');
    });

    it('deletes an account, then answers 404 for it', async () => {
      await srv.addUser('erin', 'pw');
      expect((await call('DELETE', 'users/erin%40localhost')).status).to.equal(200);
      expect(await srv.server.accounts.exists('localhost', 'erin')).to.equal(false);
      const again = await call('DELETE', 'users/erin%40localhost');
      expect(again.status).to.equal(404);
      expect((await call('POST', 'users/erin%40localhost/disable')).status).to.equal(404);
    });
  });

  describe('sessions', () => {
    it('lists bound sessions and kicks one with a policy-violation stream error', async () => {
      const c = await loggedIn(srv, 'alice', { resource: 'kickme' });
      clients.push(c);
      const list = await call('GET', 'sessions');
      expect(list.status).to.equal(200);
      const sessions = list.body.sessions as Array<{ jid: string; secure: boolean }>;
      expect(sessions.map((s) => s.jid)).to.include('alice@localhost/kickme');
      expect(sessions.find((s) => s.jid === 'alice@localhost/kickme')?.secure).to.equal(true);
      const kick = await call('DELETE', `sessions/${encodeURIComponent('alice@localhost/kickme')}`);
      expect(kick.status).to.equal(200);
      const err = await c.streamError();
      expect(err.children.map((x) => x.name)).to.include('policy-violation');
      await c.waitClosed();
      expect((await call('DELETE', `sessions/${encodeURIComponent('alice@localhost/kickme')}`)).status).to.equal(404);
      expect((await call('DELETE', 'sessions/alice%40localhost')).status).to.equal(400);
    });
  });

  describe('rooms', () => {
    it('lists a room and destroys it, telling its occupant', async () => {
      const c = await loggedIn(srv, 'alice', { resource: 'muc' });
      clients.push(c);
      c.send("<presence to='lounge@conference.localhost/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>");
      await c.waitForElement((el) => el.is('presence') && el.attrs.from === 'lounge@conference.localhost/alice');
      // An instant room (XEP-0045 §10.1.2), persistent: unlocked with the default configuration.
      c.send(
        "<iq type='set' id='cfg' to='lounge@conference.localhost'><query xmlns='http://jabber.org/protocol/muc#owner'>" +
          "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>" +
          "<field var='muc#roomconfig_persistentroom'><value>1</value></field></x></query></iq>",
      );
      await c.waitForElement((el) => el.is('iq') && el.attrs.id === 'cfg');
      const list = await call('GET', 'rooms');
      expect(list.status).to.equal(200);
      const rooms = list.body.rooms as Array<{ jid: string; occupants: number; persistent: boolean }>;
      const lounge = rooms.find((r) => r.jid === 'lounge@conference.localhost');
      expect(lounge, JSON.stringify(rooms)).to.deep.include({ occupants: 1, persistent: true });

      const from = c.elements.length;
      const destroyed = await call('DELETE', 'rooms/lounge%40conference.localhost?reason=cleanup');
      expect(destroyed.status, JSON.stringify(destroyed.body)).to.equal(200);
      const gone = await c.waitForElement((el) => el.is('presence') && el.attrs.type === 'unavailable' && el.attrs.from === 'lounge@conference.localhost/alice', 5000, from);
      expect(gone.toString()).to.contain('destroy');
      expect(gone.toString()).to.contain('cleanup');
      const after = (await call('GET', 'rooms')).body.rooms as Array<{ jid: string }>;
      expect(after.map((r) => r.jid)).to.not.include('lounge@conference.localhost');
      expect((await call('DELETE', 'rooms/lounge%40conference.localhost')).status).to.equal(404);
    });
  });

  describe('spam reports', () => {
    it('lists the reports users filed, dismisses one, and disables a reported local account', async () => {
      await srv.addUser('spammy', 'pw');
      await srv.addUser('reporter', 'pw');
      const spammy = await loggedIn(srv, 'spammy', { password: 'pw' });
      const reporter = await loggedIn(srv, 'reporter', { password: 'pw' });
      clients.push(spammy, reporter);
      const block = (jid: string, text: string, id: string) =>
        reporter.send(`<iq type='set' id='${id}'><block xmlns='urn:xmpp:blocking'><item jid='${jid}'><report xmlns='urn:xmpp:reporting:1' reason='urn:xmpp:reporting:spam'><text>${text}</text></report></item></block></iq>`);
      block('junk@remote.example', 'from afar', 'b1');
      await reporter.waitForElement((el) => el.is('iq') && el.attrs.id === 'b1');
      block('spammy@localhost', 'buy pills', 'b2');
      await reporter.waitForElement((el) => el.is('iq') && el.attrs.id === 'b2');

      const list = await call('GET', 'reports?host=localhost');
      expect(list.status, JSON.stringify(list.body)).to.equal(200);
      const reports = list.body.reports as Array<{ host: string; id: string; reporter: string; report: { jid: string; reason: string; text: string } }>;
      expect(reports.map((r) => [r.reporter, r.report.jid, r.report.reason, r.report.text])).to.deep.equal([
        ['reporter@localhost', 'junk@remote.example', 'spam', 'from afar'],
        ['reporter@localhost', 'spammy@localhost', 'spam', 'buy pills'],
      ]);
      const [remote, local] = reports as [typeof reports[0], typeof reports[0]];
      // A remote JID cannot be disabled here: 409, the report stays.
      expect((await call('POST', `reports/localhost/${encodeURIComponent(remote.id)}/disable`)).status).to.equal(409);
      expect((await call('DELETE', `reports/localhost/${encodeURIComponent(remote.id)}`)).status).to.equal(200);
      expect((await call('DELETE', `reports/localhost/${encodeURIComponent(remote.id)}`)).status).to.equal(404);

      const disabled = await call('POST', `reports/localhost/${encodeURIComponent(local.id)}/disable`);
      expect(disabled.status, JSON.stringify(disabled.body)).to.equal(200);
      expect(disabled.body.jid).to.equal('spammy@localhost');
      await spammy.closed;
      expect(await srv.server.operations.accountActive(Jid.parse('spammy@localhost'))).to.equal(false);
      expect((await call('GET', 'reports')).body.reports).to.deep.equal([]);
    });
  });

  describe('stats and reload', () => {
    it('reports live figures: sessions, accounts, connections, stanza counts', async () => {
      const c = await loggedIn(srv, 'alice', { resource: 'stats' });
      clients.push(c);
      const r = await call('GET', 'stats');
      expect(r.status).to.equal(200);
      expect(r.body.sessions).to.equal(srv.server.sessions.size);
      expect(r.body.sessions).to.be.at.least(1);
      expect(r.body.accounts).to.equal((await srv.server.accounts.list()).length);
      expect((r.body.connections as Record<string, number>).c2s).to.be.at.least(1);
      expect((r.body.stanzas as { in: number }).in).to.be.above(0);
      expect(r.body.hosts).to.deep.equal(['localhost']);
    });

    it('refuses a reload with 422 when the server was started without a config file', async () => {
      const r = await call('POST', 'reload');
      expect(r.status).to.equal(422);
      expect(r.body.error).to.equal('PARLEY_ERR_RELOAD');
    });
  });

  describe('web admin login', () => {
    async function login(username: string, password: string, headers: Record<string, string> = {}): Promise<Response> {
      return fetch(`${base}/admin/api/login`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ username, password }) });
    }

    it('refuses a wrong password with 401 and an account that is not an admin with 403', async () => {
      expect((await login('root', 'wrong')).status).to.equal(401);
      const notAdmin = await login('alice', 'secret-pw');
      expect(notAdmin.status).to.equal(403);
      expect(notAdmin.headers.get('set-cookie')).to.equal(null);
    });

    it('refuses a cross-origin login', async () => {
      expect((await login('root', 'root-pw', { origin: 'https://evil.example' })).status).to.equal(403);
    });

    it('gives an admin an HttpOnly SameSite=Strict session cookie; changes need the CSRF header', async () => {
      const res = await login('root', 'root-pw', { origin: base });
      expect(res.status).to.equal(200);
      const cookie = res.headers.get('set-cookie')!;
      expect(cookie).to.match(/^parley_admin=[\w-]+; Path=\/admin; HttpOnly; SameSite=Strict/);
      expect(cookie).to.not.contain('Secure'); // plain http on loopback here
      const { csrf } = (await res.json()) as { csrf: string };
      const session = cookie.split(';')[0]!;
      const list = await call('GET', 'users', { token: null, headers: { cookie: session } });
      expect(list.status).to.equal(200);
      const noCsrf = await call('POST', 'users', { token: null, headers: { cookie: session }, body: { jid: 'web1@localhost', password: 'pw' } });
      expect(noCsrf.status).to.equal(403);
      expect(noCsrf.body.error).to.equal('csrf');
      const badCsrf = await call('POST', 'users', { token: null, headers: { cookie: session, 'x-csrf-token': 'x' }, body: { jid: 'web1@localhost', password: 'pw' } });
      expect(badCsrf.status).to.equal(403);
      const ok = await call('POST', 'users', { token: null, headers: { cookie: session, 'x-csrf-token': csrf }, body: { jid: 'web1@localhost', password: 'pw' } });
      expect(ok.status).to.equal(201);
      const out = await fetch(`${base}/admin/api/logout`, { method: 'POST', headers: { cookie: session, 'x-csrf-token': csrf } });
      expect(out.status).to.equal(200);
      expect((await call('GET', 'users', { token: null, headers: { cookie: session } })).status).to.equal(401);
    });

    it('serves the pages with a strict Content-Security-Policy', async () => {
      const res = await fetch(`${base}/admin/login`);
      expect(res.status).to.equal(200);
      const csp = res.headers.get('content-security-policy')!;
      expect(csp).to.contain("default-src 'none'");
      expect(csp).to.contain("script-src 'self'");
      expect(csp).to.not.contain('unsafe-inline');
      expect(await res.text()).to.not.match(/<script>|style=/);
    });
  });
});
