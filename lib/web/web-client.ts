// The built-in web client: Converse.js from its npm package, started by a page we generate.
//
//   <path>            the page (also <path>/): Converse in fullscreen, connecting to this server
//   <path>/init.js    reads the page's JSON settings and calls converse.initialize()
//   <path>/dist/...   the files of node_modules/converse.js/dist
//
// The settings travel as JSON in a non-executed <script type="application/json">, so the page
// runs no inline script and its Content-Security-Policy can forbid them.
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StaticFiles, notFound } from './static-files.js';
import { baseUrl, boshUrl, requestHost, websocketUrl } from '../transport/http-client.js';

export interface WebClientOptions {
  /** Mount point, e.g. /chat (no trailing slash). */
  path: string;
  hosts: readonly string[];
  publicUrl: string | undefined;
  websocket: boolean;
  bosh: boolean;
}

/** Where Converse's dist/ is, or undefined when the package is not installed. */
export function converseDist(): string | undefined {
  try {
    // The package's exports map hides package.json; its main bundle is exported.
    return dirname(createRequire(import.meta.url).resolve('converse.js/dist/converse.min.js'));
  } catch {
    return undefined;
  }
}

// Converse 14's bundle is an ES module that also sets window.converse; module scripts run in
// document order, so this one runs after it.
const INIT_JS = `// Parley: starts Converse.js with the settings the page carries.
const settings = JSON.parse(document.getElementById('parley-converse-settings').textContent);
window.converse.initialize(settings);
`;

// Converse loads chunks and a WebAssembly module from 'self', styles itself inline, and shows
// images and media from anywhere (avatars, link previews, uploads); it talks to this server.
const CSP = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob: https:",
  "media-src 'self' data: blob: https:",
  "font-src 'self' data:",
  "connect-src 'self' ws: wss: https:",
  "worker-src 'self' blob:",
  "frame-src 'none'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON safe inside a <script> element: no `<` (so no `</script>`), no U+2028/9. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

export class WebClient {
  private readonly files: StaticFiles;

  constructor(private readonly opts: WebClientOptions, distDir: string) {
    // Converse's file names carry no content hash: cache for a day, revalidate by ETag after.
    this.files = new StaticFiles(distDir, 'public, max-age=86400');
  }

  get path(): string {
    return this.opts.path;
  }

  /** True when `pathname` belongs to the web client. */
  owns(pathname: string): boolean {
    return pathname === this.opts.path || pathname.startsWith(`${this.opts.path}/`);
  }

  async handle(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<void> {
    const p = this.opts.path;
    if (pathname === p || pathname === `${p}/` || pathname === `${p}/index.html`) return this.page(req, res);
    if (pathname === `${p}/init.js`) {
      res.writeHead(200, {
        'content-type': 'text/javascript; charset=utf-8',
        'cache-control': 'no-cache',
        'x-content-type-options': 'nosniff',
        'content-length': String(Buffer.byteLength(INIT_JS)),
      });
      res.end(req.method === 'HEAD' ? undefined : INIT_JS);
      return;
    }
    if (pathname.startsWith(`${p}/dist/`)) return this.files.serve(req, res, pathname.slice(`${p}/dist/`.length));
    notFound(res);
  }

  /** The domain a visitor logs in to: the one the Host header names, else the first one served. */
  private domainFor(req: IncomingMessage): string {
    const host = requestHost(req)?.replace(/:\d+$/, '');
    return host !== undefined && this.opts.hosts.includes(host) ? host : this.opts.hosts[0];
  }

  settings(req: IncomingMessage): Record<string, unknown> {
    const base = baseUrl(req, this.opts.publicUrl);
    const domain = this.domainFor(req);
    const s: Record<string, unknown> = {
      assets_path: `${this.opts.path}/dist/`,
      view_mode: 'fullscreen',
      // This page comes from the server itself, so the endpoint is known. XEP-0156 discovery
      // would fetch https://<domain>/.well-known/host-meta first (which fails on a development
      // setup without HTTPS on port 443) and only accepts wss:/https: endpoints from it.
      discover_connection_methods: false,
      default_domain: domain,
      domain_placeholder: domain,
      auto_reconnect: true,
      loglevel: 'warn',
    };
    if (base !== undefined && this.opts.websocket) s.websocket_url = websocketUrl(base);
    if (base !== undefined && this.opts.bosh) s.bosh_service_url = boshUrl(base);
    return s;
  }

  private page(req: IncomingMessage, res: ServerResponse): void {
    const p = this.opts.path;
    const domain = this.domainFor(req);
    const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Chat on ${escapeHtml(domain)}</title>
<link rel="icon" href="${p}/dist/images/favicon.ico">
<link rel="stylesheet" href="${p}/dist/converse.min.css">
<script type="application/json" id="parley-converse-settings">${scriptJson(this.settings(req))}</script>
<script type="module" src="${p}/dist/converse.min.js"></script>
<script type="module" src="${p}/init.js"></script>
</head>
<body class="converse-fullscreen">
<noscript>The web client needs JavaScript.</noscript>
</body>
</html>
`;
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      // The settings depend on the Host header.
      'cache-control': 'no-cache',
      vary: 'Host',
      'content-security-policy': CSP,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'content-length': String(Buffer.byteLength(html)),
    });
    res.end(req.method === 'HEAD' ? undefined : html);
  }
}
