// Helpers for federation specs: Parley servers with s2s listeners pointed at each other, and a
// test CA whose certificates make servers authenticate with SASL EXTERNAL instead of dialback.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { startTestServer, type TestServer } from '../../helpers/server.js';

export function s2sPort(srv: TestServer, type: 's2s' | 's2s-tls' = 's2s'): number {
  const a = srv.server.addresses.find((x) => x.type === type);
  if (!a) throw new Error(`no ${type} listener`);
  return a.port;
}

/** Points each server's resolver at the other's s2s (or s2s-tls) listener. */
export function linkServers(a: TestServer, b: TestServer, type: 's2s' | 's2s-tls' = 's2s'): void {
  a.server.federation!.setTarget(b.domain, { host: '127.0.0.1', port: s2sPort(b, type), directTls: type === 's2s-tls' });
  b.server.federation!.setTarget(a.domain, { host: '127.0.0.1', port: s2sPort(a, type), directTls: type === 's2s-tls' });
}

/** A test server for `domain` with c2s, s2s and s2s-tls listeners on loopback. */
export function federatedServer(domain: string, s2s: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<TestServer> {
  return startTestServer(
    {
      listeners: [
        { type: 'c2s', port: 0, address: '127.0.0.1' },
        { type: 's2s', port: 0, address: '127.0.0.1' },
        { type: 's2s-tls', port: 0, address: '127.0.0.1' },
      ],
      s2s,
      ...extra,
    },
    domain,
  );
}

export interface TestCa {
  dir: string;
  caFile: string;
  /** Writes a certificate for `names` signed by the CA; returns the file paths. */
  issue(names: string[], opts?: { otherNames?: { xmppAddr?: string; srvName?: string } }): { cert: string; key: string };
  remove(): void;
}

function keyPair(): { forgeKey: forge.pki.rsa.PrivateKey; publicKey: forge.pki.rsa.PublicKey; pem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  return {
    forgeKey: forge.pki.privateKeyFromPem(pem),
    publicKey: forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString()),
    pem,
  };
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f;
  return b.toString('hex');
}

/** A throwaway CA (for `s2s.trustedCAs`) that issues server certificates. */
export function createTestCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'parley-ca-'));
  const ca = keyPair();
  const caCert = forge.pki.createCertificate();
  caCert.publicKey = ca.publicKey;
  caCert.serialNumber = serial();
  caCert.validity.notBefore = new Date(Date.now() - 3_600_000);
  caCert.validity.notAfter = new Date(Date.now() + 86_400_000);
  const caName = [{ name: 'commonName', value: 'Parley Test CA' }];
  caCert.setSubject(caName);
  caCert.setIssuer(caName);
  caCert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  caCert.sign(ca.forgeKey, forge.md.sha256.create());
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, forge.pki.certificateToPem(caCert));
  let n = 0;
  return {
    dir,
    caFile,
    issue(names) {
      const leaf = keyPair();
      const cert = forge.pki.createCertificate();
      cert.publicKey = leaf.publicKey;
      cert.serialNumber = serial();
      cert.validity.notBefore = new Date(Date.now() - 3_600_000);
      cert.validity.notAfter = new Date(Date.now() + 86_400_000);
      cert.setSubject([{ name: 'commonName', value: names[0]! }]);
      cert.setIssuer(caName);
      cert.setExtensions([
        { name: 'basicConstraints', cA: false, critical: true },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
        { name: 'subjectAltName', altNames: names.map((value) => ({ type: 2, value })) },
        { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
      ]);
      cert.sign(ca.forgeKey, forge.md.sha256.create());
      n++;
      const files = { cert: join(dir, `leaf${n}.crt`), key: join(dir, `leaf${n}.key`) };
      writeFileSync(files.cert, forge.pki.certificateToPem(cert));
      writeFileSync(files.key, leaf.pem, { mode: 0o600 });
      return files;
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
