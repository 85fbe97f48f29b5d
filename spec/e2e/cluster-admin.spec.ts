// Administration across a cluster of two nodes on the local Redis and PostgreSQL: XEP-0133
// commands, the admin operations (HTTP admin API, web admin, CLI), XEP-0494 revocation, MUC rooms
// held by the other node, uploads served by either node, and the directory after Redis drops a
// node's connections.
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { escapeAttr, loggedIn, nextId, XMLNS, type RawClient, type XNode } from '../helpers/raw-client.js';
import type { TestServer } from '../helpers/server.js';
import { clusterSkipReason, newWorld, REDIS_URL, sleep, startNode, type ClusterWorld } from '../lib/cluster/nodes.js';
import { chat, roundTrip } from '../modules/sm/wire.js';
import { authenticate, CAM, iq, newClientId, runCommand, securedStream } from './helpers-security.js';
import { Jid } from '../../lib/jid/jid.js';

const ADMIN = 'http://jabber.org/protocol/admin';
const MUC = 'http://jabber.org/protocol/muc';
const NS_UPLOAD = 'urn:xmpp:http:upload:0';

describe('e2e: administering a cluster of two nodes', function () {
  this.timeout(40_000);
  let world: ClusterWorld;
  let a: TestServer;
  let b: TestServer;
  // Unique node names: CLIENT KILL below finds this spec's connections by name.
  const tag = randomBytes(3).toString('hex');
  const nodeA = `adm-a-${tag}`;
  const nodeB = `adm-b-${tag}`;
  const clients: RawClient[] = [];
  let n = 0;

  before(async function () {
    const skip = await clusterSkipReason();
    if (skip) {
      console.log(`      skipped: ${skip}`);
      this.skip();
    }
    world = await newWorld();
    const admins = { admins: ['boss@localhost'] };
    a = await startNode(world, nodeA, admins);
    b = await startNode(world, nodeB, admins);
    await a.addUser('boss', 'secret-pw');
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

  async function login(srv: TestServer, local: string, opts: { resource?: string; password?: string } = {}): Promise<RawClient> {
    const c = await loggedIn(srv, local, { password: 'secret-pw', ...opts });
    clients.push(c);
    return c;
  }

  /** Initial presence, then until the other node has heard of it. */
  async function online(c: RawClient): Promise<void> {
    c.send('<presence/>');
    await roundTrip(c);
    await sleep(200);
  }

  const headlines = (c: RawClient, body: string): XNode[] =>
    c.elements.filter((e) => e.is('message', XMLNS.client) && e.attrs.type === 'headline' && e.child('body')?.text === body);

  it('XEP-0133: lists and counts the online users of both nodes, and announces to each session once', async () => {
    const onA = await user('ann');
    const onB = await user('bea');
    const annC = await login(a, onA);
    const beaC = await login(b, onB);
    const boss = await login(a, 'boss');
    await online(annC);
    await online(beaC);
    await online(boss);

    const list = (await runCommand(boss, 'localhost', `${ADMIN}#get-online-users-list`)).first.field('onlineuserjids');
    expect(list).to.include.members([`${onA}@localhost`, `${onB}@localhost`, 'boss@localhost']);
    const num = Number((await runCommand(boss, 'localhost', `${ADMIN}#get-online-users-num`)).first.field('onlineusersnum')[0]);
    expect(num).to.equal(list.length);

    const body = `maintenance at noon ${nextId('x')}`;
    const sent = (await runCommand(boss, 'localhost', `${ADMIN}#announce`, { body })).last;
    expect(sent.status).to.equal('completed');
    await beaC.waitForElement((e) => e.is('message', XMLNS.client) && e.child('body')?.text === body);
    await annC.waitForElement((e) => e.is('message', XMLNS.client) && e.child('body')?.text === body);
    await sleep(300);
    expect(headlines(annC, body), 'on node a').to.have.length(1);
    expect(headlines(beaC, body), 'on node b').to.have.length(1);
  });

  it('XEP-0133: ends the sessions of a user bound on the other node', async () => {
    const cy = await user('cy');
    const cyC = await login(b, cy, { resource: 'far' });
    await online(cyC);
    const boss = await login(a, 'boss');
    const done = (await runCommand(boss, 'localhost', `${ADMIN}#end-user-session`, { accountjids: `${cy}@localhost` })).last;
    expect(done.status).to.equal('completed');
    const err = await cyC.streamError();
    expect(err.child('policy-violation', 'urn:ietf:params:xml:ns:xmpp-streams')).to.not.equal(undefined);
  });

  it('admin operations: sessions of both nodes are listed (with their node), counted and kicked', async () => {
    const dee = await user('dee');
    const deeC = await login(b, dee, { resource: 'tab' });
    await online(deeC);
    const listed = a.server.operations.listSessions().find((s) => s.jid === `${dee}@localhost/tab`);
    expect(listed, 'a session of node b in node a\'s list').to.include({ node: nodeB, available: true });
    const stats = await a.server.operations.stats();
    expect(stats.sessions).to.equal(a.server.sessions.size + b.server.sessions.size);
    expect(stats.sessions).to.be.greaterThan(a.server.sessions.size);

    a.server.operations.kickSession(`${dee}@localhost/tab`);
    const err = await deeC.streamError();
    expect(err.child('policy-violation', 'urn:ietf:params:xml:ns:xmpp-streams')).to.not.equal(undefined);
    await sleep(300);
    expect(a.server.operations.listSessions().map((s) => s.jid)).to.not.include(`${dee}@localhost/tab`);
  });

  it('XEP-0494: revoking an app password on node a ends its session on node b', async () => {
    const eve = await user('eve');
    const manager = await login(a, eve, { resource: 'manager' });
    const created = (await runCommand(manager, 'localhost', 'urn:parley:security#app-password-create', { label: 'Mail' })).last;
    const password = created.field('password')[0]!;
    const id = created.field('id')[0]!;
    const legacy = await login(b, eve, { password, resource: 'legacy' });
    await online(legacy);
    expect((await iq(manager, 'set', undefined, `<revoke xmlns='${CAM}' id='a-${id}'/>`)).attrs.type).to.equal('result');
    const err = await legacy.streamError();
    expect(err.child('not-authorized', 'urn:ietf:params:xml:ns:xmpp-streams')).to.not.equal(undefined);
    // The manager's own session (node a, password login) stays.
    await roundTrip(manager);
  });

  it('XEP-0494: revoking a FAST client on node a ends its session bound on node b', async () => {
    const flo = await user('flo');
    const phone = newClientId();
    const onB = await securedStream(b);
    clients.push(onB);
    const ok = await authenticate(onB, { user: flo, mechanism: 'PLAIN', secret: 'secret-pw', clientId: phone, software: 'Phone', requestToken: true });
    expect(ok.name, ok.toString()).to.equal('success');
    await sleep(300);
    const manager = await login(a, flo, { resource: 'manager' });
    const list = await iq(manager, 'get', undefined, `<list xmlns='${CAM}'/>`);
    const entry = list.child('clients', CAM)!.children.find((x) => x.child('auth')?.child('fast'))!;
    expect(entry.attrs.connected, 'the phone is online on node b').to.equal('true');
    expect((await iq(manager, 'set', undefined, `<revoke xmlns='${CAM}' id='${entry.attrs.id}'/>`)).attrs.type).to.equal('result');
    const err = await onB.streamError();
    expect(err.child('not-authorized', 'urn:ietf:params:xml:ns:xmpp-streams')).to.not.equal(undefined);
  });

  it('admin operations: lists and destroys a room held by the other node', async () => {
    const fay = await user('fay');
    const fayC = await login(b, fay);
    await online(fayC);
    const room = `hall-${tag}@conference.localhost`;
    fayC.send(`<presence to='${escapeAttr(room)}/fay'><x xmlns='${MUC}'/></presence>`);
    await fayC.waitForElement((e) => e.is('presence', XMLNS.client) && e.attrs.from === `${room}/fay`);
    const cfg = nextId('cfg');
    fayC.send(`<iq type='set' id='${cfg}' to='${room}'><query xmlns='${MUC}#owner'><x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_roomname'><value>The Hall</value></field></x></query></iq>`);
    expect((await fayC.waitForElement((e) => e.is('iq', XMLNS.client) && e.attrs.id === cfg)).attrs.type).to.equal('result');
    expect(b.server.cluster!.ownsLocally(room), 'node b holds the room').to.equal(true);

    const rooms = await a.server.operations.listRooms();
    expect(rooms.find((r) => r.jid === room)).to.deep.equal({ jid: room, title: 'The Hall', persistent: false, public: true, occupants: 1 });

    await a.server.operations.destroyRoom(room, 'closing');
    const gone = await fayC.waitForElement((e) => e.is('presence', XMLNS.client) && e.attrs.type === 'unavailable' && e.attrs.from === `${room}/fay`);
    expect(gone.child('x', `${MUC}#user`)?.child('destroy')?.child('reason')?.text).to.equal('closing');
    expect((await a.server.operations.listRooms()).filter((r) => r.jid === room), 'after destruction').to.deep.equal([]);
  });

  it('XEP-0363: a slot requested on node a is uploaded to node b and fetched from node a', async () => {
    const gil = await user('gil');
    const gilC = await login(a, gil);
    const data = randomBytes(3000);
    const reply = await iq(gilC, 'get', 'upload.localhost', `<request xmlns='${NS_UPLOAD}' filename='notes.bin' size='${data.length}' content-type='application/octet-stream'/>`);
    const slot = reply.child('slot', NS_UPLOAD)!;
    const put = slot.child('put')!.attrs.url!;
    const get = slot.child('get')!.attrs.url!;
    const stored = await httpRequest(b, put, 'PUT', { 'content-type': 'application/octet-stream', 'content-length': String(data.length) }, data);
    expect(stored.status).to.equal(201);
    const fetched = await httpRequest(a, get, 'GET');
    expect(fetched.status).to.equal(200);
    expect(fetched.body.equals(data)).to.equal(true);
  });

  it('XEP-0363: a node whose upload directory is not the shared one refuses to start', async () => {
    let error = '';
    const c = await startNode(world, `adm-c-${tag}`, { modules: { upload: { path: 'own-uploads' } } }).catch((e: Error) => {
      error = e.message;
      return undefined;
    });
    await c?.stop();
    expect(error).to.match(/not the directory the other cluster nodes keep uploads in/);
  });

  it('reads the directory again after Redis drops its connections: remote sessions stay known and routable', async () => {
    const hal = await user('hal');
    const ivy = await user('ivy');
    const halC = await login(a, hal, { resource: 'r' });
    const ivyC = await login(b, ivy, { resource: 'r' });
    await online(halC);
    await online(ivyC);
    const ivyJid = Jid.parse(`${ivy}@localhost/r`);
    const session = a.server.sessions.get(ivyJid)!;
    expect(session.node).to.equal(nodeB);

    const redis = new Redis(REDIS_URL);
    try {
      // Node a misses a change (as when its subscriber is down while it is published): it takes
      // ivy's session for gone.
      await redis.publish(`${world.prefix}directory`, JSON.stringify({ t: 'rm', id: session.id, node: nodeB }));
      await sleep(200);
      expect(a.server.sessions.get(ivyJid), 'forgotten by node a').to.equal(undefined);
      // Redis drops node a's connections; at reconnection node a reads the directory again.
      const list = (await redis.call('CLIENT', 'LIST')) as string;
      const ids = list.split('\n').filter((l) => l.includes(` name=parley-${nodeA} `)).map((l) => /id=(\d+)/.exec(l)![1]!);
      expect(ids, 'node a\'s Redis connections').to.have.length(3);
      for (const id of ids) await redis.call('CLIENT', 'KILL', 'ID', id);
    } finally {
      redis.disconnect();
    }
    for (let i = 0; i < 50 && !a.server.sessions.get(ivyJid); i++) await sleep(100);
    expect(a.server.sessions.get(ivyJid)?.node, 'known again by node a').to.equal(nodeB);

    // Both ways across the nodes, on the new connections.
    const id1 = nextId('m');
    halC.send(chat(`${ivy}@localhost/r`, id1, 'after the reconnection'));
    await ivyC.waitForElement((e) => e.is('message', XMLNS.client) && e.attrs.id === id1, 10_000);
    const id2 = nextId('m');
    ivyC.send(chat(`${hal}@localhost/r`, id2, 'and back'));
    await halC.waitForElement((e) => e.is('message', XMLNS.client) && e.attrs.id === id2, 10_000);
  });
});

interface HttpReply {
  status: number;
  body: Buffer;
}

/** A request to one node's http listener, whatever host the URL names. */
function httpRequest(srv: TestServer, url: string, method: string, headers: Record<string, string> = {}, body?: Buffer): Promise<HttpReply> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: srv.port('http'), path: u.pathname + u.search, method, headers: { host: u.host, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
