import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  certificateNamesDomain,
  matchDnsId,
  parseSubjectAltName,
  presentedIdentifiers,
  type PresentedIdentifiers,
} from '../../../lib/s2s/certificates.js';
import { generateSelfSigned } from '../../../lib/tls/generate.js';
import { createTestCa } from './federation-helpers.js';

const ids = (over: Partial<PresentedIdentifiers>): PresentedIdentifiers => ({ dns: [], srv: [], xmpp: [], cn: [], ...over });

describe('certificate identities (RFC 6125, RFC 6120 §13.7.1)', () => {
  describe('parseSubjectAltName', () => {
    it("reads Node's rendering, othername types and quoted values included", () => {
      expect(
        parseSubjectAltName('DNS:example.org, DNS:*.example.org, othername:XmppAddr:example.org, othername:SRVName:_xmpp-server.example.net, IP Address:192.0.2.1, DNS:"odd,name.example"'),
      ).to.deep.equal([
        { type: 'DNS', value: 'example.org' },
        { type: 'DNS', value: '*.example.org' },
        { type: 'othername:XmppAddr', value: 'example.org' },
        { type: 'othername:SRVName', value: '_xmpp-server.example.net' },
        { type: 'IP Address', value: '192.0.2.1' },
        { type: 'DNS', value: 'odd,name.example' },
      ]);
      expect(parseSubjectAltName(undefined)).to.deep.equal([]);
    });
  });

  describe('matchDnsId', () => {
    it('matches exact names case-insensitively, ignoring a trailing dot', () => {
      expect(matchDnsId('Example.COM', 'example.com.')).to.equal(true);
      expect(matchDnsId('example.com', 'www.example.com')).to.equal(false);
    });

    it('lets a wildcard stand for exactly one left-most label', () => {
      expect(matchDnsId('*.example.com', 'chat.example.com')).to.equal(true);
      expect(matchDnsId('*.example.com', 'example.com')).to.equal(false);
      expect(matchDnsId('*.example.com', 'a.b.example.com')).to.equal(false);
    });

    it('refuses partial-label, non-left-most and too-broad wildcards (RFC 9525 §6.3)', () => {
      expect(matchDnsId('c*.example.com', 'chat.example.com')).to.equal(false);
      expect(matchDnsId('*chat.example.com', 'xchat.example.com')).to.equal(false);
      expect(matchDnsId('chat.*.com', 'chat.example.com')).to.equal(false);
      expect(matchDnsId('*.com', 'example.com')).to.equal(false);
      expect(matchDnsId('*', 'example')).to.equal(false);
    });

    it('compares internationalised names in their A-label form', () => {
      expect(matchDnsId('xn--bcher-kva.example', 'bücher.example')).to.equal(true);
      expect(matchDnsId('*.bücher.example', 'chat.xn--bcher-kva.example')).to.equal(true);
    });
  });

  describe('certificateNamesDomain', () => {
    it('accepts a DNS-ID, an xmpp-server SRV-ID or an XmppAddr for the domain', () => {
      expect(certificateNamesDomain(ids({ dns: ['*.example.net'] }), 'chat.example.net')).to.equal(true);
      expect(certificateNamesDomain(ids({ srv: ['_xmpp-server.example.net'] }), 'example.net')).to.equal(true);
      expect(certificateNamesDomain(ids({ srv: ['_xmpp-client.example.net'] }), 'example.net')).to.equal(false);
      expect(certificateNamesDomain(ids({ xmpp: ['example.net'] }), 'example.net')).to.equal(true);
    });

    it('uses the common name only when there is no DNS-ID or SRV-ID (RFC 6125 §6.4.4)', () => {
      expect(certificateNamesDomain(ids({ cn: ['example.net'] }), 'example.net')).to.equal(true);
      expect(certificateNamesDomain(ids({ cn: ['example.net'], dns: ['other.example'] }), 'example.net')).to.equal(false);
    });

    it('reads the identities of a generated certificate', () => {
      const { cert } = generateSelfSigned(['example.org']);
      const presented = presentedIdentifiers(new X509Certificate(cert));
      expect(presented.dns).to.include.members(['example.org', 'conference.example.org']);
      expect(presented.cn).to.deep.equal(['example.org']);
      expect(certificateNamesDomain(presented, 'example.org')).to.equal(true);
      expect(certificateNamesDomain(presented, 'example.com')).to.equal(false);
    });

    it('reads wildcard SANs from a CA-issued certificate', () => {
      const ca = createTestCa();
      try {
        const files = ca.issue(['wild.test', '*.wild.test']);
        const presented = presentedIdentifiers(new X509Certificate(readFileSync(files.cert)));
        expect(certificateNamesDomain(presented, 'muc.wild.test')).to.equal(true);
        expect(certificateNamesDomain(presented, 'a.muc.wild.test')).to.equal(false);
      } finally {
        ca.remove();
      }
    });
  });
});
