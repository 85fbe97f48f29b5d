// What the http and https listeners serve:
//
//   /                              status page
//   /metrics                       Prometheus metrics (http.metrics)
//   /xmpp-websocket                XMPP over WebSocket, RFC 7395 (http.websocket)
//   /http-bind                     BOSH, XEP-0124/0206 (http.bosh)
//   /.well-known/host-meta[.json]  connection discovery, XEP-0156
//   <http.webClient.path>          the built-in web client (Converse.js)
//   module routes                  served by modules through ctx.http (e.g. /upload/, XEP-0363)
//
// One WebServices serves every http/https listener, so a BOSH session may move between them.
// Every request counts against a per-IP limit of requests in progress (held BOSH requests
// included); bodies are read only for BOSH, up to http.limits.bodySize.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { TextDecoder } from 'node:util';
import type { HttpConfig } from '../config/schema.js';
import type { C2sEnv } from '../stream/c2s-stream.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { StreamSet } from './c2s-listeners.js';
import { BOSH_PATH, BoshManager } from './bosh.js';
import { baseUrl, clientInfo } from './http-client.js';
import { OriginPolicy } from './origin-policy.js';
import { WEBSOCKET_PATH, WebSocketEndpoint, refuseUpgrade } from './websocket.js';
import { HOST_META_JSON_PATH, HOST_META_PATH, hostMetaJson, hostMetaXml } from '../web/host-meta.js';
import { serveStatusPage } from '../web/status-page.js';
import { WebClient, converseDist } from '../web/web-client.js';
import type { ModuleHttpRoutes } from './module-routes.js';

export interface WebServicesOptions {
  http: HttpConfig;
  env: C2sEnv;
  streams: StreamSet;
  connectionsPerIp: number;
  /** The stanza size limit: the largest WebSocket message, and the largest stanza in a BOSH body. */
  stanzaBytes: number;
  depth: number;
  attributes: number;
  hosts: readonly string[];
  name: string;
  version: string;
  startedAt: number;
  metrics?: Metrics;
  log: Logger;
  /** Routes served by modules (`ctx.http`), for paths not served here. */
  moduleRoutes?: ModuleHttpRoutes;
}

const TEXT = 'text/plain; charset=utf-8';

function plain(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return void res.end();
  const body = `${text}\n`;
  res.writeHead(status, { ...headers, 'content-type': TEXT, 'content-length': String(Buffer.byteLength(body)), 'x-content-type-options': 'nosniff' });
  res.end(body);
}

/** The path of a request target, still percent-encoded; undefined when it is not a path. */
export function requestPath(target: string | undefined): string | undefined {
  if (target === undefined) return undefined;
  if (target.startsWith('/')) {
    // "//host/x" is a path here, not a scheme-relative URL: never parse it with a base URL.
    const end = target.search(/[?#]/);
    return end < 0 ? target : target.slice(0, end);
  }
  try {
    return new URL(target).pathname; // absolute-form (RFC 9112 §3.2.2)
  } catch {
    return undefined;
  }
}

type BodyResult = { ok: true; body: Buffer } | { ok: false; status: 413 | 400 };

function readBody(req: IncomingMessage, limit: number): Promise<BodyResult> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return Promise.resolve({ ok: false, status: 413 });
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        req.pause();
        resolve({ ok: false, status: 413 });
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      resolve({ ok: true, body: Buffer.concat(chunks) });
    });
    req.on('error', () => {
      if (done) return;
      done = true;
      resolve({ ok: false, status: 400 });
    });
  });
}

export class WebServices {
  readonly websocket: WebSocketEndpoint | undefined;
  readonly bosh: BoshManager | undefined;
  readonly webClient: WebClient | undefined;
  private readonly origins: OriginPolicy;
  private readonly inFlight = new Map<string, number>();

  constructor(private readonly opts: WebServicesOptions) {
    const h = opts.http;
    this.origins = new OriginPolicy(h.websocket.origins, opts.hosts, h.publicUrl);
    if (h.websocket.enabled) {
      this.websocket = new WebSocketEndpoint({
        env: opts.env,
        streams: opts.streams,
        connectionsPerIp: opts.connectionsPerIp,
        maxPayload: opts.stanzaBytes,
        pingIntervalMs: h.websocket.pingInterval,
        origins: this.origins,
        log: opts.log,
      });
    }
    if (h.bosh.enabled) {
      this.bosh = new BoshManager({
        env: opts.env,
        streams: opts.streams,
        connectionsPerIp: opts.connectionsPerIp,
        maxWaitMs: h.bosh.maxWait,
        maxHold: h.bosh.maxHold,
        maxRequests: h.bosh.maxRequests,
        inactivityMs: h.bosh.inactivity,
        maxPauseMs: h.bosh.maxPause,
        bodyLimits: {
          maxStanzaBytes: h.limits.bodySize,
          maxDepth: opts.depth + 1,
          maxAttributes: opts.attributes,
          maxAttributeValueBytes: Math.min(opts.stanzaBytes, 64 * 1024),
          maxTextBytes: opts.stanzaBytes,
          maxNameBytes: 256,
        },
        log: opts.log,
      });
    }
    if (h.webClient.enabled) {
      const dist = converseDist();
      if (dist === undefined) {
        opts.log.warn('the web client is enabled but the converse.js package is not installed; /chat is off (npm install converse.js)');
      } else {
        this.webClient = new WebClient(
          { path: h.webClient.path, hosts: opts.hosts, publicUrl: h.publicUrl, websocket: h.websocket.enabled, bosh: h.bosh.enabled },
          dist,
        );
      }
    }
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    if (requestPath(req.url) !== WEBSOCKET_PATH || !this.websocket) return refuseUpgrade(socket, 404, 'Not Found', 'not found');
    if (req.method !== 'GET') return refuseUpgrade(socket, 405, 'Method Not Allowed', 'use GET');
    this.websocket.handleUpgrade(req, socket, head);
  }

  handleRequest(req: IncomingMessage, res: ServerResponse): void {
    const info = clientInfo(req);
    const ip = info.remoteAddress;
    const n = this.inFlight.get(ip) ?? 0;
    if (n >= this.opts.http.limits.requestsPerIp) return plain(res, 429, 'too many requests from your address', { 'retry-after': '1', connection: 'close' });
    this.inFlight.set(ip, n + 1);
    res.once('close', () => {
      const left = (this.inFlight.get(ip) ?? 1) - 1;
      if (left <= 0) this.inFlight.delete(ip);
      else this.inFlight.set(ip, left);
    });
    this.route(req, res).catch((err: unknown) => {
      this.opts.log.error({ err, path: requestPath(req.url) }, 'http request failed');
      if (!res.headersSent) plain(res, 500, 'internal server error');
      else res.destroy();
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = requestPath(req.url);
    if (path === undefined) return plain(res, 400, 'bad request target');
    const method = req.method ?? 'GET';
    if (path === BOSH_PATH && this.bosh) return this.boshRequest(req, res, method);
    if (path === HOST_META_PATH || path === HOST_META_JSON_PATH) return this.hostMeta(req, res, path, method);
    if (await this.moduleRoute(req, res, path, method)) return;
    const known = path === WEBSOCKET_PATH || path === '/metrics' || path === '/' || path === '/index.html' || this.webClient?.owns(path);
    if (!known) return plain(res, 404, 'not found');
    if (method !== 'GET' && method !== 'HEAD') return plain(res, 405, 'method not allowed', { allow: 'GET, HEAD' });
    if (path === WEBSOCKET_PATH && this.websocket) {
      return plain(res, 426, "connect with a WebSocket client, subprotocol 'xmpp' (RFC 7395)", { upgrade: 'websocket', connection: 'Upgrade' });
    }
    if (path === '/metrics' && this.opts.metrics && this.opts.http.metrics) {
      const { contentType, body } = await this.opts.metrics.render();
      res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' }).end(method === 'HEAD' ? undefined : body);
      return;
    }
    if (path === '/' || path === '/index.html') {
      return serveStatusPage(req, res, {
        name: this.opts.name,
        version: this.opts.version,
        hosts: this.opts.hosts,
        startedAt: this.opts.startedAt,
        webClientPath: this.webClient?.path,
        websocket: this.websocket !== undefined,
        bosh: this.bosh !== undefined,
        metrics: this.opts.http.metrics && this.opts.metrics !== undefined,
      });
    }
    if (this.webClient?.owns(path)) return this.webClient.handle(req, res, path);
    plain(res, 404, 'not found');
  }

  /** Offers a request to the modules' routes; true when one of them took it. */
  private async moduleRoute(req: IncomingMessage, res: ServerResponse, path: string, method: string): Promise<boolean> {
    const routes = this.opts.moduleRoutes?.match(path) ?? [];
    if (routes.length === 0) return false;
    const allowed = routes.filter((r) => r.methods.includes(method));
    if (allowed.length === 0) {
      const allow = [...new Set(routes.flatMap((r) => r.methods))].join(', ');
      plain(res, 405, 'method not allowed', { allow });
      return true;
    }
    for (const r of allowed) {
      if ((await r.handler(req, res)) !== 'pass') return true;
    }
    plain(res, 404, 'not found');
    return true;
  }

  private hostMeta(req: IncomingMessage, res: ServerResponse, path: string, method: string): void {
    // XEP-0156 §3: readable by web clients on any origin.
    const cors = { 'access-control-allow-origin': '*' };
    if (method === 'OPTIONS') {
      res.writeHead(204, { ...cors, 'access-control-allow-methods': 'GET, HEAD, OPTIONS', 'access-control-max-age': '86400' }).end();
      return;
    }
    if (method !== 'GET' && method !== 'HEAD') return plain(res, 405, 'method not allowed', { allow: 'GET, HEAD, OPTIONS' });
    const base = baseUrl(req, this.opts.http.publicUrl);
    if (base === undefined) return plain(res, 400, 'a Host header is needed (or set http.publicUrl)', cors);
    const endpoints = { websocket: this.websocket !== undefined, bosh: this.bosh !== undefined };
    const json = path === HOST_META_JSON_PATH;
    const body = json ? hostMetaJson(base, endpoints) : hostMetaXml(base, endpoints);
    res.writeHead(200, {
      ...cors,
      'content-type': json ? 'application/json; charset=utf-8' : 'application/xrd+xml; charset=utf-8',
      // Derived from the Host header unless publicUrl is set.
      'cache-control': this.opts.http.publicUrl === undefined ? 'no-cache' : 'public, max-age=3600',
      vary: 'Host',
      'x-content-type-options': 'nosniff',
      'content-length': String(Buffer.byteLength(body)),
    });
    res.end(method === 'HEAD' ? undefined : body);
  }

  private async boshRequest(req: IncomingMessage, res: ServerResponse, method: string): Promise<void> {
    const origin = OriginPolicy.originOf(req);
    if (!this.origins.allows(req)) return plain(res, 403, 'this origin may not use BOSH here; see http.websocket.origins');
    const cors: Record<string, string> = origin === undefined ? {} : { 'access-control-allow-origin': origin, vary: 'Origin' };
    if (method === 'OPTIONS') {
      res.writeHead(204, {
        ...cors,
        'access-control-allow-methods': 'POST, OPTIONS',
        'access-control-allow-headers': 'Content-Type',
        'access-control-max-age': '86400',
      }).end();
      return;
    }
    if (method !== 'POST') return plain(res, 405, 'BOSH (XEP-0206): POST a <body/> here', { ...cors, allow: 'POST, OPTIONS' });
    const read = await readBody(req, this.opts.http.limits.bodySize);
    if (!read.ok) {
      // Stop reading an oversized body: the connection is not reusable.
      return plain(res, read.status, read.status === 413 ? 'request body too large' : 'bad request', { ...cors, connection: 'close' });
    }
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(read.body);
    } catch {
      return plain(res, 400, 'the body is not UTF-8', cors);
    }
    const info = clientInfo(req);
    this.bosh!.handle(req, res, text, info, { ...cors, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  }

  /** Server shutdown, after every stream was sent its stream error. */
  async close(): Promise<void> {
    await Promise.all([this.bosh?.close(), this.websocket?.close()]);
  }
}
