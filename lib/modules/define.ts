// A module is a manifest (data the core checks and publishes) plus a setup function that
// registers everything through its context (ARCHITECTURE.md §3).
import type { z } from 'zod';
import type { Element } from '../xml/element.js';
import type { Jid } from '../jid/jid.js';
import type { Stanza } from '../stanza/envelope.js';
import type { StanzaError } from '../stanza/error.js';
import type { ClaimHookName, HookName, HookHandler, HookEvent, NotifyHookName } from '../hooks/types.js';
import type { HookOrder } from '../hooks/bus.js';
import type { IqHandler, IqSpec } from '../routing/iq-registry.js';
import type { SessionHandle, SessionStateKey, SessionTap } from '../sessions/types.js';
import type { StreamErrorCondition } from '../stream/stream-error.js';
import type { ArchiveStore, Database, KeyValStore, Migration } from '../storage/types.js';
import type { AccountService } from '../accounts/types.js';
import type { Logger } from '../log.js';
import type { HttpRouteHandler, HttpRouteSpec } from '../transport/module-routes.js';
import type { SaslMechanism } from '../sasl/mechanism.js';
import type { AuthGuard } from '../sasl2/guard.js';
import type { AccessControl } from '../acl/engine.js';

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
  /**
   * The same object for every IQ of this stream, and only of it: a WeakMap key for state one IQ
   * leaves for the next (a XEP-0401 invite token checked before the registration it allows).
   */
  readonly stream: object;
}

/** Answers an IQ sent before authentication: its reply payload, nothing, or an error. */
export type PreAuthIqHandler = (iq: Element, origin: PreAuthOrigin) => Promise<Element | StanzaError | undefined> | Element | StanzaError | undefined;

/**
 * The client stream a stream-level nonza arrived on (`ctx.streamNonza`), after authentication:
 * between SASL and resource binding, or bound. What XEP-0198 needs to resume a session instead
 * of binding one, and to speak on the stream beside the session's stanzas.
 */
export interface StreamControl {
  readonly host: string;
  /** The authenticated account (bare JID). */
  readonly account: Jid;
  /** The session bound to this stream; undefined until bind or resumption (and once it moved away). */
  readonly session: SessionHandle | undefined;
  readonly remoteAddress: string;
  readonly secure: boolean;
  /** False once the stream is closing or closed; writes are then dropped. */
  readonly open: boolean;
  /**
   * Writes an element straight to this stream: a nonza, or a stanza being retransmitted. It does
   * not pass the outgoing filters nor the session write taps.
   */
  write(el: Element): void;
  /**
   * Attaches a session of this stream's account to this stream in place of resource binding
   * (XEP-0198 §5): a hibernating session wakes; a session still on another open stream is taken
   * from it, and that stream is closed with a `conflict` stream error (XEP-0198 §5). The stream
   * is then bound to the session, and `session/resumed` fires once the current handler returns.
   * False (nothing changed) when this stream is already bound, the session has ended or belongs
   * to another account.
   */
  resumeSession(session: SessionHandle): boolean;
  /** Ends the stream with a stream error (RFC 6120 §4.9); `appCondition` is an application-specific child. */
  close(condition: StreamErrorCondition, text?: string, appCondition?: Element): void;
}

/** Handles a stream-level nonza (`ctx.streamNonza`). Runs in order with the stream's stanzas. */
export type StreamNonzaHandler = (stream: StreamControl, el: Element) => void | Promise<void>;

/**
 * XEP-0386 Bind2: a feature a client may ask for inside `<bind xmlns='urn:xmpp:bind:0'/>`
 * (`ctx.bind2Feature`). Runs right after the session is bound, before `<success/>` is sent;
 * what it writes to the stream goes out after `<success/>`. Its result goes into `<bound/>`.
 */
export type Bind2FeatureHandler = (stream: StreamControl, request: Element) => Element | undefined | Promise<Element | undefined>;

/** The client of a SASL2 `<authenticate/>` (XEP-0388 §2.4 `<user-agent/>`). */
export interface Sasl2UserAgent {
  /** The stable client instance id (a UUID), when given. */
  readonly id: string | undefined;
  readonly software: string | undefined;
  readonly device: string | undefined;
}

/** What a SASL2 inline handler learns of the authentication it follows. */
export interface Sasl2Outcome {
  readonly mechanism: string;
  readonly userAgent: Sasl2UserAgent;
  /** The whole `<authenticate/>` element. */
  readonly authenticate: Element;
}

/**
 * XEP-0388 §2.6: an inline feature of SASL2 (`ctx.sasl2Inline`): XEP-0198 resumption, XEP-0484
 * FAST. `feature` is offered inside `<authentication><inline/>`; `handle` gets the child of
 * `<authenticate/>` in its namespace once authentication succeeded, before resource binding,
 * and returns what goes into `<success/>`. What it writes to the stream goes out after it.
 */
export interface Sasl2InlineProvider {
  readonly ns: string;
  /** `mechanisms`: the mechanisms of `ctx.saslMechanism` available on this stream. */
  feature?(stream: { readonly mechanisms: readonly string[] }): Element | undefined;
  handle?(stream: StreamControl, request: Element, outcome: Sasl2Outcome): Element | undefined | Promise<Element | undefined>;
}

export interface ServerInfo {
  readonly name: string;
  readonly version: string;
  readonly hosts: readonly string[];
  readonly admins: readonly Jid[];
  readonly contact: Readonly<Record<string, readonly string[]>>;
  /** Where modules keep files (config `storageDir`, absolute); undefined in in-process tests. */
  readonly storageDir?: string;
  /** Set in cluster mode: this node's name (other nodes' sessions carry theirs in `SessionHandle.node`). */
  readonly cluster?: { readonly node: string };
}

/** HTTP routes a module serves on the http/https listeners (`ctx.http`). */
export interface ModuleHttp {
  /** Serves requests whose path starts with `spec.pathPrefix`; removed when the module stops. */
  route(spec: HttpRouteSpec, handler: HttpRouteHandler): void;
  /**
   * The base URL of this server's HTTP listeners for this host, without a trailing slash:
   * `http.publicUrl` when set, else `http(s)://<host>:<port>` of the first http/https listener.
   * Undefined before the listeners are up and when there is none.
   */
  baseUrl(): string | undefined;
}

export interface SessionView {
  /** The bound sessions of an account, in bind order. */
  of(account: Jid): SessionHandle[];
  /** The session bound to a full JID. */
  get(full: Jid): SessionHandle | undefined;
  /**
   * After `get` found none: in a cluster, the session bound to a full JID on another node a
   * moment ago, which this node had not heard of yet (one read of Redis); undefined when there
   * is none. For where finding none means the stanza is dropped or refused.
   */
  recheck(full: Jid): Promise<SessionHandle | undefined>;
  /** Every session bound on this host, on every node of a cluster. */
  all(): SessionHandle[];
}

export interface ModuleContext<Config = unknown> {
  readonly name: string;
  /** The virtual host this instance serves. */
  readonly host: string;
  readonly config: Config;
  readonly log: Logger;
  readonly server: ServerInfo;
  /** The access rules of config `access:` and `roles:` (lib/acl): `ctx.access.allowed('upload', { jid })`. */
  readonly access: AccessControl;
  readonly iq: {
    get(spec: IqSpec, handler: IqHandler): void;
    set(spec: IqSpec, handler: IqHandler): void;
  };
  on<K extends HookName>(hook: K, handler: HookHandler<K>, order?: { before?: readonly AnyModule[]; after?: readonly AnyModule[] } | HookOrder): void;
  /** Fires a notify hook on this host (e.g. the presence module fires `presence/initial`). */
  notify<K extends NotifyHookName>(hook: K, event: HookEvent<K>): Promise<void>;
  /** Routes a stanza from this server (or a JID it speaks for) as a new stanza. `from` must be set. */
  send(stanza: Element): Promise<void>;
  /**
   * Routes many stanzas side by side (a fan-out: each goes to another recipient, so their order
   * does not matter) and resolves once all are through; cheaper than `send` for each. `onError`
   * hears of each one that failed.
   */
  sendEach(stanzas: readonly Element[], onError: (err: unknown) => void): Promise<void>;
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
  /**
   * Handles top-level non-stanza elements of a namespace on the stream itself, from
   * authentication on: before resource binding (where `stream.session` is undefined; XEP-0198
   * `<resume/>`) and after. One owner per namespace, shared with `nonza`.
   */
  streamNonza(ns: string, handler: StreamNonzaHandler): void;
  /** XEP-0386: a feature clients may request inline in Bind2 `<bind/>` (one owner per namespace). */
  bind2Feature(ns: string, handler: Bind2FeatureHandler): void;
  /** XEP-0388: an inline feature of SASL2 `<authenticate/>` (one owner per namespace). */
  sasl2Inline(provider: Sasl2InlineProvider): void;
  /**
   * A SASL mechanism accepted on this host only inside SASL2 and never listed in `<mechanisms/>`
   * (XEP-0484 FAST); `offer` builds the element announcing it inside `<inline/>`.
   */
  saslMechanism(mechanism: SaslMechanism): void;
  /** The login policy of this host (one owner): app passwords, SASL2 tasks, refusals (lib/sasl2/guard.ts). */
  authGuard(guard: AuthGuard): void;
  /**
   * The per-session outbound queue (ARCHITECTURE §8): `tap` sees every stanza written to a
   * session of this host, after the outgoing filters, in wire order, including while the
   * session hibernates (nothing reaches a wire then; the tap is what keeps it). Stanzas written
   * with `StreamControl.write` are not seen.
   */
  onSessionWrite(tap: SessionTap): void;
  /**
   * `tap` sees every stanza a client of this host sent, once the core has handled it (routed,
   * answered or refused): what XEP-0198 counts as handled. Nonzas are not seen.
   */
  onSessionRead(tap: SessionTap): void;
  /** Runs a claim hook on this host (e.g. `message/undeliverable`); true when a handler claimed it. */
  claim<K extends ClaimHookName>(hook: K, event: HookEvent<K>): Promise<boolean>;
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
  /** A timer, cleared when the module stops; returns a function that cancels it. */
  setTimeout(fn: () => void, ms: number): () => void;
  setInterval(fn: () => void, ms: number): void;
  readonly http: ModuleHttp;
  /** Runs `fn` when the module stops (e.g. the unsubscribe a dependency's API returned for a listener). */
  onStop(fn: () => void): void;
}
