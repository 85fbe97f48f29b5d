// XEP-0185 dialback keys (XEP-0220 §2.1.1): HMAC-SHA256 keyed with the hex SHA-256 of a secret
// that never leaves this server, over "Receiving Originating StreamID".
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export class DialbackKeys {
  private readonly hashedSecret: string;

  /** A random secret per process unless one is given: keys only have to outlive a handshake. */
  constructor(secret: string = randomBytes(32).toString('hex')) {
    this.hashedSecret = createHash('sha256').update(secret).digest('hex');
  }

  /**
   * The key an Initiating Server for `originating` sends to the Receiving Server `receiving` on
   * the stream whose id (from the receiving side's header) is `streamId`.
   */
  generate(receiving: string, originating: string, streamId: string): string {
    return createHmac('sha256', this.hashedSecret).update(`${receiving} ${originating} ${streamId}`).digest('hex');
  }

  /** Constant-time check of a key a Receiving Server asks us (the Authoritative Server) about. */
  verify(receiving: string, originating: string, streamId: string, key: string): boolean {
    const expected = Buffer.from(this.generate(receiving, originating, streamId), 'utf8');
    const given = Buffer.from(key.trim().toLowerCase(), 'utf8');
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}
