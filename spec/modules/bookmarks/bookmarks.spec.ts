import { expect } from 'chai';
import { NS, xml, type Element } from '../../../lib/module-api.js';
import { expectError, expectXml } from '../../helpers/xml-assert.js';
import type { TestClient } from '../../helpers/harness.js';
import privateXml from '../../../modules/private/index.js';
import bookmarks, { NS_BOOKMARKS, NS_LEGACY } from '../../../modules/bookmarks/index.js';
import { canonical } from '../../../modules/bookmarks/convert.js';
import { events, friends, isEvent, itemIds, items, notify, online, publish, pubsub, startWorld, type World } from '../pep/world.js';

const ALICE = 'alice@example.com';
const OPTIONS = { 'pubsub#persist_items': 'true', 'pubsub#max_items': 'max', 'pubsub#send_last_published_item': 'never', 'pubsub#access_model': 'whitelist' };

function conference(attrs: Record<string, string>, ...children: Element[]): Element {
  return xml('conference', { xmlns: NS_BOOKMARKS, ...attrs }, ...children);
}

function legacy(...confs: Element[]): Element {
  return xml('storage', { xmlns: NS_LEGACY }, ...confs);
}

async function privateGet(c: TestClient): Promise<Element> {
  const r = await c.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.privateXml }, xml('storage', { xmlns: NS_LEGACY }))));
  return r.getChild('query')!.getChild('storage', NS_LEGACY)!;
}

function privateSet(c: TestClient, storage: Element): Promise<Element> {
  return c.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: NS.privateXml }, storage)));
}

async function legacyPep(c: TestClient): Promise<Element | undefined> {
  const r = await items(c, ALICE, NS_LEGACY);
  return r.getChild('pubsub')?.getChild('items')?.getChild('item')?.getChild('storage', NS_LEGACY);
}

describe('bookmarks (XEP-0402, XEP-0048 over PEP and private XML, XEP-0411)', function () {
  this.timeout(10_000);
  let w: World;
  let alice: TestClient;
  beforeEach(async () => {
    w = await startWorld({ modules: [privateXml, bookmarks] });
    alice = await w.h.connect(`${ALICE}/a`);
  });
  afterEach(() => w.h.stop());

  it('advertises #compat, #compat-pep and bookmarks-conversion on the account', async () => {
    const r = await alice.get(xml('query', { xmlns: NS.discoInfo }), ALICE);
    const features = r.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
    expect(features).to.include.members([`${NS_BOOKMARKS}#compat`, `${NS_BOOKMARKS}#compat-pep`, 'urn:xmpp:bookmarks-conversion:0', 'http://jabber.org/protocol/pubsub#publish-options']);
  });

  it('shows a XEP-0402 bookmark to XEP-0048 clients, over private XML and over PEP', async () => {
    const r = await publish(alice, NS_BOOKMARKS, conference({ name: "The Play's the Thing", autojoin: 'true' }, xml('nick', {}, 'JC'), xml('password', {}, 'Gl0b3')), { id: 'theplay@conference.shakespeare.lit', options: OPTIONS });
    expect(r.attrs.type).to.equal('result');
    await w.h.settle();
    const expected = `<storage xmlns='${NS_LEGACY}'><conference jid='theplay@conference.shakespeare.lit' name="The Play's the Thing" autojoin='true'><nick>JC</nick><password>Gl0b3</password></conference></storage>`;
    expectXml(await privateGet(alice), expected);
    expectXml(await legacyPep(alice), expected);
  });

  it('notifies XEP-0048-over-PEP clients of the account when a XEP-0402 client changes a bookmark', async () => {
    const old = await online(w, `${ALICE}/old`, [notify(NS_LEGACY)]);
    const modern = await online(w, `${ALICE}/new`, [notify(NS_BOOKMARKS)]);
    await publish(modern, NS_BOOKMARKS, conference({ autojoin: '1' }), { id: 'room@muc.example.com', options: OPTIONS });
    const ev = await old.next(isEvent(NS_LEGACY));
    expect(ev.toString()).to.contain('room@muc.example.com');
    await modern.next(isEvent(NS_BOOKMARKS));
  });

  it('removes a retracted XEP-0402 bookmark from the older copies, keeping URL bookmarks', async () => {
    await privateSet(alice, legacy(
      xml('conference', { jid: 'a@muc.example.com', autojoin: 'true' }),
      xml('conference', { jid: 'b@muc.example.com' }),
      xml('url', { name: 'Site', url: 'https://example.com' })));
    await w.h.settle();
    expect(itemIds(await items(alice, ALICE, NS_BOOKMARKS)).sort()).to.deep.equal(['a@muc.example.com', 'b@muc.example.com']);
    await alice.iq(xml('iq', { type: 'set' }, pubsub(xml('retract', { node: NS_BOOKMARKS, notify: 'true' }, xml('item', { id: 'a@muc.example.com' })))));
    await w.h.settle();
    const p = await privateGet(alice);
    expect(p.getChildren('conference').map((c) => c.attrs.jid)).to.deep.equal(['b@muc.example.com']);
    expect(p.getChild('url')!.attrs.url).to.equal('https://example.com');
    expect((await legacyPep(alice))!.getChildren('conference').map((c) => c.attrs.jid)).to.deep.equal(['b@muc.example.com']);
  });

  it('turns a private-XML set into XEP-0402 items and a storage:bookmarks publication, with notifications (XEP-0411)', async () => {
    const modern = await online(w, `${ALICE}/new`, [notify(NS_BOOKMARKS)]);
    const old = await online(w, `${ALICE}/old`, [notify(NS_LEGACY)]);
    const r = await privateSet(alice, legacy(xml('conference', { jid: 'council@muc.example.com', name: 'Council of Oberon', autojoin: 'true' }, xml('nick', {}, 'Puck'), xml('state', { xmlns: 'urn:client:x', minimized: 'true' }))));
    expect(r.attrs.type).to.equal('result');
    const ev = await modern.next(isEvent(NS_BOOKMARKS));
    expectXml(ev.getChild('event')!.getChild('items')!.getChild('item'), `<item id='council@muc.example.com'>
      <conference xmlns='${NS_BOOKMARKS}' name='Council of Oberon' autojoin='true'><nick>Puck</nick>
      <extensions><state xmlns='urn:client:x' minimized='true'/></extensions></conference></item>`);
    await old.next(isEvent(NS_LEGACY));
    // And back: the extension is a plain child again for XEP-0048.
    const back = (await legacyPep(alice))!.getChild('conference')!;
    expect(back.getChild('state', 'urn:client:x')!.attrs.minimized).to.equal('true');
  });

  it('turns a XEP-0048 PEP publication into XEP-0402 items and the private copy, notifying only what changed', async () => {
    await privateSet(alice, legacy(xml('conference', { jid: 'keep@muc.example.com', autojoin: 'true' }), xml('conference', { jid: 'gone@muc.example.com' })));
    await w.h.settle();
    const modern = await online(w, `${ALICE}/new`, [notify(NS_BOOKMARKS)]);
    modern.clear();
    await publish(alice, NS_LEGACY, legacy(xml('conference', { jid: 'keep@muc.example.com', autojoin: 'true' }), xml('conference', { jid: 'new@muc.example.com', name: 'New' })), { id: 'current', options: { 'pubsub#access_model': 'whitelist' } });
    await w.h.settle();
    const seen = events(modern, NS_BOOKMARKS).map((e) => e.getChild('event')!.getChild('items')!.getChildElements()[0]);
    expect(seen.map((e) => `${e.name}:${e.attrs.id}`).sort()).to.deep.equal(['item:new@muc.example.com', 'retract:gone@muc.example.com']);
    expect(itemIds(await items(alice, ALICE, NS_BOOKMARKS)).sort()).to.deep.equal(['keep@muc.example.com', 'new@muc.example.com']);
    expect((await privateGet(alice)).getChildren('conference').map((c) => c.attrs.jid).sort()).to.deep.equal(['keep@muc.example.com', 'new@muc.example.com']);
  });

  it('leaves everything as it was when the private module refuses the set', async () => {
    await w.h.stop();
    w = await startWorld({ modules: [privateXml, bookmarks], options: { private: { maxSize: 1024 } } });
    alice = await w.h.connect(`${ALICE}/a`);
    const big = legacy(...Array.from({ length: 40 }, (_, i) => xml('conference', { jid: `room${i}@muc.example.com`, name: 'x'.repeat(20) })));
    expectError(await privateSet(alice, big), 'not-acceptable');
    await w.h.settle();
    expectError(await items(alice, ALICE, NS_BOOKMARKS), 'item-not-found');
  });

  it('moves bookmarks kept only in private XML to XEP-0402 when the account connects', async () => {
    // Written behind the module's back, as an import does, before the account's first login.
    await w.h.storage.keyval('private').set('example.com', 'carol', `{${NS_LEGACY}}storage`, legacy(xml('conference', { jid: 'old@muc.example.com', autojoin: 'true' })).toString());
    const c = await w.h.connect('carol@example.com/fresh');
    await w.h.settle();
    expect(itemIds(await items(c, 'carol@example.com', NS_BOOKMARKS))).to.deep.equal(['old@muc.example.com']);
  });

  it('looks for bookmarks to move once per account, and again for an account made anew', async () => {
    await w.h.settle();
    const stored = legacy(xml('conference', { jid: 'old@muc.example.com', autojoin: 'true' })).toString();
    // Alice has logged in: what appears behind the module's back afterwards stays where it is...
    await w.h.storage.keyval('private').set('example.com', 'alice', `{${NS_LEGACY}}storage`, stored);
    const again = await w.h.connect(`${ALICE}/again`);
    await w.h.settle();
    expectError(await items(again, ALICE, NS_BOOKMARKS), 'item-not-found');
    // ...while an account deleted and made again is looked at again.
    await w.h.deleteAccount('alice', 'example.com');
    await w.h.createAccount('alice', 'pw', 'example.com');
    await w.h.settle();
    await w.h.storage.keyval('private').set('example.com', 'alice', `{${NS_LEGACY}}storage`, stored);
    const reborn = await w.h.connect(`${ALICE}/reborn`);
    await w.h.settle();
    expect(itemIds(await items(reborn, ALICE, NS_BOOKMARKS))).to.deep.equal(['old@muc.example.com']);
  });

  it('keeps the bookmark nodes private by default and accepts XEP-0402 publish-options on them', async () => {
    await friends(w, 'alice', 'bob');
    await publish(alice, NS_BOOKMARKS, conference({}), { id: 'x@muc.example.com' });
    const bob = await w.h.connect('bob@example.com/b');
    expectError(await items(bob, ALICE, NS_BOOKMARKS), 'not-allowed');
    expectError(await items(bob, ALICE, NS_LEGACY), 'not-allowed');
    expect((await publish(alice, NS_BOOKMARKS, conference({}), { id: 'y@muc.example.com', options: OPTIONS })).attrs.type).to.equal('result');
  });

  it('empties the older copies when the XEP-0402 node is deleted', async () => {
    await publish(alice, NS_BOOKMARKS, conference({}), { id: 'x@muc.example.com', options: OPTIONS });
    await alice.iq(xml('iq', { type: 'set' }, xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub#owner' }, xml('delete', { node: NS_BOOKMARKS }))));
    await w.h.settle();
    expect((await privateGet(alice)).getChildElements()).to.have.length(0);
    expect((await legacyPep(alice))!.getChildElements()).to.have.length(0);
  });

  it('compares payloads canonically', () => {
    expect(canonical(xml('a', { y: '1', x: '2' }, ' ', xml('b')))).to.equal(canonical(xml('a', { x: '2', y: '1' }, xml('b'))));
  });
});
