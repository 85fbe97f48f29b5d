// What the s2s streams share: configuration, keys, TLS, and the way back into the federation
// manager (to verify a dialback key over an outgoing stream).
import type { S2sConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Router } from '../routing/router.js';
import type { StanzaError } from '../stanza/error.js';
import type { XmlLimits } from '../xml/limits.js';
import type { DialbackKeys } from './dialback-key.js';
import type { PeerCertificate, S2sTlsContexts } from './certificates.js';
import type { StreamTransport } from '../transport/types.js';
import { prepDomain } from '../jid/jid.js';

export interface S2sLimits {
  stanzaBytes: number;
  preAuthStanzaBytes: number;
  depth: number;
  attributes: number;
  /** Until a stream has a verified domain (or has answered a verification request). */
  unauthenticatedTimeoutMs: number;
  inboundQueue: number;
  outboundBufferBytes: number;
}

/** A transport that can tell whether the peer's certificate is valid for a domain. */
export interface S2sStreamTransport extends StreamTransport {
  peerCertificate(domain: string): PeerCertificate;
}

/** A Receiving Server's question to an Authoritative Server (XEP-0220 §2.1.2, Step 2). */
export interface VerifyRequest {
  /** Our domain: the Target Domain of the inbound <db:result/>. */
  receiving: string;
  /** The remote domain the key claims to come from (the Sender Domain). */
  originating: string;
  /** The id of the stream header we sent on the inbound stream. */
  streamId: string;
  key: string;
}

/** `valid`, `invalid`, or why no answer was had (XEP-0220 §2.4 conditions). */
export type DialbackVerdict = 'valid' | 'invalid' | StanzaError;

export interface S2sEnv {
  router: Router;
  /** A domain this server answers for: a host, or a service/component domain. */
  isLocal(domain: string): boolean;
  /** The `s2s` access rule (lib/acl): whether this server federates with a remote domain. */
  mayFederate?(domain: string): boolean;
  keys: DialbackKeys;
  tls: S2sTlsContexts;
  config: S2sConfig;
  limits: S2sLimits;
  log: Logger;
  metrics?: Metrics;
  /** Asks the Authoritative Server for `originating`, over our outgoing stream to it. */
  verifyKey(req: VerifyRequest): Promise<DialbackVerdict>;
  /**
   * XEP-0288: an inbound stream the peer made bidirectional may carry our stanzas from `local`
   * to `remote` (the inverse of a pair verified on it); `detach` when it closes.
   */
  attachReverse?(local: string, remote: string, sink: ReverseSink): void;
  detachReverse?(sink: ReverseSink): void;
}

/** Where stanzas for a domain pair can be written (an outbound or a bidirectional stream). */
export interface ReverseSink {
  readonly closed: boolean;
  /** Writes a serialised stanza now. */
  sendReverse(wire: string, kind: string): void;
}

export function xmlLimits(l: S2sLimits, authenticated: boolean): XmlLimits {
  const size = authenticated ? l.stanzaBytes : l.preAuthStanzaBytes;
  return {
    maxStanzaBytes: size,
    maxDepth: l.depth,
    maxAttributes: l.attributes,
    maxAttributeValueBytes: Math.min(size, 64 * 1024),
    maxTextBytes: size,
    maxNameBytes: 256,
  };
}

/** A prepared domain name from an attribute, or undefined when absent or not a bare domain. */
export function domainAttr(value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '' || value.includes('@') || value.includes('/')) return undefined;
  try {
    return prepDomain(value);
  } catch {
    return undefined;
  }
}
