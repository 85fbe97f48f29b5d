// The account self-service pages at /account/: plain HTML shells and one small script that talks
// to the account API (/account/api/, lib/admin/account-http.ts) with the session cookie and the
// CSRF header. The same strict Content-Security-Policy as the web admin, except that images may
// be data: URIs (the TOTP QR code is one, made by the server).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pageSender, pageShell, type PageArea } from './page-shell.js';
import { ACCOUNT_SCRIPT } from './account-script.js';
import { ADMIN_STYLE } from './admin-style.js';

export const ACCOUNT_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
export const ACCOUNT_LOGIN_PAGE = '/account/login';

const ACCOUNT_STYLE = `${ADMIN_STYLE}
.panel { background: #fff; padding: 1rem 1.2rem; box-shadow: 0 1px 2px rgba(0,0,0,.08); margin-bottom: 1rem; }
.qr { image-rendering: pixelated; width: 12rem; height: 12rem; display: block; margin: .5rem 0; }
.secret, .once { font-family: ui-monospace, monospace; word-break: break-all; }
.once { background: #fff8d6; padding: .5rem .8rem; border: 1px solid #e6d58a; }
ol.codes { columns: 2; font-family: ui-monospace, monospace; }
`;

const PAGES: Record<string, { id: string; title: string }> = {
  '/account/': { id: 'two-factor', title: 'Two-factor authentication' },
  '/account/clients': { id: 'clients', title: 'Clients and app passwords' },
  '/account/events': { id: 'events', title: 'Security events' },
  [ACCOUNT_LOGIN_PAGE]: { id: 'login', title: 'Log in' },
};

const BODIES: Record<string, string> = {
  'two-factor': `
<section class="panel" id="totp-off" hidden>
  <p>Two-factor authentication is <strong>off</strong>: your password alone opens your account.</p>
  <p><button id="totp-start" type="button">Turn on two-factor authentication</button></p>
  <div id="enrol" hidden>
    <p>Scan this QR code with an authenticator app (or enter the secret by hand), then type the code it shows.</p>
    <img id="totp-qr" class="qr" alt="QR code of the otpauth URI">
    <p>Secret: <span id="totp-secret" class="secret"></span></p>
    <p>URI: <span id="totp-uri" class="secret"></span></p>
    <form id="totp-confirm" class="inline" method="post" action="/account/">
      <label>Code <input id="confirm-code" name="code" required inputmode="numeric" autocomplete="one-time-code"></label>
      <button type="submit">Confirm</button>
    </form>
  </div>
</section>
<section class="panel" id="totp-on" hidden>
  <p>Two-factor authentication is <strong>on</strong>. Recovery codes left: <span id="recovery-left"></span>.</p>
  <div id="recovery" hidden>
    <p class="once">Keep these recovery codes somewhere safe. Each works once instead of a code. They are shown only now.</p>
    <ol id="recovery-codes" class="codes"></ol>
  </div>
  <form id="totp-disable" class="inline" method="post" action="/account/">
    <label>A current code, or a recovery code <input id="disable-code" name="code" required autocomplete="one-time-code"></label>
    <button type="submit" class="danger">Turn off</button>
  </form>
</section>`,
  clients: `
<section class="panel">
  <form id="create-app-password" class="inline" method="post" action="/account/">
    <label>Client name <input id="app-label" name="label" required maxlength="64" placeholder="Old desktop client" autocomplete="off"></label>
    <button type="submit">Create an app password</button>
  </form>
  <div id="new-password" hidden>
    <p>Enter this password in <strong id="new-password-label"></strong> instead of your account password. It is shown only now.</p>
    <p class="once" id="new-password-value"></p>
  </div>
</section>
<table><thead><tr><th>Client</th><th>Kind</th><th>Connected</th><th>Created</th><th>Last used</th><th></th></tr></thead><tbody id="clients"></tbody></table>`,
  events: `
<table><thead><tr><th>When (UTC)</th><th>Event</th><th>Details</th></tr></thead><tbody id="events"></tbody></table>`,
  login: `
<form id="login" class="login" method="post" action="/account/login">
  <p>Log in with your XMPP address and password.</p>
  <label>Username or JID <input name="username" id="username" required autocomplete="username"></label>
  <label>Password <input name="password" id="password" type="password" required autocomplete="current-password"></label>
  <label id="code-label" hidden>Code from your authenticator app, or a recovery code <input name="code" id="code" autocomplete="one-time-code"></label>
  <button type="submit">Log in</button>
</form>`,
};

const AREA: PageArea = {
  base: '/account',
  site: 'Your account',
  nav: `<nav><a href="/account/">Two-factor</a><a href="/account/clients">Clients and app passwords</a><a href="/account/events">Security events</a><span class="who" id="who"></span><button id="logout" type="button">Log out</button></nav>`,
};

const page = (id: string, title: string): string => pageShell(AREA, id, title, BODIES[id]!);
const send = pageSender(ACCOUNT_CSP);

/** Serves /account/ pages and assets; a page other than the login page needs a session. */
export function serveAccountPage(req: IncomingMessage, res: ServerResponse, path: string, loggedIn: boolean): void {
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') return send(req, res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, HEAD' });
  if (path === '/account/assets/account.js') return send(req, res, 200, 'text/javascript; charset=utf-8', ACCOUNT_SCRIPT);
  if (path === '/account/assets/account.css') return send(req, res, 200, 'text/css; charset=utf-8', ACCOUNT_STYLE);
  const p = PAGES[path];
  if (!p) return send(req, res, 404, 'text/plain; charset=utf-8', 'not found\n');
  if (p.id !== 'login' && !loggedIn) return send(req, res, 303, 'text/plain; charset=utf-8', 'log in first\n', { location: ACCOUNT_LOGIN_PAGE });
  send(req, res, 200, 'text/html; charset=utf-8', page(p.id, p.title));
}
