import { expect } from 'chai';
import { NS, xml, type Element } from '../../../lib/module-api.js';
import { expectError, expectXml } from '../../helpers/xml-assert.js';
import { capsCache, PUBSUB_ERRORS } from '../../../modules/pep/index.js';
import type { TestClient } from '../../helpers/harness.js';
import blocking from '../../../modules/blocking/index.js';
import {
  announce, configSubmit, events, friends, isDiscoQuery, isEvent, itemIds, items, notify, online, owner, publish, pubsub,
  PUBSUB, PUBSUB_EVENT, relate, startWorld, tune, TUNE, verOf, type World,
} from './world.js';

const ALICE = 'alice@example.com';
const OMEMO_DEVICES = 'eu.siacs.conversations.axolotl.devicelist';

function appError(reply: Element): string | undefined {
  return reply.getChild('error')?.getChildElements().find((c) => c.attrs.xmlns === PUBSUB_ERRORS)?.name;
}

function devicelist(...ids: string[]): Element {
  return xml('list', { xmlns: 'eu.siacs.conversations.axolotl' }, ids.map((id) => xml('device', { id })));
}

describe('pep (XEP-0163 over XEP-0060)', function () {
  this.timeout(10_000);
  let w: World;
  beforeEach(async () => {
    w = await startWorld();
  });
  afterEach(() => w.h.stop());

  describe('discovery', () => {
    it('shows the pubsub/pep identity and the implemented pubsub features on the account', async () => {
      const c = await w.h.connect(`${ALICE}/a`);
      const reply = await c.get(xml('query', { xmlns: NS.discoInfo }), ALICE);
      const q = reply.getChild('query')!;
      expect(q.getChildren('identity').map((i) => `${i.attrs.category}/${i.attrs.type}`)).to.include.members(['account/registered', 'pubsub/pep']);
      const features = q.getChildren('feature').map((f) => f.attrs.var as string);
      for (const f of ['publish', 'publish-options', 'config-node', 'config-node-max', 'multi-items', 'persistent-items', 'auto-create',
        'auto-subscribe', 'retract-items', 'purge-nodes', 'delete-nodes', 'access-presence', 'access-open', 'access-whitelist',
        'access-roster', 'retrieve-items', 'item-ids', 'filtered-notifications', 'last-published']) {
        expect(features, f).to.include(`${PUBSUB}#${f}`);
      }
      expect(features).not.to.include(`${PUBSUB}#access-authorize`);
      expect(features).not.to.include(`${PUBSUB}#subscription-options`);
      // XEP-0223 §5: the server's own disco#info says so too.
      const host = (await c.get(xml('query', { xmlns: NS.discoInfo }))).getChild('query')!;
      expect(host.getChildren('identity').map((i) => `${i.attrs.category}/${i.attrs.type}`)).to.include.members(['server/im', 'pubsub/pep']);
      expect(host.getChildren('feature').map((f) => f.attrs.var)).to.include(`${PUBSUB}#publish-options`);
    });

    it('lists only the nodes the asker may see in disco#items, and describes a node in disco#info', async () => {
      await friends(w, 'alice', 'bob');
      const alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, TUNE, tune('t'));
      await publish(alice, OMEMO_DEVICES, devicelist('1'), { options: { 'pubsub#access_model': 'open' } });
      await publish(alice, 'private', tune('p'), { options: { 'pubsub#access_model': 'whitelist' } });
      const nodesFor = async (c: TestClient) => (await c.get(xml('query', { xmlns: NS.discoItems }), ALICE)).getChild('query')!.getChildren('item').map((i) => i.attrs.node).sort();
      expect(await nodesFor(alice)).to.deep.equal([OMEMO_DEVICES, TUNE, 'private'].sort());
      expect(await nodesFor(await w.h.connect('bob@example.com/b'))).to.deep.equal([OMEMO_DEVICES, TUNE].sort());
      expect(await nodesFor(await w.h.connect('carol@example.com/c'))).to.deep.equal([OMEMO_DEVICES]);
      const info = await (await w.h.connect('carol@example.com/c2')).get(xml('query', { xmlns: NS.discoInfo, node: OMEMO_DEVICES }), ALICE);
      const q = info.getChild('query')!;
      expect(q.getChild('identity')!.attrs).to.include({ category: 'pubsub', type: 'leaf' });
      expect(q.getChild('x')!.toString()).to.contain('pubsub#meta-data').and.to.contain('<value>open</value>');
      expectError(await alice.get(xml('query', { xmlns: NS.discoInfo, node: 'nothing-here' }), ALICE), 'item-not-found');
    });
  });

  describe('publishing', () => {
    it('creates the node on first publish and returns the item id it generated', async () => {
      const alice = await w.h.connect(`${ALICE}/a`);
      const reply = await publish(alice, TUNE, tune('one'));
      expect(reply.attrs.type).to.equal('result');
      const id = reply.getChild('pubsub', PUBSUB)!.getChild('publish')!.getChild('item')!.attrs.id as string;
      expect(id).to.match(/^[0-9a-f]{16}$/);
      const got = await items(alice, ALICE, TUNE);
      expectXml(got.getChild('pubsub'), `<pubsub xmlns='${PUBSUB}'><items node='${TUNE}'><item id='${id}'><tune xmlns='${TUNE}'><title>one</title></tune></item></items></pubsub>`);
    });

    it('keeps the item id given by the publisher and replaces an item republished with it', async () => {
      const alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, 'n', tune('1'), { id: 'current' });
      await publish(alice, 'n', tune('2'), { id: 'current' });
      const got = await items(alice, ALICE, 'n');
      expect(itemIds(got)).to.deep.equal(['current']);
      expect(got.toString()).to.contain('<title>2</title>');
    });

    it('refuses a publish without a node, without an item, with two payloads or with none', async () => {
      const alice = await w.h.connect(`${ALICE}/a`);
      let r = await alice.iq(xml('iq', { type: 'set' }, pubsub(xml('publish', {}, xml('item', {}, tune('x'))))));
      expectError(r, 'bad-request');
      expect(appError(r)).to.equal('nodeid-required');
      r = await alice.iq(xml('iq', { type: 'set' }, pubsub(xml('publish', { node: 'n' }))));
      expectError(r, 'bad-request');
      expect(appError(r)).to.equal('item-required');
      r = await alice.iq(xml('iq', { type: 'set' }, pubsub(xml('publish', { node: 'n' }, xml('item', {}, tune('a'), tune('b'))))));
      expectError(r, 'bad-request');
      expect(appError(r)).to.equal('invalid-payload');
      r = await alice.iq(xml('iq', { type: 'set' }, pubsub(xml('publish', { node: 'n' }, xml('item')))));
      expectError(r, 'bad-request');
      expect(appError(r)).to.equal('payload-required');
    });

    it("forbids publishing to another account's PEP service", async () => {
      await friends(w, 'alice', 'bob');
      const bob = await w.h.connect('bob@example.com/b');
      expectError(await publish(bob, TUNE, tune('x'), { to: ALICE }), 'forbidden');
      const alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, TUNE, tune('mine'));
      expectError(await publish(bob, TUNE, tune('x'), { to: ALICE }), 'forbidden');
    });

    it('refuses an item larger than the limit with payload-too-big, and nodes beyond the limit', async () => {
      await w.h.stop();
      w = await startWorld({ options: { pep: { maxItemSize: 200, maxNodes: 2 } } });
      const alice = await w.h.connect(`${ALICE}/a`);
      const r = await publish(alice, 'big', xml('data', { xmlns: 'urn:x' }, 'x'.repeat(300)));
      expectError(r, 'not-acceptable');
      expect(appError(r)).to.equal('payload-too-big');
      await publish(alice, 'n1', tune('1'));
      await publish(alice, 'n2', tune('2'));
      const full = await publish(alice, 'n3', tune('3'));
      expectError(full, 'not-allowed');
      expect(appError(full)).to.equal('max-nodes-exceeded');
    });
  });

  describe('publish-options (XEP-0060 §7.1.5)', () => {
    it('creates the node with the options as its configuration', async () => {
      const alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, OMEMO_DEVICES, devicelist('7'), { id: 'current', options: { 'pubsub#access_model': 'open' } });
      const cfg = await alice.iq(xml('iq', { type: 'get' }, owner(xml('configure', { node: OMEMO_DEVICES }))));
      expect(cfg.toString()).to.match(/var="pubsub#access_model"[^>]*>(<option>.*?<\/option>)*<value>open<\/value>/);
    });

    it('publishes when the existing node matches, and fails with conflict/precondition-not-met when it does not', async () => {
      const alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, 'n', tune('1'), { options: { 'pubsub#access_model': 'whitelist', 'pubsub#persist_items': 'true' } });
      expect((await publish(alice, 'n', tune('2'), { options: { 'pubsub#access_model': 'whitelist', 'pubsub#persist_items': '1' } })).attrs.type).to.equal('result');
      const r = await publish(alice, 'n', tune('3'), { options: { 'pubsub#access_model': 'open' } });
      expectError(r, 'conflict', 'cancel');
      expect(appError(r)).to.equal('precondition-not-met');
      expect((await items(alice, ALICE, 'n')).toString()).to.contain('<title>2</title>');
    });

    it('fails on an option it does not know, on an existing node or a new one', async () => {
      const alice = await w.h.connect(`${ALICE}/a`);
      let r = await publish(alice, 'n', tune('1'), { options: { 'pubsub#frobnicate': '1' } });
      expectError(r, 'conflict');
      expect(appError(r)).to.equal('precondition-not-met');
      await publish(alice, 'n', tune('1'));
      r = await publish(alice, 'n', tune('1'), { options: { 'pubsub#frobnicate': '1' } });
      expect(appError(r)).to.equal('precondition-not-met');
    });

    it('treats max_items=max as the server limit', async () => {
      const alice = await w.h.connect(`${ALICE}/a`);
      const opts = { 'pubsub#max_items': 'max', 'pubsub#access_model': 'whitelist', 'pubsub#send_last_published_item': 'never', 'pubsub#persist_items': 'true' };
      for (let i = 0; i < 5; i++) expect((await publish(alice, 'urn:xmpp:bookmarks:1', tune(`${i}`), { id: `room${i}@muc`, options: opts })).attrs.type).to.equal('result');
      expect(itemIds(await items(alice, ALICE, 'urn:xmpp:bookmarks:1'))).to.have.length(5);
      // 256, the default limit, is "max" too.
      expect((await publish(alice, 'urn:xmpp:bookmarks:1', tune('x'), { options: { 'pubsub#max_items': '256' } })).attrs.type).to.equal('result');
    });

    it('refuses publish-options of another FORM_TYPE', async () => {
      const alice = await w.h.connect(`${ALICE}/a`);
      const bad = xml('publish-options', {}, xml('x', { xmlns: 'jabber:x:data', type: 'submit' },
        xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, 'urn:other'))));
      expectError(await alice.iq(xml('iq', { type: 'set' }, pubsub(xml('publish', { node: 'n' }, xml('item', {}, tune('x'))), bad))), 'bad-request');
    });
  });

  describe('access models', () => {
    beforeEach(async () => {
      await friends(w, 'alice', 'bob');
    });

    it('presence (the default): contacts subscribed to the owner may retrieve, others not', async () => {
      const alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, TUNE, tune('x'));
      const bob = await w.h.connect('bob@example.com/b');
      expect(itemIds(await items(bob, ALICE, TUNE))).to.have.length(1);
      const carol = await w.h.connect('carol@example.com/c');
      const r = await items(carol, ALICE, TUNE);
      expectError(r, 'not-authorized', 'auth');
      expect(appError(r)).to.equal('presence-subscription-required');
      // A one-way subscription the wrong way round (alice sees carol, carol does not see alice) does not count.
      await relate(w, 'alice', 'carol', 'to');
      expectError(await items(carol, ALICE, TUNE), 'not-authorized');
    });

    it('open: a stranger fetches an OMEMO device list published with access_model=open', async () => {
      const alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, OMEMO_DEVICES, devicelist('1234', '5678'), { id: 'current', options: { 'pubsub#access_model': 'open' } });
      await publish(alice, 'eu.siacs.conversations.axolotl.bundles:1234', xml('bundle', { xmlns: 'eu.siacs.conversations.axolotl' }, xml('signedPreKeyPublic', { signedPreKeyId: '1' }, 'AAAA')), { id: 'current', options: { 'pubsub#access_model': 'open' } });
      await publish(alice, 'urn:xmpp:omemo:2:devices', xml('devices', { xmlns: 'urn:xmpp:omemo:2' }, xml('device', { id: '1234' })), { id: 'current', options: { 'pubsub#access_model': 'open' } });
      await publish(alice, 'urn:xmpp:omemo:2:bundles', xml('bundle', { xmlns: 'urn:xmpp:omemo:2' }, xml('spk', { id: '1' }, 'BBBB')), { id: '1234', options: { 'pubsub#access_model': 'open', 'pubsub#max_items': 'max' } });
      const carol = await w.h.connect('carol@example.com/c');
      const list = await items(carol, ALICE, OMEMO_DEVICES);
      expectXml(list.getChild('pubsub'), `<pubsub xmlns='${PUBSUB}'><items node='${OMEMO_DEVICES}'><item id='current'>
        <list xmlns='eu.siacs.conversations.axolotl'><device id='1234'/><device id='5678'/></list></item></items></pubsub>`);
      expect(itemIds(await items(carol, ALICE, 'eu.siacs.conversations.axolotl.bundles:1234'))).to.deep.equal(['current']);
      expect(itemIds(await items(carol, ALICE, 'urn:xmpp:omemo:2:devices'))).to.deep.equal(['current']);
      expect(itemIds(await items(carol, ALICE, 'urn:xmpp:omemo:2:bundles', {}, ['1234']))).to.deep.equal(['1234']);
    });

    it('open: a stranger on another server fetches it too', async () => {
      const alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, OMEMO_DEVICES, devicelist('1'), { id: 'current', options: { 'pubsub#access_model': 'open' } });
      await w.h.route(xml('iq', { type: 'get', id: 'r1', from: 'romeo@remote.example/x', to: ALICE }, pubsub(xml('items', { node: OMEMO_DEVICES }))));
      await w.h.settle();
      const reply = w.remote.find((s) => s.attrs.id === 'r1')!;
      expect(reply.attrs.type).to.equal('result');
      expect(reply.toString()).to.contain("device id=\"1\"");
    });

    it('whitelist: only the owner and members; the owner adds members through affiliations', async () => {
      const alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, 'secret', tune('x'), { options: { 'pubsub#access_model': 'whitelist' } });
      const bob = await w.h.connect('bob@example.com/b');
      const r = await items(bob, ALICE, 'secret');
      expectError(r, 'not-allowed');
      expect(appError(r)).to.equal('closed-node');
      expect((await alice.iq(xml('iq', { type: 'set' }, owner(xml('affiliations', { node: 'secret' }, xml('affiliation', { jid: 'bob@example.com', affiliation: 'member' })))))).attrs.type).to.equal('result');
      expect(itemIds(await items(bob, ALICE, 'secret'))).to.have.length(1);
      const affs = await alice.iq(xml('iq', { type: 'get' }, owner(xml('affiliations', { node: 'secret' }))));
      expectXml(affs.getChild('pubsub'), `<pubsub xmlns='${PUBSUB}#owner'><affiliations node='secret'>
        <affiliation jid='alice@example.com' affiliation='owner'/><affiliation jid='bob@example.com' affiliation='member'/></affiliations></pubsub>`);
      // PEP has one publisher: the account.
      expectError(await alice.iq(xml('iq', { type: 'set' }, owner(xml('affiliations', { node: 'secret' }, xml('affiliation', { jid: 'bob@example.com', affiliation: 'publisher' }))))), 'not-acceptable');
      expectError(await alice.iq(xml('iq', { type: 'set' }, owner(xml('affiliations', { node: 'secret' }, xml('affiliation', { jid: ALICE, affiliation: 'none' }))))), 'not-acceptable');
      // An outcast is refused whatever the model.
      await alice.iq(xml('iq', { type: 'set' }, owner(xml('affiliations', { node: 'secret' }, xml('affiliation', { jid: 'bob@example.com', affiliation: 'outcast' })))));
      expectError(await items(bob, ALICE, 'secret'), 'forbidden');
    });

    it('roster: only contacts in the allowed groups', async () => {
      await relate(w, 'alice', 'bob', 'both', ['Friends']);
      await relate(w, 'alice', 'carol', 'none', ['Work']);
      const alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, 'n', tune('x'), { options: { 'pubsub#access_model': 'roster', 'pubsub#roster_groups_allowed': ['Work'] } });
      const bob = await w.h.connect('bob@example.com/b');
      const r = await items(bob, ALICE, 'n');
      expectError(r, 'not-authorized');
      expect(appError(r)).to.equal('not-in-roster-group');
      expect(itemIds(await items(await w.h.connect('carol@example.com/c'), ALICE, 'n'))).to.have.length(1);
    });

    it('answers item-not-found for a node that does not exist', async () => {
      const bob = await w.h.connect('bob@example.com/b');
      expectError(await items(bob, ALICE, 'nothing'), 'item-not-found');
    });
  });

  describe('notifications filtered by entity capabilities', () => {
    beforeEach(async () => {
      await friends(w, 'alice', 'bob');
      await friends(w, 'alice', 'carol');
    });

    it("sends an event to contacts whose verified caps ask for the node, and to the owner's own such resources", async () => {
      const alice = await online(w, `${ALICE}/a`, [notify(TUNE)]);
      const aliceQuiet = await online(w, `${ALICE}/q`, []);
      const bob = await online(w, 'bob@example.com/b', [notify(TUNE)]);
      const carol = await online(w, 'carol@example.com/c', ['urn:other+notify']);
      const dave = await online(w, 'dave@example.com/d', [notify(TUNE)]); // not a contact
      await publish(alice, TUNE, tune('Finzi'), { id: 'i1' });
      const ev = await bob.next(isEvent(TUNE));
      expectXml(ev, `<message from='alice@example.com' to='bob@example.com/b' type='headline' id='*'>
        <event xmlns='${PUBSUB_EVENT}'><items node='${TUNE}'><item id='i1'><tune xmlns='${TUNE}'><title>Finzi</title></tune></item></items></event></message>`);
      expect((await alice.next(isEvent(TUNE))).attrs.to).to.equal(`${ALICE}/a`);
      await w.h.settle();
      expect(events(aliceQuiet)).to.have.length(0);
      expect(events(carol)).to.have.length(0);
      expect(events(dave)).to.have.length(0);
    });

    it('queries a new ver once, verifies it, and then trusts the cache for every client announcing it', async () => {
      const features = [notify(TUNE)];
      const bob = await w.h.connect('bob@example.com/b');
      const asked = await announce(w, bob, features);
      expect(asked).to.have.length(1);
      expect(asked[0].getChild('query')!.attrs.node).to.equal(`https://spec.example/client#${verOf(features)}`);
      expect(capsCache.has('sha-1', verOf(features))).to.equal(true);
      const carol = await w.h.connect('carol@example.com/c');
      expect(await announce(w, carol, features)).to.have.length(0);
      const alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, TUNE, tune('x'));
      await bob.next(isEvent(TUNE));
      await carol.next(isEvent(TUNE));
    });

    it('rejects an answer that does not match the announced hash: nothing cached, no notifications', async () => {
      const bob = await w.h.connect('bob@example.com/b');
      const claimed = [notify(TUNE)];
      // Bob announces the ver of one feature list and answers with another.
      await announce(w, bob, claimed, { lie: [notify(TUNE), 'urn:extra'] });
      expect(capsCache.has('sha-1', verOf(claimed))).to.equal(false);
      const alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, TUNE, tune('x'));
      await w.h.settle();
      expect(events(bob)).to.have.length(0);
      // A client telling the truth about the same ver is asked again, then trusted.
      const carol = await w.h.connect('carol@example.com/c');
      expect(await announce(w, carol, claimed)).to.have.length(1);
      expect(capsCache.has('sha-1', verOf(claimed))).to.equal(true);
    });

    it('sends nothing to contacts without caps', async () => {
      const bob = await online(w, 'bob@example.com/b', [], { caps: false });
      const alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, TUNE, tune('x'));
      await w.h.settle();
      expect(events(bob)).to.have.length(0);
    });

    it('notifies a contact only while the access model lets it see the node', async () => {
      const bob = await online(w, 'bob@example.com/b', [notify('n')]);
      const alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, 'n', tune('1'), { options: { 'pubsub#access_model': 'whitelist' } });
      await w.h.settle();
      expect(events(bob)).to.have.length(0);
      await alice.iq(xml('iq', { type: 'set' }, owner(xml('affiliations', { node: 'n' }, xml('affiliation', { jid: 'bob@example.com', affiliation: 'member' })))));
      await publish(alice, 'n', tune('2'));
      await bob.next(isEvent('n'));
    });

    it('asks again at the next presence when a client did not answer the caps query', async () => {
      const alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, TUNE, tune('x'));
      const bob = await w.h.connect('bob@example.com/b');
      await bob.send(xml('presence', {}, xml('c', { xmlns: NS.caps, hash: 'sha-1', node: 'https://spec.example/client', ver: verOf([notify(TUNE)]) })));
      const q = await bob.next(isDiscoQuery);
      await bob.send(xml('iq', { type: 'error', id: q.attrs.id as string, to: q.attrs.from as string }, xml('error', { type: 'cancel' }, xml('service-unavailable', { xmlns: 'urn:ietf:params:xml:ns:xmpp-stanzas' }))));
      await w.h.settle();
      expect(events(bob)).to.have.length(0);
      await announce(w, bob, [notify(TUNE)]);
      await bob.next(isEvent(TUNE));
    });

    it('sends nothing to a contact the owner blocks (XEP-0163 §4.3.3)', async () => {
      await w.h.stop();
      w = await startWorld({ modules: [blocking] });
      await friends(w, 'alice', 'bob');
      const bob = await online(w, 'bob@example.com/b', [notify(TUNE)]);
      const alice = await w.h.connect(`${ALICE}/a`);
      expect((await alice.iq(xml('iq', { type: 'set' }, xml('block', { xmlns: 'urn:xmpp:blocking' }, xml('item', { jid: 'bob@example.com' }))))).attrs.type).to.equal('result');
      await publish(alice, TUNE, tune('x'));
      await w.h.settle();
      expect(events(bob)).to.have.length(0);
    });

    it('stops notifying a resource once it goes unavailable', async () => {
      const bob = await online(w, 'bob@example.com/b', [notify(TUNE)]);
      await bob.send(xml('presence', { type: 'unavailable' }));
      await w.h.settle();
      const alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, TUNE, tune('x'));
      await w.h.settle();
      expect(events(bob)).to.have.length(0);
    });
  });

  describe('last published item on presence', () => {
    beforeEach(async () => {
      await friends(w, 'alice', 'bob');
    });

    it('sends the last item, with its delay, when a contact with +notify comes online', async () => {
      const alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, TUNE, tune('old'), { id: 'a' });
      await publish(alice, TUNE, tune('new'), { id: 'b' });
      const bob = await online(w, 'bob@example.com/b', [notify(TUNE)]);
      const ev = await bob.next(isEvent(TUNE));
      expect(ev.getChild('event')!.getChild('items')!.getChildren('item').map((i) => i.attrs.id)).to.deep.equal(['b']);
      expect(ev.getChild('delay', 'urn:xmpp:delay')!.attrs.stamp).to.match(/^\d{4}-\d\d-\d\dT/);
      // Further presence with the same caps sends nothing again (XEP-0163 §4.3.2).
      bob.clear();
      await announce(w, bob, [notify(TUNE)]);
      expect(events(bob)).to.have.length(0);
    });

    it('sends the last item of a node a client newly asks for when its caps change', async () => {
      const alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, 'urn:xmpp:avatar:metadata', xml('metadata', { xmlns: 'urn:xmpp:avatar:metadata' }), { id: 'x' });
      await publish(alice, TUNE, tune('x'));
      const bob = await online(w, 'bob@example.com/b', [notify(TUNE)]);
      await bob.next(isEvent(TUNE));
      await announce(w, bob, [notify(TUNE), notify('urn:xmpp:avatar:metadata')]);
      await bob.next(isEvent('urn:xmpp:avatar:metadata'));
      expect(events(bob, TUNE)).to.have.length(1);
    });

    it("sends the owner's own new resource the last items it asks for", async () => {
      const first = await w.h.connect(`${ALICE}/a`);
      await publish(first, TUNE, tune('x'));
      const second = await online(w, `${ALICE}/b`, [notify(TUNE)]);
      expect((await second.next(isEvent(TUNE))).attrs.from).to.equal(ALICE);
    });

    it('honours send_last_published_item=never', async () => {
      const alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, TUNE, tune('x'), { options: { 'pubsub#send_last_published_item': 'never' } });
      const bob = await online(w, 'bob@example.com/b', [notify(TUNE)]);
      await w.h.settle();
      expect(events(bob)).to.have.length(0);
    });
  });

  describe('retract, purge, delete', () => {
    let alice: TestClient;
    let bob: TestClient;
    beforeEach(async () => {
      await friends(w, 'alice', 'bob');
      alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, 'n', tune('1'), { id: 'one', options: { 'pubsub#max_items': '10' } });
      await publish(alice, 'n', tune('2'), { id: 'two' });
      bob = await online(w, 'bob@example.com/b', [notify('n')]);
      await bob.next(isEvent('n'));
      bob.clear();
    });

    it('retracts an item and notifies interested contacts', async () => {
      const r = await alice.iq(xml('iq', { type: 'set' }, pubsub(xml('retract', { node: 'n', notify: 'true' }, xml('item', { id: 'one' })))));
      expect(r.attrs.type).to.equal('result');
      const ev = await bob.next(isEvent('n'));
      expectXml(ev.getChild('event'), `<event xmlns='${PUBSUB_EVENT}'><items node='n'><retract id='one'/></items></event>`);
      expect(itemIds(await items(alice, ALICE, 'n'))).to.deep.equal(['two']);
    });

    it("retracts without a notification when notify='false' or pubsub#notify_retract is off", async () => {
      await alice.iq(xml('iq', { type: 'set' }, pubsub(xml('retract', { node: 'n', notify: 'false' }, xml('item', { id: 'one' })))));
      await alice.iq(xml('iq', { type: 'set' }, owner(xml('configure', { node: 'n' }, configSubmit({ 'pubsub#notify_retract': '0' })))));
      await alice.iq(xml('iq', { type: 'set' }, pubsub(xml('retract', { node: 'n' }, xml('item', { id: 'two' })))));
      await w.h.settle();
      expect(events(bob)).to.have.length(0);
      expect(itemIds(await items(alice, ALICE, 'n'))).to.deep.equal([]);
    });

    it('refuses retracting a missing item, without an id, or by someone else', async () => {
      expectError(await alice.iq(xml('iq', { type: 'set' }, pubsub(xml('retract', { node: 'n' }, xml('item', { id: 'nope' }))))), 'item-not-found');
      const r = await alice.iq(xml('iq', { type: 'set' }, pubsub(xml('retract', { node: 'n' }, xml('item')))));
      expect(appError(r)).to.equal('item-required');
      expectError(await bob.iq(xml('iq', { type: 'set', to: ALICE }, pubsub(xml('retract', { node: 'n' }, xml('item', { id: 'one' }))))), 'forbidden');
    });

    it('purges every item and tells the subscribers', async () => {
      expect((await alice.iq(xml('iq', { type: 'set' }, owner(xml('purge', { node: 'n' }))))).attrs.type).to.equal('result');
      const ev = await bob.next(isEvent('n'));
      expectXml(ev.getChild('event'), `<event xmlns='${PUBSUB_EVENT}'><purge node='n'/></event>`);
      expect(itemIds(await items(alice, ALICE, 'n'))).to.deep.equal([]);
      expectError(await bob.iq(xml('iq', { type: 'set', to: ALICE }, owner(xml('purge', { node: 'n' })))), 'forbidden');
    });

    it('deletes the node and tells the subscribers', async () => {
      expect((await alice.iq(xml('iq', { type: 'set' }, owner(xml('delete', { node: 'n' }))))).attrs.type).to.equal('result');
      const ev = await bob.next(isEvent('n'));
      expectXml(ev.getChild('event'), `<event xmlns='${PUBSUB_EVENT}'><delete node='n'/></event>`);
      expectError(await items(alice, ALICE, 'n'), 'item-not-found');
      expectError(await alice.iq(xml('iq', { type: 'set' }, owner(xml('delete', { node: 'n' })))), 'item-not-found');
    });
  });

  describe('node configuration', () => {
    let alice: TestClient;
    beforeEach(async () => {
      alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, 'n', tune('1'));
    });

    it('returns the form with the defaults of XEP-0163 and takes a submitted form', async () => {
      const form = await alice.iq(xml('iq', { type: 'get' }, owner(xml('configure', { node: 'n' }))));
      const x = form.getChild('pubsub')!.getChild('configure')!.getChild('x')!;
      const value = (v: string) => x.getChildren('field').find((f) => f.attrs.var === v)?.getChildren('value').map((e) => e.getText());
      expect(value('pubsub#access_model')).to.deep.equal(['presence']);
      expect(value('pubsub#send_last_published_item')).to.deep.equal(['on_sub_and_presence']);
      expect(value('pubsub#max_items')).to.deep.equal(['1']);
      expect(value('pubsub#persist_items')).to.deep.equal(['true']);
      expect(value('pubsub#deliver_payloads')).to.deep.equal(['true']);
      expect((await alice.iq(xml('iq', { type: 'set' }, owner(xml('configure', { node: 'n' }, configSubmit({ 'pubsub#max_items': '3', 'pubsub#title': 'Tunes' })))))).attrs.type).to.equal('result');
      for (let i = 2; i <= 5; i++) await publish(alice, 'n', tune(`${i}`), { id: `i${i}` });
      expect(itemIds(await items(alice, ALICE, 'n'))).to.deep.equal(['i3', 'i4', 'i5']);
      expect(itemIds(await items(alice, ALICE, 'n', { max_items: '1' }))).to.deep.equal(['i5']);
      // Lowering max_items drops the oldest.
      await alice.iq(xml('iq', { type: 'set' }, owner(xml('configure', { node: 'n' }, configSubmit({ 'pubsub#max_items': '1' })))));
      expect(itemIds(await items(alice, ALICE, 'n'))).to.deep.equal(['i5']);
    });

    it('refuses unknown fields, bad values and limits beyond the server maximum', async () => {
      const set = (fields: Record<string, string>) => alice.iq(xml('iq', { type: 'set' }, owner(xml('configure', { node: 'n' }, configSubmit(fields)))));
      expectError(await set({ 'pubsub#frob': '1' }), 'not-acceptable');
      expectError(await set({ 'pubsub#persist_items': 'maybe' }), 'not-acceptable');
      expectError(await set({ 'pubsub#max_items': '100000' }), 'not-acceptable');
      const r = await set({ 'pubsub#access_model': 'authorize' });
      expect(appError(r)).to.equal('unsupported-access-model');
    });

    it('forbids configuring by anyone but the owner, and answers item-not-found for a missing node', async () => {
      await friends(w, 'alice', 'bob');
      const bob = await w.h.connect('bob@example.com/b');
      expectError(await bob.iq(xml('iq', { type: 'get', to: ALICE }, owner(xml('configure', { node: 'n' })))), 'forbidden');
      expectError(await alice.iq(xml('iq', { type: 'get' }, owner(xml('configure', { node: 'other' })))), 'item-not-found');
      const r = await alice.iq(xml('iq', { type: 'get' }, owner(xml('configure'))));
      expect(appError(r)).to.equal('nodeid-required');
    });

    it('creates a node explicitly, with a configuration, and refuses an existing or unnamed one', async () => {
      const create = (node: string | undefined, fields?: Record<string, string>) => alice.iq(xml('iq', { type: 'set' },
        pubsub(xml('create', { node }), fields ? xml('configure', {}, configSubmit(fields)) : null)));
      expect((await create('fresh', { 'pubsub#access_model': 'open' })).attrs.type).to.equal('result');
      const carol = await w.h.connect('carol@example.com/c');
      expect(itemIds(await items(carol, ALICE, 'fresh'))).to.deep.equal([]);
      expectError(await create('fresh'), 'conflict');
      expectError(await create(undefined), 'not-acceptable');
    });

    it('returns the default configuration', async () => {
      const r = await alice.iq(xml('iq', { type: 'get' }, owner(xml('default'))));
      expect(r.getChild('pubsub')!.getChild('default')!.getChild('x')!.attrs.type).to.equal('form');
    });

    it('keeps only the last item, in memory, with pubsub#persist_items false', async () => {
      await publish(alice, 'volatile', tune('1'), { options: { 'pubsub#persist_items': 'false' } });
      await publish(alice, 'volatile', tune('2'), { id: 'last' });
      expect(itemIds(await items(alice, ALICE, 'volatile'))).to.deep.equal(['last']);
      const rows = await w.h.storage.db.selectFrom('pubsub_items').select('item_id').where('node', '=', 'volatile').execute();
      expect(rows).to.have.length(0);
    });
  });

  describe('explicit subscriptions', () => {
    it('lets a stranger subscribe to an open node, get the last item and notifications, and unsubscribe', async () => {
      const alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, 'blog', tune('1'), { id: 'p1', options: { 'pubsub#access_model': 'open' } });
      const carol = await w.h.connect('carol@example.com/c');
      // Available, so that headlines to the bare JID reach it (RFC 6121 §8.5.2.1.1).
      await carol.send(xml('presence'));
      const r = await carol.iq(xml('iq', { type: 'set', to: ALICE }, pubsub(xml('subscribe', { node: 'blog', jid: 'carol@example.com' }))));
      const sub = r.getChild('pubsub')!.getChild('subscription')!;
      expect(sub.attrs).to.include({ node: 'blog', jid: 'carol@example.com', subscription: 'subscribed' });
      expect((await carol.next(isEvent('blog'))).toString()).to.contain("id=\"p1\"");
      await publish(alice, 'blog', tune('2'), { id: 'p2' });
      expect((await carol.next(isEvent('blog'))).toString()).to.contain("id=\"p2\"");
      const mine = await carol.iq(xml('iq', { type: 'get', to: ALICE }, pubsub(xml('subscriptions'))));
      expect(mine.getChild('pubsub')!.getChild('subscriptions')!.getChildren('subscription').map((s) => s.attrs.node)).to.deep.equal(['blog']);
      const owned = await alice.iq(xml('iq', { type: 'get' }, owner(xml('subscriptions', { node: 'blog' }))));
      expect(owned.getChild('pubsub')!.getChild('subscriptions')!.getChildren('subscription').map((s) => s.attrs.jid)).to.deep.equal(['carol@example.com']);
      expect((await carol.iq(xml('iq', { type: 'set', to: ALICE }, pubsub(xml('unsubscribe', { node: 'blog', jid: 'carol@example.com' }))))).attrs.type).to.equal('result');
      const again = await carol.iq(xml('iq', { type: 'set', to: ALICE }, pubsub(xml('unsubscribe', { node: 'blog', jid: 'carol@example.com' }))));
      expectError(again, 'unexpected-request');
      expect(appError(again)).to.equal('not-subscribed');
      carol.clear();
      await publish(alice, 'blog', tune('3'));
      await w.h.settle();
      expect(events(carol)).to.have.length(0);
    });

    it('refuses subscribing someone else, or to a node the access model closes', async () => {
      const alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, 'n', tune('1'));
      const carol = await w.h.connect('carol@example.com/c');
      const r = await carol.iq(xml('iq', { type: 'set', to: ALICE }, pubsub(xml('subscribe', { node: 'n', jid: 'dave@example.com' }))));
      expectError(r, 'bad-request');
      expect(appError(r)).to.equal('invalid-jid');
      expect(appError(await carol.iq(xml('iq', { type: 'set', to: ALICE }, pubsub(xml('subscribe', { node: 'n', jid: 'carol@example.com' })))))).to.equal('presence-subscription-required');
      expectError(await carol.iq(xml('iq', { type: 'set', to: ALICE }, pubsub(xml('options', { node: 'n', jid: 'carol@example.com' })))), 'feature-not-implemented');
    });

    it("lists the account's own affiliations", async () => {
      const alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, 'n', tune('1'));
      const r = await alice.iq(xml('iq', { type: 'get' }, pubsub(xml('affiliations'))));
      expectXml(r.getChild('pubsub'), `<pubsub xmlns='${PUBSUB}'><affiliations><affiliation node='n' affiliation='owner'/></affiliations></pubsub>`);
    });
  });

  describe('account deletion', () => {
    it("removes the account's nodes, items, and its subscriptions and affiliations elsewhere", async () => {
      const alice = await w.h.connect(`${ALICE}/a`);
      await publish(alice, 'n', tune('1'), { options: { 'pubsub#access_model': 'open' } });
      const bob = await w.h.connect('bob@example.com/b');
      await publish(bob, 'b', tune('1'), { options: { 'pubsub#access_model': 'whitelist' } });
      await bob.iq(xml('iq', { type: 'set' }, owner(xml('affiliations', { node: 'b' }, xml('affiliation', { jid: ALICE, affiliation: 'member' })))));
      await bob.iq(xml('iq', { type: 'set' }, owner(xml('subscriptions', { node: 'b' }, xml('subscription', { jid: ALICE, subscription: 'subscribed' })))));
      await w.h.deleteAccount('alice');
      const db = w.h.storage.db;
      for (const table of ['pubsub_nodes', 'pubsub_items']) {
        expect(await db.selectFrom(table).selectAll().where('service', '=', ALICE).execute(), table).to.have.length(0);
      }
      expect(await db.selectFrom('pubsub_affiliations').selectAll().where('jid', '=', ALICE).execute()).to.have.length(0);
      expect(await db.selectFrom('pubsub_subscriptions').selectAll().where('bare', '=', ALICE).execute()).to.have.length(0);
      expect(await db.selectFrom('pubsub_nodes').selectAll().where('service', '=', 'bob@example.com').execute()).to.have.length(1);
    });
  });

  it('sends no disco#info query about presence from strangers (e.g. room occupants)', async () => {
    const alice = await w.h.connect(`${ALICE}/a`);
    await alice.send(xml('presence'));
    await w.h.route(xml('presence', { from: 'room@muc.remote.example/nick', to: `${ALICE}/a` }, xml('c', { xmlns: NS.caps, hash: 'sha-1', node: 'x', ver: 'abc=' })));
    await w.h.settle();
    expect(w.remote.filter(isDiscoQuery)).to.have.length(0);
  });
});
