import { expect } from 'chai';
import { NS, xml, type Element } from '../../../lib/module-api.js';
import { Jid } from '../../../lib/jid/jid.js';
import { Harness, type TestClient } from '../../helpers/harness.js';
import { expectError, expectXml } from '../../helpers/xml-assert.js';
import roster from '../../../modules/roster/index.js';
import presence from '../../../modules/presence/index.js';
import disco from '../../../modules/disco/index.js';
import pep, { PUBSUB, PUBSUB_ERRORS, PUBSUB_EVENT, PUBSUB_OWNER } from '../../../modules/pep/index.js';
import pubsub from '../../../modules/pubsub/index.js';
import { configSubmit, publishOptions } from '../pep/world.js';

const SVC = 'pubsub.example.com';
const ps = (...c: Element[]) => xml('pubsub', { xmlns: PUBSUB }, ...c);
const own = (...c: Element[]) => xml('pubsub', { xmlns: PUBSUB_OWNER }, ...c);
const entry = (title: string) => xml('entry', { xmlns: 'http://www.w3.org/2005/Atom' }, xml('title', {}, title));
const isEvent = (el: Element) => el.name === 'message' && el.getChild('event', PUBSUB_EVENT) !== undefined;
const appError = (r: Element) => r.getChild('error')?.getChildElements().find((c) => c.attrs.xmlns === PUBSUB_ERRORS)?.name;

describe('pubsub service (XEP-0060 at pubsub.<domain>)', function () {
  this.timeout(10_000);
  let h: Harness;
  let remote: Element[];
  let hamlet: TestClient;
  let bob: TestClient;
  let carol: TestClient;

  beforeEach(async () => {
    h = await Harness.start({
      modules: [roster, presence, disco, pep, pubsub],
      options: { pubsub: { maxNodes: 5 } },
      server: { admins: [Jid.parse('admin@example.com')] },
    });
    remote = [];
    h.router.remote = async (s) => {
      remote.push(s.el);
    };
    for (const u of ['hamlet', 'bob', 'carol', 'admin']) await h.createAccount(u);
    hamlet = await h.connect('hamlet@example.com/elsinore');
    bob = await h.connect('bob@example.com/b');
    carol = await h.connect('carol@example.com/c');
    for (const c of [hamlet, bob, carol]) await c.send(xml('presence'));
  });
  afterEach(() => h.stop());

  const set = (c: TestClient, payload: Element) => c.iq(xml('iq', { type: 'set', to: SVC }, payload));
  const get = (c: TestClient, payload: Element) => c.iq(xml('iq', { type: 'get', to: SVC }, payload));
  const create = (c: TestClient, node: string, fields?: Record<string, string | string[]>) =>
    set(c, ps(xml('create', { node }), ...(fields ? [xml('configure', {}, configSubmit(fields))] : [])));
  const publish = (c: TestClient, node: string, payload: Element, id?: string) => set(c, ps(xml('publish', { node }, xml('item', { id }, payload))));
  const subscribe = (c: TestClient, node: string) => set(c, ps(xml('subscribe', { node, jid: c.jid.bare().toString() })));

  it('is listed in the server disco#items and describes itself as a pubsub service', async () => {
    const items = await hamlet.get(xml('query', { xmlns: NS.discoItems }));
    expect(items.getChild('query')!.getChildren('item').map((i) => i.attrs.jid)).to.include(SVC);
    const info = await get(hamlet, xml('query', { xmlns: NS.discoInfo }));
    const q = info.getChild('query')!;
    expect(q.getChild('identity')!.attrs).to.include({ category: 'pubsub', type: 'service' });
    const features = q.getChildren('feature').map((f) => f.attrs.var);
    for (const f of ['create-nodes', 'publish', 'subscribe', 'retrieve-items', 'purge-nodes', 'delete-nodes', 'modify-affiliations', 'manage-subscriptions', 'access-open', 'config-node']) {
      expect(features).to.include(`${PUBSUB}#${f}`);
    }
    expect(features).not.to.include(`${PUBSUB}#collections`);
  });

  it('lets an account create a node it owns, configure it, publish, and subscribers receive the items', async () => {
    expect((await create(hamlet, 'princely_musings', { 'pubsub#title': 'Musings', 'pubsub#max_items': '5' })).attrs.type).to.equal('result');
    const sub = await subscribe(bob, 'princely_musings');
    expectXml(sub.getChild('pubsub'), `<pubsub xmlns='${PUBSUB}'><subscription node='princely_musings' jid='bob@example.com' subid='*' subscription='subscribed'/></pubsub>`);
    const r = await publish(hamlet, 'princely_musings', entry('Soliloquy'), 'ae890');
    expectXml(r.getChild('pubsub'), `<pubsub xmlns='${PUBSUB}'><publish node='princely_musings'><item id='ae890'/></publish></pubsub>`);
    const ev = await bob.next(isEvent);
    expectXml(ev, `<message from='${SVC}' to='bob@example.com' type='headline' id='*'><event xmlns='${PUBSUB_EVENT}'>
      <items node='princely_musings'><item id='ae890'><entry xmlns='http://www.w3.org/2005/Atom'><title>Soliloquy</title></entry></item></items></event></message>`);
    const got = await get(carol, ps(xml('items', { node: 'princely_musings' })));
    expect(got.getChild('pubsub')!.getChild('items')!.getChildren('item').map((i) => i.attrs.id)).to.deep.equal(['ae890']);
    const info = await get(carol, xml('query', { xmlns: NS.discoInfo, node: 'princely_musings' }));
    expect(info.toString()).to.contain('hamlet@example.com').and.to.contain('Musings');
    const list = await get(carol, xml('query', { xmlns: NS.discoItems }));
    expect(list.getChild('query')!.getChildren('item').map((i) => i.attrs.node)).to.deep.equal(['princely_musings']);
    const ids = await get(carol, xml('query', { xmlns: NS.discoItems, node: 'princely_musings' }));
    expect(ids.getChild('query')!.getChildren('item').map((i) => i.attrs.name)).to.deep.equal(['ae890']);
  });

  it('sends a new subscriber the last item (on_sub by default) and notifies remote subscribers', async () => {
    await create(hamlet, 'n');
    await publish(hamlet, 'n', entry('first'), 'i1');
    await subscribe(carol, 'n');
    expect((await carol.next(isEvent)).toString()).to.contain('first');
    await h.route(xml('iq', { type: 'set', id: 'rs', from: 'romeo@remote.example/r', to: SVC }, ps(xml('subscribe', { node: 'n', jid: 'romeo@remote.example/r' }))));
    await h.settle();
    expect(remote.find((s) => s.attrs.id === 'rs')!.attrs.type).to.equal('result');
    remote.length = 0;
    await publish(hamlet, 'n', entry('second'), 'i2');
    await h.settle();
    const out = remote.filter((s) => s.name === 'message');
    expect(out.map((m) => m.attrs.to)).to.deep.equal(['romeo@remote.example/r']);
  });

  it('auto-creates a node on publish by a local account, and refuses node creation from elsewhere', async () => {
    expect((await publish(bob, 'auto', entry('x'))).attrs.type).to.equal('result');
    const aff = await get(bob, ps(xml('affiliations')));
    expectXml(aff.getChild('pubsub'), `<pubsub xmlns='${PUBSUB}'><affiliations><affiliation node='auto' affiliation='owner'/></affiliations></pubsub>`);
    await h.route(xml('iq', { type: 'set', id: 'rc', from: 'romeo@remote.example/r', to: SVC }, ps(xml('create', { node: 'theirs' }))));
    await h.settle();
    const reply = remote.find((s) => s.attrs.id === 'rc')!;
    expect(reply.getChild('error')!.getChild('forbidden')).to.not.equal(undefined);
  });

  it('refuses an existing node, an unnamed node and nodes beyond the limit', async () => {
    await create(hamlet, 'n');
    expectError(await create(hamlet, 'n'), 'conflict');
    expectError(await set(hamlet, ps(xml('create'))), 'not-acceptable');
    for (const n of ['a', 'b', 'c', 'd']) await create(hamlet, n);
    const r = await create(hamlet, 'e');
    expectError(r, 'not-allowed');
    expect(appError(r)).to.equal('max-nodes-exceeded');
  });

  it('lets only publishers publish, and the owner grant publisher and publish-only affiliations', async () => {
    await create(hamlet, 'n');
    expectError(await publish(bob, 'n', entry('x')), 'forbidden');
    const grant = own(xml('affiliations', { node: 'n' }, xml('affiliation', { jid: 'bob@example.com', affiliation: 'publisher' }), xml('affiliation', { jid: 'carol@example.com', affiliation: 'publish-only' })));
    expectError(await set(bob, grant), 'forbidden');
    expect((await set(hamlet, grant)).attrs.type).to.equal('result');
    expect((await publish(bob, 'n', entry('by bob'))).attrs.type).to.equal('result');
    expect((await publish(carol, 'n', entry('by carol'))).attrs.type).to.equal('result');
    const affs = await get(hamlet, own(xml('affiliations', { node: 'n' })));
    expect(affs.getChild('pubsub')!.getChild('affiliations')!.getChildren('affiliation').map((a) => `${a.attrs.jid}=${a.attrs.affiliation}`))
      .to.deep.equal(['bob@example.com=publisher', 'carol@example.com=publish-only', 'hamlet@example.com=owner']);
    // A node keeps at least one owner.
    expectError(await set(hamlet, own(xml('affiliations', { node: 'n' }, xml('affiliation', { jid: 'hamlet@example.com', affiliation: 'none' })))), 'not-acceptable');
    // The publish model "open" lets anyone publish.
    await set(hamlet, own(xml('configure', { node: 'n' }, configSubmit({ 'pubsub#publish_model': 'open' }))));
    await h.route(xml('iq', { type: 'set', id: 'rp', from: 'romeo@remote.example/r', to: SVC }, ps(xml('publish', { node: 'n' }, xml('item', {}, entry('remote'))))));
    await h.settle();
    expect(remote.find((s) => s.attrs.id === 'rp')!.attrs.type).to.equal('result');
  });

  it('lets the owner list and change subscriptions, and bans outcasts', async () => {
    await create(hamlet, 'n');
    await subscribe(bob, 'n');
    await subscribe(carol, 'n');
    const subs = await get(hamlet, own(xml('subscriptions', { node: 'n' })));
    expect(subs.getChild('pubsub')!.getChild('subscriptions')!.getChildren('subscription').map((s) => s.attrs.jid)).to.deep.equal(['bob@example.com', 'carol@example.com']);
    expectError(await get(bob, own(xml('subscriptions', { node: 'n' }))), 'forbidden');
    await set(hamlet, own(xml('subscriptions', { node: 'n' }, xml('subscription', { jid: 'bob@example.com', subscription: 'none' }))));
    await set(hamlet, own(xml('affiliations', { node: 'n' }, xml('affiliation', { jid: 'carol@example.com', affiliation: 'outcast' }))));
    const after = await get(hamlet, own(xml('subscriptions', { node: 'n' })));
    expect(after.getChild('pubsub')!.getChild('subscriptions')!.getChildren('subscription')).to.have.length(0);
    expectError(await subscribe(carol, 'n'), 'forbidden');
    expectError(await get(carol, ps(xml('items', { node: 'n' }))), 'forbidden');
  });

  it('keeps whitelist nodes to members', async () => {
    await create(hamlet, 'closed', { 'pubsub#access_model': 'whitelist' });
    const r = await subscribe(bob, 'closed');
    expectError(r, 'not-allowed');
    expect(appError(r)).to.equal('closed-node');
    const list = await get(bob, xml('query', { xmlns: NS.discoItems }));
    expect(list.getChild('query')!.getChildren('item')).to.have.length(0);
    await set(hamlet, own(xml('affiliations', { node: 'closed' }, xml('affiliation', { jid: 'bob@example.com', affiliation: 'member' }))));
    expect((await subscribe(bob, 'closed')).attrs.type).to.equal('result');
  });

  it("uses the owner's roster for the presence access model", async () => {
    await create(hamlet, 'friends', { 'pubsub#access_model': 'presence' });
    expect(appError(await subscribe(bob, 'friends'))).to.equal('presence-subscription-required');
    await h.api(roster).update(Jid.parse('hamlet@example.com'), Jid.parse('bob@example.com'), () => ({ jid: Jid.parse('bob@example.com'), name: undefined, subscription: 'from', ask: false, approved: false, groups: [] }));
    expect((await subscribe(bob, 'friends')).attrs.type).to.equal('result');
  });

  it('configures, purges and deletes with notifications, for the owner only', async () => {
    await create(hamlet, 'n');
    await publish(hamlet, 'n', entry('1'));
    await subscribe(bob, 'n');
    await bob.next(isEvent);
    const form = await get(hamlet, own(xml('configure', { node: 'n' })));
    expect(form.getChild('pubsub')!.getChild('configure')!.getChild('x')!.attrs.type).to.equal('form');
    expectError(await get(bob, own(xml('configure', { node: 'n' }))), 'forbidden');
    expectError(await set(bob, own(xml('purge', { node: 'n' }))), 'forbidden');
    expectError(await set(bob, own(xml('delete', { node: 'n' }))), 'forbidden');
    await set(hamlet, own(xml('purge', { node: 'n' })));
    expect((await bob.next(isEvent)).getChild('event')!.getChild('purge')!.attrs.node).to.equal('n');
    await set(hamlet, own(xml('delete', { node: 'n' })));
    expect((await bob.next(isEvent)).getChild('event')!.getChild('delete')!.attrs.node).to.equal('n');
    expectError(await get(bob, ps(xml('items', { node: 'n' }))), 'item-not-found');
  });

  it('checks publish-options against the node', async () => {
    await create(hamlet, 'n');
    const r = await set(hamlet, ps(xml('publish', { node: 'n' }, xml('item', {}, entry('x'))), publishOptions({ 'pubsub#access_model': 'whitelist' })));
    expectError(r, 'conflict');
    expect(appError(r)).to.equal('precondition-not-met');
  });

  it('gives admins ownership of every node', async () => {
    await create(hamlet, 'n');
    const admin = await h.connect('admin@example.com/x');
    expect((await set(admin, own(xml('delete', { node: 'n' })))).attrs.type).to.equal('result');
  });

  it('answers what it does not handle with service-unavailable', async () => {
    expectError(await get(hamlet, xml('query', { xmlns: 'jabber:iq:version' })), 'service-unavailable');
    expectError(await hamlet.iq(xml('iq', { type: 'get', to: `node@${SVC}` }, ps(xml('items', { node: 'n' })))), 'service-unavailable');
    await hamlet.send(xml('message', { to: SVC, id: 'm1' }, xml('body', {}, 'hi')));
    const bounce = await hamlet.next((s) => s.name === 'message' && s.attrs.id === 'm1');
    expect(bounce.attrs.type).to.equal('error');
  });

  it('on account deletion, deletes the nodes the account alone owned and its subscriptions', async () => {
    await create(bob, 'bobs');
    await create(hamlet, 'shared');
    await set(hamlet, own(xml('affiliations', { node: 'shared' }, xml('affiliation', { jid: 'bob@example.com', affiliation: 'owner' }))));
    await subscribe(bob, 'shared');
    await subscribe(carol, 'bobs');
    await h.deleteAccount('bob');
    await h.settle();
    expect((await carol.next(isEvent)).getChild('event')!.getChild('delete')!.attrs.node).to.equal('bobs');
    const db = h.storage.db;
    expect((await db.selectFrom('pubsub_nodes').select('node').where('service', '=', SVC).execute()).map((r) => r.node)).to.deep.equal(['shared']);
    expect(await db.selectFrom('pubsub_affiliations').selectAll().where('jid', '=', 'bob@example.com').execute()).to.have.length(0);
    expect(await db.selectFrom('pubsub_subscriptions').selectAll().where('bare', '=', 'bob@example.com').execute()).to.have.length(0);
  });

  it('serves another domain when configured, and refuses one that is not a domain name', async () => {
    await h.stop();
    h = await Harness.start({ modules: [roster, presence, disco, pep, pubsub], options: { pubsub: { domain: 'news.example.com' } } });
    await h.createAccount('hamlet');
    hamlet = await h.connect('hamlet@example.com/elsinore');
    const info = await hamlet.iq(xml('iq', { type: 'get', to: 'news.example.com' }, xml('query', { xmlns: NS.discoInfo })));
    expect(info.getChild('query')!.getChild('identity')!.attrs.type).to.equal('service');
    expect(pubsub.config.safeParse({ domain: 'not a domain' }).success).to.equal(false);
    expect(pubsub.config.safeParse({ domain: 'user@example.com' }).success).to.equal(false);
  });
});
