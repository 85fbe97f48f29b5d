// RFC 6238 Appendix B and RFC 4226 Appendix D test vectors, base32, replay window matching.
import { expect } from 'chai';
import { base32Decode, base32Encode, hotp, matchTotp, otpauthUri, totp } from '../../../lib/accounts/totp.js';

const SEED20 = Buffer.from('12345678901234567890', 'ascii');
const SEED32 = Buffer.from('12345678901234567890123456789012', 'ascii');
const SEED64 = Buffer.from('1234567890123456789012345678901234567890123456789012345678901234', 'ascii');

describe('TOTP (RFC 6238) and HOTP (RFC 4226)', () => {
  it('matches the RFC 4226 Appendix D HOTP values', () => {
    const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
    expected.forEach((code, counter) => expect(hotp(SEED20, counter)).to.equal(code));
  });

  it('matches the RFC 6238 Appendix B TOTP values (8 digits, SHA-1/256/512)', () => {
    const vectors: Array<[number, string, string, string]> = [
      [59, '94287082', '46119246', '90693936'],
      [1111111109, '07081804', '68084774', '25091201'],
      [1111111111, '14050471', '67062674', '99943326'],
      [1234567890, '89005924', '91819424', '93441116'],
      [2000000000, '69279037', '90698825', '38618901'],
      [20000000000, '65353130', '77737706', '47863826'],
    ];
    for (const [t, sha1, sha256, sha512] of vectors) {
      expect(totp(SEED20, t * 1000, { algorithm: 'SHA1', digits: 8, period: 30 })).to.equal(sha1);
      expect(totp(SEED32, t * 1000, { algorithm: 'SHA256', digits: 8, period: 30 })).to.equal(sha256);
      expect(totp(SEED64, t * 1000, { algorithm: 'SHA512', digits: 8, period: 30 })).to.equal(sha512);
    }
  });

  it('accepts one step of drift either way and reports the step matched', () => {
    const now = 1_700_000_000_000;
    const step = Math.floor(now / 30_000);
    expect(matchTotp(SEED20, totp(SEED20, now), now)).to.equal(step);
    expect(matchTotp(SEED20, totp(SEED20, now - 30_000), now)).to.equal(step - 1);
    expect(matchTotp(SEED20, totp(SEED20, now + 30_000), now)).to.equal(step + 1);
    expect(matchTotp(SEED20, totp(SEED20, now + 60_000), now)).to.equal(undefined);
    expect(matchTotp(SEED20, '12345', now)).to.equal(undefined);
    expect(matchTotp(SEED20, 'abcdef', now)).to.equal(undefined);
  });

  it('round-trips RFC 4648 base32 and builds an otpauth URI', () => {
    expect(base32Encode(Buffer.from('foobar'))).to.equal('MZXW6YTBOI');
    expect(base32Decode('MZXW6YTBOI======')!.toString()).to.equal('foobar');
    expect(base32Decode('mzxw 6ytb oi')!.toString()).to.equal('foobar');
    expect(base32Decode('MZ1!')).to.equal(undefined);
    const uri = new URL(otpauthUri(SEED20, 'alice@example.org', 'example.org'));
    expect(uri.protocol).to.equal('otpauth:');
    expect(base32Decode(uri.searchParams.get('secret')!)!.equals(SEED20)).to.equal(true);
    expect(uri.searchParams.get('issuer')).to.equal('example.org');
  });
});
