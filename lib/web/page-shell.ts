// What the web admin's and the account pages have in common: the HTML around a page's body, and
// one way to answer with the security headers both use (no caching, no framing, no sniffing,
// the area's Content-Security-Policy).
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface PageArea {
  /** '/admin' or '/account': where the page's script and style are served. */
  base: '/admin' | '/account';
  /** Shown in the header and the window title. */
  site: string;
  /** The navigation of a logged-in page (empty on the login page). */
  nav: string;
}

export function pageShell(area: PageArea, id: string, title: string, body: string): string {
  const nav = id === 'login' ? '' : area.nav;
  const asset = area.base.slice(1);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · ${area.site}</title>
<link rel="stylesheet" href="${area.base}/assets/${asset}.css">
<script src="${area.base}/assets/${asset}.js" defer></script>
</head>
<body data-page="${id}">
<header><h1>${area.site}</h1>${nav}</header>
<main>
<h2 class="title">${title}</h2>
<p id="message" role="status" hidden></p>
${body}
</main>
</body>
</html>
`;
}

export type PageSender = (req: IncomingMessage, res: ServerResponse, status: number, type: string, body: string, extra?: Record<string, string>) => void;

/** Answers with the pages' security headers and `csp`; no body for HEAD. */
export function pageSender(csp: string): PageSender {
  const headers = {
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'content-security-policy': csp,
  };
  return (req, res, status, type, body, extra = {}) => {
    res.writeHead(status, { ...headers, ...extra, 'content-type': type, 'content-length': String(Buffer.byteLength(body)) });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}
