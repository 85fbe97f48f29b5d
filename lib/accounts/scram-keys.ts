// RFC 5802 §3: the SCRAM key schedule, shared by account storage (which keeps StoredKey and
// ServerKey instead of the password) and the SASL mechanisms (which verify proofs against them).
import { createHash, createHmac, pbkdf2, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import saslprep from '@mongodb-js/saslprep';
import type { ScramCredential, ScramHash } from './types.js';

const pbkdf2Async = promisify(pbkdf2);

type NodeHash = 'sha1' | 'sha256' | 'sha512';

const NODE_HASH: Record<ScramHash, NodeHash> = { 'SHA-1': 'sha1', 'SHA-256': 'sha256', 'SHA-512': 'sha512' };
const HASH_BYTES: Record<ScramHash, number> = { 'SHA-1': 20, 'SHA-256': 32, 'SHA-512': 64 };

/** Output length of the hash in bytes (the length of every key and of the client proof). */
export function hashLength(hash: ScramHash): number {
  return HASH_BYTES[hash];
}

/** H(str) */
export function digest(hash: ScramHash, data: Buffer): Buffer {
  return createHash(NODE_HASH[hash]).update(data).digest();
}

/** HMAC(key, str) */
export function hmac(hash: ScramHash, key: Buffer, data: Buffer | string): Buffer {
  return createHmac(NODE_HASH[hash], key).update(data).digest();
}

/** XOR of two equal-length buffers. */
export function xor(a: Buffer, b: Buffer): Buffer {
  if (a.length !== b.length) throw new RangeError('xor: buffers differ in length');
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/**
 * Compares two secrets in time independent of their content. Unequal lengths are reported as
 * unequal without leaking where they differ (the lengths of our keys are public anyway).
 */
export function constantTimeEqual(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) {
    // Still do a comparison of the same cost so that the length mismatch is not a fast path.
    timingSafeEqual(a, a);
    return false;
  }
  return timingSafeEqual(a, b);
}

/**
 * RFC 5802 §2.2 Normalize(str): SASLprep (RFC 4013) as a stored string, so unassigned code
 * points are prohibited. Throws when the password contains prohibited characters or when it
 * normalises to nothing.
 */
export function normalizePassword(password: string): string {
  const prepared = saslprep(password);
  if (prepared.length === 0) throw new RangeError('password is empty after SASLprep');
  return prepared;
}

/** SaltedPassword := Hi(Normalize(password), salt, i), computed off the event loop. */
export async function saltedPassword(hash: ScramHash, password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  return pbkdf2Async(Buffer.from(normalizePassword(password), 'utf8'), salt, iterations, HASH_BYTES[hash], NODE_HASH[hash]);
}

/** ClientKey := HMAC(SaltedPassword, "Client Key") */
export function clientKeyOf(hash: ScramHash, salted: Buffer): Buffer {
  return hmac(hash, salted, 'Client Key');
}

/** StoredKey := H(ClientKey) */
export function storedKeyOf(hash: ScramHash, clientKey: Buffer): Buffer {
  return digest(hash, clientKey);
}

/** ServerKey := HMAC(SaltedPassword, "Server Key") */
export function serverKeyOf(hash: ScramHash, salted: Buffer): Buffer {
  return hmac(hash, salted, 'Server Key');
}

/** Derives the credential the server stores for one hash. */
export async function deriveScramCredential(
  hash: ScramHash,
  password: string,
  salt: Buffer,
  iterations: number,
): Promise<ScramCredential> {
  const salted = await saltedPassword(hash, password, salt, iterations);
  return {
    salt,
    iterations,
    storedKey: storedKeyOf(hash, clientKeyOf(hash, salted)),
    serverKey: serverKeyOf(hash, salted),
  };
}

/** True when `password` produces the credential's StoredKey (constant-time comparison). */
export async function passwordMatches(hash: ScramHash, credential: ScramCredential, password: string): Promise<boolean> {
  let salted: Buffer;
  try {
    salted = await saltedPassword(hash, password, credential.salt, credential.iterations);
  } catch {
    return false;
  }
  return constantTimeEqual(storedKeyOf(hash, clientKeyOf(hash, salted)), credential.storedKey);
}
