// Which web pages may open a WebSocket or make BOSH requests to this server (RFC 7395 §3.1 and
// RFC 6455 §10.2: servers check Origin; CORS for BOSH).
//
// The check protects users of browsers, the only clients that send Origin and cannot lie about
// it: a page elsewhere must not drive this server from a visitor's browser (and, from a
// loopback address, be treated as encrypted). Non-browser clients send no Origin header and are
// always allowed: they could send any Origin they like anyway.
//
// Allowed by default: the server's own pages (an Origin naming the host and port of the
// request's Host header, or the origin of `http.publicUrl`), and `https://<domain>` for each
// served domain. `http.websocket.origins` adds more; `*` allows every origin.
import type { IncomingMessage } from 'node:http';
import { requestHost } from './http-client.js';

export class OriginPolicy {
  private readonly allowAll: boolean;
  private readonly allowed: Set<string>;

  constructor(configured: readonly string[], domains: readonly string[], publicUrl: string | undefined) {
    this.allowAll = configured.includes('*');
    this.allowed = new Set(configured.filter((o) => o !== '*'));
    for (const d of domains) this.allowed.add(`https://${d}`);
    if (publicUrl !== undefined) this.allowed.add(new URL(publicUrl).origin);
  }

  /** The request's Origin header, if any. */
  static originOf(req: IncomingMessage): string | undefined {
    const o = req.headers.origin;
    return Array.isArray(o) ? o[0] : o;
  }

  allows(req: IncomingMessage): boolean {
    const origin = OriginPolicy.originOf(req);
    if (origin === undefined) return true;
    if (this.allowAll) return true;
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      return false; // includes the opaque origin "null"
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
    if (this.allowed.has(url.origin)) return true;
    const host = requestHost(req);
    if (host === undefined) return false;
    const own = hostPort(host, url.protocol);
    return own !== undefined && own === hostPort(url.host, url.protocol);
  }
}

function hostPort(host: string, scheme: string): string | undefined {
  try {
    const u = new URL(`${scheme}//${host}`);
    return `${u.hostname}:${u.port || (scheme === 'https:' ? '443' : '80')}`;
  } catch {
    return undefined;
  }
}
