// Two Parley nodes where one has not yet heard (through the directory's pub/sub events) of a
// session just bound on the other: what is sent to that session reaches it all the same (read
// from Redis when no session is known here), instead of going to offline storage or bouncing.
// The lag is made by having the nodes ignore the directory events (a test seam of ClusterNode).
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { loggedIn, nextId, XMLNS, type RawClient, type XNode } from '../helpers/raw-client.js';
import type { TestServer } from '../helpers/server.js';
import { clusterSkipReason, newWorld, REDIS_URL, sleep, startNode, type ClusterWorld } from '../lib/cluster/nodes.js';
import { chat, roundTrip } from '../modules/sm/wire.js';

describe('e2e: cluster, a node whose view of the other lags behind', function () {
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
  beforeEach(() => {
    // From here on neither node hears of the other's new sessions but through Redis reads.
    a.server.cluster!.ignoreDirectoryEventsForTests = true;
    b.server.cluster!.ignoreDirectoryEventsForTests = true;
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.destroy();
    if (a) a.server.cluster!.ignoreDirectoryEventsForTests = false;
    if (b) b.server.cluster!.ignoreDirectoryEventsForTests = false;
  });

  async function user(name: string): Promise<string> {
    const local = `${name}${++n}`;
    await a.addUser(local, 'secret-pw');
    return local;
  }

  async function login(srv: TestServer, local: string, resource: string): Promise<RawClient> {
    const c = await loggedIn(srv, local, { resource, password: 'secret-pw' });
    clients.push(c);
    return c;
  }

  async function online(c: RawClient): Promise<void> {
    c.send('<presence/>');
    await roundTrip(c);
  }

  const offline = (srv: TestServer) => ({ count: (user: string) => srv.server.storage.archive('offline').count('localhost', user) });
  const withId = (c: RawClient, id: string): XNode[] => c.elements.filter((e) => e.attrs.id === id);
  const errors = (c: RawClient): XNode[] => c.elements.filter((e) => e.attrs.type === 'error');

  it('delivers a message to the bare JID of a user who just came online on the other node', async () => {
    const bob = await user('bob');
    const carol = await user('carol');
    const bobC = await login(a, bob, 'r');
    const carolC = await login(b, carol, 'r');
    await online(bobC);
    await online(carolC);
    const id = nextId('m');
    bobC.send(chat(`${carol}@localhost`, id, 'hello right away'));
    await carolC.waitFor(() => withId(carolC, id).length > 0, 5000);
    await roundTrip(bobC);
    await sleep(200);
    expect(withId(carolC, id)).to.have.length(1);
    expect(errors(bobC), 'nothing bounced').to.deep.equal([]);
    expect(await offline(a).count(carol), 'nothing stored offline').to.equal(0);
    // Node a now knows of carol's session: the next message goes straight there.
    expect(a.server.sessions.of((await import('../../lib/jid/jid.js')).Jid.parse(`${carol}@localhost`)).map((s) => s.jid.resource)).to.deep.equal(['r']);
  });

  it('delivers a message to the full JID of a session just bound on the other node', async () => {
    const dan = await user('dan');
    const eve = await user('eve');
    const danC = await login(a, dan, 'r');
    const eveC = await login(b, eve, 'tablet');
    const id = nextId('m');
    danC.send(chat(`${eve}@localhost/tablet`, id, 'to the tablet'));
    await eveC.waitFor(() => withId(eveC, id).length > 0, 5000);
    await roundTrip(danC);
    expect(errors(danC), 'nothing bounced').to.deep.equal([]);
    expect(await offline(a).count(eve), 'nothing stored offline').to.equal(0);
  });

  it('carries an IQ to a resource just bound on the other node, and its reply back', async () => {
    const kai = await user('kai');
    const lea = await user('lea');
    const kaiC = await login(a, kai, 'r');
    const leaC = await login(b, lea, 'r');
    const id = nextId('ver');
    kaiC.send(`<iq type='get' id='${id}' to='${lea}@localhost/r'><query xmlns='jabber:iq:version'/></iq>`);
    const q = await leaC.waitForElement((e) => e.is('iq', XMLNS.client) && e.attrs.id === id, 5000);
    expect(q.attrs.from).to.equal(`${kai}@localhost/r`);
    leaC.send(`<iq type='result' id='${id}' to='${kai}@localhost/r'><query xmlns='jabber:iq:version'><name>lea</name></query></iq>`);
    const reply = await kaiC.waitForElement((e) => e.is('iq', XMLNS.client) && e.attrs.id === id, 5000);
    expect(reply.attrs.type).to.equal('result');
  });

  it('passes an IQ reply that no node waits for to a resource just bound on the other node', async () => {
    const mia = await user('mia');
    const ned = await user('ned');
    const miaC = await login(a, mia, 'r');
    const nedC = await login(b, ned, 'r');
    // No request of node b's is waiting for it: it goes by the directory, where mia (node a) is not yet.
    const id = nextId('res');
    nedC.send(`<iq type='error' id='${id}' to='${mia}@localhost/r'><ping xmlns='urn:xmpp:ping'/><error type='cancel'><feature-not-implemented xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`);
    const got = await miaC.waitForElement((e) => e.is('iq', XMLNS.client) && e.attrs.id === id, 5000);
    expect(got.attrs.from).to.equal(`${ned}@localhost/r`);
  });

  it('delivers directed presence to a resource just bound on the other node', async () => {
    const ola = await user('ola');
    const pia = await user('pia');
    const olaC = await login(a, ola, 'r');
    const piaC = await login(b, pia, 'r');
    await online(olaC);
    olaC.send(`<presence to='${pia}@localhost/r'><status>hi</status></presence>`);
    const p = await piaC.waitForElement((e) => e.is('presence', XMLNS.client) && e.attrs.from === `${ola}@localhost/r`, 5000);
    expect(p.child('status')!.text).to.equal('hi');
  });

  it('still stores a message offline for a user online nowhere, and keeps no index of ended sessions', async () => {
    const quin = await user('quin');
    const rita = await user('rita');
    const quinC = await login(a, quin, 'r');
    const gone = await login(b, rita, 'r');
    gone.destroy();
    await sleep(300);
    const id = nextId('m');
    quinC.send(chat(`${rita}@localhost`, id, 'for later'));
    await roundTrip(quinC);
    for (let i = 0; i < 20 && (await offline(a).count(rita)) === 0; i++) await sleep(100);
    expect(await offline(a).count(rita)).to.equal(1);
    expect(errors(quinC)).to.deep.equal([]);
    const r = new Redis(REDIS_URL);
    try {
      expect(await r.exists(`${world.prefix}account:${rita}@localhost`), "rita's index").to.equal(0);
      expect(await r.hvals(`${world.prefix}account:${quin}@localhost`), "quin's index").to.deep.equal(['a']);
    } finally {
      r.disconnect();
    }
  });
});
