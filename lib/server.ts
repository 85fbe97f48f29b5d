// The composition root: config → storage → accounts → modules → listeners.
import { createAccessControl } from './acl/engine.js';
import type { Server as NetServer, AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import type { ParleyConfig } from './config/schema.js';
import { resolveModules } from './config/load.js';
import { DomainBlocklist } from './routing/domain-blocklist.js';
import { AdminError } from './config/errors.js';
import { createLogger, type Logger } from './log.js';
import { Metrics } from './metrics.js';
import { openDatabase } from './storage/database.js';
import type { Database } from './storage/types.js';
import { openAccounts } from './accounts/service.js';
import type { AccountService } from './accounts/types.js';
import { LoginThrottle } from './accounts/throttle.js';
import { defaultMechanisms } from './sasl/registry.js';
import { CertificateStore } from './tls/certificates.js';
import { Jid } from './jid/jid.js';
import { SessionDirectory } from './sessions/directory.js';
import { HostRuntime } from './routing/host-runtime.js';
import { Router } from './routing/router.js';
import { loadHost, migrateModules, orderModules, reloadHost, ModuleGraphError, type HostReload, type LoadedHost } from './modules/loader.js';
import { MODULE_CATALOG, MODULES, moduleByName } from './modules/catalog.js';
import type { C2sEnv } from './stream/c2s-stream.js';
import { listenC2s, StreamSet } from './transport/c2s-listeners.js';
import { listenHttp } from './transport/http-listener.js';
import { WebServices } from './transport/http-routes.js';
import { ModuleHttpRoutes } from './transport/module-routes.js';
import { Federation } from './s2s/federation.js';
import type { S2sLimits } from './s2s/types.js';
import { listenComponents } from './component/listener.js';
import { Reloader, type ReloadResult } from './admin/reload.js';
import { mountAdmin } from './admin/mount.js';
import type { AdminOperations } from './admin/operations.js';
import { ClusterNode } from './cluster/node.js';

export { MODULE_CATALOG };

const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
export const PARLEY_VERSION = pkg.version;

export interface RunningServer {
  stop(reason?: string): Promise<void>;
  readonly addresses: { type: string; port: number; address: string }[];
  readonly accounts: AccountService;
  readonly router: Router;
  readonly sessions: SessionDirectory;
  readonly storage: Database;
  readonly log: Logger;
  /** Server-to-server federation, when an s2s or s2s-tls listener is configured. */
  readonly federation: Federation | undefined;
  /** This node of the cluster, when `cluster` is configured. */
  readonly cluster: ClusterNode | undefined;
  reloadCertificates(): Promise<void>;
  /** Re-reads the config file and certificates (SIGHUP, `parley reload`); see lib/admin/reload.ts. */
  reload(): Promise<ReloadResult>;
  /** What the admin API, the web admin and the CLI do (lib/admin/operations.ts). */
  readonly operations: AdminOperations;
}

export interface StartOptions {
  configPath?: string;
  /** Tests pass a silent logger. */
  log?: Logger;
}

/** Storage, accounts and modules, without listeners: what the CLI's account commands need too. */
export interface ServerCore {
  readonly storage: Database;
  readonly accounts: AccountService;
  readonly sessions: SessionDirectory;
  readonly runtimes: ReadonlyMap<string, HostRuntime>;
  readonly router: Router;
  readonly log: Logger;
  /** HTTP routes the modules serve (`ctx.http`), mounted on the http/https listeners. */
  readonly httpRoutes: ModuleHttpRoutes;
  /** The API a module returned on a host (`ctx.deps.get` for the core's admin tools). */
  apiOf(host: string, module: string): unknown;
  /** Applies a new config's module lists to the running hosts (live reload). */
  reloadModules(config: ParleyConfig): Promise<Record<string, HostReload>>;
  close(): Promise<void>;
}

export async function bootCore(config: ParleyConfig, log: Logger): Promise<ServerCore> {
  const hostNames = config.hosts.map((h) => h.domain);
  const storage = await openDatabase(config.storage);
  const loaded = new Map<string, LoadedHost>();
  const close = async () => {
    for (const l of loaded.values()) l.stop();
    await storage.close();
  };
  try {
    const accounts = await openAccounts(storage, { scramIterations: config.auth.scramIterations });
    const sessions = new SessionDirectory();
    const runtimes = new Map(hostNames.map((h) => [h, new HostRuntime(h)]));
    const router = new Router(runtimes, sessions, accounts, log);
    if (config.s2s.blockedDomains.length > 0) router.blocked = new DomainBlocklist(config.s2s.blockedDomains);
    const perHost = resolveModules(config, MODULE_CATALOG);
    await migrateModules(storage, MODULES);
    const server = {
      name: 'Parley',
      version: PARLEY_VERSION,
      hosts: hostNames,
      // Admins named under `roles:` count as admins everywhere (bare JIDs; domains only in rules).
      admins: [...new Set([...config.admins, ...config.roles.admin.filter((a) => a.includes('@'))])].map((a) => Jid.parse(a)),
      contact: Object.fromEntries(Object.entries(config.contact).filter(([, v]) => v !== undefined)) as Record<string, string[]>,
      storageDir: config.storageDir,
      cluster: config.cluster ? { node: config.cluster.node } : undefined,
    };
    const httpRoutes = new ModuleHttpRoutes();
    const access = createAccessControl(config.access, config.roles, config.admins, hostNames);
    const loaderDeps = { router, sessions, storage, accounts, log, server, http: httpRoutes, access };
    for (const [host, mods] of perHost) {
      const enabled = mods.map((m) => ({ def: moduleByName(m.name)!, options: m.options }));
      loaded.set(host, await loadHost(runtimes.get(host)!, enabled, loaderDeps));
    }
    const reloadModules = async (next: ParleyConfig): Promise<Record<string, HostReload>> => {
      const plans = [...resolveModules(next, MODULE_CATALOG)].map(([host, mods]) => ({ host, enabled: mods.map((m) => ({ def: moduleByName(m.name)!, options: m.options })) }));
      const out: Record<string, HostReload> = {};
      try {
        for (const p of plans) orderModules(p.enabled); // a bad graph stops the reload before any change
        for (const p of plans) out[p.host] = await reloadHost(runtimes.get(p.host)!, loaded.get(p.host)!, p.enabled, loaderDeps);
      } catch (err) {
        if (err instanceof ModuleGraphError) throw new AdminError('PARLEY_ERR_RELOAD', err.message, 'fix the config, then reload again');
        throw err;
      }
      return out;
    };
    // Every module purges the account's data (ARCHITECTURE §7).
    accounts.onDeleted(async (host, user) => {
      await runtimes.get(host)?.hooks.notify('account/deleted', { host, user }, (err) => log.error({ err }, 'account/deleted handler failed'));
    });
    const apiOf = (host: string, module: string) => loaded.get(host)?.apis.get(module);
    return { storage, accounts, sessions, runtimes, router, log, httpRoutes, apiOf, reloadModules, close };
  } catch (err) {
    await close();
    throw err;
  }
}

export async function startServer(config: ParleyConfig, options: StartOptions = {}): Promise<RunningServer> {
  const log = options.log ?? createLogger({ level: config.log.level, pretty: config.log.pretty === 'auto' ? undefined : config.log.pretty });
  const startedAt = Date.now();
  const metrics = new Metrics();
  const hostNames = config.hosts.map((h) => h.domain);
  const certs = await CertificateStore.load(config.tls, hostNames, { generate: config.tls.generate });
  const core = await bootCore(config, log);
  const { storage, accounts, sessions, runtimes, router } = core;
  const cleanups: Array<() => Promise<void> | void> = [() => core.close()];
  try {
    // Joins before the listeners open, and leaves once every session has ended (cleanups run in
    // reverse), so that their unavailable presence still reaches the other nodes.
    let cluster: ClusterNode | undefined;
    if (config.cluster) {
      const node = await ClusterNode.start({ config: config.cluster, sessions, router, runtimes, log });
      cluster = node;
      cleanups.push(() => node.stop());
    }
    const mechanisms = defaultMechanisms().filter((m) => config.auth.allowPlain || m.name !== 'PLAIN');
    const throttle = new LoginThrottle({
      accountFailures: config.auth.throttle.accountFailures,
      ipFailures: config.auth.throttle.ipFailures,
      windowMs: config.auth.throttle.window,
      failureDelayMs: config.auth.throttle.failureDelay,
      maxFailureDelayMs: config.auth.throttle.maxFailureDelay,
    });
    const l = config.limits;
    const inFlight = new Set<Promise<void>>();
    const env: C2sEnv = {
      durable: () => storage.durable(),
      track(work) {
        inFlight.add(work);
        void work.finally(() => inFlight.delete(work));
      },
      hosts: runtimes,
      router,
      sessions,
      accounts,
      throttle,
      mechanisms,
      requireEncryption: config.tls.requireEncryption,
      log,
      metrics,
      limits: {
        stanzaBytes: l.stanzaSize,
        preAuthStanzaBytes: l.preAuthStanzaSize,
        depth: l.depth,
        attributes: l.attributes,
        unauthenticatedTimeoutMs: l.unauthenticatedTimeout,
        inboundQueue: l.inboundQueue,
        outboundBufferBytes: l.outboundBuffer,
        sessionsPerAccount: l.sessionsPerAccount,
        stanzasPerSecond: l.stanzasPerSecond,
        bytesPerSecond: l.bytesPerSecond,
        saslFailures: 5,
      },
    };

    const streams = new StreamSet(l.newConnectionsPerIpPerMinute);
    const servers: NetServer[] = [];
    const addresses: RunningServer['addresses'] = [];
    cleanups.push(() => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => undefined));
    // WebSocket, BOSH, host-meta, status page and web client, shared by every http/https listener.
    let web: WebServices | undefined;
    const webServices = (): WebServices => {
      if (web) return web;
      const w = new WebServices({
        http: config.http,
        env,
        streams,
        connectionsPerIp: l.connectionsPerIp,
        stanzaBytes: l.stanzaSize,
        depth: l.depth,
        attributes: l.attributes,
        hosts: hostNames,
        name: 'Parley',
        version: PARLEY_VERSION,
        startedAt,
        metrics,
        log,
        moduleRoutes: core.httpRoutes,
      });
      // Runs before the listeners close (cleanups run in reverse): ends held BOSH requests and
      // WebSockets so that closing the servers does not wait for them.
      cleanups.push(() => w.close());
      web = w;
      return w;
    };

    // Federation (lib/s2s) and external components (lib/component).
    const s2sLimits: S2sLimits = {
      stanzaBytes: l.stanzaSize,
      preAuthStanzaBytes: l.preAuthStanzaSize,
      depth: l.depth,
      attributes: l.attributes,
      unauthenticatedTimeoutMs: l.unauthenticatedTimeout,
      inboundQueue: l.inboundQueue,
      outboundBufferBytes: l.outboundBuffer,
    };
    let federation: Federation | undefined;
    const s2sAccess = createAccessControl(config.access, config.roles, config.admins, config.hosts.map((h) => h.domain));
    if (config.listeners.some((x) => x.type === 's2s' || x.type === 's2s-tls')) {
      const fed = await Federation.create({
        config: config.s2s,
        router,
        certs,
        limits: s2sLimits,
        minVersion: config.tls.minVersion,
        log,
        metrics,
        connectionsPerIp: l.connectionsPerIp,
        mayFederate: (domain) => s2sAccess.allowed('s2s', { host: domain }),
      });
      federation = fed;
      router.remote = fed.route;
      cleanups.push(() => fed.stop());
    }
    const hostFor = (domain: string): string => {
      for (let d = domain; d.includes('.'); d = d.slice(d.indexOf('.') + 1)) if (runtimes.has(d)) return d;
      return hostNames[0]!;
    };
    for (const [i, listener] of config.listeners.entries()) {
      let srv: NetServer;
      try {
        if (listener.type === 'c2s' || listener.type === 'c2s-tls') {
          srv = await listenC2s(
            { address: listener.address, port: listener.port, directTls: listener.type === 'c2s-tls', tls: certs, minVersion: config.tls.minVersion, connectionsPerIp: l.connectionsPerIp },
            env,
            streams,
          );
        } else if ((listener.type === 's2s' || listener.type === 's2s-tls') && federation) {
          srv = await federation.listen({ address: listener.address, port: listener.port, directTls: listener.type === 's2s-tls' });
        } else if (listener.type === 'component') {
          const components = (listener.components ?? []).map((c) => ({ domain: c.domain, secret: (c.secret ?? listener.secret)! }));
          const cl = await listenComponents({ address: listener.address, port: listener.port, components, router, hostFor, limits: s2sLimits, log, metrics });
          cleanups.push(() => cl.close());
          srv = cl.server;
        } else if (listener.type === 'http' || listener.type === 'https') {
          srv = await listenHttp({
            address: listener.address,
            port: listener.port,
            tls: listener.type === 'https' ? { provider: certs, minVersion: config.tls.minVersion } : undefined,
            limits: config.http.limits,
            web: webServices(),
          });
        } else {
          log.warn({ type: listener.type }, `listener type ${listener.type} is not available yet; skipped`);
          continue;
        }
      } catch (err) {
        throw listenError(err, listener.address, listener.port, i);
      }
      servers.push(srv);
      const a = srv.address() as AddressInfo;
      addresses.push({ type: listener.type, port: a.port, address: a.address });
    }
    // Links modules hand out (XEP-0363 upload slots): http.publicUrl, else the first http/https
    // listener under the virtual host's name.
    const firstHttp = addresses.find((a) => a.type === 'http' || a.type === 'https');
    core.httpRoutes.setBaseUrl((host) => {
      if (config.http.publicUrl !== undefined) return config.http.publicUrl.replace(/\/+$/, '');
      return firstHttp ? `${firstHttp.type}://${host}:${firstHttp.port}` : undefined;
    });
    log.info({ hosts: hostNames, listeners: addresses.map((a) => `${a.type}:${a.port}`) }, 'Parley started');
    const reloadCertificates = async () => {
      await certs.reload();
      await federation?.reloadCertificates();
    };
    const reloader = new Reloader({ configPath: options.configPath, catalog: MODULE_CATALOG, booted: config, log, reloadCertificates, reloadModules: core.reloadModules });
    const operations = mountAdmin({ core, config, metrics, startedAt, version: PARLEY_VERSION, reload: () => reloader.reload() });

    let stopped = false;
    return {
      addresses,
      accounts,
      router,
      sessions,
      storage,
      log,
      federation,
      cluster,
      reloadCertificates,
      reload: () => reloader.reload(),
      operations,
      async stop(reason = 'system-shutdown') {
        if (stopped) return;
        stopped = true;
        for (const [host, runtime] of runtimes) {
          await runtime.hooks.notify('server/stopping', { host }, (err) => log.error({ err }, 'server/stopping handler failed'));
        }
        for (const s of [...streams.streams]) s.streamError('system-shutdown', 'the server is stopping');
        // Sessions kept for stream resumption (XEP-0198) have no stream: they end now, so that
        // their unacknowledged messages reach offline storage before it closes.
        for (const s of sessions.all()) if (s.hibernating) s.close('system-shutdown', 'the server is stopping');
        // session/closed handlers (last activity, presence) write to storage: let them finish.
        await Promise.allSettled([...inFlight]);
        for (const fn of cleanups.reverse()) await fn();
        log.info('Parley stopped');
      },
    };
  } catch (err) {
    for (const fn of cleanups.reverse()) await fn();
    throw err;
  }
}

function listenError(err: unknown, address: string, port: number, index: number): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') {
    return new AdminError('PARLEY_ERR_PORT_IN_USE', `port ${port} on ${address} is in use`, `stop the other server or change listeners[${index}].port`);
  }
  if (code === 'EACCES') {
    return new AdminError('PARLEY_ERR_PORT_DENIED', `no permission to listen on port ${port}`, `use a port above 1023 or grant CAP_NET_BIND_SERVICE`);
  }
  return err as Error;
}
