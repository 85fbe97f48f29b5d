// XEP-0363 end to end: a slot requested over XMPP with @xmpp/client, the file PUT and fetched
// back over Parley's own HTTP listener.
import http from 'node:http';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { client, xml } from '@xmpp/client';
import type { XmppClient } from '@xmpp/client';
import { startTestServer, type TestServer } from '../helpers/server.js';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

const NS_UPLOAD = 'urn:xmpp:http:upload:0';

interface HttpReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A request to the test server's http listener (the URL names localhost; connect to 127.0.0.1). */
function request(srv: TestServer, url: string, method: string, headers: Record<string, string> = {}, body?: Buffer): Promise<HttpReply> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: srv.port('http'), path: u.pathname + u.search, method, headers: { host: u.host, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

function connect(srv: TestServer, user: string): Promise<XmppClient> {
  const c = client({ service: `xmpp://127.0.0.1:${srv.port('c2s')}`, domain: srv.domain, username: user, password: 'secret-pw' });
  c.on('error', () => undefined);
  return c.start().then(() => c);
}

async function slot(c: XmppClient, filename: string, size: number, contentType?: string): Promise<{ put: string; get: string }> {
  const reply = await c.iqCaller.request(
    xml('iq', { type: 'get', to: 'upload.localhost' }, xml('request', { xmlns: NS_UPLOAD, filename, size: String(size), 'content-type': contentType })),
  );
  const s = reply.getChild('slot', NS_UPLOAD)!;
  return { put: s.getChild('put')!.attrs.url as string, get: s.getChild('get')!.attrs.url as string };
}

describe('e2e: HTTP file upload (XEP-0363)', function () {
  this.timeout(30_000);
  let srv: TestServer;
  let alice: XmppClient;

  before(async () => {
    srv = await startTestServer();
    await srv.addUser('alice', 'secret-pw');
    alice = await connect(srv, 'alice');
  });
  after(async () => {
    await alice?.stop();
    await srv?.stop();
  });

  it('finds the service through disco and its max-file-size', async () => {
    const items = await alice.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' })));
    expect(items.getChild('query')!.getChildren('item').map((i) => i.attrs.jid)).to.include('upload.localhost');
    const info = await alice.iqCaller.request(xml('iq', { type: 'get', to: 'upload.localhost' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    const field = info.getChild('query')!.getChild('x', 'jabber:x:data')!.getChildren('field').find((f) => f.attrs.var === 'max-file-size');
    expect(field?.getChildText('value')).to.equal(String(10 * 1024 * 1024));
  });

  it('uploads with PUT and serves the same bytes back with safe headers', async () => {
    const data = randomBytes(70_000);
    const { put, get } = await slot(alice, 'holiday photo.jpg', data.length, 'image/jpeg');
    expect(get).to.match(new RegExp(`^http://localhost:${srv.port('http')}/upload/`));
    const up = await request(srv, put, 'PUT', { 'content-type': 'image/jpeg', 'content-length': String(data.length) }, data);
    expect(up.status).to.equal(201);
    expect(up.headers['access-control-allow-origin']).to.equal('*');

    const down = await request(srv, get, 'GET');
    expect(down.status).to.equal(200);
    expect(down.body.equals(data)).to.equal(true);
    expect(down.headers['content-type']).to.equal('image/jpeg');
    expect(down.headers['content-length']).to.equal(String(data.length));
    expect(down.headers['content-disposition']).to.equal("inline; filename*=UTF-8''holiday%20photo.jpg");
    expect(down.headers['x-content-type-options']).to.equal('nosniff');
    expect(down.headers['content-security-policy']).to.include('sandbox');
    expect(down.headers['access-control-allow-origin']).to.equal('*');

    const head = await request(srv, get, 'HEAD');
    expect(head.status).to.equal(200);
    expect(head.body.length).to.equal(0);

    // One byte range, for players seeking in audio and video.
    const part = await request(srv, get, 'GET', { range: 'bytes=100-199' });
    expect(part.status).to.equal(206);
    expect(part.headers['content-range']).to.equal(`bytes 100-199/${data.length}`);
    expect(part.body.equals(data.subarray(100, 200))).to.equal(true);
    const tail = await request(srv, get, 'GET', { range: 'bytes=-10' });
    expect(tail.body.equals(data.subarray(data.length - 10))).to.equal(true);
    expect((await request(srv, get, 'GET', { range: `bytes=${data.length}-` })).status).to.equal(416);
  });

  it('serves other types as attachments', async () => {
    const data = Buffer.from('<html><script>alert(1)</script></html>');
    const { put, get } = await slot(alice, 'page.html', data.length, 'text/html');
    expect((await request(srv, put, 'PUT', { 'content-type': 'text/html', 'content-length': String(data.length) }, data)).status).to.equal(201);
    const down = await request(srv, get, 'GET');
    expect(down.headers['content-disposition']).to.equal("attachment; filename*=UTF-8''page.html");
    expect(down.headers['content-security-policy']).to.equal("default-src 'none'; sandbox");
  });

  it('refuses a second PUT to the same slot', async () => {
    const data = Buffer.from('first');
    const { put, get } = await slot(alice, 'a.txt', data.length, 'text/plain');
    expect((await request(srv, put, 'PUT', { 'content-type': 'text/plain', 'content-length': '5' }, data)).status).to.equal(201);
    const again = await request(srv, put, 'PUT', { 'content-type': 'text/plain', 'content-length': '5' }, Buffer.from('other'));
    expect(again.status).to.equal(409);
    expect((await request(srv, get, 'GET')).body.toString()).to.equal('first');
  });

  it('refuses a PUT of another size, another type, or with a bad signature, and GET before upload', async () => {
    const { put, get } = await slot(alice, 'b.txt', 10, 'text/plain');
    expect((await request(srv, put, 'PUT', { 'content-type': 'text/plain', 'content-length': '11' }, Buffer.alloc(11))).status).to.equal(413);
    expect((await request(srv, put, 'PUT', { 'content-type': 'text/plain', 'content-length': '9' }, Buffer.alloc(9))).status).to.equal(400);
    expect((await request(srv, put, 'PUT', { 'content-type': 'text/html', 'content-length': '10' }, Buffer.alloc(10))).status).to.equal(415);
    const forged = put.replace(/s=([A-Za-z0-9_-])/, (_m, c: string) => `s=${c === 'A' ? 'B' : 'A'}`);
    expect((await request(srv, forged, 'PUT', { 'content-type': 'text/plain', 'content-length': '10' }, Buffer.alloc(10))).status).to.equal(403);
    const later = put.replace(/e=(\d+)/, (_m, e: string) => `e=${Number(e) + 3600}`);
    expect((await request(srv, later, 'PUT', { 'content-type': 'text/plain', 'content-length': '10' }, Buffer.alloc(10))).status).to.equal(403);
    expect((await request(srv, get, 'GET')).status).to.equal(404);
    // The slot is still usable after the refusals.
    expect((await request(srv, put, 'PUT', { 'content-type': 'text/plain', 'content-length': '10' }, Buffer.alloc(10, 1))).status).to.equal(201);
  });

  it('answers a CORS preflight for web clients', async () => {
    const { put } = await slot(alice, 'c.txt', 3, 'text/plain');
    const pre = await request(srv, put, 'OPTIONS', { origin: 'https://web.example', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'content-type' });
    expect(pre.status).to.equal(204);
    expect(pre.headers['access-control-allow-origin']).to.equal('*');
    expect(pre.headers['access-control-allow-methods']).to.include('PUT');
    expect(pre.headers['access-control-allow-headers']).to.include('Content-Type').and.include('Authorization');
  });

  it('answers 404 for unknown slots and 405 for other methods', async () => {
    expect((await request(srv, `http://localhost/upload/nope/x.txt`, 'GET')).status).to.equal(404);
    expect((await request(srv, `http://localhost/upload/nope/x.txt`, 'DELETE')).status).to.equal(405);
  });
});

describe('e2e: upload expiry', function () {
  this.timeout(30_000);
  let srv: TestServer;
  let alice: XmppClient;

  before(async () => {
    srv = await startTestServer({ modules: { upload: { expireAfter: '1s' } } });
    await srv.addUser('alice', 'secret-pw');
    alice = await connect(srv, 'alice');
  });
  after(async () => {
    await alice?.stop();
    await srv?.stop();
  });

  it('deletes files older than expireAfter', async () => {
    const data = Buffer.from('short-lived');
    const { put, get } = await slot(alice, 'd.txt', data.length, 'text/plain');
    expect((await request(srv, put, 'PUT', { 'content-type': 'text/plain', 'content-length': String(data.length) }, data)).status).to.equal(201);
    const id = /\/upload\/([^/]+)\//.exec(get)![1]!;
    const file = join(srv.dir, 'data', 'uploads', id);
    expect(existsSync(file)).to.equal(true);
    let status = 200;
    for (let i = 0; i < 40 && status === 200; i++) {
      await new Promise((r) => setTimeout(r, 200));
      status = (await request(srv, get, 'GET')).status;
    }
    expect(status).to.equal(404);
    expect(existsSync(file)).to.equal(false);
  });
});
