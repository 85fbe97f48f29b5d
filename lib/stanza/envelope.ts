// Typed envelopes over parsed stanzas: prepared JIDs and `type` narrowed to the RFC values.
// The IQ shape rules (RFC 6120 §8.2.3) are checked once, here.
import { Element } from '../xml/element.js';
import { Jid } from '../jid/jid.js';
import { StanzaError } from './error.js';

export const MESSAGE_TYPES = ['normal', 'chat', 'groupchat', 'headline', 'error'] as const;
export const PRESENCE_TYPES = [
  'available', 'unavailable', 'subscribe', 'subscribed', 'unsubscribe', 'unsubscribed', 'probe', 'error',
] as const;
export const IQ_TYPES = ['get', 'set', 'result', 'error'] as const;

export type MessageType = (typeof MESSAGE_TYPES)[number];
export type PresenceType = (typeof PRESENCE_TYPES)[number];
export type IqType = (typeof IQ_TYPES)[number];

interface StanzaBase {
  readonly el: Element;
  /** Always set: stamped by the server for client streams, checked for s2s. */
  readonly from: Jid;
  /** Absent means "the sender's own account" (RFC 6120 §10.3). */
  readonly to: Jid | undefined;
  readonly id: string | undefined;
}

export interface MessageStanza extends StanzaBase {
  readonly kind: 'message';
  readonly type: MessageType;
}
export interface PresenceStanza extends StanzaBase {
  readonly kind: 'presence';
  readonly type: PresenceType;
}
export interface IqStanza extends StanzaBase {
  readonly kind: 'iq';
  readonly type: IqType;
  readonly id: string;
  /** The one child of a get or set; the optional child of a result. */
  readonly payload: Element | undefined;
}

export type Stanza = MessageStanza | PresenceStanza | IqStanza;
export type StanzaKind = Stanza['kind'];

export function isStanzaName(name: string): name is StanzaKind {
  return name === 'message' || name === 'presence' || name === 'iq';
}

function parseJidAttr(el: Element, attr: 'to' | 'from'): Jid | undefined {
  const raw = el.attrs[attr] as string | undefined;
  if (raw === undefined) return undefined;
  const jid = Jid.tryParse(raw);
  if (!jid) throw StanzaError.jidMalformed(`invalid '${attr}' address`);
  return jid;
}

/**
 * Builds the typed envelope. `from` is the stamped sender; for c2s it overrides whatever the
 * client wrote (the caller already put it into the element). Throws StanzaError on bad shape.
 */
export function toEnvelope(el: Element, from: Jid): Stanza {
  const to = parseJidAttr(el, 'to');
  const id = el.attrs.id as string | undefined;
  const rawType = el.attrs.type as string | undefined;
  switch (el.name) {
    case 'message': {
      const type = (rawType ?? 'normal') as MessageType;
      // RFC 6121 §5.2.2: an unknown type is treated as normal.
      const known = (MESSAGE_TYPES as readonly string[]).includes(type) ? type : 'normal';
      return { kind: 'message', el, from, to, id, type: known };
    }
    case 'presence': {
      const type = (rawType ?? 'available') as PresenceType;
      if (!(PRESENCE_TYPES as readonly string[]).includes(type) || rawType === 'available') {
        throw StanzaError.badRequest('unknown presence type');
      }
      return { kind: 'presence', el, from, to, id, type };
    }
    case 'iq': {
      const type = rawType as IqType;
      if (!(IQ_TYPES as readonly string[]).includes(type)) throw StanzaError.badRequest('iq needs a valid type');
      if (id === undefined || id === '') throw StanzaError.badRequest('iq needs an id');
      const children = el.getChildElements();
      if ((type === 'get' || type === 'set') && children.length !== 1) {
        throw StanzaError.badRequest('iq get/set must have exactly one child');
      }
      if (type === 'result' && children.length > 1) throw StanzaError.badRequest('iq result has at most one child');
      const payload = type === 'error' ? undefined : children[0];
      return { kind: 'iq', el, from, to, id, type, payload };
    }
    default:
      throw StanzaError.badRequest('not a stanza');
  }
}
