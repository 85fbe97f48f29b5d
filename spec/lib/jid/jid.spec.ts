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

  describe('parsed again', () => {
    it('gives the same prepared JID for the same string', () => {
      const a = Jid.parse('Carol@Example.COM/Desk');
      const b = Jid.parse('Carol@Example.COM/Desk');
      expect(b.toString()).to.equal('carol@example.com/Desk');
      expect(b.equals(a)).to.equal(true);
    });

    it('prepares every spelling to the same JID', () => {
      expect(Jid.parse('DAVE@example.com').equals(Jid.parse('dave@EXAMPLE.com'))).to.equal(true);
    });

    it('refuses an invalid JID every time (failures are not remembered as JIDs)', () => {
      expect(() => Jid.parse('bad@')).to.throw(JidError);
      expect(() => Jid.parse('bad@')).to.throw(JidError);
      expect(Jid.tryParse('bad@')).to.equal(undefined);
    });

    it('parses long JIDs the same way', () => {
      const long = `${'x'.repeat(200)}@example.com/${'r'.repeat(300)}`;
      expect(Jid.parse(long).toString()).to.equal(long);
      expect(Jid.parse(long).resource).to.equal('r'.repeat(300));
    });
  });

  it('gives the bare JID of a full JID, the same each time, and compares by parts', () => {
    const full = Jid.of('erin', 'example.com', 'r');
    expect(full.bare().toString()).to.equal('erin@example.com');
    expect(full.bare()).to.equal(full.bare());
    expect(full.bare()).to.deep.equal(Jid.of('erin', 'example.com'));
    expect(full).to.deep.equal(Jid.of('erin', 'example.com', 'r'));
  });
});
