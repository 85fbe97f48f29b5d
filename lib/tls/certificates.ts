// Certificates per virtual host: found on disk, validated, served by SNI, reloadable without a
// restart (ARCHITECTURE §6).
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import tls from 'node:tls';
import type { TlsConfig } from '../config/schema.js';
import { AdminError } from '../config/errors.js';
import { generateSelfSigned } from './generate.js';

export interface CertificateInfo {
  domain: string;
  subject: string;
  sans: string[];
  notBefore: Date;
  notAfter: Date;
  issuer: string;
  selfSigned: boolean;
  certFile: string;
  keyFile: string;
}

export interface CertificateWarning {
  domain: string;
  code: 'PARLEY_WARN_CERT_DOMAIN_MISMATCH' | 'PARLEY_WARN_CERT_EXPIRING' | 'PARLEY_WARN_CERT_NOT_YET_VALID';
  message: string;
  hint: string;
}

/** The parts of the `tls` config the store reads. */
export type CertificateConfig = Pick<TlsConfig, 'certificates' | 'hosts'> & Partial<Pick<TlsConfig, 'minVersion'>>;

interface Entry {
  domain: string;
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
  x509: X509Certificate;
  context: tls.SecureContext;
}

interface Loaded {
  entries: Map<string, Entry>;
  warnings: CertificateWarning[];
  generated: string[];
}

const EXPIRY_WARNING_DAYS = 14;

export class CertificateStore {
  private entries: Map<string, Entry>;
  private warnings: CertificateWarning[];
  private readonly servers = new Set<tls.Server>();
  /** Domains whose self-signed pair was written by the last load or reload. */
  generated: readonly string[];

  private constructor(
    private readonly config: CertificateConfig,
    private readonly hosts: readonly string[],
    private readonly opts: { generate: boolean },
    loaded: Loaded,
  ) {
    this.entries = loaded.entries;
    this.warnings = loaded.warnings;
    this.generated = loaded.generated;
  }

  /**
   * Finds and validates a certificate for every host: `tls.hosts.<domain>` files, else in the
   * certificates directory `<domain>.crt` + `<domain>.key`, `<domain>.pem` + `<domain>.key`, or
   * certbot's `<domain>/fullchain.pem` + `<domain>/privkey.pem`. A missing pair is generated
   * (self-signed) when `generate` is set, otherwise it is a PARLEY_ERR_CERT_MISSING error.
   */
  static async load(config: CertificateConfig, hosts: string[], opts: { generate: boolean }): Promise<CertificateStore> {
    if (hosts.length === 0) throw new Error('CertificateStore.load needs at least one host');
    const normalised = [...new Set(hosts.map(normaliseName))];
    return new CertificateStore(config, normalised, opts, await loadAll(config, normalised, opts));
  }

  /**
   * The context for an SNI name: the exact domain, else its nearest parent host (so
   * conference.example.com gets example.com's), else the first host's.
   */
  secureContext(servername?: string): tls.SecureContext {
    return this.entryFor(servername).context;
  }

  /** For `tls.createServer({ SNICallback })` and server-side `TLSSocket`s. */
  readonly sniCallback = (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void): void => {
    cb(null, this.secureContext(servername));
  };

  /**
   * Options for `tls.createServer`: SNI plus the first host's pair for clients that send no
   * server name. Pass the server to `attach` so that a reload updates that default too.
   */
  serverOptions(): tls.TlsOptions {
    return { ...this.defaultOptions(), SNICallback: this.sniCallback };
  }

  /** Keeps `server`'s default (no-SNI) certificate in step with reloads. */
  attach(server: tls.Server): void {
    this.servers.add(server);
    server.once('close', () => this.servers.delete(server));
  }

  /**
   * Re-reads every certificate. New connections use the new contexts; established ones keep
   * theirs. On failure the old certificates stay in use and the error is thrown.
   */
  async reload(): Promise<void> {
    const loaded = await loadAll(this.config, this.hosts, this.opts);
    this.entries = loaded.entries;
    this.warnings = loaded.warnings;
    this.generated = loaded.generated;
    for (const server of this.servers) server.setSecureContext(this.defaultOptions());
  }

  describe(): CertificateInfo[] {
    return [...this.entries.values()].map((e) => ({
      domain: e.domain,
      subject: e.x509.subject,
      sans: parseSans(e.x509.subjectAltName),
      notBefore: new Date(e.x509.validFrom),
      notAfter: new Date(e.x509.validTo),
      issuer: e.x509.issuer,
      // checkIssued() would say no: an end-entity cert lacks keyCertSign.
      selfSigned: e.x509.issuer === e.x509.subject && e.x509.verify(e.x509.publicKey),
      certFile: e.certFile,
      keyFile: e.keyFile,
    }));
  }

  /** Problems worth a warning that do not stop the server: domain mismatch, expiry soon. */
  check(): CertificateWarning[] {
    return [...this.warnings];
  }

  private entryFor(servername: string | undefined): Entry {
    if (servername !== undefined && servername !== '') {
      let name = normaliseName(servername);
      for (;;) {
        const entry = this.entries.get(name);
        if (entry !== undefined) return entry;
        const dot = name.indexOf('.');
        if (dot === -1) break;
        name = name.slice(dot + 1);
      }
    }
    return this.entries.get(this.hosts[0]!)!;
  }

  private defaultOptions(): tls.SecureContextOptions {
    const first = this.entryFor(undefined);
    return { cert: first.cert, key: first.key, minVersion: this.config.minVersion ?? 'TLSv1.2' };
  }
}

function normaliseName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '');
}

async function loadAll(config: CertificateConfig, hosts: readonly string[], opts: { generate: boolean }): Promise<Loaded> {
  const entries = new Map<string, Entry>();
  const warnings: CertificateWarning[] = [];
  const generated: string[] = [];
  const dir = resolve(config.certificates);
  for (const domain of hosts) {
    let files = await findFiles(config, dir, domain);
    if (files === undefined) {
      if (!opts.generate) {
        throw new AdminError(
          'PARLEY_ERR_CERT_MISSING',
          `no certificate for ${domain}`,
          `put ${domain}.crt and ${domain}.key in ${dir} or run \`parley cert generate ${domain}\``,
        );
      }
      files = await writeGenerated(dir, domain);
      generated.push(domain);
    }
    const entry = await validate(domain, files, config.minVersion ?? 'TLSv1.2', warnings);
    entries.set(domain, entry);
  }
  return { entries, warnings, generated };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path, fsConstants.R_OK);
    return true;
  } catch {
    return false;
  }
}

async function findFiles(config: CertificateConfig, dir: string, domain: string): Promise<{ cert: string; key: string } | undefined> {
  const explicit = config.hosts?.[domain];
  if (explicit !== undefined) {
    const cert = resolve(explicit.cert);
    const key = resolve(explicit.key);
    for (const [what, file] of [['cert', cert], ['key', key]] as const) {
      if (!(await exists(file))) {
        throw new AdminError('PARLEY_ERR_CERT_MISSING', `${file} (tls.hosts.${domain}.${what}) does not exist or is not readable`, 'fix the path in the config, or remove the entry to look in the certificates directory');
      }
    }
    return { cert, key };
  }
  const candidates: Array<{ cert: string; key: string }> = [
    { cert: join(dir, `${domain}.crt`), key: join(dir, `${domain}.key`) },
    { cert: join(dir, `${domain}.pem`), key: join(dir, `${domain}.key`) },
    // certbot's layout: /etc/letsencrypt/live/<domain>/{fullchain,privkey}.pem
    { cert: join(dir, domain, 'fullchain.pem'), key: join(dir, domain, 'privkey.pem') },
  ];
  for (const c of candidates) {
    if (!(await exists(c.cert))) continue;
    if (await exists(c.key)) return c;
    // A .pem holding both the chain and the key.
    if (c.cert.endsWith('.pem') && /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(await readFile(c.cert, 'utf8'))) {
      return { cert: c.cert, key: c.cert };
    }
    throw new AdminError('PARLEY_ERR_CERT_MISSING', `found ${c.cert} but not its key ${c.key}`, `put the private key for ${domain} at ${c.key}`);
  }
  return undefined;
}

async function writeGenerated(dir: string, domain: string): Promise<{ cert: string; key: string }> {
  const pair = generateSelfSigned([domain]);
  const files = { cert: join(dir, `${domain}.crt`), key: join(dir, `${domain}.key`) };
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await writeFile(files.key, pair.key, { mode: 0o600 });
  await writeFile(files.cert, pair.cert, { mode: 0o644 });
  return files;
}

async function validate(
  domain: string,
  files: { cert: string; key: string },
  minVersion: tls.SecureVersion,
  warnings: CertificateWarning[],
): Promise<Entry> {
  const certPem = await readFile(files.cert, 'utf8');
  const keyPem = files.key === files.cert ? certPem : await readFile(files.key, 'utf8');
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(certPem);
  } catch (err) {
    throw new AdminError('PARLEY_ERR_CERT_INVALID', `cannot read the certificate in ${files.cert}: ${(err as Error).message}`, 'it must be a PEM certificate (-----BEGIN CERTIFICATE-----)');
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new AdminError('PARLEY_ERR_CERT_INVALID', `cannot read the private key in ${files.key}: ${(err as Error).message}`, 'it must be an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----)');
  }
  if (!x509.checkPrivateKey(key)) {
    throw new AdminError('PARLEY_ERR_CERT_KEY_MISMATCH', `the key ${files.key} does not belong to the certificate ${files.cert}`, 'put the key that was issued with this certificate next to it');
  }
  const now = Date.now();
  const notAfter = new Date(x509.validTo);
  const notBefore = new Date(x509.validFrom);
  if (notAfter.getTime() <= now) {
    throw new AdminError(
      'PARLEY_ERR_CERT_EXPIRED',
      `the certificate for ${domain} (${files.cert}) expired on ${notAfter.toISOString().slice(0, 10)}`,
      `renew it (e.g. certbot renew), or delete it and run \`parley cert generate ${domain}\``,
    );
  }
  if (notBefore.getTime() > now) {
    warnings.push({
      domain,
      code: 'PARLEY_WARN_CERT_NOT_YET_VALID',
      message: `the certificate for ${domain} is not valid before ${notBefore.toISOString()}`,
      hint: "check this machine's clock",
    });
  }
  const daysLeft = Math.floor((notAfter.getTime() - now) / 86_400_000);
  if (daysLeft < EXPIRY_WARNING_DAYS) {
    warnings.push({
      domain,
      code: 'PARLEY_WARN_CERT_EXPIRING',
      message: `the certificate for ${domain} expires in ${daysLeft} day${daysLeft === 1 ? '' : 's'} (${notAfter.toISOString().slice(0, 10)})`,
      hint: 'renew it, then send SIGHUP to reload without a restart',
    });
  }
  // RFC 6125: DNS SANs (wildcards in the leftmost label); the CN only when there are none.
  if (x509.checkHost(domain) === undefined) {
    const names = parseSans(x509.subjectAltName);
    warnings.push({
      domain,
      code: 'PARLEY_WARN_CERT_DOMAIN_MISMATCH',
      message: `the certificate ${files.cert} does not cover ${domain} (it names ${names.length > 0 ? names.join(', ') : x509.subject.replace(/\n/g, ', ')})`,
      hint: `get a certificate whose subjectAltName includes ${domain}`,
    });
  }
  let context: tls.SecureContext;
  try {
    context = tls.createSecureContext({ cert: certPem, key: keyPem, minVersion });
  } catch (err) {
    throw new AdminError('PARLEY_ERR_CERT_INVALID', `cannot use the certificate for ${domain} (${files.cert}): ${(err as Error).message}`, 'check that the files are PEM and the key is not encrypted');
  }
  return { domain, certFile: files.cert, keyFile: files.key, cert: certPem, key: keyPem, x509, context };
}

/** `DNS:a.example, IP Address:127.0.0.1` → `['a.example', '127.0.0.1']`. */
function parseSans(subjectAltName: string | undefined): string[] {
  if (subjectAltName === undefined) return [];
  return subjectAltName
    .split(/,\s*/)
    .map((part) => part.replace(/^(DNS|IP Address):/, '').replace(/^"(.*)"$/, '$1'))
    .filter((part) => part !== '');
}
