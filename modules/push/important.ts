// Which stanzas wake a device (what Prosody's mod_cloud_notify calls "important"), and what the
// notification says about them. Group chat is the addition: a room message wakes a device when
// it names the user's nick in that room.
import { NS } from '../../lib/module-api.js';
import type { Element } from '../../lib/module-api.js';

const NS_EME = 'urn:xmpp:eme:0';
const ENCRYPTED: ReadonlyArray<[string, string]> = [
  ['encrypted', 'eu.siacs.conversations.axolotl'],
  ['encrypted', 'urn:xmpp:omemo:2'],
  ['openpgp', 'urn:xmpp:openpgp:0'],
  ['x', 'jabber:x:encrypted'],
];
const NS_JMI = 'urn:xmpp:jingle-message:0';

/** What a notification tells the app server about the message that caused it. */
export interface PushEvent {
  /** Who wrote it: a full or bare JID, or room@service/nick. */
  readonly sender: string;
  /** The body, when it has one (sent only where the user allowed bodies). */
  readonly body: string | undefined;
}

/** The user's nick in each room they are in, learned from the self-presence (status 110). */
export type RoomNicks = Map<string, string>;

/**
 * A received carbon copy's message (XEP-0280 §7); undefined for a sent copy; else the stanza
 * itself. Only copies from the account itself are copies (XEP-0280 §11): others are taken as is.
 */
function unwrap(m: Element, account: string | undefined): Element | undefined {
  if (account === undefined || m.attrs.from !== account) return m;
  if (m.getChild('sent', NS.carbons)) return undefined;
  return m.getChild('received', NS.carbons)?.getChild('forwarded', NS.forward)?.getChild('message') ?? m;
}

function hasContent(m: Element): boolean {
  if (m.getChild('body')) return true;
  if (m.getChild('encryption', NS_EME) || ENCRYPTED.some(([name, ns]) => m.getChild(name, ns))) return true;
  // A call (XEP-0353 propose) and invitations (XEP-0249, XEP-0045 mediated) want the user now.
  if (m.getChild('propose', NS_JMI) || m.getChild('x', 'jabber:x:conference') || m.getChild('x', NS.mucUser)?.getChild('invite')) return true;
  return false;
}

/** True when `body` names `nick` as a word of its own (case-insensitive, Unicode letters and digits). */
export function mentions(body: string, nick: string): boolean {
  if (nick.length === 0) return false;
  const hay = body.toLocaleLowerCase();
  const needle = nick.toLocaleLowerCase();
  const word = /[\p{L}\p{N}_]/u;
  for (let i = hay.indexOf(needle); i >= 0; i = hay.indexOf(needle, i + 1)) {
    const before = i === 0 ? '' : hay[i - 1];
    const after = hay.slice(i + needle.length, i + needle.length + 1);
    if (!word.test(before) && !word.test(after)) return true;
  }
  return false;
}

/**
 * The push a stanza written to a session warrants, or undefined: messages with content (a body,
 * encrypted payload, call or invitation), received carbon copies of those, and room messages that
 * mention the session's nick there; never errors, headlines, sent carbons, chat states, receipts,
 * room history or one's own room messages. `account` (the bare JID) is given for stanzas written to
 * the account's sessions, where carbon copies are unwrapped.
 */
export function pushEventFor(stanza: Element, nicks: RoomNicks | undefined, account: string | undefined): PushEvent | undefined {
  if (stanza.name !== 'message') return undefined;
  const m = unwrap(stanza, account);
  if (!m) return undefined;
  const type = (m.attrs.type as string | undefined) ?? 'normal';
  const from = (m.attrs.from as string | undefined) ?? '';
  const body = m.getChildText('body') ?? undefined;
  if (type === 'groupchat') {
    if (body === undefined || m.getChild('delay', NS.delay)) return undefined;
    const slash = from.indexOf('/');
    if (slash < 0) return undefined;
    const nick = nicks?.get(from.slice(0, slash));
    if (nick === undefined || from.slice(slash + 1) === nick || !mentions(body, nick)) return undefined;
    return { sender: from, body };
  }
  if (type !== 'chat' && type !== 'normal') return undefined;
  if (!hasContent(m)) return undefined;
  return { sender: from, body };
}

/**
 * Learns the user's nick from a room's self-presence (XEP-0045 §7.2.3, status 110) written to the
 * session, and forgets it when the user leaves. `max` bounds the rooms remembered per session.
 */
export function trackRoomNick(stanza: Element, nicks: RoomNicks, max: number): void {
  if (stanza.name !== 'presence') return;
  const x = stanza.getChild('x', NS.mucUser);
  if (!x || !x.getChildren('status').some((s) => s.attrs.code === '110')) return;
  const from = (stanza.attrs.from as string | undefined) ?? '';
  const slash = from.indexOf('/');
  if (slash < 0) return;
  const room = from.slice(0, slash);
  nicks.delete(room);
  if (stanza.attrs.type === 'unavailable') {
    // A nick change (303) is followed by the new self-presence; leaving ends it.
    return;
  }
  if (stanza.attrs.type !== undefined && stanza.attrs.type !== 'available') return;
  if (nicks.size >= max) nicks.delete(nicks.keys().next().value!);
  nicks.set(room, from.slice(slash + 1));
}
