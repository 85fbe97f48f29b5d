// XEP-0421 §4.1: occupant ids are stable (one per real bare JID and room), unique and
// pseudonymous: an HMAC of the real bare JID under a random secret kept with the room.
import { createHmac, randomBytes } from 'node:crypto';

/** A new room secret (32 random bytes, hex). */
export function newRoomSecret(): string {
  return randomBytes(32).toString('hex');
}

/** The occupant id of a real bare JID in the room with this secret (43 characters, base64url). */
export function occupantId(secret: string, bareJid: string): string {
  return createHmac('sha256', Buffer.from(secret, 'hex')).update(bareJid, 'utf8').digest('base64url');
}
