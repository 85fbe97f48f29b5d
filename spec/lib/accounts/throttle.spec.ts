import { expect } from 'chai';
import { LoginThrottle, throttleAddressKey } from '../../../lib/accounts/throttle.js';

const MIN = 60_000;

describe('LoginThrottle', () => {
  let now: number;
  const make = (o: ConstructorParameters<typeof LoginThrottle>[0] = {}) => new LoginThrottle({ now: () => now, ...o });
  beforeEach(() => {
    now = 10_000_000;
  });

  it('allows 4 failures for an account and refuses after the 5th for a minute', () => {
    const t = make();
    for (let i = 0; i < 4; i++) t.failed('192.0.2.1', 'juliet@example.org');
    expect(t.check('192.0.2.1', 'juliet@example.org')).to.deep.equal({ allowed: true, retryAfterMs: 0 });
    t.failed('192.0.2.1', 'juliet@example.org');
    expect(t.check('192.0.2.9', 'juliet@example.org')).to.deep.equal({ allowed: false, retryAfterMs: MIN });
    now += MIN;
    expect(t.check('192.0.2.9', 'juliet@example.org').allowed).to.equal(true);
  });

  it('refuses an address after 20 failures, for any account', () => {
    const t = make();
    for (let i = 0; i < 19; i++) t.failed('192.0.2.1', `u${i}@example.org`);
    expect(t.check('192.0.2.1').allowed).to.equal(true);
    t.failed('192.0.2.1', 'u19@example.org');
    expect(t.check('192.0.2.1').allowed).to.equal(false);
    expect(t.check('192.0.2.1', 'fresh@example.org').allowed).to.equal(false);
    expect(t.check('192.0.2.2', 'fresh@example.org').allowed).to.equal(true);
  });

  it('counts only the failures inside the sliding window', () => {
    const t = make();
    for (let i = 0; i < 4; i++) t.failed('192.0.2.1', 'a');
    now += 5 * MIN;
    t.failed('192.0.2.1', 'a');
    expect(t.check('192.0.2.1', 'a').allowed).to.equal(true);
  });

  it('doubles each further lockout while failures continue, up to 15 minutes', () => {
    const t = make();
    const locks: number[] = [];
    for (let i = 0; i < 5; i++) t.failed('192.0.2.1', 'a');
    for (let round = 0; round < 6; round++) {
      const { retryAfterMs } = t.check('192.0.2.1', 'a');
      locks.push(retryAfterMs / MIN);
      now += retryAfterMs;
      t.failed('192.0.2.1', 'a');
    }
    expect(locks).to.deep.equal([1, 2, 4, 8, 15, 15]);
  });

  it('forgets the escalation after a quiet window', () => {
    const t = make();
    for (let i = 0; i < 5; i++) t.failed('192.0.2.1', 'a');
    now += MIN + 5 * MIN + 1;
    t.failed('192.0.2.1', 'a');
    expect(t.check('192.0.2.1', 'a').allowed).to.equal(true);
  });

  it('does not extend a lockout with failures reported while locked', () => {
    const t = make();
    for (let i = 0; i < 5; i++) t.failed('192.0.2.1', 'a');
    for (let i = 0; i < 5; i++) t.failed('192.0.2.1', 'a');
    expect(t.check('192.0.2.1', 'a').retryAfterMs).to.equal(MIN);
  });

  it('clears an account’s failures on success but keeps the address’s', () => {
    const t = make({ ipFailures: 6 });
    for (let i = 0; i < 4; i++) t.failed('192.0.2.1', 'a');
    t.succeeded('192.0.2.1', 'a');
    t.failed('192.0.2.1', 'a');
    expect(t.check('192.0.2.7', 'a').allowed).to.equal(true);
    t.failed('192.0.2.1', 'b');
    expect(t.check('192.0.2.1').allowed).to.equal(false);
  });

  it('takes its thresholds, window and lockout lengths from options', () => {
    const t = make({ accountFailures: 2, windowMs: 1000, lockoutMs: 500, maxLockoutMs: 800 });
    t.failed('192.0.2.1', 'a');
    t.failed('192.0.2.1', 'a');
    expect(t.check('192.0.2.1', 'a').retryAfterMs).to.equal(500);
    now += 500;
    t.failed('192.0.2.1', 'a');
    expect(t.check('192.0.2.1', 'a').retryAfterMs).to.equal(800);
    expect(() => make({ accountFailures: 0 })).to.throw(RangeError);
  });

  it('stays within its size bound, evicting unlocked entries before locked ones', () => {
    const t = make({ maxEntries: 3, accountFailures: 2 });
    t.failed('192.0.2.1', 'locked');
    t.failed('192.0.2.1', 'locked');
    for (let i = 0; i < 10; i++) {
      now += 1;
      t.failed(`198.51.100.${i}`, `n${i}`);
    }
    expect(t.size).to.deep.equal({ ips: 3, accounts: 3 });
    expect(t.check('203.0.113.1', 'locked').allowed).to.equal(false);
  });

  it('evicts the least recently used entry when every entry is locked', () => {
    const t = make({ maxEntries: 3, accountFailures: 1 });
    for (let i = 0; i < 4; i++) t.failed('192.0.2.1', `n${i}`);
    expect(t.size.accounts).to.equal(3);
    expect(t.check('203.0.113.1', 'n0').allowed).to.equal(true);
    expect(t.check('203.0.113.1', 'n3').allowed).to.equal(false);
  });

  it('counts an IPv6 /64 as one address and an IPv4-mapped address as the IPv4 one', () => {
    expect(throttleAddressKey('2001:db8:1:2:aaaa::1')).to.equal(throttleAddressKey('2001:0db8:1:2:bbbb:cccc:dddd:2'));
    expect(throttleAddressKey('2001:db8:1:2::1')).to.not.equal(throttleAddressKey('2001:db8:1:3::1'));
    expect(throttleAddressKey('::ffff:192.0.2.1')).to.equal('192.0.2.1');
    const t = make({ ipFailures: 2 });
    t.failed('2001:db8::1');
    t.failed('2001:db8::2');
    expect(t.check('2001:db8::ffff').allowed).to.equal(false);
  });

  it('answers failures after a delay that doubles per failure of the account or the address, up to a cap', () => {
    const t = make({ failureDelayMs: 250, maxFailureDelayMs: 1000, accountFailures: 10, ipFailures: 10 });
    expect(t.failureDelay('192.0.2.1', 'a@x')).to.equal(0);
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      t.failed('192.0.2.1', 'a@x');
      delays.push(t.failureDelay('192.0.2.1', 'a@x'));
    }
    expect(delays).to.deep.equal([250, 500, 1000, 1000]);
    // Another address guessing the same account waits as long; the account's count governs.
    expect(t.failureDelay('198.51.100.7', 'a@x')).to.equal(1000);
    // Once the window has passed, the past is forgiven.
    now += 6 * 60_000;
    expect(t.failureDelay('192.0.2.1', 'a@x')).to.equal(0);
    expect(make({ failureDelayMs: 0 }).failureDelay('192.0.2.1')).to.equal(0);
  });
});
