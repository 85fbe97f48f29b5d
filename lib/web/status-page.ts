// The page at / on the http listener: what this server is, and where to go next.
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface StatusInfo {
  name: string;
  version: string;
  hosts: readonly string[];
  startedAt: number;
  webClientPath: string | undefined;
  websocket: boolean;
  bosh: boolean;
  metrics: boolean;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** `3d 4h 5m 6s`, leading zero units left out. */
export function formatUptime(ms: number): string {
  let s = Math.max(0, Math.floor(ms / 1000));
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86_400], ['h', 3_600], ['m', 60]] as const) {
    const n = Math.floor(s / size);
    s -= n * size;
    if (n > 0 || parts.length) parts.push(`${n}${unit}`);
  }
  parts.push(`${s}s`);
  return parts.join(' ');
}

export function statusPage(info: StatusInfo, now = Date.now()): string {
  const e = escapeHtml;
  const endpoints = [
    info.websocket ? '<li>WebSocket (RFC 7395): <code>/xmpp-websocket</code></li>' : '',
    info.bosh ? '<li>BOSH (XEP-0206): <code>/http-bind</code></li>' : '',
    '<li>Connection discovery (XEP-0156): <a href="/.well-known/host-meta">host-meta</a>, <a href="/.well-known/host-meta.json">host-meta.json</a></li>',
    info.metrics ? '<li><a href="/metrics">Prometheus metrics</a></li>' : '',
  ].filter((l) => l !== '').join('\n    ');
  const client = info.webClientPath
    ? `<p class="go"><a href="${e(info.webClientPath)}">Open the web client</a></p>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${e(info.name)} XMPP server</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.6rem; margin-bottom: .2rem; }
  .sub { color: #666; margin-top: 0; }
  dt { font-weight: 600; } dd { margin: 0 0 .6rem 0; }
  code { background: #f3f3f3; padding: 0 .25rem; }
  .go a { display: inline-block; background: #2b6cb0; color: #fff; padding: .5rem 1rem; border-radius: .3rem; text-decoration: none; }
</style>
</head>
<body>
<h1>${e(info.name)}</h1>
<p class="sub">An XMPP server, version ${e(info.version)}, running.</p>
${client}
<dl>
  <dt>Domains</dt>
  <dd>${info.hosts.map((h) => `<code>${e(h)}</code>`).join(', ')}</dd>
  <dt>Uptime</dt>
  <dd id="uptime">${e(formatUptime(now - info.startedAt))}</dd>
  <dt>Endpoints</dt>
  <dd><ul>
    ${endpoints}
  </ul></dd>
</dl>
<p>Any XMPP client works: use your address (<code>name@${e(info.hosts[0] ?? 'example.com')}</code>) and password.</p>
</body>
</html>
`;
}

export function serveStatusPage(req: IncomingMessage, res: ServerResponse, info: StatusInfo): void {
  const html = statusPage(info);
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-cache',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'content-length': String(Buffer.byteLength(html)),
  });
  res.end(req.method === 'HEAD' ? undefined : html);
}
