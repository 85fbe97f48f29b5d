import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { AdminError } from '../../../lib/config/errors.js';
import { CertificateStore } from '../../../lib/tls/certificates.js';
import { generateSelfSigned } from '../../../lib/tls/generate.js';

/** Connects with TLS and returns the certificate the server presented. */
async function presented(port: number, servername?: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...(servername ? { servername } : {}) }, () => {
      const raw = socket.getPeerX509Certificate();
      socket.destroy();
      if (raw === undefined) reject(new Error('no peer certificate'));
      else resolve(raw);
    });
    socket.on('error', reject);
  });
}

async function listen(server: tls.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as AddressInfo).port;
}

describe('CertificateStore', () => {
  let dir: string;
  const servers: tls.Server[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'parley-certs-'));
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))));
    rmSync(dir, { recursive: true, force: true });
  });

  function put(domain: string, opts: { days?: number; names?: string[]; layout?: 'crt' | 'pem' | 'certbot' } = {}): { cert: string; key: string } {
    const pair = generateSelfSigned(opts.names ?? [domain], { days: opts.days ?? 30 });
    switch (opts.layout ?? 'crt') {
      case 'crt':
        writeFileSync(join(dir, `${domain}.crt`), pair.cert);
        writeFileSync(join(dir, `${domain}.key`), pair.key);
        break;
      case 'pem':
        writeFileSync(join(dir, `${domain}.pem`), pair.cert);
        writeFileSync(join(dir, `${domain}.key`), pair.key);
        break;
      case 'certbot':
        mkdirSync(join(dir, domain));
        writeFileSync(join(dir, domain, 'fullchain.pem'), pair.cert);
        writeFileSync(join(dir, domain, 'privkey.pem'), pair.key);
        break;
    }
    return pair;
  }

  async function loadError(hosts: string[], generate = false): Promise<AdminError> {
    try {
      await CertificateStore.load({ certificates: dir }, hosts, { generate });
    } catch (err) {
      expect(err).to.be.instanceOf(AdminError);
      return err as AdminError;
    }
    return expect.fail('expected an AdminError');
  }

  it('says where to put a missing certificate and how to generate one', async () => {
    const err = await loadError(['example.com']);
    expect(err.code).to.equal('PARLEY_ERR_CERT_MISSING');
    expect(err.message).to.equal('no certificate for example.com');
    expect(err.hint).to.equal(`put example.com.crt and example.com.key in ${dir} or run \`parley cert generate example.com\``);
    expect(err.oneLine()).to.equal(`no certificate for example.com (put example.com.crt and example.com.key in ${dir} or run \`parley cert generate example.com\`)`);
  });

  it('generates a missing pair when asked, with a private key only its owner can read', async () => {
    const certs = join(dir, 'new');
    const store = await CertificateStore.load({ certificates: certs }, ['a.test'], { generate: true });
    expect(store.generated).to.deep.equal(['a.test']);
    expect(statSync(join(certs, 'a.test.key')).mode & 0o777).to.equal(0o600);
    const x509 = new X509Certificate(await import('node:fs').then((fs) => fs.readFileSync(join(certs, 'a.test.crt'))));
    expect(x509.checkHost('a.test')).to.equal('a.test');
    // A second load finds the files it wrote instead of generating again.
    const again = await CertificateStore.load({ certificates: certs }, ['a.test'], { generate: true });
    expect(again.generated).to.deep.equal([]);
    expect(again.describe()[0]!.notAfter.getTime()).to.equal(new Date(x509.validTo).getTime());
  });

  it('finds <domain>.crt, <domain>.pem and certbot-style <domain>/fullchain.pem pairs', async () => {
    put('a.test', { layout: 'crt' });
    put('b.test', { layout: 'pem' });
    put('c.test', { layout: 'certbot' });
    const store = await CertificateStore.load({ certificates: dir }, ['a.test', 'b.test', 'c.test'], { generate: false });
    expect(store.describe().map((d) => [d.domain, d.certFile, d.keyFile])).to.deep.equal([
      ['a.test', join(dir, 'a.test.crt'), join(dir, 'a.test.key')],
      ['b.test', join(dir, 'b.test.pem'), join(dir, 'b.test.key')],
      ['c.test', join(dir, 'c.test', 'fullchain.pem'), join(dir, 'c.test', 'privkey.pem')],
    ]);
  });

  it('uses explicit per-host files before the directory', async () => {
    put('a.test');
    const other = join(dir, 'elsewhere');
    mkdirSync(other);
    const pair = generateSelfSigned(['a.test'], { days: 10 });
    writeFileSync(join(other, 'c.pem'), pair.cert);
    writeFileSync(join(other, 'k.pem'), pair.key);
    const store = await CertificateStore.load({ certificates: dir, hosts: { 'a.test': { cert: join(other, 'c.pem'), key: join(other, 'k.pem') } } }, ['a.test'], { generate: false });
    expect(store.describe()[0]!.certFile).to.equal(join(other, 'c.pem'));
  });

  it('refuses a certificate whose key is missing, naming the expected key file', async () => {
    writeFileSync(join(dir, 'a.test.crt'), generateSelfSigned(['a.test']).cert);
    const err = await loadError(['a.test']);
    expect(err.code).to.equal('PARLEY_ERR_CERT_MISSING');
    expect(err.message).to.include(join(dir, 'a.test.key'));
  });

  it('refuses an expired certificate', async () => {
    put('a.test', { days: -1 });
    const err = await loadError(['a.test']);
    expect(err.code).to.equal('PARLEY_ERR_CERT_EXPIRED');
    expect(err.message).to.match(/certificate for a\.test .* expired on \d{4}-\d\d-\d\d/);
    expect(err.hint).to.match(/renew/);
  });

  it('refuses an unparsable certificate and a key from another pair', async () => {
    writeFileSync(join(dir, 'a.test.crt'), 'not a certificate');
    writeFileSync(join(dir, 'a.test.key'), generateSelfSigned(['a.test']).key);
    expect((await loadError(['a.test'])).code).to.equal('PARLEY_ERR_CERT_INVALID');
    writeFileSync(join(dir, 'a.test.crt'), generateSelfSigned(['a.test']).cert);
    expect((await loadError(['a.test'])).code).to.equal('PARLEY_ERR_CERT_KEY_MISMATCH');
  });

  it('warns, without failing, when a certificate does not cover its domain or expires soon', async () => {
    put('a.test', { names: ['other.test'], days: 3 });
    const store = await CertificateStore.load({ certificates: dir }, ['a.test'], { generate: false });
    const warnings = store.check();
    expect(warnings.map((w) => w.code)).to.have.members(['PARLEY_WARN_CERT_DOMAIN_MISMATCH', 'PARLEY_WARN_CERT_EXPIRING']);
    expect(warnings.find((w) => w.code === 'PARLEY_WARN_CERT_DOMAIN_MISMATCH')!.message).to.include('does not cover a.test (it names other.test');
  });

  it('accepts a wildcard certificate for the domain it covers', async () => {
    put('a.test', { names: ['*.a.test', 'a.test'] });
    const store = await CertificateStore.load({ certificates: dir }, ['a.test'], { generate: false });
    expect(store.check()).to.deep.equal([]);
  });

  it('describes each certificate', async () => {
    put('a.test');
    const [info] = (await CertificateStore.load({ certificates: dir }, ['a.test'], { generate: false })).describe();
    expect(info).to.include({ domain: 'a.test', subject: 'CN=a.test', issuer: 'CN=a.test', selfSigned: true });
    expect(info!.sans).to.include.members(['a.test', 'conference.a.test']);
    expect(info!.notAfter).to.be.instanceOf(Date);
  });

  it('serves each domain its own certificate by SNI in a real handshake, subdomains their parent\'s, and no SNI the first host\'s', async () => {
    put('a.test');
    put('b.test');
    const store = await CertificateStore.load({ certificates: dir, minVersion: 'TLSv1.2' }, ['a.test', 'b.test'], { generate: false });
    const server = tls.createServer(store.serverOptions(), (socket) => socket.end());
    servers.push(server);
    const port = await listen(server);
    expect((await presented(port, 'b.test')).subject).to.equal('CN=b.test');
    expect((await presented(port, 'a.test')).subject).to.equal('CN=a.test');
    expect((await presented(port, 'conference.b.test')).subject).to.equal('CN=b.test');
    expect((await presented(port, 'unknown.example')).subject).to.equal('CN=a.test');
    expect((await presented(port)).subject).to.equal('CN=a.test');
  });

  it('gives server-side TLS sockets (STARTTLS) the context by SNI', async () => {
    put('a.test');
    put('b.test');
    const store = await CertificateStore.load({ certificates: dir }, ['a.test', 'b.test'], { generate: false });
    expect(store.secureContext('B.TEST.')).to.equal(store.secureContext('b.test'));
    expect(store.secureContext('upload.b.test')).to.equal(store.secureContext('b.test'));
    expect(store.secureContext()).to.equal(store.secureContext('a.test'));
    expect(store.secureContext('a.test')).to.not.equal(store.secureContext('b.test'));
  });

  it('reload picks up a replaced certificate for new connections, with and without SNI', async () => {
    put('a.test');
    const store = await CertificateStore.load({ certificates: dir }, ['a.test'], { generate: false });
    const server = tls.createServer(store.serverOptions(), (socket) => socket.end());
    store.attach(server);
    servers.push(server);
    const port = await listen(server);
    const before = await presented(port, 'a.test');
    const replacement = put('a.test', { days: 90 });
    await store.reload();
    const serial = new X509Certificate(replacement.cert).serialNumber;
    expect((await presented(port, 'a.test')).serialNumber).to.equal(serial);
    expect((await presented(port)).serialNumber).to.equal(serial);
    expect(serial).to.not.equal(before.serialNumber);
  });

  it('keeps the old certificates when a reload fails', async () => {
    put('a.test');
    const store = await CertificateStore.load({ certificates: dir }, ['a.test'], { generate: false });
    const context = store.secureContext('a.test');
    writeFileSync(join(dir, 'a.test.crt'), 'garbage');
    let failed = false;
    await store.reload().catch(() => (failed = true));
    expect(failed).to.equal(true);
    expect(store.secureContext('a.test')).to.equal(context);
    expect(existsSync(join(dir, 'a.test.key'))).to.equal(true);
  });
});
