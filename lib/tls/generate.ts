// Self-signed certificates for first runs and tests (ARCHITECTURE §6). The key pair comes from
// node:crypto (native, ~50 ms for RSA-2048); node-forge only builds and signs the X.509 body.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';

/** Subdomains that XMPP services commonly live on; a generated cert covers them too. */
export const SERVICE_SUBDOMAINS = ['conference', 'upload', 'pubsub', 'proxy'] as const;

export interface GeneratedCertificate {
  /** PEM X.509 certificate. */
  cert: string;
  /** PEM PKCS#8 private key. */
  key: string;
}

/**
 * A self-signed certificate for `domains`: CN is the first domain; the SANs list every domain
 * and its conference., upload., pubsub. and proxy. subdomains (IP addresses as IP SANs).
 */
export function generateSelfSigned(domains: string[], opts: { days?: number } = {}): GeneratedCertificate {
  if (domains.length === 0) throw new Error('generateSelfSigned needs at least one domain');
  const days = opts.days ?? 365;
  const names = domains.map((d) => d.trim().toLowerCase().replace(/\.$/, '').replace(/^\[(.*)\]$/, '$1'));

  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const key = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const forgeKey = forge.pki.privateKeyFromPem(key);

  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKey.export({ type: 'spki', format: 'pem' }).toString());
  // RFC 5280 §4.1.2.2: a positive serial of at most 20 octets; clear the top bit to keep it positive.
  const serial = randomBytes(16);
  serial[0] = serial[0]! & 0x7f;
  cert.serialNumber = serial.toString('hex');
  // Backdated a little so a client with a slow clock accepts it right away.
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 5 * 60_000);
  cert.validity.notAfter = new Date(now + days * 86_400_000);

  const subject = [{ name: 'commonName', value: names[0]! }];
  cert.setSubject(subject);
  cert.setIssuer(subject);

  const altNames: Array<{ type: number; value?: string; ip?: string }> = [];
  const seen = new Set<string>();
  const addDns = (name: string): void => {
    if (seen.has(name)) return;
    seen.add(name);
    altNames.push({ type: 2, value: name }); // dNSName
  };
  for (const name of names) {
    if (isIP(name) !== 0) {
      if (!seen.has(name)) altNames.push({ type: 7, ip: name }); // iPAddress
      seen.add(name);
      continue;
    }
    addDns(name);
  }
  for (const name of names) {
    if (isIP(name) !== 0) continue;
    for (const sub of SERVICE_SUBDOMAINS) addDns(`${sub}.${name}`);
  }

  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'subjectAltName', altNames },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(forgeKey, forge.md.sha256.create());

  return { cert: forge.pki.certificateToPem(cert), key };
}
