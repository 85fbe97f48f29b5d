// The http and https listeners: plain HTTP, or HTTPS with the hosts' certificates (SNI, reloaded
// with them). What they serve is in http-routes.ts; here are the connection-level limits.
import http from 'node:http';
import https from 'node:https';
import type { HttpConfig } from '../config/schema.js';
import type { TlsProvider } from './types.js';
import type { WebServices } from './http-routes.js';

export interface HttpListenerOptions {
  address: string;
  port: number;
  /** Set for an https listener. */
  tls?: { provider: TlsProvider; minVersion: 'TLSv1.2' | 'TLSv1.3' };
  limits: HttpConfig['limits'];
  web: WebServices;
}

export function listenHttp(opts: HttpListenerOptions): Promise<http.Server> {
  const { limits, web } = opts;
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => web.handleRequest(req, res);
  // Node checks the request timeouts below only this often (its default is 30 s).
  const connectionsCheckingInterval = Math.min(5_000, Math.max(250, Math.floor(Math.min(limits.requestTimeout, limits.headersTimeout) / 4)));
  let server: http.Server;
  if (opts.tls) {
    const tlsServer = https.createServer(
      { ...opts.tls.provider.serverOptions(), minVersion: opts.tls.minVersion, ALPNProtocols: ['http/1.1'], maxHeaderSize: limits.headerSize, connectionsCheckingInterval },
      onRequest,
    );
    opts.tls.provider.attach(tlsServer);
    // Handshake failures are the client's problem, not the server's.
    tlsServer.on('tlsClientError', () => undefined);
    server = tlsServer;
  } else {
    server = http.createServer({ maxHeaderSize: limits.headerSize, connectionsCheckingInterval }, onRequest);
  }
  server.on('upgrade', (req: http.IncomingMessage, socket, head: Buffer) => web.handleUpgrade(req, socket, head));
  // Slow clients: whole request (headers and body) and headers alone. A held BOSH request has
  // been received in full, so these do not cut it short.
  server.requestTimeout = limits.requestTimeout;
  server.headersTimeout = Math.min(limits.headersTimeout, limits.requestTimeout);
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.address, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
