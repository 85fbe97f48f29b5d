// XEP-0198 sequence arithmetic and the queue of stanzas the peer has not acknowledged yet.

/** XEP-0198 §4: 'h' is an xs:unsignedInt; after 2^32-1 it goes back to zero. */
export const H_MODULUS = 2 ** 32;

/** `h` plus `n`, modulo 2^32. */
export function addH(h: number, n: number): number {
  return (h + n) % H_MODULUS;
}

/** How many stanzas an ack of `h` covers beyond the last one acknowledged (`acked`), modulo 2^32. */
export function ackedSince(acked: number, h: number): number {
  return (h - acked + H_MODULUS) % H_MODULUS;
}

/** An 'h' attribute: a decimal xs:unsignedInt (0 to 2^32-1); undefined when it is anything else. */
export function parseH(raw: unknown): number | undefined {
  if (typeof raw !== 'string' || !/^\d{1,10}$/.test(raw)) return undefined;
  const n = Number(raw);
  return n < H_MODULUS ? n : undefined;
}

export type AckResult = { ok: true; acknowledged: number } | { ok: false; sent: number };

/**
 * What was sent and not acknowledged, oldest first. The stanza at position i has sequence number
 * `acked + 1 + i` (mod 2^32), so the count sent is always `acked + length`.
 */
export class UnackedQueue<T> {
  private items: T[] = [];
  private head = 0;
  /** The 'h' the peer last acknowledged (0 until it does). */
  acked = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  /** The stanzas sent so far, modulo 2^32 (the `send-count` of XEP-0198 §6). */
  get sent(): number {
    return addH(this.acked, this.length);
  }

  push(item: T): void {
    this.items.push(item);
  }

  /**
   * Applies an ack: drops the stanzas it covers. An `h` covering more than was sent changes
   * nothing and reports the count sent (XEP-0198 §6 `<handled-count-too-high/>`).
   */
  ack(h: number): AckResult {
    const n = ackedSince(this.acked, h);
    if (n > this.length) return { ok: false, sent: this.sent };
    this.head += n;
    this.acked = h;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return { ok: true, acknowledged: n };
  }

  /** The unacknowledged stanzas, oldest first. */
  pending(): T[] {
    return this.items.slice(this.head);
  }

  /** Takes every unacknowledged stanza out (the session is ending). */
  drain(): T[] {
    const out = this.pending();
    this.acked = this.sent;
    this.items = [];
    this.head = 0;
    return out;
  }
}
