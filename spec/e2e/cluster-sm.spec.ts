// XEP-0198 resumption in a cluster: a session kept (hibernating) on node b, a reconnection that
// lands on node a, which sends the client to node b with an RFC 6120 see-other-host stream error;
// there the session resumes with what it was sent meanwhile.
import { createServer } from 'node:net';
import { expect } from 'chai';
import { nextId, XMLNS, type RawClient } from '../helpers/raw-client.js';
import type { TestServer } from '../helpers/server.js';
import { clusterSkipReason, newWorld, sleep, startNode, type ClusterWorld } from '../lib/cluster/nodes.js';
import { authenticated, chat, enable, resume, roundTrip, SM } from '../modules/sm/wire.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

describe('e2e: cluster stream management resumption (see-other-host)', function () {
  this.timeout(30_000);
  let world: ClusterWorld;
  let a: TestServer;
  let b: TestServer;
  let bPort: number;
  const clients: RawClient[] = [];

  before(async function () {
    const skip = await clusterSkipReason();
    if (skip) {
      console.log(`      skipped: ${skip}`);
      this.skip();
    }
    world = await newWorld();
    const sm = { modules: { sm: { resumeTimeout: '30s' } } };
    a = await startNode(world, 'a', { ...sm }, { seeOtherHost: '127.0.0.1:1' });
    bPort = await freePort();
    b = await startNode(world, 'b', {
      ...sm,
      listeners: [{ type: 'c2s', port: bPort, address: '127.0.0.1' }, { type: 'c2s-tls', port: 0, address: '127.0.0.1' }, { type: 'http', port: 0, address: '127.0.0.1' }],
    }, { seeOtherHost: `127.0.0.1:${bPort}` });
    await a.addUser('jo', 'secret-pw');
    await a.addUser('kim', 'secret-pw');
  });
  after(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await b?.stop();
    await a?.stop();
    await world?.cleanup();
  });

  it('sends a client resuming on the wrong node to the right one, where it resumes', async () => {
    const first = await authenticated(b, 'jo');
    clients.push(first.c);
    await first.c.bind('phone');
    const enabled = await enable(first.c);
    const previd = enabled.attrs.id!;
    expect(previd).to.be.a('string');
    first.c.send('<presence/>');
    await roundTrip(first.c);
    first.c.destroy(); // no </stream:stream>: the session hibernates on node b
    await sleep(400);

    // kim on node a writes to the hibernating session: node b keeps it in its unacked queue.
    const kim = await authenticated(a, 'kim');
    clients.push(kim.c);
    await kim.c.bind('desk');
    const id = nextId('away');
    kim.c.send(chat('jo@localhost/phone', id, 'while you were away'));
    await roundTrip(kim.c);

    // The reconnection lands on node a.
    const wrong = await authenticated(a, 'jo');
    clients.push(wrong.c);
    wrong.c.send(`<resume xmlns='${SM}' previd='${previd}' h='0'/>`);
    const err = await wrong.c.streamError();
    const redirect = err.child('see-other-host', 'urn:ietf:params:xml:ns:xmpp-streams');
    expect(redirect, err.toString()).to.not.equal(undefined);
    expect(redirect!.text).to.equal(`127.0.0.1:${bPort}`);
    await wrong.c.waitClosed();

    // Following the redirect, the session resumes with the message it missed.
    const right = await authenticated(b, 'jo');
    clients.push(right.c);
    const resumed = await resume(right.c, previd, 0);
    expect(resumed.name, resumed.toString()).to.equal('resumed');
    await right.c.waitForElement((e) => e.is('message', XMLNS.client) && e.attrs.id === id);
  });
});
