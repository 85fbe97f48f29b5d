import { expect } from 'chai';
import { Jid, JidError } from '../../../lib/jid/jid.js';

describe('Jid', () => {
  it('parses local, domain and resource', () => {
    const j = Jid.parse('alice@example.com/phone');
    expect([j.local, j.domain, j.resource]).to.deep.equal(['alice', 'example.com', 'phone']);
    expect(j.bare().toString()).to.equal('alice@example.com');
  });

  it('case-folds the localpart and domain but keeps the resource as written', () => {
    expect(Jid.parse('Alice@Example.COM/Phone').toString()).to.equal('alice@example.com/Phone');
  });

  it('splits the resource at the first slash only', () => {
    expect(Jid.parse('a@b.c/x/y@z').resource).to.equal('x/y@z');
  });

  it('normalises Unicode to NFC so equivalent JIDs compare equal', () => {
    expect(Jid.parse('caf\u0065\u0301@example.com').equals(Jid.parse('caf\u00e9@example.com'))).to.equal(true);
  });

  it('drops a trailing dot from the domain', () => {
    expect(Jid.parse('example.com.').domain).to.equal('example.com');
  });

  for (const bad of ['@example.com', 'a@', 'a b@example.com', 'a@example.com/', 'a"b@example.com', 'a@exa mple.com', 'x'.repeat(1024) + '@example.com']) {
    it(`rejects ${JSON.stringify(bad.slice(0, 30))}`, () => {
      expect(() => Jid.parse(bad)).to.throw(JidError);
    });
  }

  it('returns undefined from tryParse for invalid input', () => {
    expect(Jid.tryParse('a@')).to.equal(undefined);
  });

  it('tells domain, bare and full JIDs apart', () => {
    expect(Jid.parse('example.com').isDomain).to.equal(true);
    expect(Jid.parse('a@example.com').isBare).to.equal(true);
    expect(Jid.parse('a@example.com/r').isFull).to.equal(true);
  });
});
