// Puts the admin operations, the HTTP admin API, the web admin and the account self-service
// pages on a running server: route table entries for /admin/ and /account/ on the http/https
// listeners (the table modules use, lib/transport/module-routes.ts).
import type { ParleyConfig } from '../config/schema.js';
import { Jid } from '../jid/jid.js';
import type { Metrics } from '../metrics.js';
import type { ServerCore } from '../server.js';
import { serveAdminPage } from '../web/admin-pages.js';
import { requestPath } from '../transport/http-routes.js';
import { ADMIN_API_PREFIX, AdminHttp } from './http-api.js';
import { AdminOperations } from './operations.js';
import { AdminTokens } from './tokens.js';
import { LoginThrottle } from '../accounts/throttle.js';
import type { SecurityApi } from '../../modules/security/api.js';
import type { CamApi } from '../../modules/cam/api.js';
import { ACCOUNT_PREFIX, AccountHttp } from './account-http.js';

export interface MountAdminOptions {
  core: ServerCore;
  config: ParleyConfig;
  metrics: Metrics;
  startedAt: number;
  version: string;
  reload(): Promise<unknown>;
}

export function mountAdmin(o: MountAdminOptions): AdminOperations {
  const { core, config } = o;
  const hosts = config.hosts.map((h) => h.domain);
  const operations = new AdminOperations({
    hosts,
    accounts: core.accounts,
    storage: core.storage,
    admins: config.admins.map((a) => Jid.parse(a)),
    sessions: core.sessions,
    router: core.router,
    metrics: o.metrics,
    moduleApi: (host, module) => core.apiOf(host, module),
    log: core.log.child({ component: 'admin' }),
    name: 'Parley',
    version: o.version,
    startedAt: o.startedAt,
    reload: o.reload,
  });
  if (!config.adminHttp.enabled && !config.adminHttp.accountPages) return operations;
  // One throttle for both login forms: wrong passwords on either page count together.
  const throttle = new LoginThrottle({ accountFailures: config.auth.throttle.accountFailures, ipFailures: config.auth.throttle.ipFailures, windowMs: config.auth.throttle.window });
  if (config.adminHttp.enabled) mountAdminPages(core, hosts, operations, throttle, config);
  if (config.adminHttp.accountPages) mountAccountPages(core, hosts, operations, throttle, config);
  return operations;
}

function mountAdminPages(core: ServerCore, hosts: readonly string[], operations: AdminOperations, throttle: LoginThrottle, config: ParleyConfig): void {
  const api = new AdminHttp({
    operations,
    tokens: new AdminTokens(core.storage),
    admins: config.admins,
    sessionIdleMs: config.adminHttp.sessionTimeout,
    maxSessions: config.adminHttp.maxSessions,
    throttle,
    security: (host) => core.apiOf(host, 'security') as SecurityApi | undefined,
    log: core.log.child({ component: 'admin-http' }),
  });
  core.httpRoutes.add(hosts[0]!, 'adminHttp', { methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'], pathPrefix: '/admin/' }, async (req, res) => {
    const path = requestPath(req.url) ?? '/admin/';
    if (path.startsWith(ADMIN_API_PREFIX)) return api.handle(req, res, path);
    return serveAdminPage(req, res, path);
  });
}

function mountAccountPages(core: ServerCore, hosts: readonly string[], operations: AdminOperations, throttle: LoginThrottle, config: ParleyConfig): void {
  const account = new AccountHttp({
    operations,
    sessionIdleMs: config.adminHttp.sessionTimeout,
    maxSessions: config.adminHttp.accountSessions,
    throttle,
    security: (host) => core.apiOf(host, 'security') as SecurityApi | undefined,
    cam: (host) => core.apiOf(host, 'cam') as CamApi | undefined,
    log: core.log.child({ component: 'account-http' }),
  });
  core.httpRoutes.add(hosts[0]!, 'accountHttp', { methods: ['GET', 'HEAD', 'POST', 'DELETE'], pathPrefix: ACCOUNT_PREFIX }, async (req, res) =>
    account.handle(req, res, requestPath(req.url) ?? ACCOUNT_PREFIX));
}
