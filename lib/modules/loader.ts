// Boots modules per virtual host in dependency order and builds each one's context.
import { isDeepStrictEqual } from 'node:util';
import { createAccessControl, type AccessControl } from '../acl/engine.js';
import type { z } from 'zod';
import type { Element } from '../xml/element.js';
import type { Logger } from '../log.js';
import type { AccountService } from '../accounts/types.js';
import type { Database } from '../storage/types.js';
import type { SessionDirectory } from '../sessions/directory.js';
import type { SessionStateKey, SessionTap } from '../sessions/types.js';
import type { HookName, HookHandler } from '../hooks/types.js';
import type { HookOrder } from '../hooks/bus.js';
import type { Router } from '../routing/router.js';
import { preAuthKey, type HostRuntime } from '../routing/host-runtime.js';
import type { ModuleContext, ModuleDefinition, ServerInfo } from './define.js';
import { ModuleHttpRoutes } from '../transport/module-routes.js';

type AnyModule = ModuleDefinition<z.ZodType, unknown>;

export interface EnabledModule {
  def: AnyModule;
  /** Options already validated by the module's schema. */
  options: unknown;
}

export class ModuleGraphError extends Error {
  readonly code = 'PARLEY_ERR_MODULES';
}

export interface LoaderDeps {
  router: Router;
  sessions: SessionDirectory;
  storage: Database;
  accounts: AccountService;
  log: Logger;
  server: ServerInfo;
  /** Routes modules serve over HTTP; a private table when omitted (in-process tests). */
  http?: ModuleHttpRoutes;
  /** The access rules (config `access:`); the defaults when omitted (in-process tests). */
  access?: AccessControl;
}

/** Orders modules so every dependency boots first; fails on a missing dependency or a cycle. */
export function orderModules(enabled: readonly EnabledModule[]): EnabledModule[] {
  const byName = new Map(enabled.map((m) => [m.def.name, m]));
  for (const m of enabled) {
    for (const dep of m.def.requires ?? []) {
      if (!byName.has(dep.name)) {
        throw new ModuleGraphError(
          `module ${m.def.name} requires module ${dep.name}, which is disabled; remove "modules.${dep.name}: false" from the config or disable ${m.def.name}`,
        );
      }
    }
  }
  const out: EnabledModule[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (m: EnabledModule, path: string[]) => {
    const s = state.get(m.def.name);
    if (s === 'done') return;
    if (s === 'visiting') {
      throw new ModuleGraphError(`modules ${[...path, m.def.name].join(' -> ')} depend on each other in a cycle`);
    }
    state.set(m.def.name, 'visiting');
    const deps = [...(m.def.requires ?? []), ...(m.def.optional ?? [])].map((d) => byName.get(d.name)).filter((d): d is EnabledModule => !!d);
    for (const d of deps.sort((a, b) => a.def.name.localeCompare(b.def.name))) visit(d, [...path, m.def.name]);
    state.set(m.def.name, 'done');
    out.push(m);
  };
  for (const m of [...enabled].sort((a, b) => a.def.name.localeCompare(b.def.name))) visit(m, []);
  return out;
}

export class LoadedHost {
  readonly apis = new Map<string, unknown>();
  readonly cleanups: Array<() => void> = [];
  /** Per module, in load order: what it was started with and what undoes its registrations. */
  readonly modules = new Map<string, { def: AnyModule; options: unknown; cleanups: Array<() => void> }>();
  /** Names of the modules enabled on the host (`ctx.deps.has`); updated by a reload. */
  readonly enabledNames = new Set<string>();

  stop(): void {
    for (const name of [...this.modules.keys()].reverse()) this.stopModule(name);
    for (const fn of this.cleanups.splice(0).reverse()) {
      try { fn(); } catch { /* stopping anyway */ }
    }
  }

  /** Undoes everything one module registered; its API is gone. */
  stopModule(name: string): void {
    const m = this.modules.get(name);
    if (!m) return;
    for (const fn of m.cleanups.splice(0).reverse()) {
      try { fn(); } catch { /* stopping anyway */ }
    }
    this.modules.delete(name);
    this.apis.delete(name);
  }
}

export async function migrateModules(storage: Database, modules: readonly AnyModule[]): Promise<void> {
  const seen = new Set<string>();
  for (const def of modules) {
    if (seen.has(def.name) || !def.migrations?.length) continue;
    seen.add(def.name);
    await storage.migrate(def.name, def.migrations);
  }
}

export async function loadHost(runtime: HostRuntime, enabled: readonly EnabledModule[], deps: LoaderDeps): Promise<LoadedHost> {
  const ordered = orderModules(enabled);
  if (!deps.http) deps = { ...deps, http: new ModuleHttpRoutes() };
  const loaded = new LoadedHost();
  for (const m of ordered) loaded.enabledNames.add(m.def.name);
  // Every manifest is known before any setup runs (caps hashes what disco will answer).
  for (const m of ordered) addManifest(runtime, m, loaded);
  for (const m of ordered) await startModule(runtime, m, deps, loaded);
  runtime.hooks.validate();
  return loaded;
}

function addManifest(runtime: HostRuntime, m: EnabledModule, loaded: LoadedHost): void {
  const entry = { def: m.def, options: m.options, cleanups: [] as Array<() => void> };
  loaded.modules.set(m.def.name, entry);
  runtime.manifests.push(m.def);
  entry.cleanups.push(() => {
    const i = runtime.manifests.indexOf(m.def);
    if (i >= 0) runtime.manifests.splice(i, 1);
  });
}

async function startModule(runtime: HostRuntime, m: EnabledModule, deps: LoaderDeps, loaded: LoadedHost): Promise<void> {
  const entry = loaded.modules.get(m.def.name)!;
  const ctx = createContext(runtime, m, deps, loaded, entry.cleanups);
  const api = await m.def.setup(ctx);
  loaded.apis.set(m.def.name, api);
}

/** What a reload changed on one host, by module name. */
export interface HostReload {
  started: string[];
  stopped: string[];
  /** Stopped and started again: new options, or a module it depends on was restarted. */
  restarted: string[];
}

/**
 * Applies a new module list to a running host: modules whose options changed restart with the
 * new ones, newly enabled ones start, disabled ones stop; a module that depends on a restarted
 * module restarts too (it holds that module's API). Untouched modules keep their state (MUC
 * rooms, SM sessions). The new graph is checked before anything stops.
 */
export async function reloadHost(runtime: HostRuntime, loaded: LoadedHost, enabled: readonly EnabledModule[], deps: LoaderDeps): Promise<HostReload> {
  const ordered = orderModules(enabled);
  if (!deps.http) deps = { ...deps, http: new ModuleHttpRoutes() };
  const next = new Map(ordered.map((m) => [m.def.name, m]));
  const affected = new Set<string>();
  for (const [name, old] of loaded.modules) {
    const now = next.get(name);
    if (!now || !isDeepStrictEqual(now.options, old.options)) affected.add(name);
  }
  for (const name of next.keys()) if (!loaded.modules.has(name)) affected.add(name);
  const dependsOn = (def: AnyModule) => [...(def.requires ?? []), ...(def.optional ?? [])].some((d) => affected.has(d.name));
  for (let grew = true; grew;) {
    grew = false;
    for (const def of [...[...loaded.modules.values()].map((m) => m.def), ...ordered.map((m) => m.def)]) {
      if (!affected.has(def.name) && dependsOn(def)) {
        affected.add(def.name);
        grew = true;
      }
    }
  }
  const result: HostReload = { started: [], stopped: [], restarted: [] };
  const wasLoaded = new Set(loaded.modules.keys());
  for (const name of [...loaded.modules.keys()].reverse()) if (affected.has(name)) loaded.stopModule(name);
  loaded.enabledNames.clear();
  for (const name of next.keys()) loaded.enabledNames.add(name);
  for (const m of ordered) if (affected.has(m.def.name)) addManifest(runtime, m, loaded);
  for (const m of ordered) {
    if (!affected.has(m.def.name)) continue;
    try {
      await startModule(runtime, m, deps, loaded);
    } catch (err) {
      // This module and the affected ones not started yet are off (none holds a half-built API);
      // the next reload starts them.
      for (const n of ordered) if (affected.has(n.def.name) && !loaded.apis.has(n.def.name)) loaded.stopModule(n.def.name);
      for (const name of wasLoaded) if (!loaded.modules.has(name)) result.stopped.push(name);
      await announceReload(runtime, deps, result);
      throw new ModuleGraphError(`module ${m.def.name} failed to start with the new config (${(err as Error).message}); it is off until the next reload or restart`, { cause: err });
    }
    (wasLoaded.has(m.def.name) ? result.restarted : result.started).push(m.def.name);
  }
  for (const name of wasLoaded) if (!next.has(name)) result.stopped.push(name);
  runtime.hooks.validate();
  await announceReload(runtime, deps, result);
  return result;
}

/** Tells the host's modules what a reload changed (features only in a manifest change disco's answer). */
async function announceReload(runtime: HostRuntime, deps: LoaderDeps, change: HostReload): Promise<void> {
  if (change.started.length + change.stopped.length + change.restarted.length === 0) return;
  await runtime.hooks.notify('modules/reloaded', { host: runtime.host, ...change }, (err) => deps.log.error({ err, host: runtime.host }, 'modules/reloaded handler failed'));
}

function createContext(
  runtime: HostRuntime,
  m: EnabledModule,
  deps: LoaderDeps,
  loaded: LoadedHost,
  cleanups: Array<() => void>,
): ModuleContext<unknown> {
  const enabledNames = loaded.enabledNames;
  const name = m.def.name;
  const host = runtime.host;
  const log = deps.log.child({ module: name, host });
  const undo = (fn: () => void) => cleanups.push(fn);
  const timers = new Set<NodeJS.Timeout>();
  let timersRegistered = false;
  // A tap that throws must not break the session's queue (nor another module's tap).
  const addTap = (list: SessionTap[], tap: SessionTap, what: string): (() => void) => {
    const safe: SessionTap = (session, stanza) => {
      try {
        tap(session, stanza);
      } catch (err) {
        log.error({ err }, `${what} failed`);
      }
    };
    list.push(safe);
    return () => {
      const i = list.indexOf(safe);
      if (i >= 0) list.splice(i, 1);
    };
  };
  const toHookOrder = (order?: { before?: readonly (AnyModule | string)[]; after?: readonly (AnyModule | string)[] }): HookOrder => ({
    before: order?.before?.map((x) => (typeof x === 'string' ? x : x.name)),
    after: order?.after?.map((x) => (typeof x === 'string' ? x : x.name)),
  });
  return {
    name,
    host,
    config: m.options,
    log,
    server: deps.server,
    access: deps.access ?? createAccessControl({}, { admin: [], operator: [], limited: [] }, deps.server.admins.map((a) => a.toString()), deps.server.hosts),
    iq: {
      get: (spec, handler) => undo(runtime.iqs.register(name, 'get', spec, handler)),
      set: (spec, handler) => undo(runtime.iqs.register(name, 'set', spec, handler)),
    },
    on<K extends HookName>(hook: K, handler: HookHandler<K>, order?: { before?: readonly (AnyModule | string)[]; after?: readonly (AnyModule | string)[] }) {
      undo(runtime.hooks.on(hook, name, handler, toHookOrder(order)));
    },
    notify: (hook, event) => runtime.hooks.notify(hook, event, (err) => log.error({ err, hook }, 'hook handler failed')),
    send: (stanza: Element) => deps.router.route(stanza),
    sendEach: (stanzas, onError) => deps.router.routeEach(stanzas, onError),
    request: (iq: Element, timeoutMs?: number) => deps.router.request(iq, timeoutMs),
    sessions: {
      of: (account) => deps.sessions.of(account),
      get: (full) => deps.sessions.get(full),
      recheck: (full) => deps.sessions.recheck(full),
      all: () => deps.sessions.everywhere(host),
    },
    sessionState<T>(key: string, initial: () => T): SessionStateKey<T> {
      return { name: `${name}:${key}`, initial };
    },
    streamFeature(provider) {
      runtime.features.push(provider);
      undo(() => runtime.features.splice(runtime.features.indexOf(provider), 1));
    },
    preAuthIq(spec, handler) {
      const key = preAuthKey(spec.type, spec.ns, spec.name);
      if (runtime.preAuthIqs.has(key)) throw new ModuleGraphError(`two modules answer pre-authentication iq ${spec.type} <${spec.name} xmlns='${spec.ns}'/> on ${host}`);
      runtime.preAuthIqs.set(key, handler);
      undo(() => runtime.preAuthIqs.delete(key));
    },
    nonza(ns, handler) {
      if (runtime.nonzas.has(ns) || runtime.streamNonzas.has(ns)) throw new ModuleGraphError(`two modules handle stream elements in ${ns} on ${host}`);
      runtime.nonzas.set(ns, handler);
      undo(() => runtime.nonzas.delete(ns));
    },
    streamNonza(ns, handler) {
      if (runtime.nonzas.has(ns) || runtime.streamNonzas.has(ns)) throw new ModuleGraphError(`two modules handle stream elements in ${ns} on ${host}`);
      runtime.streamNonzas.set(ns, handler);
      undo(() => runtime.streamNonzas.delete(ns));
    },
    bind2Feature(ns, handler) {
      if (runtime.bind2Features.has(ns)) throw new ModuleGraphError(`two modules handle Bind2 inline ${ns} on ${host}`);
      runtime.bind2Features.set(ns, handler);
      undo(() => runtime.bind2Features.delete(ns));
    },
    sasl2Inline(provider) {
      if (runtime.sasl2Inline.has(provider.ns)) throw new ModuleGraphError(`two modules handle SASL2 inline ${provider.ns} on ${host}`);
      runtime.sasl2Inline.set(provider.ns, provider);
      undo(() => runtime.sasl2Inline.delete(provider.ns));
    },
    saslMechanism(mechanism) {
      if (runtime.saslMechanisms.some((m) => m.name === mechanism.name)) throw new ModuleGraphError(`SASL mechanism ${mechanism.name} is registered twice on ${host}`);
      runtime.saslMechanisms.push(mechanism);
      undo(() => runtime.saslMechanisms.splice(runtime.saslMechanisms.indexOf(mechanism), 1));
    },
    authGuard(guard) {
      if (runtime.authGuard) throw new ModuleGraphError(`two modules set the login policy (authGuard) on ${host}`);
      runtime.authGuard = guard;
      undo(() => (runtime.authGuard = undefined));
    },
    onSessionWrite: (tap) => undo(addTap(runtime.writeTaps, tap, 'session write tap')),
    onSessionRead: (tap) => undo(addTap(runtime.readTaps, tap, 'session read tap')),
    claim: (hook, event) => runtime.hooks.claim(hook, event),
    service(domain, handler) {
      undo(deps.router.addService(domain, host, handler));
      runtime.services.push(domain);
      undo(() => {
        const i = runtime.services.indexOf(domain);
        if (i >= 0) runtime.services.splice(i, 1);
      });
    },
    storage: deps.storage,
    keyval: (store) => deps.storage.keyval(store),
    archive: (store) => deps.storage.archive(store),
    accounts: deps.accounts,
    deps: {
      get<Api>(module: ModuleDefinition<z.ZodType, Api>): Api {
        if (!loaded.apis.has(module.name)) {
          throw new ModuleGraphError(`module ${name} used module ${module.name} without declaring it in requires/optional, or it is disabled`);
        }
        return loaded.apis.get(module.name) as Api;
      },
      has: (module) => enabledNames.has(module.name) && loaded.apis.has(module.name),
    },
    manifests: () => runtime.manifests,
    services: () => runtime.services,
    setTimeout(fn, ms) {
      // One cleanup for all of this module's timers, so that many short timers do not pile up.
      if (!timersRegistered) {
        timersRegistered = true;
        undo(() => {
          for (const t of timers) clearTimeout(t);
          timers.clear();
        });
      }
      const t = setTimeout(() => {
        timers.delete(t);
        fn();
      }, ms);
      t.unref();
      timers.add(t);
      return () => {
        clearTimeout(t);
        timers.delete(t);
      };
    },
    setInterval(fn, ms) {
      const t = setInterval(fn, ms);
      t.unref();
      undo(() => clearInterval(t));
    },
    http: {
      route: (spec, handler) => undo(deps.http!.add(host, name, spec, handler)),
      baseUrl: () => deps.http!.baseUrl(host),
    },
    onStop: (fn) => undo(fn),
  };
}
