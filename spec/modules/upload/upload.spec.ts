import { mkdtempSync, rmSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { NS, xml } from '../../../lib/module-api.js';
import disco from '../../../modules/disco/index.js';
import upload from '../../../modules/upload/index.js';
import { cleanContentType, cleanFilename, dispositionFilename, sign, verify } from '../../../modules/upload/slots.js';
import { Harness, type TestClient } from '../../helpers/harness.js';
import { expectError, expectXml } from '../../helpers/xml-assert.js';

const NS_UPLOAD = 'urn:xmpp:http:upload:0';

function request(filename: string, size: number | string, contentType?: string) {
  return xml('request', { xmlns: NS_UPLOAD, filename, size: String(size), 'content-type': contentType });
}

describe('upload (XEP-0363)', () => {
  let h: Harness;
  let alice: TestClient;
  let dir: string;

  async function boot(options: Record<string, unknown> = {}): Promise<void> {
    dir = mkdtempSync(join(tmpdir(), 'parley-upload-'));
    h = await Harness.start({
      modules: [disco, upload],
      options: { upload: { url: 'https://files.example.com/', ...options } },
      server: { storageDir: dir },
    });
    await h.createAccount('alice', 'pw');
    alice = await h.connect('alice@example.com/phone');
  }
  afterEach(async () => {
    await h.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists upload.<host> in the server\'s disco#items, with its name', async () => {
    await boot();
    const reply = await alice.get(xml('query', { xmlns: NS.discoItems }));
    expect(reply.getChild('query')!.getChildren('item').map((i) => i.attrs)).to.deep.include({ jid: 'upload.example.com', name: 'HTTP File Upload' });
  });

  it('answers disco#info on the service with store/file, the feature and the max-file-size form', async () => {
    await boot({ maxFileSize: '5 MiB' });
    const reply = await alice.get(xml('query', { xmlns: NS.discoInfo }), 'upload.example.com');
    expectXml(reply.getChild('query'), `
      <query xmlns='http://jabber.org/protocol/disco#info'>
        <identity category='store' type='file' name='HTTP File Upload'/>
        <feature var='http://jabber.org/protocol/disco#info'/>
        <feature var='urn:xmpp:http:upload:0'/>
        <x xmlns='jabber:x:data' type='result'>
          <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:http:upload:0</value></field>
          <field var='max-file-size'><value>5242880</value></field>
        </x>
      </query>`);
  });

  it('hands out a slot with a signed PUT URL and a GET URL on the configured base', async () => {
    await boot();
    const reply = await alice.get(request('très cool.jpg', 23456, 'image/jpeg'), 'upload.example.com');
    expect(reply.attrs.type, reply.toString()).to.equal('result');
    const slot = reply.getChild('slot', NS_UPLOAD)!;
    const put = slot.getChild('put')!.attrs.url as string;
    const get = slot.getChild('get')!.attrs.url as string;
    expect(get).to.match(/^https:\/\/files\.example\.com\/upload\/[A-Za-z0-9_-]{24}\/tr%C3%A8s%20cool\.jpg$/);
    expect(put.startsWith(`${get}?e=`)).to.equal(true);
    expect(put).to.match(/&s=[A-Za-z0-9_-]{43}$/);
    // Two slots for the same name are different.
    const again = await alice.get(request('très cool.jpg', 23456, 'image/jpeg'), 'upload.example.com');
    expect(again.getChild('slot')!.getChild('get')!.attrs.url).to.not.equal(get);
  });

  it('refuses a file over max-file-size with not-acceptable and file-too-large', async () => {
    await boot({ maxFileSize: 1000 });
    const reply = await alice.get(request('big.bin', 1001), 'upload.example.com');
    expectError(reply, 'not-acceptable', 'modify');
    const tooLarge = reply.getChild('error')!.getChild('file-too-large', NS_UPLOAD)!;
    expect(tooLarge.getChildText('max-file-size')).to.equal('1000');
  });

  it('refuses a slot past the account\'s quota with resource-constraint, counting open slots', async () => {
    await boot({ quota: 1000, maxFileSize: 1000 });
    expect((await alice.get(request('a.bin', 600), 'upload.example.com')).attrs.type).to.equal('result');
    expectError(await alice.get(request('b.bin', 600), 'upload.example.com'), 'resource-constraint', 'wait');
    expect((await alice.get(request('c.bin', 400), 'upload.example.com')).attrs.type).to.equal('result');
  });

  it('answers bad-request for a missing or bad filename, size or content-type', async () => {
    await boot();
    const to = 'upload.example.com';
    expectError(await alice.get(xml('request', { xmlns: NS_UPLOAD, size: '10' }), to), 'bad-request');
    expectError(await alice.get(xml('request', { xmlns: NS_UPLOAD, filename: 'a' }), to), 'bad-request');
    expectError(await alice.get(request('a.txt', 'ten'), to), 'bad-request');
    expectError(await alice.get(request('a.txt', -5), to), 'bad-request');
    expectError(await alice.get(request('a.txt', 0), to), 'bad-request');
    expectError(await alice.get(request('..', 10), to), 'bad-request');
    expectError(await alice.get(request('a.txt', 10, 'not a type'), to), 'bad-request');
  });

  it('refuses requesters that are not users of its host with forbidden', async () => {
    dir = mkdtempSync(join(tmpdir(), 'parley-upload-'));
    h = await Harness.start({ hosts: ['example.com', 'other.org'], modules: [disco, upload], options: { upload: { url: 'https://files.example.com' } } });
    await h.createAccount('bob', 'pw', 'other.org');
    const bob = await h.connect('bob@other.org/pc');
    expectError(await bob.get(request('a.txt', 10), 'upload.example.com'), 'forbidden', 'auth');
    expect((await bob.get(request('a.txt', 10), 'upload.other.org')).attrs.type).to.equal('result');
  });

  it('answers other payloads with service-unavailable', async () => {
    await boot();
    expectError(await alice.get(xml('query', { xmlns: NS.version }), 'upload.example.com'), 'service-unavailable');
    expectError(await alice.set(request('a.txt', 10), 'upload.example.com'), 'service-unavailable');
  });

  it('answers service-unavailable when there is no URL to hand out', async () => {
    dir = mkdtempSync(join(tmpdir(), 'parley-upload-'));
    h = await Harness.start({ modules: [disco, upload] });
    await h.createAccount('alice', 'pw');
    alice = await h.connect('alice@example.com/phone');
    expectError(await alice.get(request('a.txt', 10), 'upload.example.com'), 'service-unavailable');
  });

  it('expires files and unused slots, deleting their files', async () => {
    await boot({ expireAfter: '1h', slotLifetime: '5m' });
    const reply = await alice.get(request('a.txt', 10), 'upload.example.com');
    const id = /\/upload\/([^/]+)\//.exec(reply.getChild('slot')!.getChild('get')!.attrs.url as string)![1]!;
    const api = h.api(upload);
    expect(api.dir).to.equal(join(dir, 'uploads'));
    mkdirSync(api.dir, { recursive: true });
    writeFileSync(join(api.dir, id), 'x');
    expect(await api.expire(Date.now())).to.equal(0);
    // An unused slot goes once its PUT URL has expired.
    expect(await api.expire(Date.now() + 6 * 60_000)).to.equal(1);
    expect(existsSync(join(api.dir, id))).to.equal(false);
  });

  it('purges a deleted account\'s files', async () => {
    await boot();
    await alice.get(request('a.txt', 10), 'upload.example.com');
    const rows = () => h.storage.db.selectFrom('upload_files').selectAll().where('host', '=', 'example.com').execute();
    expect(await rows()).to.have.length(1);
    await alice.disconnect();
    await h.deleteAccount('alice');
    expect(await rows()).to.have.length(0);
  });

  describe('slot helpers', () => {
    it('signs over the slot, name, size, type and expiry', () => {
      const secret = Buffer.alloc(32, 7);
      const s = sign(secret, 'id', 'a.txt', 10, 'text/plain', 100);
      expect(verify(secret, s, 'id', 'a.txt', 10, 'text/plain', 100)).to.equal(true);
      expect(verify(secret, s, 'id', 'a.txt', 11, 'text/plain', 100)).to.equal(false);
      expect(verify(secret, s, 'id', 'a.txt', 10, 'text/html', 100)).to.equal(false);
      expect(verify(secret, s, 'id', 'a.txt', 10, 'text/plain', 101)).to.equal(false);
      expect(verify(secret, 'short', 'id', 'a.txt', 10, 'text/plain', 100)).to.equal(false);
    });
    it('cleans file names and content types', () => {
      expect(cleanFilename('../../etc/passwd')).to.equal('.._.._etc_passwd');
      expect(cleanFilename('a\u0000b')).to.equal('a_b');
      expect(cleanFilename('  ')).to.equal(undefined);
      expect(cleanContentType('Image/JPEG')).to.equal('image/jpeg');
      expect(cleanContentType('text/plain;charset=utf-8')).to.equal('text/plain; charset=utf-8');
      expect(cleanContentType('text/plain\r\nX: y')).to.equal(undefined);
      expect(dispositionFilename("très cool's.jpg")).to.equal("UTF-8''tr%C3%A8s%20cool%27s.jpg");
    });
  });
});
