// The http listener's pages against a real server: XEP-0156 host-meta, the status page, the web
// client's files (types, caching, no way out of its directory) and the HTTP limits.
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { expect } from 'chai';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { NS, RawBosh, httpRequest, parseXml, sleep } from '../lib/transport/web-clients.js';

const XRD = 'http://docs.oasis-open.org/ns/xri/xrd-1.0';

/** Sends raw bytes (a request line exactly as written) and returns the status line's code. */
function rawStatus(port: number, request: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
    });
    socket.setTimeout(5_000, () => socket.destroy());
  });
}

describe('e2e: HTTP pages (host-meta, status, web client)', function () {
  this.timeout(20_000);
  let srv: TestServer;
  let port: number;

  before(async () => {
    srv = await startTestServer();
    port = srv.port('http');
  });
  after(async () => srv?.stop());

  describe('XEP-0156 host-meta', () => {
    it('serves the XRD document with both endpoints, derived from the Host header, readable from any origin', async () => {
      const res = await fetch(`http://127.0.0.1:${port}/.well-known/host-meta`, { headers: { origin: 'https://elsewhere.example' } });
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.equal('application/xrd+xml; charset=utf-8');
      expect(res.headers.get('access-control-allow-origin')).to.equal('*');
      const xrd = parseXml(await res.text());
      expect(xrd.is('XRD', XRD)).to.equal(true);
      const links = xrd.children.filter((c) => c.is('Link', XRD)).map((l) => [l.attrs.rel, l.attrs.href]);
      expect(links).to.deep.equal([
        ['urn:xmpp:alt-connections:websocket', `ws://127.0.0.1:${port}/xmpp-websocket`],
        ['urn:xmpp:alt-connections:xbosh', `http://127.0.0.1:${port}/http-bind`],
      ]);
    });

    it('serves the JSON form with the same links', async () => {
      const res = await fetch(`http://127.0.0.1:${port}/.well-known/host-meta.json`);
      expect(res.headers.get('content-type')).to.equal('application/json; charset=utf-8');
      expect(res.headers.get('access-control-allow-origin')).to.equal('*');
      expect(await res.json()).to.deep.equal({
        links: [
          { rel: 'urn:xmpp:alt-connections:websocket', href: `ws://127.0.0.1:${port}/xmpp-websocket` },
          { rel: 'urn:xmpp:alt-connections:xbosh', href: `http://127.0.0.1:${port}/http-bind` },
        ],
      });
    });

    it('uses http.publicUrl when set, and leaves out disabled endpoints', async () => {
      const other = await startTestServer({ http: { publicUrl: 'https://xmpp.example.com/', bosh: { enabled: false } } });
      try {
        const res = await fetch(`http://127.0.0.1:${other.port('http')}/.well-known/host-meta.json`);
        expect(await res.json()).to.deep.equal({ links: [{ rel: 'urn:xmpp:alt-connections:websocket', href: 'wss://xmpp.example.com/xmpp-websocket' }] });
        expect((await fetch(`http://127.0.0.1:${other.port('http')}/http-bind`, { method: 'POST', body: '<body/>' })).status).to.equal(404);
      } finally {
        await other.stop();
      }
    });

    it('does not echo a Host header that is not a host name', async () => {
      const res = await rawStatus(port, "GET /.well-known/host-meta HTTP/1.1\r\nHost: evil'><x\r\nConnection: close\r\n\r\n");
      expect(res.status).to.equal(400);
      expect(res.text).to.not.contain("evil'");
    });
  });

  describe('status page', () => {
    it('shows the server name, version, domains, uptime and a link to the web client', async () => {
      const res = await fetch(`http://127.0.0.1:${port}/`);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.equal('text/html; charset=utf-8');
      expect(res.headers.get('content-security-policy')).to.contain("default-src 'none'");
      const html = await res.text();
      const version = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
      expect(html).to.contain('<h1>Parley</h1>').and.to.contain(`version ${version}`).and.to.contain('<code>localhost</code>');
      expect(html).to.match(/<dd id="uptime">\d+s<\/dd>/);
      expect(html).to.contain('<a href="/chat">');
    });

    it('still serves /metrics and answers unknown paths with 404 and other methods with 405', async () => {
      expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).to.equal(200);
      expect((await fetch(`http://127.0.0.1:${port}/nope`)).status).to.equal(404);
      expect((await fetch(`http://127.0.0.1:${port}/`, { method: 'DELETE' })).status).to.equal(405);
    });
  });

  describe('web client files', () => {
    it('serves the page with Converse settings pointing at this server', async () => {
      const res = await fetch(`http://127.0.0.1:${port}/chat`);
      expect(res.status).to.equal(200);
      expect(res.headers.get('content-type')).to.equal('text/html; charset=utf-8');
      expect(res.headers.get('cache-control')).to.equal('no-cache');
      expect(res.headers.get('content-security-policy')).to.contain("script-src 'self'");
      const html = await res.text();
      const json = /<script type="application\/json" id="parley-converse-settings">(.*?)<\/script>/.exec(html)?.[1];
      expect(JSON.parse(json ?? '{}')).to.include({
        websocket_url: `ws://127.0.0.1:${port}/xmpp-websocket`,
        bosh_service_url: `http://127.0.0.1:${port}/http-bind`,
        view_mode: 'fullscreen',
        default_domain: 'localhost',
        assets_path: '/chat/dist/',
        discover_connection_methods: false,
      });
      expect(html).to.contain('<script type="module" src="/chat/dist/converse.min.js"></script>');
      expect((await fetch(`http://127.0.0.1:${port}/chat/`)).status).to.equal(200);
    });

    it('serves Converse files with their content types, caching and ETag revalidation', async () => {
      const cases: Array<[string, string]> = [
        ['converse.min.js', 'text/javascript; charset=utf-8'],
        ['converse.min.css', 'text/css; charset=utf-8'],
        ['curve25519_compiled.wasm', 'application/wasm'],
        ['images/favicon.ico', 'image/x-icon'],
        ['emoji.json', 'application/json; charset=utf-8'],
      ];
      for (const [file, type] of cases) {
        const res = await fetch(`http://127.0.0.1:${port}/chat/dist/${file}`);
        expect(res.status, file).to.equal(200);
        expect(res.headers.get('content-type'), file).to.equal(type);
        expect(res.headers.get('cache-control')).to.equal('public, max-age=86400');
        expect(res.headers.get('x-content-type-options')).to.equal('nosniff');
        const etag = res.headers.get('etag')!;
        await res.arrayBuffer();
        const again = await fetch(`http://127.0.0.1:${port}/chat/dist/${file}`, { headers: { 'if-none-match': etag } });
        expect(again.status, file).to.equal(304);
      }
      const head = await fetch(`http://127.0.0.1:${port}/chat/dist/converse.min.js`, { method: 'HEAD' });
      expect(Number(head.headers.get('content-length'))).to.be.greaterThan(100_000);
    });

    it('never serves a file outside the Converse directory', async () => {
      const attempts = [
        '/chat/dist/../../package.json',
        '/chat/dist/../../../package.json',
        '/chat/dist/%2e%2e/%2e%2e/package.json',
        '/chat/dist/%2E%2E%2F%2E%2E%2Fpackage.json',
        '/chat/dist/..%2f..%2f..%2f..%2fpackage.json',
        '/chat/dist/..%5c..%5cpackage.json',
        '/chat/dist/images/../../package.json',
        '/chat/dist/%2fetc%2fpasswd',
        '//chat/dist/../../package.json',
        '/chat/dist/converse.min.js%00.png',
        '/chat/dist/.%2e/.%2e/package.json',
        '/chat/dist//etc/passwd',
        '/chat/dist/',
        '/chat/dist/images',
        '/chat/dist/sounds/README',
      ];
      for (const path of attempts) {
        const res = await rawStatus(port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
        expect(res.status, path).to.be.oneOf([400, 404]);
        expect(res.text, path).to.not.contain('"name"').and.not.contain('root:');
      }
    });
  });

  describe('limits', () => {
    let tight: TestServer;
    before(async () => {
      tight = await startTestServer({ http: { limits: { requestsPerIp: 2, headerSize: '4 KiB', requestTimeout: '1s', headersTimeout: '1s', bodySize: '2 KiB' } } });
    });
    after(async () => tight?.stop());

    it('refuses headers over the header size limit with 431', async () => {
      const res = await httpRequest(tight.port('http'), 'GET', '/', undefined, { 'x-big': 'a'.repeat(8 * 1024) });
      expect(res.status).to.equal(431);
    });

    it('refuses a request body over the size limit with 413', async () => {
      const res = await httpRequest(tight.port('http'), 'POST', '/http-bind', `<body xmlns='${NS.httpbind}' rid='1'>${'x'.repeat(3 * 1024)}</body>`);
      expect(res.status).to.equal(413);
    });

    it('refuses requests beyond the per-IP limit of requests in progress (held BOSH requests count) with 429', async () => {
      const port2 = tight.port('http');
      const sessions = [new RawBosh(port2, 'localhost'), new RawBosh(port2, 'localhost')];
      for (const s of sessions) await s.create({ wait: '3', hold: '1' });
      const held = sessions.map((s) => s.send());
      await sleep(200);
      const refused = await httpRequest(port2, 'GET', '/');
      expect(refused.status).to.equal(429);
      expect(refused.headers['retry-after']).to.equal('1');
      await Promise.all(held);
      expect((await httpRequest(port2, 'GET', '/')).status).to.equal(200);
      for (const s of sessions) await s.send('', { type: 'terminate' });
    });

    it('drops a client that sends its request too slowly, yet keeps a held BOSH request past that time', async () => {
      const port2 = tight.port('http');
      const slow = await rawStatus(port2, 'POST /http-bind HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n<body');
      expect(slow.status).to.equal(408);
      const b = new RawBosh(port2, 'localhost');
      await b.create({ wait: '2', hold: '1' });
      const held = await b.send();
      expect(held.status).to.equal(200);
      expect(held.ms).to.be.greaterThan(1_500);
      await b.send('', { type: 'terminate' });
    });
  });
});
