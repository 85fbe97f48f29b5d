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
  /** A resource was bound (or a session resumed onto a new stream). */
  'session/bound': { kind: 'notify'; event: { session: SessionHandle } };
  /** A bound session ended, gracefully or not. */
  'session/closed': { kind: 'notify'; event: { session: SessionHandle; reason: string } };
  /** A session sent its initial presence (fired by the presence module after its broadcast). */
  'presence/initial': { kind: 'notify'; event: { session: SessionHandle } };
  'account/created': { kind: 'notify'; event: { host: string; user: string } };
  /** Every module purges the account's data. */
  'account/deleted': { kind: 'notify'; event: { host: string; user: string } };
  /** Every stanza from a local client, after `from` stamping and before routing. */
  'stanza/inbound': { kind: 'filter'; event: { session: SessionHandle; stanza: Stanza } };
  /** A message sent by a local client, to anyone (run on the sender's host). */
  'message/outbound': { kind: 'filter'; event: { session: SessionHandle; stanza: MessageStanza } };
  /** A message addressed to a local account (bare or full JID), before RFC 6121 §8.5 delivery. */
  'message/inbound': { kind: 'filter'; event: { stanza: MessageStanza } };
  /** Just before a message is handed to one local session. */
  'message/deliver': { kind: 'filter'; event: { session: SessionHandle; stanza: MessageStanza } };
  /** A message no session can take: offline storage claims it, else the core bounces it. */
  'message/undeliverable': { kind: 'claim'; event: { stanza: MessageStanza } };
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
  'session/closed': 'notify',
  'presence/initial': 'notify',
  'account/created': 'notify',
  'account/deleted': 'notify',
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
