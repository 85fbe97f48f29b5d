// Helpers shared by the mechanisms and the negotiator.
import saslprep from '@mongodb-js/saslprep';
import { Jid, prepDomain, prepLocal } from '../jid/jid.js';

// RFC 4648 §4 base64 with mandatory padding and nothing else (RFC 6120 §6.4.2: no whitespace).
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Decodes base64 strictly: the alphabet of RFC 4648 §4, correct padding, and zero pad bits
 * (so each value has exactly one encoding). Returns undefined for anything else.
 */
export function decodeBase64Strict(text: string): Buffer | undefined {
  if (!BASE64.test(text)) return undefined;
  const out = Buffer.from(text, 'base64');
  return out.toString('base64') === text ? out : undefined;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes UTF-8, or returns undefined when the bytes are not valid UTF-8. */
export function decodeUtf8Strict(data: Buffer): string | undefined {
  try {
    return utf8.decode(data);
  } catch {
    return undefined;
  }
}

/**
 * A SASL authentication identity as an XMPP username: SASLprep as a query string (RFC 5802
 * §5.1, RFC 4616 §2), then the JID localpart profile (RFC 7622 §3.3), since the identity becomes
 * the localpart of the bound JID. Undefined when it cannot be a localpart.
 */
export function prepareUsername(raw: string): string | undefined {
  try {
    return prepLocal(saslprep(raw, { allowUnassigned: true }));
  } catch {
    return undefined;
  }
}

/**
 * RFC 6120 §6.3.8: an authorization identity may only name the account itself here, as its bare
 * JID (`user@host`) or as the bare username.
 */
export function authzidAllowed(authzid: string, user: string | undefined, host: string): boolean {
  if (user === undefined) return false;
  if (authzid.includes('@') || authzid.includes('/')) {
    const jid = Jid.tryParse(authzid);
    let domain: string;
    try {
      domain = prepDomain(host);
    } catch {
      return false;
    }
    return jid !== undefined && jid.isBare && jid.local === user && jid.domain === domain;
  }
  return prepareUsername(authzid) === user;
}
