// The SASL mechanism contract (RFC 4422, RFC 6120 §6) and TLS channel bindings (RFC 5929,
// RFC 9266) that the -PLUS mechanisms bind to.
import { createHash } from 'node:crypto';
import type { SecureContext, TLSSocket } from 'node:tls';
import type { CredentialLookup } from '../accounts/types.js';

/** RFC 6120 §6.5 failure conditions. */
export type SaslFailureCondition =
  | 'aborted'
  | 'account-disabled'
  | 'credentials-expired'
  | 'encryption-required'
  | 'incorrect-encoding'
  | 'invalid-authzid'
  | 'invalid-mechanism'
  | 'malformed-request'
  | 'mechanism-too-weak'
  | 'not-authorized'
  | 'temporary-auth-failure';

export type ChannelBindingType = 'tls-exporter' | 'tls-server-end-point' | 'tls-unique';

/** What a mechanism may know about the TLS layer of its stream. */
export interface TlsChannel {
  /** socket.getProtocol(), e.g. 'TLSv1.3'. */
  version: string;
  /** The channel binding types this connection supports, preferred first. */
  bindings(): ChannelBindingType[];
  bindingData(type: ChannelBindingType): Buffer | undefined;
}

export interface SaslContext {
  /** The (prepared) domain the stream is for. */
  host: string;
  tls: TlsChannel | undefined;
  credentials: CredentialLookup;
  /**
   * The mechanism names advertised on this stream, set by the negotiator. SCRAM uses it to
   * detect a stripped -PLUS offer (RFC 5802 §6, the `y` flag). When absent, -PLUS is taken to be
   * offered whenever `tls` supports a binding.
   */
  offered?: readonly string[];
  /** XEP-0388 `<user-agent id/>` of a SASL2 authentication (FAST tokens are bound to it). */
  userAgentId?: string;
  /**
   * Set by the negotiator: a mechanism that looks an account up without `credentials` (FAST
   * tokens) calls it first, so that throttling and lockout apply. Throws when locked out.
   */
  claim?(host: string, user: string): void;
}

export type SaslStep =
  | { kind: 'challenge'; data: Buffer }
  /** user: the prepared localpart that authenticated. */
  | { kind: 'success'; data?: Buffer; user: string }
  | { kind: 'failure'; condition: SaslFailureCondition; text?: string };

export interface SaslExchange {
  start(initial: Buffer | undefined): Promise<SaslStep>;
  step(response: Buffer): Promise<SaslStep>;
}

export interface SaslMechanism {
  readonly name: string;
  available(ctx: SaslContext): boolean;
  create(ctx: SaslContext): SaslExchange;
}

export function failure(condition: SaslFailureCondition, text?: string): SaslStep {
  return text === undefined ? { kind: 'failure', condition } : { kind: 'failure', condition, text };
}

// --- tls-server-end-point (RFC 5929 §4.1) ------------------------------------------------

type CertHash = 'sha224' | 'sha256' | 'sha384' | 'sha512';

// Signature algorithm OID → the hash RFC 5929 §4.1 prescribes (MD5 and SHA-1 become SHA-256).
const SIGNATURE_HASH: Record<string, CertHash> = {
  '1.2.840.113549.1.1.4': 'sha256', // md5WithRSAEncryption
  '1.2.840.113549.1.1.5': 'sha256', // sha1WithRSAEncryption
  '1.2.840.113549.1.1.14': 'sha224',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.1': 'sha256', // ecdsa-with-SHA1
  '1.2.840.10045.4.3.1': 'sha224',
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.10040.4.3': 'sha256', // dsa-with-sha1
  '2.16.840.1.101.3.4.3.1': 'sha224', // dsa-with-sha224
  '2.16.840.1.101.3.4.3.2': 'sha256', // dsa-with-sha256
};

// Digest algorithm OIDs inside RSASSA-PSS parameters (RFC 4055).
const DIGEST_HASH: Record<string, CertHash> = {
  '1.3.14.3.2.26': 'sha256', // SHA-1 → SHA-256
  '2.16.840.1.101.3.4.2.4': 'sha224',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

const RSASSA_PSS = '1.2.840.113549.1.1.10';

interface Tlv {
  tag: number;
  /** Offset of the content. */
  start: number;
  /** Offset just past the content. */
  end: number;
}

/** Reads one DER TLV at `pos`; throws on anything malformed. */
function readTlv(der: Buffer, pos: number, limit: number): Tlv {
  if (pos + 2 > limit) throw new RangeError('truncated DER');
  const tag = der[pos]!;
  let len = der[pos + 1]!;
  let start = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) throw new RangeError('bad DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[start + i]!;
    start += n;
  }
  const end = start + len;
  if (end > limit) throw new RangeError('truncated DER');
  return { tag, start, end };
}

function readOid(der: Buffer, tlv: Tlv): string {
  if (tlv.tag !== 0x06 || tlv.end === tlv.start) throw new RangeError('expected an OID');
  const first = der[tlv.start]!;
  const parts = [Math.min(2, Math.floor(first / 40)), first - Math.min(2, Math.floor(first / 40)) * 40];
  let value = 0;
  for (let i = tlv.start + 1; i < tlv.end; i++) {
    const b = der[i]!;
    value = value * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      parts.push(value);
      value = 0;
    }
  }
  return parts.join('.');
}

/**
 * The hash RFC 5929 §4.1 prescribes for a certificate's tls-server-end-point binding, or
 * undefined when its signature algorithm has no single hash (Ed25519, Ed448) or is unknown.
 */
export function endPointHashOf(certDer: Buffer): CertHash | undefined {
  try {
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm AlgorithmIdentifier, signatureValue }
    const cert = readTlv(certDer, 0, certDer.length);
    if (cert.tag !== 0x30) return undefined;
    const tbs = readTlv(certDer, cert.start, cert.end);
    const algId = readTlv(certDer, tbs.end, cert.end);
    if (algId.tag !== 0x30) return undefined;
    const oidTlv = readTlv(certDer, algId.start, algId.end);
    const oid = readOid(certDer, oidTlv);
    if (oid !== RSASSA_PSS) return SIGNATURE_HASH[oid];
    // RSASSA-PSS-params ::= SEQUENCE { hashAlgorithm [0] AlgorithmIdentifier DEFAULT sha1, ... }
    if (oidTlv.end >= algId.end) return 'sha256';
    const params = readTlv(certDer, oidTlv.end, algId.end);
    if (params.tag !== 0x30 || params.start === params.end) return 'sha256';
    const first = readTlv(certDer, params.start, params.end);
    if (first.tag !== 0xa0) return 'sha256';
    const hashAlg = readTlv(certDer, first.start, first.end);
    return DIGEST_HASH[readOid(certDer, readTlv(certDer, hashAlg.start, hashAlg.end))];
  } catch {
    return undefined;
  }
}

/** RFC 5929 §4.1: the hash of the server certificate, or undefined when it is not defined. */
export function serverEndPointBinding(certDer: Buffer): Buffer | undefined {
  const hash = endPointHashOf(certDer);
  return hash === undefined ? undefined : createHash(hash).update(certDer).digest();
}

/**
 * The channel of a server-side TLS socket, after its handshake. The binding data is computed
 * on first use and kept.
 */
export function tlsChannelOf(socket: TLSSocket): TlsChannel {
  // One per connection: the stream features and each SASL exchange ask again.
  const known = channels.get(socket);
  if (known) return known;
  const channel = newTlsChannel(socket);
  channels.set(socket, channel);
  return channel;
}

const channels = new WeakMap<TLSSocket, TlsChannel>();

/** Lets go of the channel of `socket` once nothing will authenticate on it again (asked again,
 * it is made again). */
export function forgetTlsChannel(socket: TLSSocket): void {
  channels.delete(socket);
}

function newTlsChannel(socket: TLSSocket): TlsChannel {
  const version = socket.getProtocol() ?? '';
  const cache = new Map<ChannelBindingType, Buffer | undefined>();

  const compute = (type: ChannelBindingType): Buffer | undefined => {
    switch (type) {
      case 'tls-exporter':
        // RFC 9266 §2: 32 bytes, this label, empty context; defined for TLS 1.3 only.
        return version === 'TLSv1.3'
          ? socket.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0))
          : undefined;
      case 'tls-unique': {
        // RFC 5929 §3.1: the first Finished message of the latest handshake. In a full
        // handshake the client's comes first (for us, the peer's); in a resumed one the server's.
        // Not defined for TLS 1.3 (RFC 8446 §C.5).
        if (version !== 'TLSv1.2') return undefined;
        const finished = socket.isSessionReused() ? socket.getFinished() : socket.getPeerFinished();
        return finished !== undefined && finished.length > 0 ? Buffer.from(finished) : undefined;
      }
      case 'tls-server-end-point': {
        // Every connection that got the same certificate has the same binding: worked out once
        // per secure context when the transport said which one the handshake used.
        const context = serverContexts.get(socket);
        if (context !== undefined) {
          if (!endPointByContext.has(context)) endPointByContext.set(context, endPointOfSocket(socket));
          return endPointByContext.get(context);
        }
        return endPointOfSocket(socket);
      }
    }
  };

  const bindingData = (type: ChannelBindingType): Buffer | undefined => {
    if (!cache.has(type)) cache.set(type, compute(type));
    return cache.get(type);
  };

  return {
    version,
    bindings() {
      const order: ChannelBindingType[] = ['tls-exporter', 'tls-unique', 'tls-server-end-point'];
      // tls-exporter is defined exactly on TLS 1.3: its keying material (tens of microseconds)
      // is exported only when an exchange uses it, not for every stream's feature list.
      return order.filter((t) => (t === 'tls-exporter' ? version === 'TLSv1.3' : bindingData(t) !== undefined));
    },
    bindingData,
  };
}

/**
 * Tells which secure context (hence which certificate) the server side of `socket` handshook
 * with, so the tls-server-end-point binding is computed once per certificate, not per login.
 * A context is never changed in place (a certificate reload makes new ones), so it is a safe key.
 */
export function noteServerContext(socket: TLSSocket, context: SecureContext): void {
  serverContexts.set(socket, context);
}

const serverContexts = new WeakMap<TLSSocket, SecureContext>();
const endPointByContext = new WeakMap<SecureContext, Buffer | undefined>();

function endPointOfSocket(socket: TLSSocket): Buffer | undefined {
  // getCertificate(), not getX509Certificate(): on Node 20 building the X509Certificate
  // view costs several hundred microseconds per call (measured ~460 µs against ~60 µs),
  // the largest single item of a login's CPU time, for the same DER bytes.
  const cert = socket.getCertificate();
  const raw = cert !== null && 'raw' in cert && Buffer.isBuffer(cert.raw) ? cert.raw : undefined;
  return raw !== undefined ? serverEndPointBinding(raw) : undefined;
}
