import { expect } from 'chai';
import { DialbackKeys } from '../../../lib/s2s/dialback-key.js';

describe('dialback keys (XEP-0185)', () => {
  it('generates the key of XEP-0220 example 1 (capulet.example to montague.example)', () => {
    const keys = new DialbackKeys('s3cr3tf0rd14lb4ck');
    expect(keys.generate('montague.example', 'capulet.example', 'D60000229F')).to.equal(
      'b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3',
    );
  });

  it('generates the key of XEP-0220 example 5 (montague.example to capulet.example)', () => {
    const keys = new DialbackKeys('d14lb4ck43v3r');
    expect(keys.generate('capulet.example', 'montague.example', '417GAF25')).to.equal(
      '225cc5aa6a071133249d25fef42ae516fc7a86c523aa1c6980a7f73e784c972d',
    );
  });

  it('verifies its own keys, whitespace and case aside, and nothing else', () => {
    const keys = new DialbackKeys('secret');
    const key = keys.generate('b.test', 'a.test', 'id1');
    expect(keys.verify('b.test', 'a.test', 'id1', key)).to.equal(true);
    expect(keys.verify('b.test', 'a.test', 'id1', `\n  ${key.toUpperCase()}\n`)).to.equal(true);
    expect(keys.verify('b.test', 'a.test', 'id2', key)).to.equal(false);
    expect(keys.verify('c.test', 'a.test', 'id1', key)).to.equal(false);
    expect(keys.verify('b.test', 'a.test', 'id1', key.slice(1))).to.equal(false);
    expect(new DialbackKeys('other').verify('b.test', 'a.test', 'id1', key)).to.equal(false);
  });

  it('uses a random secret per instance by default', () => {
    expect(new DialbackKeys().generate('b', 'a', 'i')).to.not.equal(new DialbackKeys().generate('b', 'a', 'i'));
  });
});
