// The HTTP admin API (JSON under /admin/api/, described by /admin/api/openapi.json) and the web
// admin's login, on the http/https listeners. Two ways in:
//   - a bearer token (`parley admin token create`), limited to its scopes: no token or an
//     unknown one is 401 with WWW-Authenticate (RFC 6750 §3), a missing scope is 403;
//   - the web admin's session cookie (an admin listed in `admins:` who logged in with their
//     XMPP password), with every scope; state-changing requests also need the X-CSRF-Token
//     header the login returned.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AdminError } from '../config/errors.js';
import { Jid } from '../jid/jid.js';
import type { LoginThrottle } from '../accounts/throttle.js';
import { clientInfo } from '../transport/http-client.js';
import type { SecurityApi } from '../../modules/security/api.js';
import { checkSecondFactor, loginCode } from './second-factor-login.js';
import { checkSameOrigin, HttpError, readJson, sendJson, stringField } from './http-json.js';
import type { Logger } from '../log.js';
import type { AdminOperations } from './operations.js';
import { AdminTokens, type TokenScope } from './tokens.js';
import { WebAdminSessions, csrfMatches, readCookie, sessionCookie, SESSION_COOKIE, type WebAdminSession } from './web-sessions.js';
import { openApiDocument } from './openapi.js';

export const ADMIN_API_PREFIX = '/admin/api/';
const REALM = 'parley-admin';

export interface AdminHttpOptions {
  operations: AdminOperations;
  tokens: AdminTokens;
  /** Bare JIDs of the server's admins (config `admins:`). */
  admins: readonly string[];
  sessionIdleMs: number;
  maxSessions: number;
  /** Shared with the account pages' login (lib/admin/account-http.ts): guesses add up. */
  throttle: LoginThrottle;
  /** The security module's API on a host, when enabled there (second factors). */
  security?(host: string): SecurityApi | undefined;
  log: Logger;
}

type Auth = { kind: 'token'; name: string; scopes: readonly TokenScope[] } | { kind: 'session'; session: WebAdminSession };

interface Request {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  /** Path segments after /admin/api/, percent-decoded. */
  parts: string[];
  query: URLSearchParams;
  auth: Auth;
}

interface Route {
  method: string;
  /** Segments; `:x` matches one segment. */
  path: string[];
  scope: TokenScope;
  handle(r: Request, params: string[]): Promise<unknown>;
}

/** AdminError codes and the HTTP status they mean. */
const STATUS_OF: Record<string, number> = {
  PARLEY_ERR_BAD_REQUEST: 400,
  PARLEY_ERR_BAD_USERNAME: 400,
  PARLEY_ERR_BAD_PASSWORD: 400,
  PARLEY_ERR_UNKNOWN_HOST: 404,
  PARLEY_ERR_NOT_FOUND: 404,
  PARLEY_ERR_NO_ACCOUNT: 404,
  PARLEY_ERR_ACCOUNT_EXISTS: 409,
  PARLEY_ERR_NO_ADMIN: 409,
  PARLEY_ERR_CONFLICT: 409,
  PARLEY_ERR_CONFIG: 422,
  PARLEY_ERR_RELOAD: 422,
};

export class AdminHttp {
  private readonly sessions: WebAdminSessions;
  private readonly throttle: LoginThrottle;
  private readonly routes: Route[];

  constructor(private readonly opts: AdminHttpOptions) {
    this.sessions = new WebAdminSessions({ idleMs: opts.sessionIdleMs, max: opts.maxSessions });
    this.throttle = opts.throttle;
    const ops = opts.operations;
    const route = (method: string, path: string, scope: TokenScope, handle: Route['handle']): Route => ({ method, path: path.split('/'), scope, handle });
    this.routes = [
      route('GET', 'users', 'users:read', (r) =>
        ops.listUsers({ host: r.query.get('host') ?? undefined, after: r.query.get('after') ?? undefined, limit: intParam(r.query.get('limit')) })),
      route('POST', 'users', 'users:write', async (r) => {
        const body = await readJson(r.req);
        const jid = await ops.createUser(stringField(body, 'jid')!, stringField(body, 'password')!);
        return { status: 201, body: { jid: jid.toString() } };
      }),
      route('DELETE', 'users/:jid', 'users:write', async (_r, [jid]) => ({ jid: (await ops.deleteUser(jid!)).toString(), deleted: true })),
      route('POST', 'users/:jid/disable', 'users:write', async (_r, [jid]) => ({ jid: (await ops.setDisabled(jid!, true)).toString(), disabled: true })),
      route('POST', 'users/:jid/enable', 'users:write', async (_r, [jid]) => ({ jid: (await ops.setDisabled(jid!, false)).toString(), disabled: false })),
      route('POST', 'users/:jid/password', 'users:write', async (r, [jid]) => {
        const body = await readJson(r.req);
        return { jid: (await ops.resetPassword(jid!, stringField(body, 'password')!)).toString() };
      }),
      route('DELETE', 'users/:jid/second-factor', 'users:write', async (r, [jid]) => ({ jid: (await ops.resetSecondFactor(jid!, who(r.auth))).toString(), twoFactor: false })),
      route('GET', 'sessions', 'sessions:read', async (r) => ({ sessions: ops.listSessions(r.query.get('host') ?? undefined) })),
      route('DELETE', 'sessions/:jid', 'sessions:write', async (_r, [jid]) => ({ jid: ops.kickSession(jid!).toString(), kicked: true })),
      route('GET', 'rooms', 'rooms:read', async (r) => ({ rooms: await ops.listRooms(r.query.get('host') ?? undefined) })),
      route('DELETE', 'rooms/:jid', 'rooms:write', async (r, [jid]) => ({ jid: (await ops.destroyRoom(jid!, r.query.get('reason') ?? undefined)).toString(), destroyed: true })),
      route('GET', 'reports', 'reports:read', async (r) => ({ reports: await ops.listReports(r.query.get('host') ?? undefined, boundedLimit(r.query.get('limit'))) })),
      route('DELETE', 'reports/:host/:id', 'reports:write', async (_r, [host, id]) => (await ops.dismissReport(host!, id!), { id, dismissed: true })),
      route('POST', 'reports/:host/:id/disable', 'reports:write', async (_r, [host, id]) => ({ id, jid: (await ops.disableReported(host!, id!)).toString(), disabled: true })),
      route('GET', 'stats', 'stats:read', () => ops.stats()),
      route('POST', 'reload', 'server:reload', () => ops.reload()),
    ];
  }

  /** Serves a request under /admin/api/; `path` is still percent-encoded. */
  async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    try {
      await this.dispatch(req, res, path);
    } catch (err) {
      if (err instanceof HttpError) return sendJson(res, err.status, { error: err.error, message: err.message }, err.headers);
      if (err instanceof AdminError) {
        const status = STATUS_OF[err.code] ?? 500;
        if (status === 500) this.opts.log.error({ err }, 'admin api request failed');
        return sendJson(res, status, { error: err.code, message: err.oneLine() });
      }
      this.opts.log.error({ err, path }, 'admin api request failed');
      sendJson(res, 500, { error: 'internal', message: 'internal server error' });
    }
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse, rawPath: string): Promise<void> {
    const method = req.method ?? 'GET';
    let parts: string[];
    try {
      parts = rawPath.slice(ADMIN_API_PREFIX.length).split('/').filter((p) => p !== '').map((p) => decodeURIComponent(p));
    } catch {
      throw new HttpError(400, 'bad_request', 'bad percent-encoding in the path');
    }
    const query = new URL(req.url ?? '/', 'http://x').searchParams;
    const joined = parts.join('/');
    if (joined === 'openapi.json') {
      if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'method_not_allowed', 'use GET', { allow: 'GET, HEAD' });
      return sendJson(res, 200, openApiDocument());
    }
    if (joined === 'login') return this.login(req, res, method);
    if (joined === 'session') return this.sessionInfo(req, res, method);
    if (joined === 'logout') return this.logout(req, res, method);

    const matches = this.routes.filter((r) => r.path.length === parts.length && r.path.every((seg, i) => seg.startsWith(':') || seg === parts[i]));
    if (matches.length === 0) throw new HttpError(404, 'not_found', 'no such admin API route; see /admin/api/openapi.json');
    const route = matches.find((r) => r.method === method || (method === 'HEAD' && r.method === 'GET'));
    if (!route) throw new HttpError(405, 'method_not_allowed', `use ${matches.map((r) => r.method).join(', ')}`, { allow: matches.map((r) => r.method).join(', ') });

    const auth = await this.authenticate(req, method);
    if (auth.kind === 'token' && !auth.scopes.includes(route.scope)) {
      throw new HttpError(403, 'insufficient_scope', `this token lacks the scope ${route.scope}`, {
        'www-authenticate': `Bearer realm="${REALM}", error="insufficient_scope", scope="${route.scope}"`,
      });
    }
    const params = route.path.flatMap((seg, i) => (seg.startsWith(':') ? [parts[i]!] : []));
    const result = await route.handle({ req, res, method, parts, query, auth }, params);
    if (method !== 'GET') this.opts.log.info({ by: who(auth), route: `${method} /admin/api/${route.path.join('/')}` }, 'admin api call');
    if (isStatusBody(result)) return sendJson(res, result.status, result.body);
    sendJson(res, 200, result ?? {});
  }

  private async authenticate(req: IncomingMessage, method: string): Promise<Auth> {
    const header = req.headers.authorization;
    if (header !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      const info = m ? await this.opts.tokens.verify(m[1]!) : undefined;
      if (!info) {
        throw new HttpError(401, 'invalid_token', 'the token is not valid', { 'www-authenticate': `Bearer realm="${REALM}", error="invalid_token"` });
      }
      return { kind: 'token', name: info.name, scopes: info.scopes };
    }
    const session = this.sessions.get(readCookie(req.headers.cookie, SESSION_COOKIE));
    if (session && session.password !== (await this.opts.operations.passwordFingerprint(Jid.parse(session.account)))) {
      this.sessions.delete(session.id);
      throw new HttpError(401, 'unauthorized', 'the password changed since this login; log in again', { 'www-authenticate': `Bearer realm="${REALM}"` });
    }
    if (session) {
      if (method !== 'GET' && method !== 'HEAD') {
        const presented = req.headers['x-csrf-token'];
        if (!csrfMatches(session, typeof presented === 'string' ? presented : undefined)) {
          throw new HttpError(403, 'csrf', 'missing or wrong X-CSRF-Token header; reload the page');
        }
      }
      return { kind: 'session', session };
    }
    throw new HttpError(401, 'unauthorized', 'send Authorization: Bearer <token> (parley admin token create), or log in to the web admin', {
      'www-authenticate': `Bearer realm="${REALM}"`,
    });
  }

  // ------------------------------------------------------------------ web admin login

  private async login(req: IncomingMessage, res: ServerResponse, method: string): Promise<void> {
    if (method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'use POST', { allow: 'POST' });
    checkSameOrigin(req);
    const body = await readJson(req);
    const username = stringField(body, 'username')!;
    const password = stringField(body, 'password')!;
    const info = clientInfo(req);
    const jid = this.adminJid(username);
    const account = jid?.toString();
    const verdict = this.throttle.check(info.remoteAddress, account);
    if (!verdict.allowed) {
      throw new HttpError(429, 'too_many_attempts', 'too many failed logins; wait and try again', { 'retry-after': String(Math.ceil(verdict.retryAfterMs / 1000)) });
    }
    const accounts = this.opts.operations;
    const ok = jid !== undefined && (await accounts.verifyLogin(jid, password));
    if (!ok) {
      this.throttle.failed(info.remoteAddress, account);
      this.opts.log.info({ account, ip: info.remoteAddress }, 'web admin login failed');
      throw new HttpError(401, 'unauthorized', 'wrong username or password');
    }
    // An admin with TOTP on needs a code too: the admin pages can do more than the account's own.
    const second = await checkSecondFactor(this.opts.security?.(jid.domain), jid.local!, loginCode(body));
    if (second.kind === 'missing') throw second.error;
    if (second.kind === 'failed') {
      this.throttle.failed(info.remoteAddress, account);
      this.opts.log.info({ account, ip: info.remoteAddress, reason: second.reason }, 'web admin login failed');
      throw second.error;
    }
    this.throttle.succeeded(info.remoteAddress, account);
    if (!this.opts.admins.includes(account!)) {
      this.opts.log.warn({ account, ip: info.remoteAddress }, 'web admin login by an account that is not an admin');
      throw new HttpError(403, 'forbidden', `${account} is not an admin of this server (see admins: in the config)`);
    }
    const session = this.sessions.create(account!, await accounts.passwordFingerprint(jid));
    this.opts.log.info({ account, ip: info.remoteAddress }, 'web admin login');
    sendJson(res, 200, { admin: session.account, csrf: session.csrf }, { 'set-cookie': sessionCookie(session.id, info.secure && info.scheme === 'https', Math.ceil(this.opts.sessionIdleMs / 1000)) });
  }

  private sessionInfo(req: IncomingMessage, res: ServerResponse, method: string): void {
    if (method !== 'GET') throw new HttpError(405, 'method_not_allowed', 'use GET', { allow: 'GET' });
    const session = this.sessions.get(readCookie(req.headers.cookie, SESSION_COOKIE));
    if (!session) throw new HttpError(401, 'unauthorized', 'log in first', { 'www-authenticate': `Bearer realm="${REALM}"` });
    sendJson(res, 200, { admin: session.account, csrf: session.csrf });
  }

  private logout(req: IncomingMessage, res: ServerResponse, method: string): void {
    if (method !== 'POST') throw new HttpError(405, 'method_not_allowed', 'use POST', { allow: 'POST' });
    const session = this.sessions.get(readCookie(req.headers.cookie, SESSION_COOKIE));
    if (session) {
      const presented = req.headers['x-csrf-token'];
      if (!csrfMatches(session, typeof presented === 'string' ? presented : undefined)) throw new HttpError(403, 'csrf', 'missing or wrong X-CSRF-Token header');
      this.sessions.delete(session.id);
    }
    const info = clientInfo(req);
    sendJson(res, 200, { loggedOut: true }, { 'set-cookie': sessionCookie('', info.scheme === 'https', 0) });
  }

  /** `alice` (first host) or `alice@example.com`, as a bare JID; undefined when not a JID. */
  private adminJid(username: string): Jid | undefined {
    const text = username.includes('@') ? username : `${username}@${this.opts.operations.hosts[0]}`;
    const jid = Jid.tryParse(text.trim());
    return jid && jid.local !== undefined && jid.resource === undefined && this.opts.operations.hosts.includes(jid.domain) ? jid : undefined;
  }
}

/** Reports per host in one answer: 100 unless asked, at most 1,000. */
function boundedLimit(value: string | null): number {
  return Math.min(intParam(value) ?? 100, 1_000);
}

function intParam(value: string | null): number | undefined {
  if (value === null) return undefined;
  if (!/^\d{1,6}$/.test(value)) throw new HttpError(400, 'bad_request', 'limit must be a positive integer');
  return Number(value);
}

/** Who made a request, for logs and audit events. */
function who(auth: Auth): string {
  return auth.kind === 'token' ? `admin token ${auth.name}` : auth.session.account;
}

function isStatusBody(value: unknown): value is { status: number; body: unknown } {
  return typeof value === 'object' && value !== null && 'status' in value && 'body' in value && Object.keys(value).length === 2;
}
