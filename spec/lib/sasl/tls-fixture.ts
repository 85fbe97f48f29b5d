// Test-only: self-signed certificates and connected TLS socket pairs on 127.0.0.1.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import forge from 'node-forge';

export interface TestCert {
  key: string;
  cert: string;
  der: Buffer;
}

/** An RSA certificate signed with the given digest, made with node-forge. */
export function rsaCert(digest: 'sha1' | 'sha256' | 'sha384' | 'sha512' = 'sha256'): TestCert {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey);
  cert.serialNumber = `01${randomBytes(8).toString('hex')}`;
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  const attrs = [{ name: 'commonName', value: 'localhost' }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  const md = { sha1: forge.md.sha1, sha256: forge.md.sha256, sha384: forge.md.sha384, sha512: forge.md.sha512 }[digest].create();
  cert.sign(forge.pki.privateKeyFromPem(privateKey) as forge.pki.rsa.PrivateKey, md);
  const pem = forge.pki.certificateToPem(cert);
  const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
  return { key: privateKey, cert: pem, der };
}

/** A certificate made by the openssl command line, or undefined when openssl is missing. */
export function opensslCert(args: string[]): TestCert | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'parley-cert-'));
  try {
    const key = join(dir, 'key.pem');
    const crt = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-nodes', '-days', '1', '-subj', '/CN=localhost', ...args, '-keyout', key, '-out', crt], {
      stdio: 'ignore',
    });
    const certPem = readFileSync(crt, 'utf8');
    return { key: readFileSync(key, 'utf8'), cert: certPem, der: pemToDer(certPem) };
  } catch {
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function pemToDer(pem: string): Buffer {
  const body = pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  return Buffer.from(body, 'base64');
}

export interface TlsPair {
  server: tls.TLSSocket;
  client: tls.TLSSocket;
  close(): Promise<void>;
}

/** A server and a client socket connected over TLS on 127.0.0.1, both past the handshake. */
export async function tlsPair(cert: TestCert, version: 'TLSv1.2' | 'TLSv1.3'): Promise<TlsPair> {
  const server = tls.createServer({ key: cert.key, cert: cert.cert, minVersion: version, maxVersion: version });
  const serverSide = new Promise<tls.TLSSocket>((resolve) => server.once('secureConnection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const client = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, minVersion: version, maxVersion: version });
  await new Promise<void>((resolve, reject) => {
    client.once('secureConnect', resolve);
    client.once('error', reject);
  });
  const serverSocket = await serverSide;
  return {
    server: serverSocket,
    client,
    async close() {
      client.destroy();
      serverSocket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
