import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { expect } from 'chai';
import {
  constantTimeEqual,
  deriveScramCredential,
  normalizePassword,
  passwordMatches,
} from '../../../lib/accounts/scram-keys.js';

const ALG = { 'SHA-1': 'sha1', 'SHA-256': 'sha256', 'SHA-512': 'sha512' } as const;
const LEN = { 'SHA-1': 20, 'SHA-256': 32, 'SHA-512': 64 } as const;

describe('SCRAM key derivation', () => {
  for (const hash of ['SHA-1', 'SHA-256', 'SHA-512'] as const) {
    it(`derives StoredKey and ServerKey for ${hash} as RFC 5802 §3 defines them`, async () => {
      const salt = Buffer.from('QSXCR+Q6sek8bf92', 'base64');
      const c = await deriveScramCredential(hash, 'pencil', salt, 4096);
      const salted = pbkdf2Sync('pencil', salt, 4096, LEN[hash], ALG[hash]);
      const clientKey = createHmac(ALG[hash], salted).update('Client Key').digest();
      expect(c.storedKey.toString('hex')).to.equal(createHash(ALG[hash]).update(clientKey).digest('hex'));
      expect(c.serverKey.toString('hex')).to.equal(createHmac(ALG[hash], salted).update('Server Key').digest('hex'));
      expect(c.iterations).to.equal(4096);
      expect(c.salt).to.equal(salt);
    });
  }

  it('derives keys without blocking the event loop', async () => {
    let ticked = false;
    setImmediate(() => {
      ticked = true;
    });
    await deriveScramCredential('SHA-512', 'pencil', Buffer.alloc(16), 200_000);
    expect(ticked).to.equal(true);
  });

  it('applies SASLprep to the password, so "I\\u00ADX" and "IX" give the same keys (RFC 4013 §3)', async () => {
    const salt = Buffer.alloc(16, 1);
    const a = await deriveScramCredential('SHA-256', 'I\u00ADX', salt, 4096);
    const b = await deriveScramCredential('SHA-256', 'IX', salt, 4096);
    expect(a.storedKey.equals(b.storedKey)).to.equal(true);
    expect(normalizePassword('\u2168')).to.equal('IX');
  });

  it('rejects a password SASLprep prohibits or that normalises to nothing', () => {
    expect(() => normalizePassword('bell\u0007')).to.throw();
    expect(() => normalizePassword('\u00AD')).to.throw();
  });

  it('tells whether a password matches a credential', async () => {
    const c = await deriveScramCredential('SHA-256', 'pencil', Buffer.alloc(16, 2), 4096);
    expect(await passwordMatches('SHA-256', c, 'pencil')).to.equal(true);
    expect(await passwordMatches('SHA-256', c, 'pencil2')).to.equal(false);
    expect(await passwordMatches('SHA-256', c, 'bell\u0007')).to.equal(false);
  });

  it('compares buffers of equal and of different lengths', () => {
    expect(constantTimeEqual(Buffer.from('abc'), Buffer.from('abc'))).to.equal(true);
    expect(constantTimeEqual(Buffer.from('abc'), Buffer.from('abd'))).to.equal(false);
    expect(constantTimeEqual(Buffer.from('abc'), Buffer.from('abcd'))).to.equal(false);
  });
});
