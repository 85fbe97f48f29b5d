// Server certificates for federation: the TLS contexts s2s streams use (our certificate per
// domain, plus the CAs we trust for the peer's), and the RFC 6125 check that a peer's
// certificate names the domain it claims (RFC 6120 §13.7.2).
import type { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import tls from 'node:tls';
import { domainToASCII } from 'node:url';
import type { CertificateStore } from '../tls/certificates.js';

/** The identifiers a certificate presents (RFC 6125 §1.8), lowercased. */
export interface PresentedIdentifiers {
  /** subjectAltName dNSName entries; may hold a wildcard in the left-most label. */
  dns: string[];
  /** subjectAltName SRVName entries (RFC 4985), e.g. `_xmpp-server.example.net`. */
  srv: string[];
  /** subjectAltName otherName id-on-xmppAddr entries (RFC 6120 §13.7.1.4). */
  xmpp: string[];
  /** Subject common names; used only when there is no DNS or SRV identifier (RFC 6125 §6.4.4). */
  cn: string[];
}

/** Splits Node's `subjectAltName` rendering ("DNS:a, othername:XmppAddr:b, DNS:\"c,d\""). */
export function parseSubjectAltName(san: string | undefined): Array<{ type: string; value: string }> {
  const out: Array<{ type: string; value: string }> = [];
  if (!san) return out;
  let i = 0;
  while (i < san.length) {
    while (san[i] === ' ' || san[i] === ',') i++;
    if (i >= san.length) break;
    // The type runs to the last ':' before the value; othername types carry their own ':'.
    let typeEnd = san.indexOf(':', i);
    if (typeEnd === -1) break;
    let type = san.slice(i, typeEnd);
    if (type.toLowerCase() === 'othername') {
      const next = san.indexOf(':', typeEnd + 1);
      if (next === -1) break;
      type = `othername:${san.slice(typeEnd + 1, next)}`;
      typeEnd = next;
    }
    let j = typeEnd + 1;
    let value: string;
    if (san[j] === '"') {
      // Node quotes values holding separators as JSON strings.
      let k = j + 1;
      while (k < san.length && san[k] !== '"') k += san[k] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(san.slice(j, k + 1)) as string;
      } catch {
        value = san.slice(j + 1, k);
      }
      j = k + 1;
    } else {
      const end = san.indexOf(', ', j);
      value = san.slice(j, end === -1 ? san.length : end);
      j = end === -1 ? san.length : end;
    }
    out.push({ type, value });
    i = j;
  }
  return out;
}

export function presentedIdentifiers(cert: X509Certificate): PresentedIdentifiers {
  const ids: PresentedIdentifiers = { dns: [], srv: [], xmpp: [], cn: [] };
  for (const { type, value } of parseSubjectAltName(cert.subjectAltName)) {
    const v = value.trim().toLowerCase().replace(/\.$/, '');
    switch (type.toLowerCase()) {
      case 'dns':
        ids.dns.push(v);
        break;
      case 'othername:srvname':
        ids.srv.push(v);
        break;
      case 'othername:xmppaddr':
        ids.xmpp.push(v);
        break;
    }
  }
  for (const line of cert.subject.split('\n')) {
    if (line.startsWith('CN=')) ids.cn.push(line.slice(3).trim().toLowerCase().replace(/\.$/, ''));
  }
  return ids;
}

function ascii(name: string): string {
  const lower = name.trim().toLowerCase().replace(/\.$/, '');
  // A pattern like *.example.com is not a valid host for domainToASCII; convert the rest.
  if (lower.startsWith('*.')) {
    const rest = domainToASCII(lower.slice(2));
    return rest === '' ? '' : `*.${rest}`;
  }
  return domainToASCII(lower);
}

/**
 * RFC 6125 §6.4.3 as tightened by RFC 9525 §6.3: a `*` may only be the whole left-most label,
 * matches exactly one label, and needs at least two labels after it.
 */
export function matchDnsId(pattern: string, domain: string): boolean {
  const p = ascii(pattern);
  const d = ascii(domain);
  if (p === '' || d === '') return false;
  if (!p.includes('*')) return p === d;
  const labels = p.split('.');
  if (labels[0] !== '*' || labels.slice(1).some((l) => l.includes('*') || l === '') || labels.length < 3) return false;
  const dot = d.indexOf('.');
  if (dot <= 0) return false;
  return d.slice(dot + 1) === labels.slice(1).join('.');
}

/** Whether the certificate names `domain` as an XMPP server (DNS-ID, SRV-ID, XmppAddr, CN-ID). */
export function certificateNamesDomain(ids: PresentedIdentifiers, domain: string): boolean {
  const d = ascii(domain);
  if (d === '') return false;
  if (ids.dns.some((p) => matchDnsId(p, d))) return true;
  // RFC 6125 §6.5.1 / RFC 6120 §13.7.1.2.1: SRV-ID for the xmpp-server service, exact name.
  if (ids.srv.some((s) => s === `_xmpp-server.${d}` || s === `_xmpps-server.${d}`)) return true;
  if (ids.xmpp.some((x) => ascii(x) === d)) return true;
  if (ids.dns.length === 0 && ids.srv.length === 0) return ids.cn.some((cn) => matchDnsId(cn, d));
  return false;
}

export interface PeerCertificate {
  /** Chains to a trusted CA (OpenSSL's verdict) and names the domain. */
  valid: boolean;
  /** Why not, for logs. */
  reason?: string;
}

/**
 * RFC 6120 §13.7.2: is the peer's certificate trusted (`authorized`: OpenSSL verified its chain
 * against our CAs) and issued for `domain`?
 */
export function checkPeerCertificate(socket: tls.TLSSocket, domain: string, authorized: boolean, authError?: string): PeerCertificate {
  const cert = socket.getPeerX509Certificate();
  if (!cert) return { valid: false, reason: 'no certificate' };
  if (!authorized) return { valid: false, reason: authError ?? 'untrusted' };
  if (!certificateNamesDomain(presentedIdentifiers(cert), domain)) return { valid: false, reason: `not issued for ${domain}` };
  return { valid: true };
}

interface Pair {
  domain: string;
  context: tls.SecureContext;
  cert: string;
  key: string;
}

/**
 * TLS contexts for s2s: the same certificates as the host's (from the CertificateStore's files),
 * plus the trusted CAs, which OpenSSL needs both to verify a server we connect to and to verify
 * the certificate a connecting server presents (requestCert).
 */
export class S2sTlsContexts {
  private pairs = new Map<string, Pair>();
  private first: Pair | undefined;
  private ca: string[] = [];

  constructor(
    private readonly certs: CertificateStore,
    private readonly trustedCaFiles: readonly string[],
    private readonly minVersion: tls.SecureVersion,
  ) {}

  /** Reads the certificate files and CA files (again, after a certificate reload). */
  async load(): Promise<void> {
    const extra = await Promise.all(this.trustedCaFiles.map((f) => readFile(f, 'utf8')));
    const ca = [...tls.rootCertificates, ...extra];
    const pairs = new Map<string, Pair>();
    let first: Pair | undefined;
    for (const info of this.certs.describe()) {
      const cert = await readFile(info.certFile, 'utf8');
      const key = info.keyFile === info.certFile ? cert : await readFile(info.keyFile, 'utf8');
      const context = tls.createSecureContext({ cert, key, ca, minVersion: this.minVersion });
      const pair = { domain: info.domain, context, cert, key };
      pairs.set(info.domain, pair);
      first ??= pair;
    }
    this.ca = ca;
    this.pairs = pairs;
    this.first = first;
  }

  /** The context for a local domain: its own pair, else its nearest parent host's. */
  context(domain?: string): tls.SecureContext {
    return this.pairFor(domain).context;
  }

  readonly sniCallback = (servername: string, cb: (err: Error | null, ctx?: tls.SecureContext) => void): void => {
    cb(null, this.context(servername));
  };

  /** Options for a direct-TLS s2s server: SNI, our default pair, and a request for the peer's. */
  serverOptions(): tls.TlsOptions {
    const p = this.pairFor(undefined);
    return {
      cert: p.cert,
      key: p.key,
      ca: this.ca,
      SNICallback: this.sniCallback,
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: this.minVersion,
      ALPNProtocols: ['xmpp-server'],
    };
  }

  private pairFor(domain: string | undefined): Pair {
    if (domain) {
      let name = domain.toLowerCase().replace(/\.$/, '');
      for (;;) {
        const p = this.pairs.get(name);
        if (p) return p;
        const dot = name.indexOf('.');
        if (dot === -1) break;
        name = name.slice(dot + 1);
      }
    }
    if (!this.first) throw new Error('s2s TLS contexts are not loaded');
    return this.first;
  }
}
