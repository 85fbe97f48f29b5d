// RFC 4226 HOTP and RFC 6238 TOTP with node:crypto HMAC, and the RFC 4648 base32 that
// authenticator apps use for the shared secret (the `secret` of an otpauth:// URI).
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export type TotpAlgorithm = 'SHA1' | 'SHA256' | 'SHA512';

export interface TotpParams {
  algorithm: TotpAlgorithm;
  digits: number;
  /** Time step X, seconds (RFC 6238 §4.1). */
  period: number;
}

/** What every authenticator app supports (Google Authenticator ignores anything else). */
export const DEFAULT_TOTP: TotpParams = { algorithm: 'SHA1', digits: 6, period: 30 };

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export function base32Encode(data: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of data) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** Decodes base32 (case-insensitive, padding and spaces ignored); undefined when invalid. */
export function base32Decode(text: string): Buffer | undefined {
  const clean = text.replace(/[\s=]/g, '').toUpperCase();
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of clean) {
    const idx = BASE32.indexOf(ch);
    if (idx < 0) return undefined;
    value = ((value << 5) | idx) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** A new shared secret: 20 bytes, the HMAC-SHA-1 output size RFC 4226 §4 recommends. */
export function newTotpSecret(): Buffer {
  return randomBytes(20);
}

/** RFC 4226 §5.3: HOTP(K, C) with dynamic truncation, as a zero-padded decimal string. */
export function hotp(secret: Buffer, counter: number, digits = 6, algorithm: TotpAlgorithm = 'SHA1'): string {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac(algorithm.toLowerCase(), secret).update(msg).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = ((mac[offset]! & 0x7f) << 24) | (mac[offset + 1]! << 16) | (mac[offset + 2]! << 8) | mac[offset + 3]!;
  return String(binary % 10 ** digits).padStart(digits, '0');
}

/** RFC 6238 §4.2: the time step T for a Unix time in milliseconds. */
export function timeStep(nowMs: number, period = DEFAULT_TOTP.period): number {
  return Math.floor(nowMs / 1000 / period);
}

export function totp(secret: Buffer, nowMs: number, params: TotpParams = DEFAULT_TOTP): string {
  return hotp(secret, timeStep(nowMs, params.period), params.digits, params.algorithm);
}

/**
 * Checks a code against the steps within `window` of now (RFC 6238 §5.2 allows one step of
 * clock drift either way) and returns the step it matched, so the caller can refuse a replay
 * of that step or an earlier one; undefined when it matches none.
 */
export function matchTotp(secret: Buffer, code: string, nowMs: number, window = 1, params: TotpParams = DEFAULT_TOTP): number | undefined {
  if (!/^\d+$/.test(code) || code.length !== params.digits) return undefined;
  const now = timeStep(nowMs, params.period);
  const given = Buffer.from(code);
  let matched: number | undefined;
  // Every candidate is computed and compared, so the time taken says nothing about which matched.
  for (let step = now - window; step <= now + window; step++) {
    const expected = Buffer.from(hotp(secret, step, params.digits, params.algorithm));
    if (timingSafeEqual(expected, given) && matched === undefined) matched = step;
  }
  return matched;
}

/** The Key URI Format authenticator apps read from a QR code (otpauth://totp/...). */
export function otpauthUri(secret: Buffer, account: string, issuer: string, params: TotpParams = DEFAULT_TOTP): string {
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(account)}`;
  const query = new URLSearchParams({
    secret: base32Encode(secret),
    issuer,
    algorithm: params.algorithm,
    digits: String(params.digits),
    period: String(params.period),
  });
  return `otpauth://totp/${label}?${query.toString()}`;
}
