import { expect } from 'chai';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { generateSelfSigned } from '../../../lib/tls/generate.js';

function sans(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '').split(/,\s*/).filter((s) => s !== '');
}

describe('generateSelfSigned', () => {
  const pair = generateSelfSigned(['Example.com', 'example.net']);
  const x509 = new X509Certificate(pair.cert);

  it('names the first domain as the subject CN and is signed by its own key', () => {
    expect(x509.subject).to.equal('CN=example.com');
    expect(x509.issuer).to.equal('CN=example.com');
    expect(x509.verify(x509.publicKey)).to.equal(true);
  });

  it('lists every domain and its conference, upload, pubsub and proxy subdomains as SANs', () => {
    const expected = ['example.com', 'example.net'].flatMap((d) => [d, ...['conference', 'upload', 'pubsub', 'proxy'].map((s) => `${s}.${d}`)]);
    expect(sans(x509)).to.have.members(expected.map((d) => `DNS:${d}`));
    expect(x509.checkHost('conference.example.net')).to.equal('conference.example.net');
    expect(x509.checkHost('other.example.com')).to.equal(undefined);
  });

  it('puts an IP address in an IP SAN', () => {
    const ip = new X509Certificate(generateSelfSigned(['127.0.0.1']).cert);
    expect(sans(ip)).to.deep.equal(['IP Address:127.0.0.1']);
    expect(ip.checkIP('127.0.0.1')).to.equal('127.0.0.1');
  });

  it('comes with the matching 2048-bit RSA private key in PEM', () => {
    const key = createPrivateKey(pair.key);
    expect(pair.key).to.match(/^-----BEGIN PRIVATE KEY-----/);
    expect(key.asymmetricKeyType).to.equal('rsa');
    expect(key.asymmetricKeyDetails?.modulusLength).to.equal(2048);
    expect(x509.checkPrivateKey(key)).to.equal(true);
  });

  it('is valid now for 365 days by default, or for the days asked', () => {
    const now = Date.now();
    expect(new Date(x509.validFrom).getTime()).to.be.below(now);
    const days = (new Date(x509.validTo).getTime() - now) / 86_400_000;
    expect(days).to.be.within(364.9, 365.1);
    const short = new X509Certificate(generateSelfSigned(['a.test'], { days: 2 }).cert);
    expect((new Date(short.validTo).getTime() - now) / 86_400_000).to.be.within(1.9, 2.1);
  });

  it('is an end-entity server and client certificate signed with SHA-256, with a random positive serial', () => {
    const cert = forge.pki.certificateFromPem(pair.cert);
    expect(cert.siginfo.algorithmOid).to.equal(forge.pki.oids['sha256WithRSAEncryption']);
    expect(cert.getExtension('basicConstraints')).to.include({ cA: false });
    expect(cert.getExtension('keyUsage')).to.include({ digitalSignature: true, keyEncipherment: true, keyCertSign: false });
    expect(cert.getExtension('extKeyUsage')).to.include({ serverAuth: true, clientAuth: true });
    expect(x509.ca).to.equal(false);
    const other = new X509Certificate(generateSelfSigned(['example.com']).cert);
    expect(other.serialNumber).to.not.equal(x509.serialNumber);
    expect(parseInt(x509.serialNumber.slice(0, 2), 16)).to.be.below(0x80);
  });
});
