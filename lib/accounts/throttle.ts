// Login throttling: slows password guessing per account and per client address. In memory and
// per process (a cluster node throttles what it sees), bounded in size.
import { isIPv4, isIPv6 } from 'node:net';

export interface LoginThrottleOptions {
  /** Failures for one account within the window before it is locked. Default 5. */
  accountFailures?: number;
  /** Failures from one address within the window before it is locked. Default 20. */
  ipFailures?: number;
  /** Sliding window for counting failures, ms. Default 5 minutes. */
  windowMs?: number;
  /** First lockout, ms; each further lockout doubles it. Default 1 minute. */
  lockoutMs?: number;
  /** Longest lockout, ms. Default 15 minutes. */
  maxLockoutMs?: number;
  /**
   * The answer to a failed attempt waits this long, doubled for each further failure of the
   * account or address in the window (capped by maxFailureDelayMs); 0 turns it off. Default 250.
   */
  failureDelayMs?: number;
  /** Longest wait before a failure is answered, ms. Default 4000. */
  maxFailureDelayMs?: number;
  /** Most addresses and accounts remembered (each kind). Default 10000. */
  maxEntries?: number;
  /** Clock, for tests. */
  now?: () => number;
}

export interface ThrottleVerdict {
  allowed: boolean;
  /** 0 when allowed, else how long until the next attempt is accepted. */
  retryAfterMs: number;
}

interface Entry {
  /** Times of the recent failures, oldest first, at most `threshold` of them. */
  failures: number[];
  /** How many lockouts in a row; the next lockout lasts lockoutMs * 2^level. */
  level: number;
  lockedUntil: number;
  lastFailure: number;
}

// How many of the least recently used entries to inspect for one that is not locked, so that
// flooding the table with fresh names cannot cheaply evict a lockout.
const EVICTION_SCAN = 32;

class Table {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly threshold: number,
    private readonly maxEntries: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  peek(key: string): Entry | undefined {
    return this.entries.get(key);
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  /** Returns the entry, moved to the most recently used end; creates it when missing. */
  touch(key: string, now: number): Entry {
    let e = this.entries.get(key);
    if (e !== undefined) {
      this.entries.delete(key);
    } else {
      e = { failures: [], level: 0, lockedUntil: 0, lastFailure: 0 };
      if (this.entries.size >= this.maxEntries) this.evict(now);
    }
    this.entries.set(key, e);
    return e;
  }

  private evict(now: number): void {
    let scanned = 0;
    let oldest: string | undefined;
    for (const [key, e] of this.entries) {
      oldest ??= key;
      if (e.lockedUntil <= now) {
        this.entries.delete(key);
        return;
      }
      if (++scanned >= EVICTION_SCAN) break;
    }
    if (oldest !== undefined) this.entries.delete(oldest);
  }

  get limit(): number {
    return this.threshold;
  }
}

/** Counts one address per IPv4 address and per IPv6 /64 (what one host usually gets). */
export function throttleAddressKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped !== null) return mapped[1]!;
  if (isIPv4(ip) || !isIPv6(ip)) return ip;
  const [head = '', tail = ''] = ip.toLowerCase().split('::', 2);
  const left = head === '' ? [] : head.split(':');
  const right = ip.includes('::') ? (tail === '' ? [] : tail.split(':')) : [];
  const groups = ip.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

export class LoginThrottle {
  private readonly windowMs: number;
  private readonly lockoutMs: number;
  private readonly maxLockoutMs: number;
  private readonly failureDelayMs: number;
  private readonly maxFailureDelayMs: number;
  private readonly now: () => number;
  private readonly ips: Table;
  private readonly accounts: Table;

  constructor(options: LoginThrottleOptions = {}) {
    this.windowMs = options.windowMs ?? 5 * 60_000;
    this.lockoutMs = options.lockoutMs ?? 60_000;
    this.maxLockoutMs = options.maxLockoutMs ?? 15 * 60_000;
    this.failureDelayMs = options.failureDelayMs ?? 250;
    this.maxFailureDelayMs = options.maxFailureDelayMs ?? 4000;
    if (!(this.failureDelayMs >= 0) || !(this.maxFailureDelayMs >= 0)) throw new RangeError('LoginThrottle: failure delays must be at least 0');
    this.now = options.now ?? Date.now;
    const maxEntries = options.maxEntries ?? 10_000;
    this.ips = new Table(options.ipFailures ?? 20, maxEntries);
    this.accounts = new Table(options.accountFailures ?? 5, maxEntries);
    for (const [name, v] of Object.entries({
      accountFailures: this.accounts.limit,
      ipFailures: this.ips.limit,
      windowMs: this.windowMs,
      lockoutMs: this.lockoutMs,
      maxLockoutMs: this.maxLockoutMs,
      maxEntries,
    })) {
      if (!Number.isFinite(v) || v < 1) throw new RangeError(`LoginThrottle: ${name} must be at least 1, got ${v}`);
    }
  }

  /** May this address try to log in (to this account, when already known)? */
  check(ip: string, account?: string): ThrottleVerdict {
    const now = this.now();
    let until = this.ips.peek(throttleAddressKey(ip))?.lockedUntil ?? 0;
    if (account !== undefined) until = Math.max(until, this.accounts.peek(account)?.lockedUntil ?? 0);
    return until > now ? { allowed: false, retryAfterMs: until - now } : { allowed: true, retryAfterMs: 0 };
  }

  /** Records a failed attempt (the account when known: the name the client claimed). */
  failed(ip: string, account?: string): void {
    const now = this.now();
    this.record(this.ips, throttleAddressKey(ip), now);
    if (account !== undefined) this.record(this.accounts, account, now);
  }

  /**
   * How long to wait before answering the failure just recorded: grows with the failures of the
   * account and of the address in the window, so guessing gets slower long before the lockout.
   */
  failureDelay(ip: string, account?: string): number {
    if (this.failureDelayMs === 0) return 0;
    const now = this.now();
    const recent = (e: Entry | undefined) => (e === undefined ? 0 : e.failures.filter((t) => now - t < this.windowMs).length);
    const n = Math.max(recent(this.ips.peek(throttleAddressKey(ip))), account === undefined ? 0 : recent(this.accounts.peek(account)));
    if (n === 0) return 0;
    return Math.min(this.failureDelayMs * 2 ** Math.min(n - 1, 20), this.maxFailureDelayMs);
  }

  /**
   * Records a successful login: forgets the account's failures. The address keeps its count,
   * or one valid account would let its owner reset the counter between guesses at others.
   */
  succeeded(_ip: string, account?: string): void {
    if (account !== undefined) this.accounts.delete(account);
  }

  /** Entries held, for metrics and tests. */
  get size(): { ips: number; accounts: number } {
    return { ips: this.ips.size, accounts: this.accounts.size };
  }

  private record(table: Table, key: string, now: number): void {
    const e = table.touch(key, now);
    if (e.lockedUntil > now) return; // already refused; a failure now cannot be a guess
    // A quiet window after the last failure or lockout forgives the past.
    if (now - Math.max(e.lastFailure, e.lockedUntil) > this.windowMs) {
      e.level = 0;
      e.failures = [];
    }
    e.lastFailure = now;
    e.failures = e.failures.filter((t) => now - t < this.windowMs);
    e.failures.push(now);
    if (e.failures.length > table.limit) e.failures.shift();
    // After one lockout, every further failure in the window locks again, for twice as long.
    if (e.level > 0 || e.failures.length >= table.limit) {
      e.lockedUntil = now + Math.min(this.lockoutMs * 2 ** e.level, this.maxLockoutMs);
      e.level = Math.min(e.level + 1, 30);
    }
  }
}
