// XEP-0280 §6: which messages are carbon-copied. Parley advertises `urn:xmpp:carbons:rules:0`
// (§6.2), so these rules are exactly the ones of §6.1, REQUIRED rather than RECOMMENDED.
import { NS } from '../../lib/module-api.js';
import type { Element, Jid, MessageType } from '../../lib/module-api.js';

/** XEP-0280 §6.2: the server applies every rule of §6.1. */
export const NS_CARBONS_RULES = 'urn:xmpp:carbons:rules:0';

/** §6.1 "payload elements typically used in IM": XEP-0184 receipts, XEP-0085 chat states, XEP-0333 markers. */
const IM_PAYLOADS: ReadonlySet<string> = new Set([NS.receipts, NS.chatstates, NS.chatMarkers]);
/** XEP-0249 direct MUC invitations. */
const NS_CONFERENCE = 'jabber:x:conference';

/** `sent`: a local client sent it. `received`: it is being delivered to a local account. */
export type Direction = 'sent' | 'received';

export interface CopyCandidate {
  el: Element;
  type: MessageType;
  direction: Direction;
  /** The stamped sender. */
  from: Jid;
  /** For errors: whether it answers a message that was itself eligible (see `ReplyTracker`). */
  answersEligible: boolean;
}

function child(el: Element, name: string, ns: string): Element | undefined {
  return el.getChildElements().find((c) => c.name === name && c.attrs.xmlns === ns);
}

/** A `<body/>` of the stanza's own namespace (not some extension's element that happens to be called body). */
export function hasBody(el: Element): boolean {
  return el.getChildElements().some((c) => c.name === 'body' && (c.attrs.xmlns === undefined || c.attrs.xmlns === NS.client));
}

/** A carbons wrapper (`<sent/>` or `<received/>`): only the account's own server may send one. */
export function carbonWrapper(el: Element): Element | undefined {
  return child(el, 'sent', NS.carbons) ?? child(el, 'received', NS.carbons);
}

/** XEP-0280 §6.1 with §9 (private) and XEP-0334 §4.3 (no-copy). */
export function isEligible(m: CopyCandidate): boolean {
  const { el, type } = m;
  // §9: the sender opted out; XEP-0334 no-copy asks the same of "Message Carbons" by name.
  if (child(el, 'private', NS.carbons) || child(el, 'no-copy', NS.hints)) return false;
  // A carbon of a carbon is never useful; a wrapper reaching this point did not come from us.
  if (carbonWrapper(el)) return false;
  // §6.1: "A <message/> of type groupchat SHOULD NOT be carbon-copied."
  if (type === 'groupchat') return false;
  // §6.1: errors only when they answer an eligible message. Checked before the payload rules:
  // an error echoes the payload of what it answers (RFC 6120 §8.3.1).
  if (type === 'error') return m.answersEligible;
  const mucUser = child(el, 'x', NS.mucUser);
  // §6.1: XEP-0249 and mediated (XEP-0045 §7.8.2) invitations SHOULD be carbon-copied.
  if (child(el, 'x', NS_CONFERENCE) || mucUser?.getChild('invite') !== undefined) return true;
  // §6.1: a private message from a MUC participant (from an occupant's full JID) SHOULD NOT be
  // copied: the MUC service already sends it to every joined client. Private messages a local
  // user sends to an occupant fall through to the general rules (they are type chat).
  if (mucUser && m.direction === 'received' && m.from.resource !== undefined) return false;
  if (type === 'chat') return true;
  if (type === 'normal' && hasBody(el)) return true;
  return el.getChildElements().some((c) => IM_PAYLOADS.has(c.attrs.xmlns as string));
}

/**
 * Remembers recent eligible messages by (account, peer, id) so that an error answering one of
 * them is recognised (§6.1: "it is of type error and it was sent in response to a <message/> that
 * was eligible"). Bounded in size and age: an error comes back within seconds or not at all.
 */
export class ReplyTracker {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly maxEntries = 10_000,
    private readonly ttlMs = 10 * 60_000,
  ) {}

  private static key(account: Jid, peer: Jid, id: string): string {
    return `${account.bare().toString()}\u0000${peer.bare().toString()}\u0000${id}`;
  }

  remember(account: Jid, peer: Jid, id: string | undefined, now = Date.now()): void {
    if (id === undefined || id === '') return;
    const key = ReplyTracker.key(account, peer, id);
    this.seen.delete(key);
    this.seen.set(key, now + this.ttlMs);
    // Map iteration is insertion order: the first keys are the oldest.
    while (this.seen.size > this.maxEntries) this.seen.delete(this.seen.keys().next().value!);
  }

  /** True when `peer` was sent, or sent `account`, an eligible message with this id recently. */
  answers(account: Jid, peer: Jid, id: string | undefined, now = Date.now()): boolean {
    if (id === undefined || id === '') return false;
    const key = ReplyTracker.key(account, peer, id);
    const expires = this.seen.get(key);
    if (expires === undefined) return false;
    if (expires < now) {
      this.seen.delete(key);
      return false;
    }
    return true;
  }
}
