import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { NS, xml, type Element } from '../../../lib/module-api.js';
import type { TestClient } from '../../helpers/harness.js';
import vcard from '../../../modules/vcard/index.js';
import avatars, { NS_AVATAR_DATA, NS_AVATAR_METADATA, NS_VCARD_UPDATE } from '../../../modules/avatars/index.js';
import { friends, isEvent, itemIds, items, notify, online, publish, startWorld, type World } from '../pep/world.js';

const ALICE = 'alice@example.com';
const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000', 'hex');
const PNG_ID = createHash('sha1').update(PNG).digest('hex');
const GIF = Buffer.from('GIF89a-tiny-image');
const GIF_ID = createHash('sha1').update(GIF).digest('hex');

function vcardOf(c: TestClient, jid: string): Promise<Element> {
  return c.iq(xml('iq', { type: 'get', to: jid }, xml('vCard', { xmlns: 'vcard-temp' })));
}

function setVcard(c: TestClient, ...children: Element[]): Promise<Element> {
  return c.iq(xml('iq', { type: 'set' }, xml('vCard', { xmlns: 'vcard-temp' }, ...children)));
}

function photo(bytes: Buffer, type: string): Element {
  return xml('PHOTO', {}, xml('TYPE', {}, type), xml('BINVAL', {}, bytes.toString('base64').replace(/(.{20})/g, '$1\n')));
}

async function publishAvatar(c: TestClient, bytes: Buffer, id: string, opts: { access?: string; type?: string } = {}): Promise<void> {
  const options = opts.access ? { 'pubsub#access_model': opts.access } : undefined;
  expect((await publish(c, NS_AVATAR_DATA, xml('data', { xmlns: NS_AVATAR_DATA }, bytes.toString('base64')), { id, options })).attrs.type).to.equal('result');
  expect((await publish(c, NS_AVATAR_METADATA, xml('metadata', { xmlns: NS_AVATAR_METADATA },
    xml('info', { id, bytes: String(bytes.length), type: opts.type ?? 'image/png', width: '1', height: '1' }),
    xml('info', { id: 'elsewhere', url: 'https://example.com/a.png', bytes: '1', type: 'image/png' })), { id, options })).attrs.type).to.equal('result');
}

const photoHash = (p: Element) => p.getChild('x', NS_VCARD_UPDATE)?.getChildText('photo');

describe('avatars (XEP-0084, XEP-0153, XEP-0398)', function () {
  this.timeout(10_000);
  let w: World;
  let alice: TestClient;
  beforeEach(async () => {
    w = await startWorld({ modules: [vcard, avatars] });
    alice = await w.h.connect(`${ALICE}/a`);
  });
  afterEach(() => w.h.stop());

  it('advertises urn:xmpp:pep-vcard-conversion:0 on the account', async () => {
    const r = await alice.get(xml('query', { xmlns: NS.discoInfo }), ALICE);
    expect(r.getChild('query')!.getChildren('feature').map((f) => f.attrs.var)).to.include('urn:xmpp:pep-vcard-conversion:0');
  });

  describe('from PEP to vCard', () => {
    it('stores the published avatar as the vCard PHOTO, keeping the rest of the vCard', async () => {
      await setVcard(alice, xml('FN', {}, 'Alice'));
      await w.h.settle();
      await publishAvatar(alice, PNG, PNG_ID);
      await w.h.settle();
      const bob = await w.h.connect('bob@example.com/b');
      const v = (await vcardOf(bob, ALICE)).getChild('vCard')!;
      expect(v.getChildText('FN')).to.equal('Alice');
      expect(v.getChild('PHOTO')!.getChildText('TYPE')).to.equal('image/png');
      expect(Buffer.from(v.getChild('PHOTO')!.getChildText('BINVAL')!, 'base64').equals(PNG)).to.equal(true);
    });

    it('refuses data whose SHA-1 does not match the metadata id', async () => {
      await publishAvatar(alice, PNG, GIF_ID);
      await w.h.settle();
      const v = await vcardOf(alice, ALICE);
      expect(v.getChild('vCard')!.getChild('PHOTO')).to.equal(undefined);
    });

    it('removes the PHOTO when the metadata is emptied (avatar disabled)', async () => {
      await publishAvatar(alice, PNG, PNG_ID);
      await w.h.settle();
      await publish(alice, NS_AVATAR_METADATA, xml('metadata', { xmlns: NS_AVATAR_METADATA }), { id: 'current' });
      await w.h.settle();
      expect((await vcardOf(alice, ALICE)).getChild('vCard')!.getChild('PHOTO')).to.equal(undefined);
    });

    it('leaves the vCard alone for an avatar kept to a whitelist', async () => {
      await publishAvatar(alice, PNG, PNG_ID, { access: 'whitelist' });
      await w.h.settle();
      expect((await vcardOf(alice, ALICE)).getChild('vCard')!.getChild('PHOTO')).to.equal(undefined);
    });
  });

  describe('from vCard to PEP', () => {
    it('publishes data and metadata for a vCard photo, and contacts with +notify see it', async () => {
      await friends(w, 'alice', 'bob');
      const bob = await online(w, 'bob@example.com/b', [notify(NS_AVATAR_METADATA)]);
      expect((await setVcard(alice, xml('FN', {}, 'Alice'), photo(GIF, 'image/gif'))).attrs.type).to.equal('result');
      const ev = await bob.next(isEvent(NS_AVATAR_METADATA));
      const info = ev.getChild('event')!.getChild('items')!.getChild('item')!.getChild('metadata')!.getChild('info')!;
      expect(info.attrs).to.include({ id: GIF_ID, type: 'image/gif', bytes: String(GIF.length) });
      const data = await items(bob, ALICE, NS_AVATAR_DATA);
      expect(itemIds(data)).to.deep.equal([GIF_ID]);
      expect(data.toString()).to.contain(GIF.toString('base64'));
    });

    it('publishes nothing again for the same photo, and empties the metadata when the photo goes', async () => {
      await setVcard(alice, photo(GIF, 'image/gif'));
      await w.h.settle();
      await setVcard(alice, xml('FN', {}, 'Same photo'), photo(GIF, 'image/gif'));
      await w.h.settle();
      expect(itemIds(await items(alice, ALICE, NS_AVATAR_METADATA))).to.deep.equal([GIF_ID]);
      await setVcard(alice, xml('FN', {}, 'No photo'));
      await w.h.settle();
      const meta = await items(alice, ALICE, NS_AVATAR_METADATA);
      expect(itemIds(meta)).to.deep.equal(['current']);
      expect(meta.getChild('pubsub')!.getChild('items')!.getChild('item')!.getChild('metadata')!.getChildElements()).to.have.length(0);
    });

    it('does not convert a vCard set the vcard module refused', async () => {
      await w.h.stop();
      w = await startWorld({ modules: [vcard, avatars], options: { vcard: { maxSize: 1024 } } });
      alice = await w.h.connect(`${ALICE}/a`);
      const r = await setVcard(alice, photo(Buffer.alloc(2000, 7), 'image/png'));
      expect(r.attrs.type).to.equal('error');
      await w.h.settle();
      expect((await items(alice, ALICE, NS_AVATAR_METADATA)).attrs.type).to.equal('error');
    });
  });

  describe('the XEP-0153 hash in presence', () => {
    beforeEach(async () => {
      await friends(w, 'alice', 'bob');
    });

    it('adds the hash to broadcast and directed presence', async () => {
      await setVcard(alice, photo(PNG, 'image/png'));
      await w.h.settle();
      const bob = await w.h.connect('bob@example.com/b');
      await bob.send(xml('presence'));
      await alice.send(xml('presence'));
      const seen = await bob.next((s) => s.name === 'presence' && s.attrs.from === `${ALICE}/a`);
      expect(photoHash(seen)).to.equal(PNG_ID);
      await alice.send(xml('presence', { to: 'room@muc.remote.example/Alice' }, xml('x', { xmlns: 'http://jabber.org/protocol/muc' })));
      await w.h.settle();
      const join = w.remote.find((s) => s.name === 'presence' && s.attrs.to === 'room@muc.remote.example/Alice')!;
      expect(photoHash(join)).to.equal(PNG_ID);
    });

    it('says "no avatar" with an empty photo, replaces an empty update element, and keeps a photo the client wrote', async () => {
      const bob = await w.h.connect('bob@example.com/b');
      await bob.send(xml('presence'));
      await alice.send(xml('presence', {}, xml('x', { xmlns: NS_VCARD_UPDATE })));
      const first = await bob.next((s) => s.name === 'presence' && s.attrs.from === `${ALICE}/a`);
      const xs = first.getChildren('x').filter((x) => x.attrs.xmlns === NS_VCARD_UPDATE);
      expect(xs).to.have.length(1);
      expect(xs[0].getChild('photo')).to.not.equal(undefined);
      expect(photoHash(first)).to.equal('');
      await alice.send(xml('presence', {}, xml('show', {}, 'away'), xml('x', { xmlns: NS_VCARD_UPDATE }, xml('photo', {}, 'clientsown'))));
      const second = await bob.next((s) => s.name === 'presence' && s.attrs.from === `${ALICE}/a`);
      expect(photoHash(second)).to.equal('clientsown');
    });

    it('follows the avatar when it changes through PEP', async () => {
      await publishAvatar(alice, PNG, PNG_ID);
      await w.h.settle();
      const bob = await w.h.connect('bob@example.com/b');
      await bob.send(xml('presence'));
      await alice.send(xml('presence'));
      expect(photoHash(await bob.next((s) => s.name === 'presence' && s.attrs.from === `${ALICE}/a`))).to.equal(PNG_ID);
    });
  });
});
