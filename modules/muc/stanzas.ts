// Namespaces, status codes and small stanza builders shared by the room's handlers.
import { cloneElement, NS, xml } from '../../lib/module-api.js';
import type { Element, StanzaError } from '../../lib/module-api.js';

export const MUC_NS = {
  stableId: 'http://jabber.org/protocol/muc#stable_id',
  selfPing: 'http://jabber.org/protocol/muc#self-ping-optimization',
  request: 'http://jabber.org/protocol/muc#request',
  register: 'http://jabber.org/protocol/muc#register',
  traffic: 'http://jabber.org/protocol/muc#traffic',
  mamExtended: 'urn:xmpp:mam:2#extended',
  moderate: 'urn:xmpp:message-moderate:1',
  /** XEP-0425 0.2 (urn:xmpp:message-moderate:0 over XEP-0422 fastening), still what nbxmpp and slixmpp speak. */
  moderate0: 'urn:xmpp:message-moderate:0',
  retract0: 'urn:xmpp:message-retract:0',
  fasten: 'urn:xmpp:fasten:0',
  vcardUpdate: 'vcard-temp:x:update',
  conference: 'jabber:x:conference',
} as const;

/** XEP-0045 §16.6: the status codes this service sends. */
export const STATUS = {
  nonAnonymous: 100,
  affiliationChangedAway: 101,
  configChanged: 104,
  self: 110,
  loggingOn: 170,
  loggingOff: 171,
  nowNonAnonymous: 172,
  nowSemiAnonymous: 173,
  created: 201,
  nickAssigned: 210,
  banned: 301,
  nickChanged: 303,
  kicked: 307,
  affiliationRemoved: 321,
  membersOnlyRemoved: 322,
  shutdown: 332,
  errorRemoved: 333,
} as const;

export function statusElements(codes: readonly number[]): Element[] {
  return [...new Set(codes)].sort((a, b) => a - b).map((code) => xml('status', { code: String(code) }));
}

/** XEP-0082 timestamps with milliseconds (XEP-0203 delay stamps, MAM). */
export function stamp(ms: number): string {
  return new Date(ms).toISOString();
}

/** Parses a XEP-0082 DateTime; undefined when it is not one. */
export function parseStamp(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(value.trim())) return undefined;
  const ms = Date.parse(value.trim());
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * RFC 6120 §8.3.1: the error reply to a stanza, from `from`, carrying the original payload (so a
 * presence error keeps its `<x xmlns='…muc'/>`, as XEP-0045's examples show).
 */
export function errorReply(original: Element, err: StanzaError, from: string): Element {
  const reply = xml(original.name, {
    type: 'error',
    id: original.attrs.id as string | undefined,
    from,
    to: original.attrs.from as string | undefined,
  });
  for (const child of original.getChildElements()) if (child.name !== 'error') reply.cnode(cloneElement(child));
  reply.cnode(err.toElement());
  return reply;
}

/** Children a client may not bring into the room: only the room speaks MUC, stanza ids and occupant ids. */
export function isServiceOwned(child: Element, roomJid?: string): boolean {
  const ns = child.attrs.xmlns as string | undefined;
  // XEP-0317: hats are given by the room, never claimed.
  if (ns === NS.mucUser || ns === NS.muc || ns === NS.occupantId || ns === 'urn:xmpp:hats:0') return true;
  // XEP-0359 §3.1: stanza-ids claiming to be by the room are removed.
  if (ns === NS.sid && child.name === 'stanza-id' && roomJid !== undefined && child.attrs.by === roomJid) return true;
  return false;
}

/** A client's presence as the room reflects it: MUC extensions and occupant ids removed (XEP-0045 §17.3 rule 6). */
export function strippedPresence(el: Element): Element {
  return xml('presence', {}, el.getChildElements().filter((c) => !isServiceOwned(c)).map((c) => cloneElement(c)));
}
