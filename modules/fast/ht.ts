// The HT-* SASL mechanisms (draft-schmaus-kitten-sasl-ht) for XEP-0484 FAST: one message from
// the client, `authcid NUL HMAC(token, "Initiator" || cb-data)`, answered by success carrying
// `HMAC(token, "Responder" || cb-data)`.
//
// Tokens are stored hashed: they are longer than the hash's block (64 bytes for SHA-256, 128 for
// SHA-512), and RFC 2104 §2 hashes such a key first, so HMAC(token, m) = HMAC(H(token), m) and the
// server never needs the token itself.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { decodeUtf8Strict, prepareUsername, saslFailure } from '../../lib/module-api.js';
import type { ChannelBindingType, SaslContext, SaslExchange, SaslMechanism, SaslStep } from '../../lib/module-api.js';

export type HtHash = 'sha256' | 'sha512';

/** The hash of an HT mechanism name (HT-SHA-256-*, HT-SHA-512-*). */
export function htHashOf(mechanism: string): HtHash {
  return mechanism.startsWith('HT-SHA-512-') ? 'sha512' : 'sha256';
}

/** The hash block size in bytes: a token must be longer for its hash to be its HMAC key. */
export const HT_BLOCK_BYTES: Readonly<Record<HtHash, number>> = { sha256: 64, sha512: 128 };

/** The channel binding and hash of each HT variant (XEP-0484 uses these names). */
export const HT_MECHANISMS: ReadonlyArray<{ name: string; binding: ChannelBindingType | undefined; hash: HtHash }> = [
  { name: 'HT-SHA-256-EXPR', binding: 'tls-exporter', hash: 'sha256' },
  { name: 'HT-SHA-256-UNIQ', binding: 'tls-unique', hash: 'sha256' },
  { name: 'HT-SHA-256-ENDP', binding: 'tls-server-end-point', hash: 'sha256' },
  { name: 'HT-SHA-256-NONE', binding: undefined, hash: 'sha256' },
  { name: 'HT-SHA-512-EXPR', binding: 'tls-exporter', hash: 'sha512' },
  { name: 'HT-SHA-512-UNIQ', binding: 'tls-unique', hash: 'sha512' },
  { name: 'HT-SHA-512-ENDP', binding: 'tls-server-end-point', hash: 'sha512' },
  { name: 'HT-SHA-512-NONE', binding: undefined, hash: 'sha512' },
];

/** What the server keeps of a token: its hash, which is also its HMAC key. */
export function tokenKey(token: string, hash: HtHash = 'sha256'): Buffer {
  return createHash(hash).update(token, 'utf8').digest();
}

export function htMessage(key: Buffer, label: 'Initiator' | 'Responder', cb: Buffer, hash: HtHash = 'sha256'): Buffer {
  return createHmac(hash, key).update(Buffer.concat([Buffer.from(label, 'utf8'), cb])).digest();
}

/** A stored token that may match. */
export interface TokenCandidate {
  key: Buffer;
}

export interface TokenVerifier {
  /** The live tokens of this client (user agent) for this mechanism. */
  candidates(host: string, user: string, clientId: string, mechanism: string): Promise<TokenCandidate[]>;
  /** A token was used successfully (rotation bookkeeping). */
  used(host: string, user: string, clientId: string, mechanism: string, key: Buffer): Promise<void>;
}

export function htMechanism(name: string, binding: ChannelBindingType | undefined, verifier: TokenVerifier): SaslMechanism {
  const hash = htHashOf(name);
  return {
    name,
    available(ctx: SaslContext): boolean {
      // XEP-0484 §6: over a secure connection only.
      if (!ctx.tls) return false;
      return binding === undefined || ctx.tls.bindingData(binding) !== undefined;
    },
    create(ctx: SaslContext): SaslExchange {
      const cb = binding === undefined ? Buffer.alloc(0) : ctx.tls?.bindingData(binding);
      return {
        async start(initial): Promise<SaslStep> {
          if (!initial) return saslFailure('malformed-request', 'an initial response is required');
          const nul = initial.indexOf(0);
          if (nul <= 0) return saslFailure('malformed-request');
          const authcid = decodeUtf8Strict(initial.subarray(0, nul));
          const proof = initial.subarray(nul + 1);
          const user = authcid === undefined ? undefined : prepareUsername(authcid);
          if (user === undefined || cb === undefined) return saslFailure('not-authorized');
          ctx.claim?.(ctx.host, user);
          const clientId = ctx.userAgentId;
          if (clientId === undefined) return saslFailure('not-authorized', 'FAST needs a <user-agent id/>');
          for (const c of await verifier.candidates(ctx.host, user, clientId, name)) {
            const expected = htMessage(c.key, 'Initiator', cb, hash);
            if (expected.length === proof.length && timingSafeEqual(expected, proof)) {
              await verifier.used(ctx.host, user, clientId, name, c.key);
              return { kind: 'success', user, data: htMessage(c.key, 'Responder', cb, hash) };
            }
          }
          // XEP-0484 §6: an untrusted token fails with credentials-expired; the client falls back.
          return saslFailure('credentials-expired');
        },
        async step(): Promise<SaslStep> {
          return saslFailure('malformed-request', 'HT mechanisms take one message');
        },
      };
    },
  };
}
