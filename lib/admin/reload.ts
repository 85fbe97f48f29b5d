// Live reload (SIGHUP, `parley reload`, POST /admin/api/reload): re-reads the config file and the
// certificates without dropping a session. A config that does not validate is refused as a whole
// and the running one stays. What applies at once: certificates (new connections), modules
// enabled or disabled and their options (per host; untouched modules keep their state), the log
// level. What needs a restart (logged, and listed in the result): hosts, listeners, storage,
// TLS settings other than the certificate files themselves, auth, limits, s2s, http, admins,
// contact, storageDir, adminHttp.
import { isDeepStrictEqual } from 'node:util';
import { AdminError } from '../config/errors.js';
import { loadConfig, type ModuleDescriptor } from '../config/load.js';
import type { ParleyConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { HostReload } from '../modules/loader.js';

export interface ReloadResult {
  modules: Record<string, HostReload>;
  certificates: boolean;
  restartNeeded: string[];
}

export interface ReloadTargets {
  configPath: string | undefined;
  catalog: ReadonlyArray<ModuleDescriptor>;
  /** The config the server started with: what changed since needs a restart. */
  booted: ParleyConfig;
  log: Logger;
  reloadCertificates(): Promise<void>;
  reloadModules(config: ParleyConfig): Promise<Record<string, HostReload>>;
}

/** Sections whose changes apply only at the next start. */
const RESTART_SECTIONS = ['listeners', 'storage', 'storageDir', 'tls', 'auth', 'limits', 's2s', 'http', 'admins', 'roles', 'access', 'contact', 'adminHttp'] as const;

export function restartNeeded(booted: ParleyConfig, next: ParleyConfig): string[] {
  const out: string[] = [];
  if (!isDeepStrictEqual(booted.hosts.map((h) => h.domain), next.hosts.map((h) => h.domain))) out.push('hosts');
  for (const key of RESTART_SECTIONS) {
    if (!isDeepStrictEqual((booted as Record<string, unknown>)[key], (next as Record<string, unknown>)[key])) out.push(key);
  }
  return out;
}

export class Reloader {
  private running: Promise<ReloadResult> | undefined;
  private logLevel: string;

  constructor(private readonly t: ReloadTargets) {
    this.logLevel = t.booted.log.level;
  }

  /** One reload at a time: a second request while one runs gets the same result. */
  reload(): Promise<ReloadResult> {
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async run(): Promise<ReloadResult> {
    const { log } = this.t;
    if (this.t.configPath === undefined) {
      throw new AdminError('PARLEY_ERR_RELOAD', 'this server was started without a config file', 'start it with --config FILE to reload');
    }
    // Throws a ConfigError (every problem, one line each) before anything changes.
    const next = loadConfig(this.t.configPath, this.t.catalog);
    const restart = restartNeeded(this.t.booted, next);
    for (const section of restart) log.warn({ section }, `config ${section}: changed, but it applies only after a restart`);
    let certificates = true;
    try {
      await this.t.reloadCertificates();
    } catch (err) {
      certificates = false;
      log.error({ err }, 'certificate reload failed; the old certificates stay in use');
    }
    const modules = restart.includes('hosts') ? {} : await this.t.reloadModules(next);
    // Only a change in the file moves the level (a logger passed in by tests keeps its own).
    if (next.log.level !== this.logLevel) {
      this.logLevel = next.log.level;
      log.level = next.log.level;
    }
    for (const [host, r] of Object.entries(modules)) {
      if (r.started.length || r.stopped.length || r.restarted.length) log.info({ host, ...r }, 'modules reloaded');
    }
    log.info({ restartNeeded: restart, certificates }, 'config reloaded');
    return { modules, certificates, restartNeeded: restart };
  }
}
