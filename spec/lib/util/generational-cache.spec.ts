import { expect } from 'chai';
import { GenerationalCache } from '../../../lib/util/generational-cache.js';

describe('GenerationalCache', () => {
  it('finds what was set', () => {
    const c = new GenerationalCache<string, number>(2);
    c.set('a', 1);
    expect(c.get('a')).to.equal(1);
    expect(c.get('b')).to.equal(undefined);
  });

  it('never holds more than two generations of entries', () => {
    const c = new GenerationalCache<number, number>(3);
    for (let i = 0; i < 100; i++) c.set(i, i);
    expect(c.size).to.be.at.most(6);
    expect(c.get(0)).to.equal(undefined);
    expect(c.get(99)).to.equal(99);
  });

  it('keeps an entry that is used while newer ones come and go', () => {
    const c = new GenerationalCache<string, number>(2);
    c.set('hot', 1);
    for (let i = 0; i < 50; i++) {
      c.set(`cold${i}`, i);
      expect(c.get('hot')).to.equal(1);
    }
  });

  it('refuses a generation of no entries', () => {
    expect(() => new GenerationalCache<string, number>(0)).to.throw();
  });
});
