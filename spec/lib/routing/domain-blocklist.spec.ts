import { expect } from 'chai';
import { parseConfig } from '../../../lib/config/load.js';
import { DomainBlocklist } from '../../../lib/routing/domain-blocklist.js';

describe('DomainBlocklist (s2s.blockedDomains)', () => {
  it('covers a listed domain and its subdomains, not its parent nor look-alikes', () => {
    const list = new DomainBlocklist(['evil.example']);
    expect(list.has('evil.example')).to.equal(true);
    expect(list.has('conference.evil.example')).to.equal(true);
    expect(list.has('a.b.evil.example')).to.equal(true);
    expect(list.has('example')).to.equal(false);
    expect(list.has('notevil.example')).to.equal(false);
    expect(list.has('evil.example.org')).to.equal(false);
  });

  it('is read from the config with the domains prepared, and refuses a non-domain', () => {
    const config = parseConfig({ hosts: ['a.test'], s2s: { blockedDomains: ['EVIL.Example'] } }, [], '/');
    expect(config.s2s.blockedDomains).to.deep.equal(['evil.example']);
    expect(() => parseConfig({ hosts: ['a.test'], s2s: { blockedDomains: ['not a domain'] } }, [], '/')).to.throw(/s2s\.blockedDomains/);
  });
});
