// The account self-service area at /account/: any local user logs in with their XMPP username
// and password (and, when their account has TOTP on, a current code or a recovery code) and
// manages their own second factor, app passwords and clients, and reads their security events.
// It shares the web admin's session code (web-sessions.ts), its login throttle and its JSON
// helpers; every action goes through the security and cam modules' APIs, the same code the
// XMPP commands run, so the same checks apply and the same audit events are written.
// The account is always the session's: no route names a user, so no one reaches another's data.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Jid } from '../jid/jid.js';
import type { LoginThrottle } from '../accounts/throttle.js';
import { clientInfo } from '../transport/http-client.js';
import type { Logger } from '../log.js';
import type { SecurityApi } from '../../modules/security/api.js';
import type { CamApi } from '../../modules/cam/api.js';
import { serveAccountPage, ACCOUNT_LOGIN_PAGE } from '../web/account-pages.js';
import { checkSecondFactor, loginCode } from './second-factor-login.js';
import { checkSameOrigin, HttpError, readJson, sendJson, stringField } from './http-json.js';
import type { AdminOperations } from './operations.js';
import { WebAdminSessions, csrfMatches, readCookie, sessionCookie, type WebAdminSession } from './web-sessions.js';

export const ACCOUNT_PREFIX = '/account/';
export const ACCOUNT_API_PREFIX = '/account/api/';
export const ACCOUNT_COOKIE = 'parley_account';
const COOKIE_PATH = '/account';
const EVENTS_SHOWN = 100;
/** Browsers one account may be logged in from at once. */
const SESSIONS_PER_ACCOUNT = 5;

export interface AccountHttpOptions {
  operations: AdminOperations;
  sessionIdleMs: number;
  /** Self-service sessions held at once (config adminHttp.accountSessions). */
  maxSessions: number;
  /** The web admin's login throttle: guesses on either page add up. */
  throttle: LoginThrottle;
  /** The modules' APIs on a host, when enabled there. */
  security(host: string): SecurityApi | undefined;
  cam(host: string): CamApi | undefined;
  log: Logger;
}

interface Caller {
  session: WebAdminSession;
  jid: Jid;
  user: string;
}

export class AccountHttp {
  private readonly sessions: WebAdminSessions;

  constructor(private readonly opts: AccountHttpOptions) {
    this.sessions = new WebAdminSessions({ idleMs: opts.sessionIdleMs, max: opts.maxSessions, maxPerAccount: SESSIONS_PER_ACCOUNT });
  }

  /** Serves everything under /account/; `path` is still percent-encoded. */
  async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (!path.startsWith(ACCOUNT_API_PREFIX)) {
      // Pages need a session, except the login page: without one, off to log in.
      const session = this.sessions.get(readCookie(req.headers.cookie, ACCOUNT_COOKIE));
      return serveAccountPage(req, res, path, session !== undefined);
    }
    try {
      await this.dispatch(req, res, path.slice(ACCOUNT_API_PREFIX.length));
    } catch (err) {
      if (err instanceof HttpError) return sendJson(res, err.status, { error: err.error, message: err.message }, err.headers);
      this.opts.log.error({ err, path }, 'account api request failed');
      sendJson(res, 500, { error: 'internal', message: 'internal server error' });
    }
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse, route: string): Promise<void> {
    const method = req.method ?? 'GET';
    if (route === 'login') {
      allow(method, 'POST');
      return this.login(req, res);
    }
    const c = await this.caller(req, method);
    const security = this.opts.security(c.jid.domain);
    const by = `${c.jid} (web)`;
    const send = (body: unknown) => sendJson(res, 200, body);
    const m = /^clients\/([^/]+)$/.exec(route);
    switch (m ? 'clients/:id' : route) {
      case 'session':
        allow(method, 'GET');
        return send({ account: c.session.account, csrf: c.session.csrf, security: security !== undefined, cam: this.opts.cam(c.jid.domain) !== undefined });
      case 'logout':
        allow(method, 'POST');
        this.sessions.delete(c.session.id);
        return sendJson(res, 200, { loggedOut: true }, { 'set-cookie': this.cookie(req, '', 0) });
      case 'totp': {
        allow(method, 'GET');
        const s = need(security);
        const enabled = await s.totpEnabled(c.user);
        return send({ enabled, recoveryCodesLeft: enabled ? await s.recoveryCodesLeft(c.user) : 0 });
      }
      case 'totp/start': {
        allow(method, 'POST');
        const started = await need(security).startTotp(c.user, `web:${c.session.id}`);
        if (!started.ok) throw started.reason === 'busy' ? new HttpError(503, 'busy', 'too many enrolments under way; try again shortly') : new HttpError(409, 'already_on', 'two-factor authentication is already on; turn it off first');
        return send(started.enrolment);
      }
      case 'totp/confirm': {
        allow(method, 'POST');
        const code = stringField(await readJson(req), 'code')!;
        const confirmed = await need(security).confirmTotp(c.user, `web:${c.session.id}`, code, by);
        if (!confirmed.ok) throw confirmed.reason === 'expired' ? new HttpError(409, 'expired', 'this enrolment expired; start again') : new HttpError(400, 'wrong_code', 'that code does not match; check the clock of your device and try the next one');
        return send({ enabled: true, recoveryCodes: confirmed.recoveryCodes });
      }
      case 'totp/disable': {
        allow(method, 'POST');
        const result = await need(security).disableTotp(c.user, stringField(await readJson(req), 'code')!, by);
        if (!result.ok) throw result.reason === 'throttled' ? new HttpError(429, 'too_many_attempts', 'too many wrong codes; try again later') : new HttpError(401, 'wrong_code', 'wrong or already used code');
        return send({ enabled: false });
      }
      case 'clients': {
        allow(method, 'GET');
        return send({ clients: await needCam(this.opts.cam(c.jid.domain)).list(c.user) });
      }
      case 'clients/:id': {
        allow(method, 'DELETE');
        let id: string;
        try {
          id = decodeURIComponent(m![1]!);
        } catch {
          throw new HttpError(400, 'bad_request', 'bad percent-encoding in the path');
        }
        const result = await needCam(this.opts.cam(c.jid.domain)).revoke(c.user, id, by);
        if (result === 'not-found') throw new HttpError(404, 'not_found', 'no such client on your account');
        if (result === 'password-reset-required') throw new HttpError(409, 'password_reset_required', 'this client logged in with your account password: change the password to shut it out');
        return send({ revoked: id });
      }
      case 'app-passwords': {
        allow(method, 'POST');
        const created = await need(security).createAppPassword(c.user, stringField(await readJson(req), 'label')!, by);
        if (!created.ok) throw created.reason === 'bad-label' ? new HttpError(400, 'bad_request', 'name the client in 1 to 64 characters') : new HttpError(409, 'too_many', 'too many app passwords; revoke one first');
        return sendJson(res, 201, { id: created.id, password: created.password });
      }
      case 'events': {
        allow(method, 'GET');
        return send({ events: await need(security).events(c.user, EVENTS_SHOWN) });
      }
      default:
        throw new HttpError(404, 'not_found', 'no such account API route');
    }
  }

  /** The logged-in account; state-changing requests must carry the session's CSRF token. */
  private async caller(req: IncomingMessage, method: string): Promise<Caller> {
    const session = this.sessions.get(readCookie(req.headers.cookie, ACCOUNT_COOKIE));
    if (!session) throw new HttpError(401, 'unauthorized', `log in first at ${ACCOUNT_LOGIN_PAGE}`);
    const jid = Jid.parse(session.account);
    // An account deleted or disabled since the login loses its web sessions with its XMPP ones.
    if (!(await this.opts.operations.accountActive(jid))) {
      this.sessions.deleteAccount(session.account);
      throw new HttpError(401, 'unauthorized', 'this account is disabled or gone');
    }
    if (session.password !== (await this.opts.operations.passwordFingerprint(jid))) {
      this.sessions.delete(session.id);
      throw new HttpError(401, 'unauthorized', `the password changed since this login; log in again at ${ACCOUNT_LOGIN_PAGE}`);
    }
    if (method !== 'GET' && method !== 'HEAD') {
      const presented = req.headers['x-csrf-token'];
      if (!csrfMatches(session, typeof presented === 'string' ? presented : undefined)) throw new HttpError(403, 'csrf', 'missing or wrong X-CSRF-Token header; reload the page');
    }
    return { session, jid, user: jid.local! };
  }

  private async login(req: IncomingMessage, res: ServerResponse): Promise<void> {
    checkSameOrigin(req);
    const body = await readJson(req);
    const username = stringField(body, 'username')!;
    const password = stringField(body, 'password')!;
    const info = clientInfo(req);
    const jid = this.accountJid(username);
    const account = jid?.toString();
    const verdict = this.opts.throttle.check(info.remoteAddress, account);
    if (!verdict.allowed) {
      throw new HttpError(429, 'too_many_attempts', 'too many failed logins; wait and try again', { 'retry-after': String(Math.ceil(verdict.retryAfterMs / 1000)) });
    }
    const security = jid ? this.opts.security(jid.domain) : undefined;
    const detail = { ip: info.remoteAddress, mechanism: 'web' };
    const fail = async (reason: string, err: HttpError): Promise<HttpError> => {
      this.opts.throttle.failed(info.remoteAddress, account);
      this.opts.log.info({ account, ip: info.remoteAddress, reason }, 'account page login failed');
      if (jid) await security?.audit(jid.local!, 'login-failed', { ...detail, reason });
      return err;
    };
    if (!jid || !(await this.opts.operations.verifyLogin(jid, password))) throw await fail('password', new HttpError(401, 'unauthorized', 'wrong username or password'));
    const second = await checkSecondFactor(security, jid.local!, loginCode(body));
    if (second.kind === 'missing') throw second.error;
    if (second.kind === 'failed') throw await fail(second.reason, second.error);
    this.opts.throttle.succeeded(info.remoteAddress, account);
    const session = this.sessions.create(account!, await this.opts.operations.passwordFingerprint(jid));
    await security?.audit(jid.local!, 'login', { ...detail, secondFactor: second.kind === 'passed' });
    sendJson(res, 200, { account: session.account, csrf: session.csrf }, { 'set-cookie': this.cookie(req, session.id, Math.ceil(this.opts.sessionIdleMs / 1000)) });
  }

  private cookie(req: IncomingMessage, value: string, maxAgeSeconds: number): string {
    const info = clientInfo(req);
    return sessionCookie(value, info.secure && info.scheme === 'https', maxAgeSeconds, ACCOUNT_COOKIE, COOKIE_PATH);
  }

  /** `alice` (first host) or `alice@example.com`, as a bare JID of a local host. */
  private accountJid(username: string): Jid | undefined {
    const hosts = this.opts.operations.hosts;
    const text = username.includes('@') ? username : `${username}@${hosts[0]}`;
    const jid = Jid.tryParse(text.trim());
    return jid && jid.local !== undefined && jid.resource === undefined && hosts.includes(jid.domain) ? jid : undefined;
  }
}

function allow(method: string, wanted: 'GET' | 'POST' | 'DELETE'): void {
  if (method !== wanted && !(wanted === 'GET' && method === 'HEAD')) throw new HttpError(405, 'method_not_allowed', `use ${wanted}`, { allow: wanted });
}

function need(security: SecurityApi | undefined): SecurityApi {
  if (!security) throw new HttpError(404, 'not_found', 'account security (modules.security) is off on this host');
  return security;
}

function needCam(cam: CamApi | undefined): CamApi {
  if (!cam) throw new HttpError(404, 'not_found', 'client access management (modules.cam) is off on this host');
  return cam;
}
