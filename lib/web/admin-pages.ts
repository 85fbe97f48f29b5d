// The web admin's pages at /admin/: plain HTML shells and one small vanilla script that talks
// to the admin API (/admin/api/) with the session cookie and the CSRF header. No inline script
// or style, so the Content-Security-Policy allows only this server's own files.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pageSender, pageShell, type PageArea } from './page-shell.js';
import { ADMIN_SCRIPT } from './admin-script.js';
import { ADMIN_STYLE } from './admin-style.js';

export const ADMIN_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const PAGES: Record<string, { id: string; title: string }> = {
  '/admin/': { id: 'status', title: 'Server status' },
  '/admin/users': { id: 'users', title: 'Users' },
  '/admin/sessions': { id: 'sessions', title: 'Sessions' },
  '/admin/rooms': { id: 'rooms', title: 'Rooms' },
  '/admin/login': { id: 'login', title: 'Log in' },
};

const BODIES: Record<string, string> = {
  status: `
<section class="cards">
  <div class="card"><h2>Uptime</h2><p id="stat-uptime">…</p></div>
  <div class="card"><h2>Sessions</h2><p id="stat-sessions">…</p></div>
  <div class="card"><h2>Accounts</h2><p id="stat-accounts">…</p></div>
  <div class="card"><h2>Stanzas/s</h2><p id="stat-rate">…</p></div>
  <div class="card"><h2>Memory (RSS)</h2><p id="stat-memory">…</p></div>
  <div class="card"><h2>Event-loop lag</h2><p id="stat-lag">…</p></div>
</section>
<h2>Connections</h2>
<table><thead><tr><th>Type</th><th>Open</th></tr></thead><tbody id="connections"></tbody></table>
<h2>Stanzas per second, last minute</h2>
<div id="history" class="history" aria-label="stanzas per second"></div>
<p class="muted">Version <span id="stat-version"></span>, hosts <span id="stat-hosts"></span>. Refreshed every 2 s.</p>
<p><button id="reload" type="button">Reload config and certificates</button> <span id="reload-result" class="muted"></span></p>`,
  users: `
<form id="create-user" class="inline">
  <label>JID <input name="jid" id="new-jid" required placeholder="alice@example.com" autocomplete="off"></label>
  <label>Password <input name="password" id="new-password" type="password" required autocomplete="new-password"></label>
  <button type="submit">Create user</button>
</form>
<table><thead><tr><th>JID</th><th>Created</th><th>State</th><th>2FA</th><th>Sessions</th><th></th></tr></thead><tbody id="users"></tbody></table>
<p><button id="more" type="button" hidden>Next page</button></p>`,
  sessions: `
<table><thead><tr><th>JID</th><th>Address</th><th>TLS</th><th>Presence</th><th></th></tr></thead><tbody id="sessions"></tbody></table>`,
  rooms: `
<table><thead><tr><th>Room</th><th>Name</th><th>Persistent</th><th>Occupants</th><th></th></tr></thead><tbody id="rooms"></tbody></table>`,
  login: `
<form id="login" class="login">
  <p>Log in with the XMPP account of a server admin (listed in <code>admins:</code>).</p>
  <label>Username or JID <input name="username" id="username" required autocomplete="username"></label>
  <label>Password <input name="password" id="password" type="password" required autocomplete="current-password"></label>
  <label id="code-label" hidden>Code from your authenticator app, or a recovery code <input name="code" id="code" autocomplete="one-time-code"></label>
  <button type="submit">Log in</button>
</form>`,
};

const AREA: PageArea = {
  base: '/admin',
  site: 'Parley admin',
  nav: `<nav><a href="/admin/">Status</a><a href="/admin/users">Users</a><a href="/admin/sessions">Sessions</a><a href="/admin/rooms">Rooms</a><span class="who" id="who"></span><button id="logout" type="button">Log out</button></nav>`,
};

const page = (id: string, title: string): string => pageShell(AREA, id, title, BODIES[id]!);
const send = pageSender(ADMIN_CSP);

/** Serves /admin/ pages and their assets; the API is served by lib/admin/http-api.ts. */
export function serveAdminPage(req: IncomingMessage, res: ServerResponse, path: string): void {
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') return send(req, res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, HEAD' });
  if (path === '/admin/assets/admin.js') return send(req, res, 200, 'text/javascript; charset=utf-8', ADMIN_SCRIPT);
  if (path === '/admin/assets/admin.css') return send(req, res, 200, 'text/css; charset=utf-8', ADMIN_STYLE);
  const p = PAGES[path];
  if (!p) return send(req, res, 404, 'text/plain; charset=utf-8', 'not found\n');
  send(req, res, 200, 'text/html; charset=utf-8', page(p.id, p.title));
}
