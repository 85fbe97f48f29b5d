// Two Parley nodes on one machine sharing the local Redis and PostgreSQL (cluster mode): one
// account's resources on both nodes get carbons, a message crosses nodes once, a MUC room has
// occupants on both nodes.
import { expect } from 'chai';
import { escapeAttr, loggedIn, nextId, XMLNS, type RawClient, type XNode } from '../helpers/raw-client.js';
import type { TestServer } from '../helpers/server.js';
import { clusterSkipReason, newWorld, sleep, startNode, type ClusterWorld } from '../lib/cluster/nodes.js';
import { befriend, chat, roundTrip } from '../modules/sm/wire.js';
import { capsCache } from '../../modules/pep/index.js';
import { capsInfo, CAPS_NODE, verOf } from '../modules/pep/world.js';

const CARBONS = 'urn:xmpp:carbons:2';
const MUC = 'http://jabber.org/protocol/muc';

describe('e2e: cluster of two nodes', function () {
  this.timeout(30_000);
  let world: ClusterWorld;
  let a: TestServer;
  let b: TestServer;
  const clients: RawClient[] = [];
  let n = 0;

  before(async function () {
    const skip = await clusterSkipReason();
    if (skip) {
      console.log(`      skipped: ${skip}`);
      this.skip();
    }
    world = await newWorld();
    a = await startNode(world, 'a');
    b = await startNode(world, 'b');
  });
  after(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await b?.stop();
    await a?.stop();
    await world?.cleanup();
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.destroy();
  });

  async function user(name: string): Promise<string> {
    const local = `${name}${++n}`;
    await a.addUser(local, 'secret-pw');
    return local;
  }

  async function login(srv: TestServer, local: string, resource?: string): Promise<RawClient> {
    const c = await loggedIn(srv, local, { resource, password: 'secret-pw' });
    clients.push(c);
    return c;
  }

  /** Initial presence, then a round trip, then until the other node has heard of it. */
  async function online(c: RawClient, extra = ''): Promise<void> {
    c.send(`<presence>${extra}</presence>`);
    await roundTrip(c);
    await sleep(150);
  }

  async function enableCarbons(c: RawClient): Promise<void> {
    const id = nextId('cb');
    const from = c.elements.length;
    c.send(`<iq type='set' id='${id}'><enable xmlns='${CARBONS}'/></iq>`);
    const reply = await c.waitForElement((e) => e.is('iq', XMLNS.client) && e.attrs.id === id, 5000, from);
    expect(reply.attrs.type).to.equal('result');
  }

  const messagesWithId = (c: RawClient, id: string): XNode[] =>
    c.elements.filter((e) => e.is('message', XMLNS.client) && e.attrs.id === id);

  it('sees the sessions of the other node in its directory', async () => {
    const alice = await user('alice');
    await login(b, alice, 'onb');
    await sleep(200);
    const seen = a.server.sessions.of((await import('../../lib/jid/jid.js')).Jid.parse(`${alice}@localhost`));
    expect(seen.map((s) => s.jid.resource)).to.deep.equal(['onb']);
    expect(a.server.sessions.size, 'local sessions of node a').to.equal(0);
  });

  it('gives carbons to two resources of one account on different nodes', async () => {
    const alice = await user('alice');
    const bob = await user('bob');
    const onA = await login(a, alice, 'phone');
    const onB = await login(b, alice, 'laptop');
    const bobC = await login(a, bob, 'desk');
    await enableCarbons(onA);
    await enableCarbons(onB);
    await online(onA);
    await online(onB);
    await online(bobC);

    // Received: bob (node a) writes to alice's phone (node a); the laptop on node b gets a copy.
    const id1 = nextId('m');
    bobC.send(chat(`${alice}@localhost/phone`, id1, 'to the phone'));
    await onA.waitForElement((e) => e.is('message', XMLNS.client) && e.attrs.id === id1);
    const received = await onB.waitForElement((e) => e.is('message', XMLNS.client) && e.child('received', CARBONS) !== undefined);
    const fwd = received.child('received', CARBONS)!.child('forwarded')!.child('message')!;
    expect(fwd.attrs.id).to.equal(id1);
    expect(received.attrs.from).to.equal(`${alice}@localhost`);

    // Sent: the laptop (node b) writes to bob (node a); the phone (node a) gets a copy.
    const id2 = nextId('m');
    onB.send(chat(`${bob}@localhost`, id2, 'from the laptop'));
    await bobC.waitForElement((e) => e.is('message', XMLNS.client) && e.attrs.id === id2);
    const sent = await onA.waitForElement((e) => e.is('message', XMLNS.client) && e.child('sent', CARBONS) !== undefined);
    expect(sent.child('sent', CARBONS)!.child('forwarded')!.child('message')!.attrs.id).to.equal(id2);
  });

  it('delivers a message from a user on node a to a user on node b once', async () => {
    const bob = await user('bob');
    const carol = await user('carol');
    const bobC = await login(a, bob);
    const carolC = await login(b, carol);
    await online(bobC);
    await online(carolC);
    const ids = [nextId('m'), nextId('m'), nextId('m'), nextId('m'), nextId('m')];
    for (const [i, id] of ids.entries()) bobC.send(chat(`${carol}@localhost`, id, `hello ${i}`));
    await carolC.waitFor(() => ids.every((id) => messagesWithId(carolC, id).length > 0));
    await roundTrip(bobC);
    await sleep(300);
    for (const id of ids) expect(messagesWithId(carolC, id), id).to.have.length(1);
    // In the order sent.
    const order = carolC.elements.filter((e) => e.is('message', XMLNS.client) && ids.includes(e.attrs.id!)).map((e) => e.attrs.id);
    expect(order).to.deep.equal(ids);
  });

  it('broadcasts presence between contacts on different nodes', async () => {
    const dan = await user('dan');
    const eve = await user('eve');
    const danC = await login(a, dan, 'r');
    const eveC = await login(b, eve, 'r');
    await online(danC);
    await online(eveC);
    await befriend(danC, `${dan}@localhost`, eveC, `${eve}@localhost`);
    const from = eveC.elements.length;
    danC.send(`<presence><show>away</show></presence>`);
    const p = await eveC.waitForElement((e) => e.is('presence', XMLNS.client) && e.attrs.from === `${dan}@localhost/r` && e.child('show') !== undefined, 5000, from);
    expect(p.child('show')!.text).to.equal('away');
    // And the other way: eve (node b) goes away, dan (node a) sees it.
    const from2 = danC.elements.length;
    eveC.send(`<presence><show>dnd</show></presence>`);
    const q = await danC.waitForElement((e) => e.is('presence', XMLNS.client) && e.attrs.from === `${eve}@localhost/r` && e.child('show') !== undefined, 5000, from2);
    expect(q.child('show')!.text).to.equal('dnd');
  });

  it('runs a MUC room with occupants on both nodes', async () => {
    const fay = await user('fay');
    const gus = await user('gus');
    const fayC = await login(a, fay);
    const gusC = await login(b, gus);
    const room = `room${n}@conference.localhost`;
    fayC.send(`<presence to='${escapeAttr(room)}/fay'><x xmlns='${MUC}'/></presence>`);
    await fayC.waitForElement((e) => e.is('presence', XMLNS.client) && e.attrs.from === `${room}/fay`);
    // A new room is locked until configured (XEP-0045 §10.1.2): accept the default configuration.
    const cfg = nextId('cfg');
    fayC.send(`<iq type='set' id='${cfg}' to='${room}'><query xmlns='${MUC}#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>`);
    await fayC.waitForElement((e) => e.is('iq', XMLNS.client) && e.attrs.id === cfg);

    gusC.send(`<presence to='${escapeAttr(room)}/gus'><x xmlns='${MUC}'/></presence>`);
    // gus (node b) sees fay, then himself; fay (node a) sees gus join.
    await gusC.waitForElement((e) => e.is('presence', XMLNS.client) && e.attrs.from === `${room}/fay`);
    await gusC.waitForElement((e) => e.is('presence', XMLNS.client) && e.attrs.from === `${room}/gus`);
    await fayC.waitForElement((e) => e.is('presence', XMLNS.client) && e.attrs.from === `${room}/gus`);

    const id = nextId('gc');
    gusC.send(`<message to='${room}' type='groupchat' id='${id}'><body>hi from b</body></message>`);
    await fayC.waitForElement((e) => e.is('message', XMLNS.client) && e.attrs.id === id && e.attrs.from === `${room}/gus`);
    await gusC.waitForElement((e) => e.is('message', XMLNS.client) && e.attrs.id === id);
    await sleep(200);
    expect(messagesWithId(fayC, id)).to.have.length(1);
    expect(messagesWithId(gusC, id)).to.have.length(1);

    // The room lives on one node: the other forwards to it.
    const owners = [a, b].filter((s) => s.server.cluster!.ownsLocally(room));
    expect(owners).to.have.length(1);
  });

  it('sends PEP notifications to contacts on the other node, by the caps they announced there', async () => {
    const hana = await user('hana');
    const ivan = await user('ivan');
    const hanaC = await login(a, hana, 'r');
    const ivanC = await login(b, ivan, 'r');
    await online(hanaC);
    await online(ivanC);
    await befriend(hanaC, `${hana}@localhost`, ivanC, `${ivan}@localhost`);
    // ivan (node b) answers disco#info about his caps, as clients do, whoever asks.
    const features = ['http://jabber.org/protocol/tune+notify'];
    let answering = true;
    const answered = (async () => {
      let from = 0;
      while (answering) {
        let q: XNode;
        try {
          q = await ivanC.waitForElement((e) => e.is('iq', XMLNS.client) && e.attrs.type === 'get' && e.child('query', 'http://jabber.org/protocol/disco#info') !== undefined, 300, from);
        } catch {
          continue;
        }
        from = ivanC.elements.indexOf(q) + 1;
        const info = capsInfo(features);
        const node = q.child('query')!.attrs.node;
        ivanC.send(`<iq type='result' id='${escapeAttr(q.attrs.id!)}' to='${escapeAttr(q.attrs.from!)}'><query xmlns='http://jabber.org/protocol/disco#info'${node ? ` node='${escapeAttr(node)}'` : ''}>` +
          info.identities.map((i) => `<identity category='${i.category}' type='${i.type}' name='${i.name}'/>`).join('') +
          info.features.map((f) => `<feature var='${escapeAttr(f)}'/>`).join('') + '</query></iq>');
      }
    })();
    try {
      ivanC.send(`<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='${CAPS_NODE}' ver='${verOf(features)}'/></presence>`);
      await roundTrip(ivanC);
      await sleep(400);
      // Node a learns ivan's features itself, asking his client across the cluster.
      capsCache.clear();
      const id = nextId('pub');
      hanaC.send(`<iq type='set' id='${id}'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='http://jabber.org/protocol/tune'>` +
        `<item><tune xmlns='http://jabber.org/protocol/tune'><artist>Yes</artist></tune></item></publish></pubsub></iq>`);
      await hanaC.waitForElement((e) => e.is('iq', XMLNS.client) && e.attrs.id === id && e.attrs.type === 'result');
      const event = await ivanC.waitForElement((e) => e.is('message', XMLNS.client) && e.child('event', 'http://jabber.org/protocol/pubsub#event') !== undefined);
      expect(event.attrs.from).to.equal(`${hana}@localhost`);
      expect(event.child('event')!.child('items')!.attrs.node).to.equal('http://jabber.org/protocol/tune');
    } finally {
      answering = false;
      await answered;
    }
  });

  it('replaces a resource bound on the other node: the older session gets <conflict/> (RFC 6120 §7.7.2.2)', async () => {
    const jay = await user('jay');
    const first = await login(a, jay, 'same');
    await sleep(200);
    const second = await login(b, jay, 'same');
    const err = await first.streamError();
    expect(err.child('conflict', 'urn:ietf:params:xml:ns:xmpp-streams')).to.not.equal(undefined);
    await sleep(300);
    const seen = a.server.sessions.of((await import('../../lib/jid/jid.js')).Jid.parse(`${jay}@localhost`));
    expect(seen.map((s) => s.jid.resource)).to.deep.equal(['same']);
    expect(a.server.sessions.size).to.equal(0);
    await roundTrip(second);
  });

  it('carries an IQ between clients on different nodes and its reply back', async () => {
    const kai = await user('kai');
    const lea = await user('lea');
    const kaiC = await login(a, kai, 'r');
    const leaC = await login(b, lea, 'r');
    await sleep(200);
    const id = nextId('ver');
    kaiC.send(`<iq type='get' id='${id}' to='${lea}@localhost/r'><query xmlns='jabber:iq:version'/></iq>`);
    const q = await leaC.waitForElement((e) => e.is('iq', XMLNS.client) && e.attrs.id === id);
    expect(q.attrs.from).to.equal(`${kai}@localhost/r`);
    leaC.send(`<iq type='result' id='${id}' to='${kai}@localhost/r'><query xmlns='jabber:iq:version'><name>lea</name></query></iq>`);
    const reply = await kaiC.waitForElement((e) => e.is('iq', XMLNS.client) && e.attrs.id === id && e.attrs.type === 'result');
    expect(reply.child('query')!.child('name')!.text).to.equal('lea');
  });
});
