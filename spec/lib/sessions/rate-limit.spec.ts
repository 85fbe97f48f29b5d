import { expect } from 'chai';
import { KeyedRateLimit, TokenBucket } from '../../../lib/sessions/rate-limit.js';

describe('rate limits', () => {
  it('KeyedRateLimit allows a burst per key, refuses beyond it, and refills at the rate', () => {
    let now = 0;
    const limit = new KeyedRateLimit(1, 3, 100, () => now);
    expect([1, 2, 3, 4].map(() => limit.take('a'))).to.deep.equal([true, true, true, false]);
    // Another address is not affected.
    expect(limit.take('b')).to.equal(true);
    now += 1000;
    expect(limit.take('a')).to.equal(true);
    expect(limit.take('a')).to.equal(false);
  });

  it('KeyedRateLimit remembers a bounded number of keys', () => {
    const limit = new KeyedRateLimit(1, 1, 10);
    for (let i = 0; i < 100; i++) limit.take(`10.0.0.${i}`);
    expect(limit.size).to.equal(10);
  });

  it('TokenBucket tells how long to wait once the burst is spent, never refusing', () => {
    const bucket = new TokenBucket(100, 10);
    for (let i = 0; i < 10; i++) expect(bucket.take()).to.equal(0);
    const wait = bucket.take(11);
    expect(wait).to.be.within(100, 120);
  });
});
