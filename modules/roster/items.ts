// Roster items (RFC 6121 §2.1): their shape, their wire form, and the checks on a client's
// roster set (RFC 6121 §2.3.3).
import { Jid, NS, StanzaError, xml } from '../../lib/module-api.js';
import type { Element } from '../../lib/module-api.js';

/** RFC 6121 §2.1.2.5, from the user's point of view: `to` = the user gets the contact's presence. */
export type Subscription = 'none' | 'to' | 'from' | 'both';

export const SUBSCRIPTIONS: readonly Subscription[] = ['none', 'to', 'from', 'both'];

export interface RosterItem {
  /** Always a bare JID (or a domain). */
  readonly jid: Jid;
  readonly name: string | undefined;
  readonly subscription: Subscription;
  /** RFC 6121 §2.1.2.2: ask='subscribe', the "Pending Out" half of a state. */
  readonly ask: boolean;
  /** RFC 6121 §3.4: the user pre-approved the contact's subscription request. */
  readonly approved: boolean;
  readonly groups: readonly string[];
}

export function emptyItem(jid: Jid): RosterItem {
  return { jid: jid.bare(), name: undefined, subscription: 'none', ask: false, approved: false, groups: [] };
}

/** True when the contact receives the user's presence. */
export function hasFrom(s: Subscription): boolean {
  return s === 'from' || s === 'both';
}

/** True when the user receives the contact's presence. */
export function hasTo(s: Subscription): boolean {
  return s === 'to' || s === 'both';
}

export function subscriptionOf(to: boolean, from: boolean): Subscription {
  if (to && from) return 'both';
  if (to) return 'to';
  if (from) return 'from';
  return 'none';
}

export function sameItem(a: RosterItem, b: RosterItem): boolean {
  return (
    a.jid.equals(b.jid) &&
    a.name === b.name &&
    a.subscription === b.subscription &&
    a.ask === b.ask &&
    a.approved === b.approved &&
    a.groups.length === b.groups.length &&
    a.groups.every((g, i) => g === b.groups[i])
  );
}

/** The `<item/>` of a roster result or push. */
export function itemElement(item: RosterItem): Element {
  return xml(
    'item',
    {
      jid: item.jid.toString(),
      name: item.name,
      subscription: item.subscription,
      ask: item.ask ? 'subscribe' : undefined,
      // RFC 6121 §2.1.2.1: included only when true.
      approved: item.approved ? 'true' : undefined,
    },
    item.groups.map((g) => xml('group', {}, g)),
  );
}

export function removalElement(jid: Jid): Element {
  return xml('item', { jid: jid.toString(), subscription: 'remove' });
}

export interface RosterLimits {
  maxNameLength: number;
  maxGroupNameLength: number;
}

export type RosterSet =
  | { kind: 'remove'; jid: Jid }
  | { kind: 'update'; jid: Jid; name: string | undefined; groups: string[] };

/**
 * Parses and checks a client's roster set (RFC 6121 §2.3.3). The `subscription` attribute is
 * ignored unless it is "remove" and `ask`/`approved` are ignored (RFC 6121 §2.1.2.1, §2.1.2.2,
 * §2.1.2.5): subscription state changes only through presence.
 */
export function parseRosterSet(query: Element, limits: RosterLimits): RosterSet {
  const children = query.getChildElements();
  // RFC 6121 §2.3.3: exactly one <item/>.
  if (children.length !== 1 || children[0].name !== 'item') {
    throw StanzaError.badRequest('a roster set carries exactly one item');
  }
  const item = children[0];
  if (item.getNS() !== NS.roster) throw StanzaError.badRequest('the item must be in the jabber:iq:roster namespace');
  const rawJid = item.attrs.jid as string | undefined;
  if (rawJid === undefined || rawJid === '') throw StanzaError.badRequest('the item needs a jid');
  const jid = Jid.tryParse(rawJid);
  if (!jid) throw StanzaError.jidMalformed('the item jid is not a valid JID');
  // Subscriptions are between bare JIDs (RFC 6121 §3); a full JID would never match one.
  if (jid.resource !== undefined) throw StanzaError.badRequest('roster items are bare JIDs');

  if (item.attrs.subscription === 'remove') return { kind: 'remove', jid };

  const rawName = item.attrs.name as string | undefined;
  const name = rawName === undefined || rawName === '' ? undefined : rawName;
  if (name !== undefined && Buffer.byteLength(name, 'utf8') > limits.maxNameLength) {
    throw StanzaError.notAcceptable(`the name is longer than ${limits.maxNameLength} bytes`);
  }
  const groups: string[] = [];
  for (const child of item.getChildElements()) {
    if (child.name !== 'group') continue;
    const text = child.getText();
    // RFC 6121 §2.3.3: an empty group is not-acceptable (omit <group/> to leave every group).
    if (text === '') throw StanzaError.notAcceptable('a group name cannot be empty');
    if (Buffer.byteLength(text, 'utf8') > limits.maxGroupNameLength) {
      throw StanzaError.notAcceptable(`a group name is longer than ${limits.maxGroupNameLength} bytes`);
    }
    // RFC 6121 §2.3.3: duplicate groups are a bad-request.
    if (groups.includes(text)) throw StanzaError.badRequest('a group is listed twice');
    groups.push(text);
  }
  return { kind: 'update', jid, name, groups };
}
