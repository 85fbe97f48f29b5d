// The load generator's SCRAM-SHA-1: RFC 5802 §5's example exchange, byte for byte.
import { expect } from 'chai';
import { ScramSha1Client } from '../../bench/scram-client.js';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

describe('bench/scram-client', () => {
  it('produces RFC 5802 §5 client messages and accepts its server signature', async () => {
    const c = new ScramSha1Client('user', 'pencil', 'fyko+d2lbbFgONRv9qkxdawL');
    expect(Buffer.from(c.first(), 'base64').toString()).to.equal('n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL');
    const final = await c.final(b64('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096'));
    expect(Buffer.from(final, 'base64').toString()).to.equal('c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=');
    c.verify(b64('v=rmF9pqV8S7suAoZWja4dJRkFsKQ='));
  });

  it('refuses a wrong server signature and a server nonce that does not extend its own', async () => {
    const c = new ScramSha1Client('user', 'pencil', 'fyko+d2lbbFgONRv9qkxdawL');
    await c.final(b64('r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096'));
    expect(() => c.verify(b64('v=AAAAAAAAAAAAAAAAAAAAAAAAAAA='))).to.throw(/signature mismatch/);
    const d = new ScramSha1Client('user', 'pencil', 'abc');
    let err: unknown;
    await d.final(b64('r=xyz,s=QSXCR+Q6sek8bf92,i=4096')).catch((e: unknown) => (err = e));
    expect(String(err)).to.match(/bad SCRAM server-first-message/);
  });
});
