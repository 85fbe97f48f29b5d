import { expect } from 'chai';
import { pooledRandomBytes, randomToken } from '../../../lib/util/random-pool.js';

describe('random pool', () => {
  it('gives tokens of the asked size in each encoding', () => {
    expect(Buffer.from(randomToken(12), 'base64url')).to.have.length(12);
    expect(randomToken(12)).to.match(/^[A-Za-z0-9_-]{16}$/);
    expect(Buffer.from(randomToken(24, 'base64'), 'base64')).to.have.length(24);
    expect(randomToken(8, 'hex')).to.match(/^[0-9a-f]{16}$/);
    expect(pooledRandomBytes(100)).to.have.length(100);
  });

  it('never hands out the same bytes twice, across refills of the pool', () => {
    const seen = new Set<string>();
    // Several pools' worth, with sizes that do not divide the pool.
    for (let i = 0; i < 3000; i++) seen.add(randomToken(9 + (i % 5)));
    expect(seen.size).to.equal(3000);
  });

  it('gives bytes the caller owns: later draws do not change them', () => {
    const a = pooledRandomBytes(16);
    const copy = Buffer.from(a);
    for (let i = 0; i < 1000; i++) pooledRandomBytes(16);
    expect(a.equals(copy)).to.equal(true);
    expect(a.equals(Buffer.alloc(16))).to.equal(false);
  });
});
