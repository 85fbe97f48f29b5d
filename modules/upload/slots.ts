// Slot names, signatures and the checks on a slot request (XEP-0363 §4).
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const UPLOAD_PATH = '/upload/';

/** The value signed into a PUT URL: the slot, what may be uploaded to it, and until when. */
function signed(id: string, filename: string, size: number, contentType: string, expires: number): string {
  return [UPLOAD_PATH + id, filename, String(size), contentType, String(expires)].join('\n');
}

export function sign(secret: Buffer, id: string, filename: string, size: number, contentType: string, expires: number): string {
  return createHmac('sha256', secret).update(signed(id, filename, size, contentType, expires)).digest('base64url');
}

export function verify(secret: Buffer, sig: string, id: string, filename: string, size: number, contentType: string, expires: number): boolean {
  const want = Buffer.from(sign(secret, id, filename, size, contentType, expires));
  const got = Buffer.from(sig);
  return got.length === want.length && timingSafeEqual(got, want);
}

export function newSlotId(): string {
  return randomBytes(18).toString('base64url');
}

/**
 * The file name as stored and served: no path separators or control characters, at most 200
 * characters. Undefined when nothing usable is left.
 */
export function cleanFilename(raw: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  const name = raw.normalize('NFC').replace(/[\u0000-\u001f\u007f/\\]/g, '_').trim();
  if (name === '' || name === '.' || name === '..') return undefined;
  return [...name].slice(0, 200).join('');
}

/** A media type such as `image/jpeg` or `text/plain; charset=utf-8`; lower-cased type. Undefined when malformed. */
export function cleanContentType(raw: string): string | undefined {
  const m = /^\s*([A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+)\s*(;[\x20-\x7e]*)?$/.exec(raw);
  if (!m || raw.length > 255) return undefined;
  return m[1]!.toLowerCase() + (m[2] ?? '').replace(/^\s*;\s*/, '; ');
}

/** Two media types match when their type/subtype do (parameters such as charset are not compared). */
export function sameMediaType(a: string, b: string): boolean {
  const base = (t: string) => t.split(';')[0]!.trim().toLowerCase();
  return base(a) === base(b);
}

/** RFC 8187 `filename*` value. */
export function dispositionFilename(name: string): string {
  return `UTF-8''${encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;
}
