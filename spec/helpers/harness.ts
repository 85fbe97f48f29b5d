// The in-process harness (ARCHITECTURE.md §11): the real router, hooks, module loader, accounts
// and storage (SQLite :memory:, or PostgreSQL when PARLEY_TEST_STORAGE=postgres), the memory
// session directory, with client sessions that record every stanza they are sent. A spec reads
// as stanzas in, stanzas out.
import type { z } from 'zod';
import type { Database } from '../../lib/storage/types.js';
import { openHarnessStorage } from '../storage/backends.js';
import { openAccounts } from '../../lib/accounts/service.js';
import type { AccountService } from '../../lib/accounts/types.js';
import { SessionDirectory } from '../../lib/sessions/directory.js';
import { C2sSession, type SessionSink } from '../../lib/sessions/c2s-session.js';
import { HostRuntime } from '../../lib/routing/host-runtime.js';
import { Router } from '../../lib/routing/router.js';
import { loadHost, migrateModules, type LoadedHost } from '../../lib/modules/loader.js';
import type { ModuleDefinition, ServerInfo, StreamFeatureProvider } from '../../lib/modules/define.js';
import { silentLogger, type Logger } from '../../lib/log.js';
import { Jid } from '../../lib/jid/jid.js';
import { cloneElement, xml, type Element, type XmlAttrs, type XmlChild } from '../../lib/xml/element.js';

type AnyModule = ModuleDefinition<z.ZodType, unknown>;

export interface HarnessOptions {
  /** Virtual hosts; the first is the default for `createAccount`. Default ['example.com']. */
  hosts?: readonly string[];
  /** Modules enabled on every host, in any order (the loader sorts them by dependency). */
  modules: readonly AnyModule[];
  /** Raw options per module name, validated by the module's schema as the config loader would. */
  options?: Readonly<Record<string, unknown>>;
  /** Per-host overrides of `options`: `{ 'other.org': { disco: { name: 'Other' } } }`. */
  hostOptions?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  server?: Partial<ServerInfo>;
  /** An SQLite file, for specs that restart on the same data; default `:memory:`. */
  storagePath?: string;
  /**
   * The database: SQLite, unless PARLEY_TEST_STORAGE=postgres runs every harness on this run's
   * PostgreSQL test database (spec/storage/backends.ts). A spec that needs one dialect names it.
   */
  storage?: 'sqlite' | 'postgres';
  /** Defaults to a silent logger. */
  log?: Logger;
}

export type StanzaPredicate = (stanza: Element) => boolean;

const DEFAULT_TIMEOUT_MS = 2000;

/** Lets pending promise chains and deferred callbacks (setImmediate, timers of 0 ms) run. */
export async function settle(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    // A 0 ms timer is due after 1 ms; an event-loop turn alone may come sooner.
    await new Promise<void>((resolve) => setTimeout(resolve, 1));
  }
}

let nextId = 0;

/** A bound client session whose sink records every stanza written to it. */
export class TestClient {
  /** Every stanza the session was sent, in order. */
  readonly received: Element[] = [];
  /** Set when the server ended the session (e.g. 'conflict'). */
  closed: { condition?: string; text?: string } | undefined;
  /** Stanzas not yet taken by `next()` or `iq()`. */
  private inbox: Element[] = [];
  private waiters: Array<{ predicate: StanzaPredicate; resolve(el: Element): void }> = [];
  private queue: Promise<void> = Promise.resolve();
  /** Set by the harness once the session exists. */
  session!: C2sSession;

  constructor(private readonly harness: Harness, readonly jid: Jid) {}

  /** Called by the session's sink. */
  deliver(stanza: Element): void {
    this.received.push(stanza);
    const i = this.waiters.findIndex((w) => w.predicate(stanza));
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      w.resolve(stanza);
      return;
    }
    this.inbox.push(stanza);
  }

  /**
   * Sends a stanza as the client would: `from` is stamped with the full JID (a foreign `from`
   * ends the session with invalid-from, RFC 6120 §8.1.2.1), elements with an `xmlns` go to the
   * nonza handlers. Stanzas are processed one at a time, in order, like a session's inbound queue.
   * Resolves once the router has handled it.
   */
  send(stanza: Element): Promise<void> {
    const el = cloneElement(stanza);
    const run = this.queue.then(() => this.process(el));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async process(el: Element): Promise<void> {
    if (this.closed) throw new Error(`${this.jid} is disconnected`);
    const runtime = this.harness.runtime(this.jid.domain);
    const ns = el.attrs.xmlns as string | undefined;
    if (ns !== undefined) {
      await runtime.nonzas.get(ns)?.(this.session, el);
      return;
    }
    const from = el.attrs.from as string | undefined;
    if (from !== undefined) {
      const jid = Jid.tryParse(from);
      if (!jid || !(jid.equals(this.jid) || jid.equals(this.jid.bare()))) {
        this.session.close('invalid-from', 'from must be your own JID');
        return;
      }
    }
    el.attrs.from = this.jid.toString();
    await this.harness.router.fromClient(this.session, el);
  }

  /**
   * Sends an IQ (an id is added when missing) and resolves with the reply the session receives
   * for it, result or error.
   */
  async iq(stanza: Element, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Element> {
    const el = cloneElement(stanza);
    if (!el.attrs.id) el.attrs.id = `h${++nextId}`;
    const id = el.attrs.id as string;
    const reply = this.next((s) => s.name === 'iq' && s.attrs.id === id && (s.attrs.type === 'result' || s.attrs.type === 'error'), timeoutMs);
    await this.send(el);
    return reply;
  }

  /** `<iq type='get'>` with one payload; `to` defaults to the client's domain. */
  get(payload: Element, to: string = this.jid.domain, timeoutMs?: number): Promise<Element> {
    return this.iq(xml('iq', { type: 'get', to }, payload), timeoutMs);
  }

  /** `<iq type='set'>` with one payload; `to` defaults to the client's domain. */
  set(payload: Element, to: string = this.jid.domain, timeoutMs?: number): Promise<Element> {
    return this.iq(xml('iq', { type: 'set', to }, payload), timeoutMs);
  }

  /** Sends `<presence/>` (initial presence, by default) with the given attributes and children. */
  sendPresence(attrs: XmlAttrs = {}, ...children: XmlChild[]): Promise<void> {
    return this.send(xml('presence', attrs, ...children));
  }

  sendMessage(attrs: XmlAttrs, ...children: XmlChild[]): Promise<void> {
    return this.send(xml('message', attrs, ...children));
  }

  /**
   * The next stanza matching `predicate` that no earlier `next()`/`iq()` took: one already
   * received, or the next to arrive. Rejects after `timeoutMs`.
   */
  next(predicate: StanzaPredicate = () => true, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Element> {
    const i = this.inbox.findIndex(predicate);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]);
    return new Promise<Element>((resolve, reject) => {
      const waiter = {
        predicate,
        resolve: (el: Element) => {
          clearTimeout(timer);
          resolve(el);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        const seen = this.received.map((s) => `  ${s.toString()}`).join('\n') || '  (nothing)';
        reject(new Error(`${this.jid} received no matching stanza within ${timeoutMs} ms; it received:\n${seen}`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Forgets what was received so far. */
  clear(): void {
    this.received.length = 0;
    this.inbox = [];
  }

  /** Ends the session as a closed stream would: unbinds it and fires session/closed. */
  async disconnect(reason = 'closed'): Promise<void> {
    await this.harness.unbind(this, reason);
  }
}

export class Harness {
  readonly hosts: readonly string[];
  readonly server: ServerInfo;
  readonly clients: TestClient[] = [];
  private readonly loaded = new Map<string, LoadedHost>();
  private stopped = false;

  private constructor(
    readonly storage: Database,
    readonly accounts: AccountService,
    readonly sessions: SessionDirectory,
    readonly runtimes: ReadonlyMap<string, HostRuntime>,
    readonly router: Router,
    readonly log: Logger,
    server: ServerInfo,
  ) {
    this.hosts = [...runtimes.keys()];
    this.server = server;
  }

  static async start(options: HarnessOptions): Promise<Harness> {
    const hosts = options.hosts ?? ['example.com'];
    if (hosts.length === 0) throw new Error('Harness.start: give at least one host');
    const log = options.log ?? silentLogger();
    const storage = await openHarnessStorage(options.storagePath, options.storage);
    try {
      // 4096 is the RFC 7677 minimum and the fastest allowed: tests create many accounts.
      const accounts = await openAccounts(storage, { scramIterations: 4096 });
      const sessions = new SessionDirectory();
      const runtimes = new Map(hosts.map((h) => [h, new HostRuntime(h)]));
      const router = new Router(runtimes, sessions, accounts, log);
      const server: ServerInfo = {
        name: 'Parley',
        version: '0.0.0-test',
        hosts,
        admins: [],
        contact: {},
        ...options.server,
      };
      const h = new Harness(storage, accounts, sessions, runtimes, router, log, server);
      const modules = options.modules;
      await migrateModules(storage, modules);
      for (const host of hosts) {
        const enabled = modules.map((def) => {
          const raw = options.hostOptions?.[host]?.[def.name] ?? options.options?.[def.name] ?? {};
          return { def, options: def.config.parse(raw) };
        });
        h.loaded.set(host, await loadHost(runtimes.get(host)!, enabled, { router, sessions, storage, accounts, log, server }));
      }
      // As lib/server.ts does: deleting an account makes every module purge its data.
      accounts.onDeleted(async (host, user) => {
        await runtimes.get(host)?.hooks.notify('account/deleted', { host, user }, (err) => log.error({ err }, 'account/deleted handler failed'));
      });
      // Modules may finish deferred work (caches, hashes) on the next turns of the event loop.
      await settle();
      return h;
    } catch (err) {
      await storage.close();
      throw err;
    }
  }

  runtime(host: string = this.hosts[0]): HostRuntime {
    const r = this.runtimes.get(host);
    if (!r) throw new Error(`${host} is not a host of this harness (${this.hosts.join(', ')})`);
    return r;
  }

  /** The API a module's setup returned on a host. */
  api<Api>(module: ModuleDefinition<z.ZodType, Api>, host: string = this.hosts[0]): Api {
    const loaded = this.loaded.get(host);
    if (!loaded?.apis.has(module.name)) throw new Error(`module ${module.name} is not enabled on ${host}`);
    return loaded.apis.get(module.name) as Api;
  }

  async createAccount(user: string, password = 'password', host: string = this.hosts[0]): Promise<Jid> {
    this.runtime(host);
    await this.accounts.create(host, user, password);
    return Jid.of(user, host);
  }

  /** Deletes an account; modules are told through the account/deleted hook. */
  deleteAccount(user: string, host: string = this.hosts[0]): Promise<boolean> {
    return this.accounts.delete(host, user);
  }

  /**
   * Binds a session for an existing account, as resource binding does (RFC 6120 §7): a session
   * already bound to the same full JID is closed with `conflict`; session/bound fires. A JID
   * without a resource gets a random one.
   */
  async connect(jid: string): Promise<TestClient> {
    let full = Jid.parse(jid);
    if (full.local === undefined) throw new Error(`connect: ${jid} has no localpart`);
    if (full.resource === undefined) full = full.withResource(`r${++nextId}`);
    const runtime = this.runtime(full.domain);
    if (!(await this.accounts.exists(full.domain, full.local!))) {
      throw new Error(`connect: no account ${full.bare()}; call createAccount('${full.local}', 'pw', '${full.domain}') first`);
    }
    const existing = this.sessions.get(full);
    if (existing) existing.close('conflict', 'replaced by a new connection');

    const client = new TestClient(this, full);
    const sink: SessionSink = {
      write: (stanza) => client.deliver(stanza),
      close: (condition, text) => {
        if (client.closed) return;
        client.closed = { condition, text };
        void this.unbind(client, condition ?? 'closed');
      },
      remoteAddress: '127.0.0.1',
      secure: true,
    };
    const outgoing = runtime.hooks.has('stanza/outgoing')
      ? async (s: C2sSession, stanza: Element) => (await runtime.hooks.filter('stanza/outgoing', { session: s, stanza })) === 'pass'
      : undefined;
    const session = new C2sSession(full, sink, outgoing);
    client.session = session;
    this.sessions.add(session);
    this.clients.push(client);
    await runtime.hooks.notify('session/bound', { session }, (err) => this.log.error({ err }, 'session/bound handler failed'));
    return client;
  }

  /** @internal Removes a client's session from the directory and fires session/closed once. */
  async unbind(client: TestClient, reason: string): Promise<void> {
    client.closed ??= { condition: undefined, text: undefined };
    if (!this.sessions.remove(client.session)) return;
    await this.runtime(client.jid.domain).hooks.notify('session/closed', { session: client.session, reason }, (err) =>
      this.log.error({ err }, 'session/closed handler failed'));
  }

  /** Routes a stanza from the server or a module (or a remote entity); `from` must be set. */
  route(stanza: Element): Promise<void> {
    return this.router.route(cloneElement(stanza));
  }

  /** The stream features modules offer at a stage (caps, CSI, SM, ...), as the c2s stream adds them. */
  streamFeatures(stage: StreamFeatureProvider['stage'], host: string = this.hosts[0]): Element[] {
    return this.runtime(host)
      .features.filter((p) => p.stage === stage)
      .map((p) => p.build(undefined))
      .filter((el): el is Element => el !== undefined);
  }

  /** Lets deferred work finish: pending bounces, outgoing filters, deferred recomputations. */
  settle(turns?: number): Promise<void> {
    return settle(turns);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const client of this.clients) if (!client.closed) await client.disconnect('system-shutdown');
    for (const loaded of this.loaded.values()) loaded.stop();
    await this.storage.close();
  }
}
