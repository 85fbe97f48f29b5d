// XEP-0490 server side: the private displayed node, +notify delivery to the user's own clients,
// and server assist (stripped before archive and carbons, published on the user's behalf).
import { expect } from 'chai';
import { NS, xml, type Element } from '../../../lib/module-api.js';
import { Jid } from '../../../lib/jid/jid.js';
import { expectError } from '../../helpers/xml-assert.js';
import type { TestClient } from '../../helpers/harness.js';
import pep, { PUBSUB, PUBSUB_EVENT } from '../../../modules/pep/index.js';
import carbons from '../../../modules/carbons/index.js';
import mam from '../../../modules/mam/index.js';
import caps from '../../../modules/caps/index.js';
import mds, { NS_MDS, NS_MDS_ASSIST } from '../../../modules/mds/index.js';
import { friends, notify, online, startWorld, type World } from '../pep/world.js';

const MARKERS = 'urn:xmpp:chat-markers:0';
const sid = (id: string, by = 'alice@example.com') => xml('stanza-id', { xmlns: NS.sid, by, id });
const displayed = (id: string) => xml('displayed', { xmlns: NS_MDS }, sid(id));
const isMdsEvent = (el: Element) => el.name === 'message' && el.getChild('event', PUBSUB_EVENT)?.getChild('items')?.attrs.node === NS_MDS;

describe('mds (XEP-0490)', function () {
  this.timeout(10_000);
  let w: World;
  let phone: TestClient;
  let desktop: TestClient;
  let bob: TestClient;

  beforeEach(async () => {
    w = await startWorld({ modules: [caps, carbons, mam, mds] });
    await friends(w, 'alice', 'bob');
    phone = await online(w, 'alice@example.com/phone', [NS.carbons]);
    desktop = await online(w, 'alice@example.com/desktop', [NS.carbons, notify(NS_MDS)]);
    bob = await online(w, 'bob@example.com/pc', [notify(NS_MDS)]);
    for (const c of [phone, desktop]) expect((await c.set(xml('enable', { xmlns: NS.carbons }), 'alice@example.com')).attrs.type).to.equal('result');
  });
  afterEach(() => w.h.stop());

  const items = (c: TestClient, owner = 'alice@example.com') => c.iq(xml('iq', { type: 'get', to: owner }, xml('pubsub', { xmlns: PUBSUB }, xml('items', { node: NS_MDS }))));

  it('advertises urn:xmpp:mds:server-assist:0 on the account', async () => {
    const info = await phone.get(xml('query', { xmlns: NS.discoInfo }), 'alice@example.com');
    expect(info.getChild('query')!.getChildren('feature').map((f) => f.attrs.var)).to.include(NS_MDS_ASSIST);
  });

  it('server assist: strips <displayed/>, forwards the marker, publishes the item under the verbatim to, and notifies +notify clients', async () => {
    await phone.sendMessage({ to: 'bob@example.com', id: 'm1' }, xml('displayed', { xmlns: MARKERS, id: 'the-msg-1' }), displayed('0423e3a9'));
    const got = await bob.next((s) => s.name === 'message' && s.getChild('displayed', MARKERS) !== undefined);
    expect(got.getChild('displayed', NS_MDS)).to.equal(undefined);
    expect(got.toString()).to.not.include('0423e3a9');

    const event = await desktop.next(isMdsEvent);
    const item = event.getChild('event', PUBSUB_EVENT)!.getChild('items')!.getChild('item')!;
    expect(item.attrs.id).to.equal('bob@example.com');
    expect(item.getChild('displayed', NS_MDS)!.getChild('stanza-id', NS.sid)!.attrs.id).to.equal('0423e3a9');
    // The phone did not ask for +notify; bob (not on the whitelist) gets nothing though he asked.
    await w.h.settle();
    expect(phone.received.filter(isMdsEvent)).to.deep.equal([]);
    expect(bob.received.filter(isMdsEvent)).to.deep.equal([]);

    const fetched = await items(phone);
    const stored = fetched.getChild('pubsub')!.getChild('items')!.getChildren('item');
    expect(stored.map((i) => i.attrs.id)).to.deep.equal(['bob@example.com']);
  });

  it('creates the node private (whitelist), keeping as many items as allowed and no last item on subscription', async () => {
    await phone.sendMessage({ to: 'bob@example.com' }, xml('displayed', { xmlns: MARKERS, id: 'x' }), displayed('s1'));
    await bob.next((s) => s.name === 'message');
    const node = await w.h.api(pep).node(Jid.parse('alice@example.com'), NS_MDS);
    expect(node!.config).to.include({ accessModel: 'whitelist', maxItems: 'max', sendLastPublishedItem: 'never', persistItems: true });
    // XEP-0060 §6.5.9: whitelist nodes refuse outsiders with not-allowed and closed-node.
    expectError(await items(bob), 'not-allowed');
    // Many chats: every one keeps its item.
    for (let i = 0; i < 30; i++) await phone.sendMessage({ to: `c${i}@example.org` }, xml('displayed', { xmlns: MARKERS, id: 'x' }), displayed(`s${i}`));
    await w.h.settle();
    expect(await w.h.api(pep).items(Jid.parse('alice@example.com'), NS_MDS)).to.have.length(31);
  });

  it('gives a node a client creates by publishing the same private defaults, and accepts the XEP publish-options', async () => {
    const publish = xml('iq', { type: 'set', to: 'alice@example.com' },
      xml('pubsub', { xmlns: PUBSUB },
        xml('publish', { node: NS_MDS }, xml('item', { id: 'romeo@montague.lit' }, displayed('abc'))),
        xml('publish-options', {}, xml('x', { xmlns: NS.dataForms, type: 'submit' },
          xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, 'http://jabber.org/protocol/pubsub#publish-options')),
          xml('field', { var: 'pubsub#persist_items' }, xml('value', {}, 'true')),
          xml('field', { var: 'pubsub#max_items' }, xml('value', {}, 'max')),
          xml('field', { var: 'pubsub#send_last_published_item' }, xml('value', {}, 'never')),
          xml('field', { var: 'pubsub#access_model' }, xml('value', {}, 'whitelist'))))));
    expect((await phone.iq(publish)).attrs.type).to.equal('result');
    expect((await desktop.next(isMdsEvent)).toString()).to.include('romeo@montague.lit');
    // Without publish-options too: the defaults are private.
    const bare = xml('iq', { type: 'set', to: 'alice@example.com' }, xml('pubsub', { xmlns: PUBSUB }, xml('publish', { node: NS_MDS }, xml('item', { id: 'x@y' }, displayed('d')))));
    expect((await phone.iq(bare)).attrs.type).to.equal('result');
    // XEP-0060 §6.5.9: whitelist nodes refuse outsiders with not-allowed and closed-node.
    expectError(await items(bob), 'not-allowed');
  });

  it('strips the element before the archive stores the message and before the carbon copy', async () => {
    await phone.sendMessage({ to: 'bob@example.com', type: 'chat', id: 'with-body' }, xml('body', {}, 'seen it'), displayed('zz-secret'));
    const carbon = await desktop.next((s) => s.name === 'message' && s.getChild('sent', NS.carbons) !== undefined);
    expect(carbon.toString()).to.include('seen it');
    expect(carbon.toString()).to.not.include('zz-secret');
    const queryid = 'q1';
    const fin = await phone.set(xml('query', { xmlns: NS.mam, queryid }), 'alice@example.com');
    expect(fin.attrs.type).to.equal('result');
    const archived = phone.received.filter((s) => s.getChild('result', NS.mam)?.attrs.queryid === queryid);
    expect(archived.map((s) => s.toString()).join('')).to.include('seen it');
    expect(archived.map((s) => s.toString()).join('')).to.not.include('zz-secret');
  });

  it('drops a message that carried only the displayed element, after publishing it', async () => {
    await phone.sendMessage({ to: 'bob@example.com', id: 'only' }, displayed('lonely'));
    await desktop.next(isMdsEvent);
    await w.h.settle();
    expect(bob.received.filter((s) => s.name === 'message' && s.attrs.id === 'only')).to.deep.equal([]);
  });

  it('leaves messages without the element alone', async () => {
    await phone.sendMessage({ to: 'bob@example.com', type: 'chat', id: 'plain' }, xml('body', {}, 'hi'));
    const got = await bob.next((s) => s.name === 'message' && s.attrs.id === 'plain');
    expect(got.getChildText('body')).to.equal('hi');
    expect(await w.h.api(pep).node(Jid.parse('alice@example.com'), NS_MDS)).to.equal(undefined);
  });
});
