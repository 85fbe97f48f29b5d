// Classifies every stanza's target and delivers it: IQs to their one owner, messages and
// presence through the hooks and RFC 6121 §8.5 delivery rules, the rest to other servers.
import { randomBytes } from 'node:crypto';
import { cloneElement, xml, type Element } from '../xml/element.js';
import { Jid } from '../jid/jid.js';
import { StanzaError } from '../stanza/error.js';
import { toEnvelope, type IqStanza, type MessageStanza, type PresenceStanza, type Stanza } from '../stanza/envelope.js';
import type { Logger } from '../log.js';
import type { AccountService } from '../accounts/types.js';
import type { SessionDirectory } from '../sessions/directory.js';
import type { C2sSession } from '../sessions/c2s-session.js';
import type { SessionHandle } from '../sessions/types.js';
import type { HostRuntime } from './host-runtime.js';
import type { Verdict } from '../hooks/bus.js';
import type { DomainBlocklist } from './domain-blocklist.js';
import type { IqOrigin, IqTarget } from './iq-registry.js';

export type ServiceHandler = (stanza: Stanza) => void | Promise<void>;
/** Sends a stanza to another server; set by federation. Resolves when queued. */
export type RemoteRoute = (stanza: Stanza) => Promise<void>;

/** What the router asks of the cluster (lib/cluster) when there is one. */
export interface ClusterRoutes {
  /** The node owning a service JID (a MUC room, a service domain); undefined when it is this node. */
  serviceOwner(bare: Jid): Promise<string | undefined>;
  /** Routes a stanza on another node, in order with what this node sent it before. */
  forward(node: string, el: Element): Promise<void>;
  /** The node that sent the IQ this is a reply to, when it was sent there (prepared JIDs). */
  replyNode(from: string, to: string, id: string): string | undefined;
}

interface PendingRequest {
  resolve(el: Element): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * Routing that finished synchronously (undefined) or the promise of its end. Most stanzas are
 * routed without waiting for anything; the promises are kept for those that wait.
 */
export type Pending = Promise<void> | void;

/** What `route` resolves to when nothing had to wait: one promise for all of them. */
const DONE: Promise<void> = Promise.resolve();

const nothing = (): void => undefined;

/**
 * RFC 6120 §8.3.3.12: the sender breaks a local policy (this server talks to no one there), of
 * type modify (send it elsewhere); not remote-server-not-found, which would claim the domain
 * does not exist.
 */
function blockedDomainError(domain: string): StanzaError {
  return new StanzaError('policy-violation', { type: 'modify', text: `this server exchanges nothing with ${domain}` });
}

/** RFC 6121 §8.5.2.1.1: a resource a message to the bare JID may go to. */
function deliverable(s: SessionHandle): boolean {
  return s.available && s.priority >= 0;
}

export class Router {
  private readonly services = new Map<string, { host: string; handler: ServiceHandler }>();
  private readonly pending = new Map<string, PendingRequest>();
  remote: RemoteRoute | undefined;
  /** Domains nothing is exchanged with (config `s2s.blockedDomains`); set by the server. */
  blocked: DomainBlocklist | undefined;
  /** Set in cluster mode (lib/cluster); undefined on a single node. */
  cluster: ClusterRoutes | undefined;

  constructor(
    private readonly hosts: ReadonlyMap<string, HostRuntime>,
    private readonly sessions: SessionDirectory,
    private readonly accounts: AccountService,
    private readonly log: Logger,
  ) {}

  addService(domain: string, host: string, handler: ServiceHandler): () => void {
    if (this.services.has(domain) || this.hosts.has(domain)) {
      throw new Error(`service domain ${domain} is claimed twice; give one of them another domain`);
    }
    this.services.set(domain, { host, handler });
    return () => { this.services.delete(domain); };
  }

  isLocal(domain: string): boolean {
    return this.hosts.has(domain) || this.services.has(domain);
  }

  /**
   * A stanza from a bound local session; `from` is already stamped on the element. Undefined when
   * it was routed synchronously, as a message to a local session is unless a hook handler waits:
   * no promise, no turn of the microtask queue per stanza.
   */
  fromClient(session: C2sSession, el: Element): Pending {
    let stanza: Stanza;
    try {
      stanza = toEnvelope(el, session.jid);
    } catch (err) {
      if (err instanceof StanzaError && el.attrs.type !== 'error') session.send(errorReply(el, err, session.jid.domain));
      return;
    }
    // Before any module sees it: no roster item or pending subscription for a blocked domain.
    if (stanza.to && this.isBlocked(stanza.to.domain)) return this.bounce(stanza, blockedDomainError(stanza.to.domain));
    const runtime = this.hosts.get(session.host)!;
    const verdict = runtime.hooks.filterNow('stanza/inbound', { session, stanza });
    if (verdict instanceof Promise) return verdict.then((v) => this.fromClientPassed(runtime, session, stanza, v));
    return this.fromClientPassed(runtime, session, stanza, verdict);
  }

  private fromClientPassed(runtime: HostRuntime, session: C2sSession, stanza: Stanza, verdict: Verdict): Pending {
    if (verdict !== 'pass') {
      if (verdict instanceof StanzaError) this.bounce(stanza, verdict);
      return;
    }
    switch (stanza.kind) {
      case 'message': {
        const v = runtime.hooks.filterNow('message/outbound', { session, stanza });
        if (v instanceof Promise) return v.then((after) => this.outboundPassed(stanza, after));
        return this.outboundPassed(stanza, v);
      }
      case 'presence':
        return this.presenceFromClient(runtime, session, stanza);
      case 'iq':
        return this.routeIq(stanza, { session });
    }
  }

  private outboundPassed(stanza: MessageStanza, verdict: Verdict): Pending {
    if (verdict instanceof StanzaError) return this.bounce(stanza, verdict);
    if (verdict === 'drop') return;
    return this.routeMessage(stanza);
  }

  private async presenceFromClient(runtime: HostRuntime, session: C2sSession, stanza: PresenceStanza): Promise<void> {
    let claimed = runtime.hooks.claimNow('presence/outbound', { session, stanza });
    if (claimed instanceof Promise) claimed = await claimed;
    if (claimed) return;
    if (stanza.to) return this.routePresence(stanza);
  }

  /** A stanza from this server, a module, or a remote server that already passed its checks. */
  route(el: Element): Promise<void> {
    try {
      return this.routeNow(el) ?? DONE;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Routes stanzas side by side (a group chat's copies), resolving once all are through. Only
   * those that wait for something cost a promise; `onError` hears of each that failed.
   */
  routeEach(els: readonly Element[], onError: (err: unknown) => void): Promise<void> {
    let waiting: Array<Promise<void>> | undefined;
    for (const el of els) {
      try {
        const pending = this.routeNow(el);
        if (pending) (waiting ??= []).push(pending.catch(onError));
      } catch (err) {
        onError(err);
      }
    }
    return waiting === undefined ? DONE : Promise.all(waiting).then(nothing);
  }

  private routeNow(el: Element): Pending {
    const from = Jid.tryParse(el.attrs.from as string | undefined);
    if (!from) throw new Error(`router: stanza without a valid from: ${el.toString().slice(0, 200)}`);
    let stanza: Stanza;
    try {
      stanza = toEnvelope(el, from);
    } catch (err) {
      if (err instanceof StanzaError && el.attrs.type !== 'error' && el.attrs.from) {
        return this.route(errorReply(el, err, from.domain));
      }
      return;
    }
    switch (stanza.kind) {
      case 'message': return this.routeMessage(stanza);
      case 'presence': return this.routePresence(stanza);
      case 'iq': return this.routeIq(stanza, {});
    }
  }

  /** Sends an IQ and resolves with the reply (result or error). */
  request(iq: Element, timeoutMs = 30_000): Promise<Element> {
    if (!iq.attrs.id) iq.attrs.id = randomBytes(8).toString('hex');
    // Prepared JIDs, as the reply is matched on prepared JIDs (case and Unicode normalised).
    const prep = (raw: unknown) => Jid.tryParse(raw as string | undefined)?.toString() ?? String(raw);
    const key = `${prep(iq.attrs.to)}\u0000${prep(iq.attrs.from)}\u0000${iq.attrs.id}`;
    return new Promise<Element>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(key);
        reject(StanzaError.remoteServerTimeout(`no reply to iq ${iq.attrs.id}`));
      }, timeoutMs);
      timer.unref();
      this.pending.set(key, { resolve, reject, timer });
      this.route(iq).catch((err: Error) => {
        clearTimeout(timer);
        this.pending.delete(key);
        reject(err);
      });
    });
  }

  /** Answers a stanza with an error, unless it is an error itself (never answer errors). */
  bounce(stanza: Stanza, err: StanzaError): void {
    if (stanza.type === 'error') return;
    const reply = errorReply(stanza.el, err, stanza.to?.domain ?? stanza.from.domain);
    reply.attrs.from = stanza.to?.toString() ?? stanza.from.bare().toString();
    reply.attrs.to = stanza.from.toString();
    this.route(reply).catch((e: unknown) => this.log.warn({ err: e }, 'bounce failed'));
  }

  private runtimeFor(domain: string): HostRuntime | undefined {
    return this.hosts.get(domain);
  }

  /** The service (MUC, a component) a stanza is addressed to, if any. */
  private serviceFor(stanza: Stanza): ServiceHandler | undefined {
    const domain = stanza.to?.domain;
    return domain === undefined ? undefined : this.services.get(domain)?.handler;
  }

  private async toService(stanza: Stanza, handler: ServiceHandler): Promise<void> {
    if (this.cluster) {
      // One node owns each room (service JID): its state lives there.
      const owner = await this.cluster.serviceOwner(stanza.to!.bare());
      if (owner !== undefined) return this.cluster.forward(owner, stanza.el);
    }
    await handler(stanza);
  }

  /** A remote domain this server refuses (never one of its own). */
  isBlocked(domain: string): boolean {
    return this.blocked !== undefined && !this.isLocal(domain) && this.blocked.has(domain);
  }

  private async toRemote(stanza: Stanza): Promise<void> {
    if (stanza.to && this.isBlocked(stanza.to.domain)) return this.bounce(stanza, blockedDomainError(stanza.to.domain));
    const origin = this.runtimeFor(stanza.from.domain);
    if (origin) {
      const verdict = await origin.hooks.filter('stanza/remote', { stanza });
      if (verdict instanceof StanzaError) return this.bounce(stanza, verdict);
      if (verdict === 'drop') return;
    }
    if (!this.remote) return this.bounce(stanza, StanzaError.remoteServerNotFound('federation is not enabled on this server'));
    await this.remote(stanza);
  }

  /** Synchronous when the account has a session (the common case: no storage read). */
  private accountExists(jid: Jid): boolean | Promise<boolean> {
    if (jid.local === undefined) return false;
    if (this.sessions.countOf(jid) > 0) return true;
    return this.accounts.exists(jid.domain, jid.local);
  }

  // ---------------------------------------------------------------- messages

  private routeMessage(m: MessageStanza): Pending {
    // RFC 6120 §10.3.1: no `to` means the sender's own bare JID.
    const to = m.to ?? m.from.bare();
    const stanza: MessageStanza = m.to ? m : { ...m, to };
    const service = this.serviceFor(stanza);
    if (service) return this.toService(stanza, service);
    const runtime = this.runtimeFor(to.domain);
    if (!runtime) return this.toRemote(stanza);
    if (to.local === undefined) {
      // Messages to the server itself: modules may act on them through the hook; nothing else.
      const v = runtime.hooks.filterNow('message/inbound', { stanza });
      return v instanceof Promise ? v.then(nothing) : undefined;
    }
    const exists = this.accountExists(to);
    if (exists instanceof Promise) return exists.then((yes) => this.toAccount(runtime, stanza, to, yes));
    return this.toAccount(runtime, stanza, to, exists);
  }

  private toAccount(runtime: HostRuntime, stanza: MessageStanza, to: Jid, exists: boolean): Pending {
    // RFC 6121 §8.5.1: no such user.
    if (!exists) return this.bounce(stanza, StanzaError.serviceUnavailable());
    const verdict = runtime.hooks.filterNow('message/inbound', { stanza });
    if (verdict instanceof Promise) return verdict.then((v) => this.inboundPassed(runtime, stanza, to, v));
    return this.inboundPassed(runtime, stanza, to, verdict);
  }

  private inboundPassed(runtime: HostRuntime, stanza: MessageStanza, to: Jid, verdict: Verdict): Pending {
    if (verdict instanceof StanzaError) return this.bounce(stanza, verdict);
    if (verdict === 'drop') return;
    if (to.resource !== undefined) {
      const session = this.sessions.get(to);
      if (session) return this.deliverMessage(runtime, session, stanza);
      // In a cluster, a resource another node bound a moment ago: ask Redis before giving up.
      if (this.sessions.clustered) return this.sessions.recheck(to).then((s) => (s ? this.deliverMessage(runtime, s, stanza) : this.noSuchResource(runtime, stanza)));
      return this.noSuchResource(runtime, stanza);
    }
    return this.deliverToAccount(runtime, stanza);
  }

  /** RFC 6121 §8.5.3.2.1: a message to a full JID with no such resource. */
  private noSuchResource(runtime: HostRuntime, stanza: MessageStanza): Pending {
    switch (stanza.type) {
      case 'normal':
      case 'chat':
        return this.deliverToAccount(runtime, stanza, true);
      case 'groupchat':
        return this.bounce(stanza, StanzaError.serviceUnavailable());
      default:
        return;
    }
  }

  /** RFC 6121 §8.5.2.1: a message to the bare JID of an existing account. */
  private deliverToAccount(runtime: HostRuntime, m: MessageStanza, rechecked = false): Pending {
    if (m.type === 'error') return;
    if (m.type === 'groupchat') return this.bounce(m, StanzaError.serviceUnavailable());
    const candidates = this.sessions.of(m.to!).filter(deliverable);
    // In a cluster this node's view of the others lags a little (a user who just came online there).
    if (candidates.length === 0 && !rechecked && this.sessions.clustered) return this.sessions.recheckOf(m.to!).then(() => this.deliverToAccount(runtime, m, true));
    if (m.type === 'headline') return this.deliverEach(runtime, candidates, m, undefined);
    if (candidates.length === 0) return this.undeliverable(runtime, m);
    // Every resource sharing the highest priority gets it (RFC 6121 §8.5.2.1.1 allows either).
    let top = -Infinity;
    for (const s of candidates) if (s.priority > top) top = s.priority;
    return this.deliverEach(runtime, candidates, m, top);
  }

  private async undeliverable(runtime: HostRuntime, m: MessageStanza): Promise<void> {
    if (await runtime.hooks.claim('message/undeliverable', { stanza: m })) return;
    return this.bounce(m, StanzaError.serviceUnavailable());
  }

  /** Delivers to each session (of priority `top`, when given) in turn, waiting only for the hooks that wait. */
  private deliverEach(runtime: HostRuntime, sessions: readonly SessionHandle[], m: MessageStanza, top: number | undefined, from = 0): Pending {
    for (let i = from; i < sessions.length; i++) {
      const s = sessions[i];
      if (top !== undefined && s.priority !== top) continue;
      const pending = this.deliverMessage(runtime, s, m);
      if (pending) return pending.then(() => this.deliverEach(runtime, sessions, m, top, i + 1));
    }
    return undefined;
  }

  /**
   * A message handed to a session of this node by another node (lib/cluster), which ran the
   * delivery hooks already, and which ended meanwhile: the account's sessions on this node take
   * it as a bare-JID message would go to them, or offline storage does (never another hop).
   */
  async deliverStray(el: Element): Promise<void> {
    const from = Jid.tryParse(el.attrs.from as string | undefined);
    const to = Jid.tryParse(el.attrs.to as string | undefined);
    if (!from || !to || to.local === undefined || el.name !== 'message') return;
    let stanza: Stanza;
    try {
      stanza = toEnvelope(el, from);
    } catch {
      return;
    }
    const runtime = this.runtimeFor(to.domain);
    if (!runtime || stanza.kind !== 'message') return;
    if (stanza.type === 'error' || stanza.type === 'groupchat') return;
    const candidates = this.sessions.localOf(to).filter((s) => s.available && s.priority >= 0);
    if (candidates.length === 0) {
      if (stanza.type === 'headline') return;
      if (await runtime.hooks.claim('message/undeliverable', { stanza })) return;
      return this.bounce(stanza, StanzaError.serviceUnavailable());
    }
    const top = Math.max(...candidates.map((s) => s.priority));
    for (const s of candidates) if (s.priority === top) await this.deliverMessage(runtime, s, stanza);
  }

  /** Synchronous unless a message/deliver handler is not. */
  private deliverMessage(runtime: HostRuntime, session: SessionHandle, m: MessageStanza): Pending {
    const verdict = runtime.hooks.filterNow('message/deliver', { session, stanza: m });
    if (verdict instanceof Promise) return verdict.then((v) => this.delivered(v, session, m));
    this.delivered(verdict, session, m);
    return undefined;
  }

  private delivered(verdict: Verdict, session: SessionHandle, m: MessageStanza): void {
    if (verdict instanceof StanzaError) return this.bounce(m, verdict);
    if (verdict === 'drop') return;
    session.send(m.el);
  }

  // ---------------------------------------------------------------- presence

  private async routePresence(p: PresenceStanza): Promise<void> {
    if (!p.to) return;
    const service = this.serviceFor(p);
    if (service) return this.toService(p, service);
    const runtime = this.runtimeFor(p.to.domain);
    if (!runtime) return this.toRemote(p);
    // Presence to the server itself (probes, subscriptions to the domain) goes to modules too.
    let claimed = runtime.hooks.claimNow('presence/inbound', { stanza: p });
    if (claimed instanceof Promise) claimed = await claimed;
    if (claimed) return;
    if (p.to.local === undefined) return;
    if (p.to.resource !== undefined) {
      (this.sessions.get(p.to) ?? (await this.sessions.recheck(p.to)))?.send(p.el);
      return;
    }
    for (const s of this.sessions.of(p.to)) if (s.available) s.send(p.el);
  }

  // ---------------------------------------------------------------- iq

  private async routeIq(iq: IqStanza, origin: IqOrigin): Promise<void> {
    const to = iq.to ?? iq.from.bare();
    const stanza: IqStanza = iq.to ? iq : { ...iq, to };

    if (iq.type === 'result' || iq.type === 'error') {
      const key = `${iq.from.toString()}\u0000${to.toString()}\u0000${iq.id}`;
      const waiter = this.pending.get(key);
      if (waiter) {
        this.pending.delete(key);
        clearTimeout(waiter.timer);
        waiter.resolve(iq.el);
        return;
      }
      // A reply to a request another node sent to a session here: the waiter is there.
      const node = this.cluster?.replyNode(iq.from.toString(), to.toString(), iq.id);
      if (node !== undefined) return this.cluster!.forward(node, iq.el);
    }
    const service = this.serviceFor(stanza);
    if (service) return this.toService(stanza, service);
    const runtime = this.runtimeFor(to.domain);
    if (!runtime) return this.toRemote(stanza);

    let target: IqTarget;
    if (to.local === undefined) target = to.resource === undefined ? 'host' : 'full';
    else if (to.resource !== undefined) target = 'full';
    else target = iq.from.bare().equals(to) ? 'self' : 'bare';

    if (iq.type === 'result' || iq.type === 'error') {
      if (target === 'full') (this.sessions.get(to) ?? (await this.sessions.recheck(to)))?.send(iq.el);
      return;
    }

    if (target === 'bare' || target === 'full' || (target === 'self' && iq.to !== undefined && !iq.from.bare().equals(to))) {
      const verdict = await runtime.hooks.filter('iq/inbound', { stanza });
      if (verdict instanceof StanzaError) return this.bounce(stanza, verdict);
      if (verdict === 'drop') return;
    }
    const handler = runtime.iqs.find(target, iq.type, iq.payload!);
    if (target === 'full' && !handler) {
      const session = this.sessions.get(to) ?? (await this.sessions.recheck(to));
      if (session) return session.send(iq.el);
      return this.bounce(stanza, StanzaError.serviceUnavailable());
    }
    if (!handler) return this.bounce(stanza, StanzaError.serviceUnavailable());
    if (target === 'bare' && !(await this.accountExists(to))) {
      return this.bounce(stanza, StanzaError.serviceUnavailable());
    }
    let result: Element | void | undefined | StanzaError;
    const after: Array<() => void> = [];
    const withAfter: IqOrigin = { ...origin, afterReply: (fn) => void after.push(fn) };
    try {
      result = await handler(stanza, withAfter);
    } catch (err) {
      if (err instanceof StanzaError) result = err;
      else {
        this.log.error({ err, id: iq.id, ns: iq.payload?.attrs.xmlns }, 'iq handler failed');
        result = StanzaError.internalServerError();
      }
    }
    if (result instanceof StanzaError) {
      await this.bounce(stanza, result);
    } else {
      const reply = xml('iq', { type: 'result', id: iq.id, from: to.toString(), to: iq.from.toString() }, result ?? null);
      await this.route(reply);
    }
    for (const fn of after) fn();
  }
}

/** RFC 6120 §8.3.1: the error reply to a stanza, carrying the original payload. */
export function errorReply(original: Element, err: StanzaError, fallbackFrom: string): Element {
  const reply = xml(original.name, {
    type: 'error',
    id: original.attrs.id as string | undefined,
    from: (original.attrs.to as string | undefined) ?? fallbackFrom,
    to: original.attrs.from as string | undefined,
  });
  for (const child of original.children) {
    if (typeof child !== 'string' && child.name !== 'error') reply.cnode(cloneElement(child));
  }
  reply.cnode(err.toElement());
  return reply;
}
