// A node of a two-node cluster killed with SIGKILL: within the heartbeat expiry the survivor
// removes its sessions, their contacts and the rooms they were in see them go unavailable, and
// messages sent to them (even those already on their way to the dead node) go to offline storage.
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { Jid } from '../../lib/jid/jid.js';
import { loggedIn, nextId, XMLNS, type RawClient } from '../helpers/raw-client.js';
import type { TestServer } from '../helpers/server.js';
import { asTestServer, clusterSkipReason, FAST, newWorld, REDIS_URL, sleep, spawnNode, startNode, type ChildNode, type ClusterWorld } from '../lib/cluster/nodes.js';
import { befriend, chat, roundTrip } from '../modules/sm/wire.js';

const MUC = 'http://jabber.org/protocol/muc';

describe('e2e: cluster node failure (SIGKILL)', function () {
  this.timeout(60_000);
  let world: ClusterWorld;
  let a: TestServer;
  let b: ChildNode | undefined;
  const clients: RawClient[] = [];

  before(async function () {
    const skip = await clusterSkipReason();
    if (skip) {
      console.log(`      skipped: ${skip}`);
      this.skip();
    }
    world = await newWorld();
    a = await startNode(world, 'a');
    b = await spawnNode(world, 'b');
  });
  after(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await b?.kill('SIGKILL');
    await a?.stop();
    await world?.cleanup();
  });

  it("shows node b's users going offline to node a's users and stores messages to them offline", async () => {
    await a.addUser('dave', 'secret-pw');
    await a.addUser('erin', 'secret-pw');
    const dave = await loggedIn(asTestServer(b!), 'dave', { resource: 'onb', password: 'secret-pw' });
    const erin = await loggedIn(a, 'erin', { resource: 'ona', password: 'secret-pw' });
    clients.push(dave, erin);
    dave.send('<presence/>');
    erin.send('<presence/>');
    await roundTrip(dave);
    await roundTrip(erin);
    await befriend(erin, 'erin@localhost', dave, 'dave@localhost');
    await erin.waitForElement((e) => e.is('presence', XMLNS.client) && e.attrs.from === 'dave@localhost/onb' && e.attrs.type === undefined);
    expect(a.server.sessions.of(Jid.parse('dave@localhost')).map((s) => s.jid.toString())).to.deep.equal(['dave@localhost/onb']);

    // A room on node a (erin made it) with dave, from node b, in it.
    const room = 'lounge@conference.localhost';
    erin.send(`<presence to='${room}/erin'><x xmlns='${MUC}'/></presence>`);
    await erin.waitForElement((e) => e.is('presence', XMLNS.client) && e.attrs.from === `${room}/erin`);
    const cfg = nextId('cfg');
    erin.send(`<iq type='set' id='${cfg}' to='${room}'><query xmlns='${MUC}#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>`);
    await erin.waitForElement((e) => e.is('iq', XMLNS.client) && e.attrs.id === cfg);
    dave.send(`<presence to='${room}/dave'><x xmlns='${MUC}'/></presence>`);
    await erin.waitForElement((e) => e.is('presence', XMLNS.client) && e.attrs.from === `${room}/dave` && e.attrs.type === undefined);
    expect(a.server.cluster!.ownsLocally(room)).to.equal(true);
    // And a room on node b (dave made it) with erin in it.
    const bside = 'bside@conference.localhost';
    dave.send(`<presence to='${bside}/dave'><x xmlns='${MUC}'/></presence>`);
    await dave.waitForElement((e) => e.is('presence', XMLNS.client) && e.attrs.from === `${bside}/dave`);
    const cfg2 = nextId('cfg');
    dave.send(`<iq type='set' id='${cfg2}' to='${bside}'><query xmlns='${MUC}#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>`);
    await dave.waitForElement((e) => e.is('iq', XMLNS.client) && e.attrs.id === cfg2);
    erin.send(`<presence to='${bside}/erin'><x xmlns='${MUC}'/></presence>`);
    await erin.waitForElement((e) => e.is('presence', XMLNS.client) && e.attrs.from === `${bside}/erin`);
    expect(a.server.cluster!.ownsLocally(bside)).to.equal(false);

    await b!.kill('SIGKILL');
    const killedAt = Date.now();
    // Sent before node a noticed: it goes to the dead node's inbox, and comes back from there.
    const early = nextId('early');
    erin.send(chat('dave@localhost', early, 'sent while node b lies dead'));
    await roundTrip(erin);

    const gone = await erin.waitForElement(
      (e) => e.is('presence', XMLNS.client) && e.attrs.from === 'dave@localhost/onb' && e.attrs.type === 'unavailable',
      FAST.expiry + 5000,
    );
    expect(gone).to.not.equal(undefined);
    expect(Date.now() - killedAt, 'bounded by the heartbeat expiry').to.be.below(FAST.expiry + 3 * FAST.heartbeat + 2000);
    expect(a.server.sessions.of(Jid.parse('dave@localhost'))).to.have.length(0);
    // The room on node a lets dave go too.
    await erin.waitForElement((e) => e.is('presence', XMLNS.client) && e.attrs.from === `${room}/dave` && e.attrs.type === 'unavailable');

    const late = nextId('late');
    erin.send(chat('dave@localhost', late, 'sent once node b was known dead'));
    await roundTrip(erin);
    // Nothing of node b is left in Redis once it is cleaned up.
    const r = new Redis(REDIS_URL);
    try {
      for (let i = 0; i < 50 && (await r.sismember(`${world.prefix}nodes`, 'b')) === 1; i++) await sleep(100);
      expect(await r.exists(`${world.prefix}sessions:b`, `${world.prefix}inbox:b`)).to.equal(0);
      expect(await r.sismember(`${world.prefix}nodes`, 'b')).to.equal(0);
      // Nor in the per-account index of sessions; erin's, on node a, stays.
      expect(await r.exists(`${world.prefix}account:dave@localhost`), "dave's index").to.equal(0);
      expect(await r.hvals(`${world.prefix}account:erin@localhost`)).to.deep.equal(['a']);
    } finally {
      r.disconnect();
    }

    // The room node b owned is released: the next stanza for it makes node a its owner.
    const from = erin.elements.length;
    erin.send(`<presence to='${bside}/erin2'><x xmlns='${MUC}'/></presence>`);
    await erin.waitForElement((e) => e.is('presence', XMLNS.client) && e.attrs.from === `${bside}/erin2`, 5000, from);
    expect(a.server.cluster!.ownsLocally(bside)).to.equal(true);

    // Dave comes back on node a: both messages wait for him in offline storage, once each.
    const again = await loggedIn(a, 'dave', { resource: 'back', password: 'secret-pw' });
    clients.push(again);
    again.send('<presence/>');
    await again.waitFor(() => [early, late].every((id) => again.elements.some((e) => e.is('message', XMLNS.client) && e.attrs.id === id)), 5000);
    await sleep(200);
    for (const id of [early, late]) {
      const copies = again.elements.filter((e) => e.is('message', XMLNS.client) && e.attrs.id === id);
      expect(copies, id).to.have.length(1);
      expect(copies[0]!.child('delay', 'urn:xmpp:delay'), `${id} comes from offline storage`).to.not.equal(undefined);
    }
  });
});

describe('e2e: cluster node restarted under the same name', function () {
  this.timeout(60_000);
  let world: ClusterWorld;
  let a: TestServer;
  let b: ChildNode | undefined;
  const clients: RawClient[] = [];
  // Long enough that node a never takes b for dead during this test: only b's restart cleans up.
  const SLOW = { heartbeat: 200, expiry: 60_000 };

  before(async function () {
    const skip = await clusterSkipReason();
    if (skip) {
      console.log(`      skipped: ${skip}`);
      this.skip();
    }
    world = await newWorld();
    a = await startNode(world, 'a', {}, SLOW);
  });
  after(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await b?.kill('SIGKILL');
    await a?.stop();
    await world?.cleanup();
  });

  it('ends the sessions of its previous run at start: their contacts see them go unavailable', async () => {
    const spawnB = () => spawnNode(world, 'b', { cluster: { redis: REDIS_URL, node: 'b', prefix: world.prefix, ...SLOW } });
    b = await spawnB();
    await a.addUser('fred', 'secret-pw');
    await a.addUser('gina', 'secret-pw');
    const fred = await loggedIn(asTestServer(b), 'fred', { resource: 'onb', password: 'secret-pw' });
    const gina = await loggedIn(a, 'gina', { resource: 'ona', password: 'secret-pw' });
    clients.push(fred, gina);
    fred.send('<presence/>');
    gina.send('<presence/>');
    await roundTrip(fred);
    await roundTrip(gina);
    await befriend(gina, 'gina@localhost', fred, 'fred@localhost');
    await gina.waitForElement((e) => e.is('presence', XMLNS.client) && e.attrs.from === 'fred@localhost/onb' && e.attrs.type === undefined);

    await b.kill('SIGKILL');
    const restartedAt = Date.now();
    b = await spawnB();
    await gina.waitForElement((e) => e.is('presence', XMLNS.client) && e.attrs.from === 'fred@localhost/onb' && e.attrs.type === 'unavailable', 15_000);
    expect(Date.now() - restartedAt, 'well before the 60 s expiry').to.be.below(15_000);
    await sleep(300);
    expect(a.server.sessions.of(Jid.parse('fred@localhost'))).to.have.length(0);
    // The restarted node removed its previous run's sessions from the per-account index too.
    const r = new Redis(REDIS_URL);
    try {
      expect(await r.exists(`${world.prefix}account:fred@localhost`)).to.equal(0);
      expect(await r.hvals(`${world.prefix}account:gina@localhost`)).to.deep.equal(['a']);
    } finally {
      r.disconnect();
    }
  });
});
