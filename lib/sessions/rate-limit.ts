// A token bucket: `rate` per second, bursts up to `burst`. Used to slow readers, not to drop.
export class TokenBucket {
  private tokens: number;
  private last = Date.now();

  constructor(private readonly rate: number, private readonly burst: number) {
    this.tokens = burst;
  }

  /** Takes `n` tokens; returns how many ms the caller should wait before reading more (0 = none). */
  take(n = 1): number {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.rate) * 1000);
  }
}

/**
 * One token bucket per key (a client address), for events that are refused rather than slowed:
 * new connections. Bounded: beyond `maxKeys` the least recently used key is forgotten, which only
 * ever gives that key a fresh allowance.
 */
export class KeyedRateLimit {
  private readonly buckets = new Map<string, { tokens: number; last: number }>();

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly maxKeys = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one token for `key`; false (nothing taken) when its bucket is empty. */
  take(key: string): boolean {
    const now = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.burst, last: now };
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.last) / 1000) * this.ratePerSecond);
    b.last = now;
    const ok = b.tokens >= 1;
    if (ok) b.tokens -= 1;
    // Re-inserted last: Map order is least recently used first.
    this.buckets.delete(key);
    this.buckets.set(key, b);
    while (this.buckets.size > this.maxKeys) this.buckets.delete(this.buckets.keys().next().value as string);
    return ok;
  }

  get size(): number {
    return this.buckets.size;
  }
}
