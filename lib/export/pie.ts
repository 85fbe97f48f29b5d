// XEP-0227 (Portable Import/Export Format for XMPP-IM Servers): the names it uses, and the
// extensions Parley adds where the XEP has no element (kept in Parley's own namespace, which
// other servers ignore).
export const PIE = {
  /** XEP-0227 §3 root and its <host/> and <user/>. */
  root: 'urn:xmpp:pie:0',
  /** XEP-0227 §3.2 SCRAM credentials, one element per mechanism. */
  scram: 'urn:xmpp:pie:0#scram',
  /** XEP-0227 §3.6 message archive (XEP-0313 <result/> elements). */
  mam: 'urn:xmpp:pie:0#mam',
  roster: 'jabber:iq:roster',
  vcard: 'vcard-temp',
  private: 'jabber:iq:private',
  pubsub: 'http://jabber.org/protocol/pubsub',
  pubsubOwner: 'http://jabber.org/protocol/pubsub#owner',
  mamResult: 'urn:xmpp:mam:2',
  forward: 'urn:xmpp:forward:0',
  delay: 'urn:xmpp:delay',
  client: 'jabber:client',
  blocking: 'urn:xmpp:blocking',
  /** Parley's extensions: a bcrypt secret (accounts imported from a web application) and the disabled state. */
  parley: 'urn:parley:pie:0',
} as const;

/** `SCRAM-SHA-256` ↔ the hash names of lib/accounts. */
export const SCRAM_MECHANISMS = { 'SHA-1': 'SCRAM-SHA-1', 'SHA-256': 'SCRAM-SHA-256', 'SHA-512': 'SCRAM-SHA-512' } as const;

/** XEP-0082 date-time, to the millisecond. */
export function stamp(ms: number): string {
  return new Date(ms).toISOString();
}
