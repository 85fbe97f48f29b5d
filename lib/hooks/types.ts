// The closed, typed list of hooks (ARCHITECTURE.md §4). Each has a place in the stanza
// lifecycle and a kind: notify (all run, results ignored), filter (a handler may drop or bounce),
// claim (the first handler that claims ends the chain).
import type { Element } from '../xml/element.js';
import type { StanzaError } from '../stanza/error.js';
import type { IqStanza, MessageStanza, PresenceStanza, Stanza } from '../stanza/envelope.js';
import type { SessionHandle } from '../sessions/types.js';

export type FilterResult = void | undefined | 'drop' | StanzaError;
export type ClaimResult = void | undefined | 'claimed';
type Awaitable<T> = T | Promise<T>;

export interface HookMap {
  /** A resource was bound. A session resumed onto a new stream fires `session/resumed` instead. */
  'session/bound': { kind: 'notify'; event: { session: SessionHandle } };
  /**
   * A bound session's connection went away without a clean end: no `</stream:stream>` from the
   * client, no stream error from the server (XEP-0198 §5 "unfinished" stream). A handler that
   * claims it keeps the session bound and hibernating (stream management) and must end it later
   * with `session.close()`; unclaimed, the session closes at once as any other.
   */
  'session/lost': { kind: 'claim'; event: { session: SessionHandle; reason: string } };
  /**
   * A session moved onto a new stream (XEP-0198 resumption), from hibernation or from a stream
   * still open (which was closed). Fires once the handler that resumed it has returned. The
   * session object, and so its declared state, is the same.
   */
  'session/resumed': { kind: 'notify'; event: { session: SessionHandle } };
  /** A bound session ended, gracefully or not (for a hibernating session: when it expires). */
  'session/closed': { kind: 'notify'; event: { session: SessionHandle; reason: string } };
  /** A session sent its initial presence (fired by the presence module after its broadcast). */
  'presence/initial': { kind: 'notify'; event: { session: SessionHandle } };
  'account/created': { kind: 'notify'; event: { host: string; user: string } };
  /** Every module purges the account's data. */
  'account/deleted': { kind: 'notify'; event: { host: string; user: string } };
  /** The server is stopping: streams are still open, so modules can tell their users (MUC 332). */
  'server/stopping': { kind: 'notify'; event: { host: string } };
  /** A live reload changed the host's modules (fired by the loader once they are started): disco and caps recompute. */
  'modules/reloaded': { kind: 'notify'; event: { host: string; started: readonly string[]; stopped: readonly string[]; restarted: readonly string[] } };
  /** Every stanza from a local client, after `from` stamping and before routing. */
  'stanza/inbound': { kind: 'filter'; event: { session: SessionHandle; stanza: Stanza } };
  /** A message sent by a local client, to anyone (run on the sender's host). */
  'message/outbound': { kind: 'filter'; event: { session: SessionHandle; stanza: MessageStanza } };
  /** A message addressed to a local account (bare or full JID), before RFC 6121 §8.5 delivery. */
  'message/inbound': { kind: 'filter'; event: { stanza: MessageStanza } };
  /** Just before a message is handed to one local session. */
  'message/deliver': { kind: 'filter'; event: { session: SessionHandle; stanza: MessageStanza } };
  /**
   * A message no session can take: offline storage claims it, else the core bounces it.
   * `unacked` is set when stream management hands back a message that was written to that
   * session, which ended without acknowledging it (XEP-0198 §4): it is addressed to the bare JID,
   * and the account's other resources already had their copies at delivery time (handlers that
   * copy to other resources, like carbons, skip it).
   */
  'message/undeliverable': { kind: 'claim'; event: { stanza: MessageStanza; unacked?: SessionHandle } };
  /** A presence sent by a local client. Unclaimed directed presence is routed as is. */
  'presence/outbound': { kind: 'claim'; event: { session: SessionHandle; stanza: PresenceStanza } };
  /** A presence addressed to a local account. Unclaimed, it goes to the addressed session(s). */
  'presence/inbound': { kind: 'claim'; event: { stanza: PresenceStanza } };
  /** An IQ get/set addressed to a local account (bare or full JID), before its owner or session gets it. */
  'iq/inbound': { kind: 'filter'; event: { stanza: IqStanza } };
  /** Any stanza about to leave for another server (run on the sender's host when it is local). */
  'stanza/remote': { kind: 'filter'; event: { stanza: Stanza } };
  /** Any stanza about to be written to a local session. */
  'stanza/outgoing': { kind: 'filter'; event: { session: SessionHandle; stanza: Element } };
}

export type HookName = keyof HookMap;
export type NotifyHookName = { [K in HookName]: HookMap[K]['kind'] extends 'notify' ? K : never }[HookName];
export type ClaimHookName = { [K in HookName]: HookMap[K]['kind'] extends 'claim' ? K : never }[HookName];
export type HookKind<K extends HookName> = HookMap[K]['kind'];
export type HookEvent<K extends HookName> = HookMap[K]['event'];
export type HookResult<K extends HookName> = HookKind<K> extends 'filter'
  ? FilterResult
  : HookKind<K> extends 'claim'
    ? ClaimResult
    : void;
export type HookHandler<K extends HookName> = (event: HookEvent<K>) => Awaitable<HookResult<K>>;

export const HOOK_KINDS: { [K in HookName]: HookKind<K> } = {
  'session/bound': 'notify',
  'session/lost': 'claim',
  'session/resumed': 'notify',
  'session/closed': 'notify',
  'presence/initial': 'notify',
  'account/created': 'notify',
  'account/deleted': 'notify',
  'server/stopping': 'notify',
  'modules/reloaded': 'notify',
  'stanza/inbound': 'filter',
  'message/outbound': 'filter',
  'message/inbound': 'filter',
  'message/deliver': 'filter',
  'message/undeliverable': 'claim',
  'presence/outbound': 'claim',
  'presence/inbound': 'claim',
  'iq/inbound': 'filter',
  'stanza/remote': 'filter',
  'stanza/outgoing': 'filter',
};
