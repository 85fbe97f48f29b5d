// The HTTP listener: a status page and Prometheus metrics. WebSocket, BOSH and uploads mount here later.
import http from 'node:http';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';

export interface HttpListenerOptions {
  address: string;
  port: number;
  metrics?: Metrics;
  log: Logger;
}

export function listenHttp(opts: HttpListenerOptions): Promise<http.Server> {
  const server = http.createServer({ maxHeaderSize: 16 * 1024 }, (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (url.pathname === '/metrics' && opts.metrics) {
      opts.metrics.render().then(
        ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
        (err: unknown) => {
          opts.log.error({ err }, 'metrics rendering failed');
          res.writeHead(500).end();
        },
      );
      return;
    }
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('Parley XMPP server is running.\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.address, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
