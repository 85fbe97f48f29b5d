// Random identifiers (stream ids, SCRAM nonces, session ids) cut from a pool of bytes filled by
// the CSPRNG a few kilobytes at a time. Each crypto.randomBytes call goes down to OpenSSL's
// generator, which on every call checks the process id (a system call) and takes its lock: half a
// dozen calls per login were a few percent of a login's CPU. Node's randomUUID pools the same way.
// Bytes are handed out once and the pool is overwritten as it is used up, so the values are as
// unpredictable as randomBytes'.
import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
/** Larger requests than this go straight to the generator. */
const MAX_POOLED = 64;

const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

/** `n` random bytes, copied out of the pool (a fresh Buffer the caller owns). */
export function pooledRandomBytes(n: number): Buffer {
  if (n > MAX_POOLED) return randomFillSync(Buffer.alloc(n));
  if (offset + n > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const out = Buffer.from(pool.subarray(offset, offset + n));
  // Never handed out twice, and not left readable in memory once used.
  pool.fill(0, offset, offset + n);
  offset += n;
  return out;
}

/** `n` random bytes as text (base64url for stream and session ids, base64 for SCRAM nonces). */
export function randomToken(n: number, encoding: 'base64url' | 'base64' | 'hex' = 'base64url'): string {
  if (n > MAX_POOLED || offset + n > POOL_BYTES) return pooledRandomBytes(n).toString(encoding);
  const text = pool.toString(encoding, offset, offset + n);
  pool.fill(0, offset, offset + n);
  offset += n;
  return text;
}
