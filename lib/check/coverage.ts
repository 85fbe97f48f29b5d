// Whether a certificate covers a domain (RFC 6125: DNS SANs, wildcards in the leftmost label
// only; the CN when there is no SAN), and for how long.
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { CheckLine } from './types.js';

const EXPIRY_WARNING_DAYS = 14;

export async function readCertificate(file: string): Promise<X509Certificate> {
  return new X509Certificate(await readFile(file));
}

/** The line for a service domain: which loaded certificate covers it, or a warning. */
export function serviceCoverage(domain: string, certs: ReadonlyArray<{ file: string; x509: X509Certificate }>, now = Date.now()): CheckLine {
  const what = `certificate ${domain}`;
  const cover = certs.find((c) => c.x509.checkHost(domain) !== undefined);
  if (!cover) {
    return { status: 'warn', what, detail: `no certificate names ${domain}: other servers cannot authenticate it by certificate (add it to the host certificate's names, or a ${domain}.crt)` };
  }
  const notAfter = new Date(cover.x509.validTo);
  const days = Math.floor((notAfter.getTime() - now) / 86_400_000);
  if (notAfter.getTime() <= now) return { status: 'FAIL', what, detail: `${cover.file} expired on ${notAfter.toISOString().slice(0, 10)} (renew it)` };
  if (days < EXPIRY_WARNING_DAYS) return { status: 'warn', what, detail: `${cover.file} expires in ${days} day${days === 1 ? '' : 's'} (renew it, then send SIGHUP)` };
  return { status: 'ok', what, detail: `covered by ${cover.file}, valid until ${notAfter.toISOString().slice(0, 10)}` };
}
