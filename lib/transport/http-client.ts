// Who is on the other end of an HTTP request, and whether it is encrypted.
//
// A direct TLS connection (an `https` listener) is secure. A plain `http` connection is not,
// except from a loopback address: that is either a local client (development, tests) or a
// reverse proxy on the same machine that terminated TLS, the deployment the example config
// recommends. From a loopback peer only, `X-Forwarded-For` (its last entry, the one the proxy
// added) gives the client's address and `X-Forwarded-Proto: http` marks the request as not
// encrypted, so a proxy that also serves plain HTTP must send that header. Anything else may
// forge these headers, so they are ignored from every other address.
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { TLSSocket } from 'node:tls';

export interface HttpClientInfo {
  /** The client's address (the proxy's `X-Forwarded-For` when the peer is a local proxy). */
  readonly remoteAddress: string;
  /** TLS on this connection, or a loopback peer that did not say `X-Forwarded-Proto: http`. */
  readonly secure: boolean;
  /** The TLS socket when the request arrived over TLS here (channel binding); else undefined. */
  readonly tlsSocket: TLSSocket | undefined;
  /** The scheme the client used, for URLs we hand back to it. */
  readonly scheme: 'http' | 'https';
}

export function normaliseAddress(addr: string | undefined): string {
  if (!addr) return 'unknown';
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}

export function isLoopback(addr: string): boolean {
  return addr === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(addr);
}

/** The last value of a header that may be repeated or comma-separated. */
function lastHeaderValue(req: IncomingMessage, name: string): string | undefined {
  const raw = req.headers[name];
  const joined = Array.isArray(raw) ? raw.join(',') : raw;
  if (joined === undefined) return undefined;
  const parts = joined.split(',').map((p) => p.trim()).filter((p) => p !== '');
  return parts[parts.length - 1];
}

export function clientInfo(req: IncomingMessage): HttpClientInfo {
  const socket = req.socket;
  const tlsSocket = socket instanceof TLSSocket && socket.encrypted ? socket : undefined;
  const peer = normaliseAddress(socket.remoteAddress);
  if (tlsSocket) return { remoteAddress: peer, secure: true, tlsSocket, scheme: 'https' };
  if (!isLoopback(peer)) return { remoteAddress: peer, secure: false, tlsSocket: undefined, scheme: 'http' };
  const forwardedFor = lastHeaderValue(req, 'x-forwarded-for');
  const proto = lastHeaderValue(req, 'x-forwarded-proto')?.toLowerCase();
  const remoteAddress = forwardedFor !== undefined && isIP(normaliseAddress(forwardedFor)) ? normaliseAddress(forwardedFor) : peer;
  const secure = proto !== 'http';
  return { remoteAddress, secure, tlsSocket: undefined, scheme: proto === 'https' ? 'https' : 'http' };
}

const HOST_RE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** The request's Host header when it is a plausible host[:port] (never used unchecked in output). */
export function requestHost(req: IncomingMessage): string | undefined {
  const host = req.headers.host;
  return host !== undefined && host.length <= 260 && HOST_RE.test(host) ? host.toLowerCase() : undefined;
}

/**
 * The base URL clients reach this listener at: `http.publicUrl` when set (without a trailing
 * slash), else the request's scheme and Host header, else undefined.
 */
export function baseUrl(req: IncomingMessage, publicUrl: string | undefined): string | undefined {
  if (publicUrl !== undefined) return publicUrl.replace(/\/+$/, '');
  const host = requestHost(req);
  return host === undefined ? undefined : `${clientInfo(req).scheme}://${host}`;
}

/** The WebSocket URL matching an http(s) base URL. */
export function websocketUrl(base: string): string {
  return `${base.replace(/^http/, 'ws')}/xmpp-websocket`;
}

export function boshUrl(base: string): string {
  return `${base}/http-bind`;
}
