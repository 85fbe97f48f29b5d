// A module is a manifest (data the core checks and publishes) plus a setup function that
// registers everything through its context (ARCHITECTURE.md §3).
import type { z } from 'zod';
import type { Element } from '../xml/element.js';
import type { Jid } from '../jid/jid.js';
import type { Stanza } from '../stanza/envelope.js';
import type { StanzaError } from '../stanza/error.js';
import type { HookName, HookHandler, HookEvent, NotifyHookName } from '../hooks/types.js';
import type { HookOrder } from '../hooks/bus.js';
import type { IqHandler, IqSpec } from '../routing/iq-registry.js';
import type { SessionHandle, SessionStateKey } from '../sessions/types.js';
import type { ArchiveStore, Database, KeyValStore, Migration } from '../storage/types.js';
import type { AccountService } from '../accounts/types.js';
import type { Logger } from '../log.js';

export interface XepSupport {
  xep: number;
  version?: string;
  status: 'complete' | 'partial';
  note?: string;
}

export interface DiscoIdentity {
  category: string;
  type: string;
  name?: string;
}

export interface ModuleManifest {
  name: string;
  xeps?: readonly XepSupport[];
  /** disco#info features: on the server (`host`) and on each account's bare JID (`account`). */
  features?: { host?: readonly string[]; account?: readonly string[] };
  identities?: { host?: readonly DiscoIdentity[]; account?: readonly DiscoIdentity[] };
  /** On unless the admin turns it off. */
  defaultEnabled?: boolean;
}

type AnyModule = ModuleDefinition<z.ZodType, unknown>;

export interface ModuleDefinition<C extends z.ZodType = z.ZodType, Api = void> extends ModuleManifest {
  config: C;
  requires?: readonly AnyModule[];
  optional?: readonly AnyModule[];
  migrations?: readonly Migration[];
  /** Returns the module's API for dependants (`ctx.deps.get(thisModule)`). */
  setup(ctx: ModuleContext<z.output<C>>): Api | Promise<Api>;
}

export function defineModule<C extends z.ZodType, Api = void>(def: ModuleDefinition<C, Api>): ModuleDefinition<C, Api> {
  return def;
}

/** Stream features offered to a session at a stage of the stream (RFC 6120 §4.3.2). */
export interface StreamFeatureProvider {
  /** pre-auth: offered next to SASL (session undefined); post-auth: next to resource binding. */
  stage: 'pre-auth' | 'post-auth';
  build(session: SessionHandle | undefined): Element | undefined;
}

/** The stream an IQ arrived on before authentication (XEP-0077 registration, say). */
export interface PreAuthOrigin {
  readonly host: string;
  readonly remoteAddress: string;
  /** TLS is in place. */
  readonly secure: boolean;
}

/** Answers an IQ sent before authentication: its reply payload, nothing, or an error. */
export type PreAuthIqHandler = (iq: Element, origin: PreAuthOrigin) => Promise<Element | StanzaError | undefined> | Element | StanzaError | undefined;

export interface ServerInfo {
  readonly name: string;
  readonly version: string;
  readonly hosts: readonly string[];
  readonly admins: readonly Jid[];
  readonly contact: Readonly<Record<string, readonly string[]>>;
}

export interface SessionView {
  /** The bound sessions of an account, in bind order. */
  of(account: Jid): SessionHandle[];
  /** The session bound to a full JID. */
  get(full: Jid): SessionHandle | undefined;
  /** Every session bound on this host. */
  all(): SessionHandle[];
}

export interface ModuleContext<Config = unknown> {
  readonly name: string;
  /** The virtual host this instance serves. */
  readonly host: string;
  readonly config: Config;
  readonly log: Logger;
  readonly server: ServerInfo;
  readonly iq: {
    get(spec: IqSpec, handler: IqHandler): void;
    set(spec: IqSpec, handler: IqHandler): void;
  };
  on<K extends HookName>(hook: K, handler: HookHandler<K>, order?: { before?: readonly AnyModule[]; after?: readonly AnyModule[] } | HookOrder): void;
  /** Fires a notify hook on this host (e.g. the presence module fires `presence/initial`). */
  notify<K extends NotifyHookName>(hook: K, event: HookEvent<K>): Promise<void>;
  /** Routes a stanza from this server (or a JID it speaks for) as a new stanza. `from` must be set. */
  send(stanza: Element): Promise<void>;
  /** Sends an IQ get/set and waits for its result (rejects with StanzaError or on timeout). */
  request(iq: Element, timeoutMs?: number): Promise<Element>;
  readonly sessions: SessionView;
  /** Declares per-session state, carried across stream resumption. */
  sessionState<T>(name: string, initial: () => T): SessionStateKey<T>;
  streamFeature(provider: StreamFeatureProvider): void;
  /** Accepts IQs with this payload before authentication (after TLS when it is required). */
  preAuthIq(spec: { ns: string; name: string; type: 'get' | 'set' }, handler: PreAuthIqHandler): void;
  /** Handles a top-level non-stanza element from a bound session (e.g. CSI `<active/>`). */
  nonza(ns: string, handler: (session: SessionHandle, el: Element) => void | Promise<void>): void;
  /** Claims a service domain (e.g. conference.example.com): every stanza addressed to it or its JIDs comes here. */
  service(domain: string, handler: (stanza: Stanza) => void | Promise<void>): void;
  readonly storage: Database;
  keyval(store: string): KeyValStore;
  archive(store: string): ArchiveStore;
  readonly accounts: AccountService;
  readonly deps: { get<Api>(module: ModuleDefinition<z.ZodType, Api>): Api; has(module: AnyModule): boolean };
  /** The manifests of every module enabled on this host (for disco). */
  manifests(): readonly ModuleManifest[];
  /** Service domains claimed on this host (for disco#items). */
  services(): readonly string[];
  setTimeout(fn: () => void, ms: number): void;
  setInterval(fn: () => void, ms: number): void;
}
