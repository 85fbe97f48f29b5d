// XEP-0198 acks and the disk: the message archive writes without holding a message back, and a
// client is told a stanza is handled only once what handling it wrote is durable, so that an
// acknowledged message survives a crash.
import { expect } from 'chai';
import { loggedIn, XMLNS, type RawClient } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { chat, enable, receivedIds, requestAck, sleep, SM, smElement } from '../modules/sm/wire.js';

describe('e2e: stream management acks wait for durable archive writes', function () {
  this.timeout(15_000);
  let srv: TestServer;
  const clients: RawClient[] = [];

  before(async () => {
    srv = await startTestServer({ modules: { sm: { requestAckEvery: 1000 } } });
    for (const user of ['alice', 'bob']) await srv.addUser(user, 'secret-pw');
  });
  after(async () => srv?.stop());
  afterEach(() => {
    for (const c of clients.splice(0)) c.destroy();
  });

  async function login(user: string, resource: string): Promise<RawClient> {
    const c = await loggedIn(srv, user, { resource });
    clients.push(c);
    return c;
  }

  it('delivers an archived message at once, with its stanza-id, and acknowledges it only once the archive write is durable', async () => {
    const alice = await login('alice', 'phone');
    const bob = await login('bob', 'pc');
    await enable(alice);
    const storage = srv.server.storage;
    const real = storage.durable.bind(storage);
    let open!: () => void;
    const gate = new Promise<void>((resolve) => { open = resolve; });
    // The disk is slow: every write stays "not yet durable" until the gate opens.
    storage.durable = () => {
      const pending = real();
      return pending ? Promise.all([pending, gate]).then(() => undefined) : gate;
    };
    try {
      alice.send(chat('bob@localhost/pc', 'm1', 'hello'));
      await receivedIds(bob, ['m1']);
      const delivered = bob.elements.find((e) => e.is('message', XMLNS.client) && e.attrs.id === 'm1')!;
      expect(delivered.child('stanza-id', 'urn:xmpp:sid:0')?.attrs.by).to.equal('bob@localhost');

      const from = alice.elements.length;
      alice.send(`<r xmlns='${SM}'/>`);
      await sleep(300);
      expect(alice.elements.slice(from).some((e) => e.is('a', SM)), 'no <a/> before the write is durable').to.equal(false);
      open();
      const a = await smElement(alice, ['a'], from);
      expect(a.attrs.h).to.equal('1');
    } finally {
      storage.durable = real;
      open();
    }
    // And the archive holds it.
    expect(await storage.archive('mam').count('localhost', 'alice')).to.equal(1);
    expect(await requestAck(alice)).to.equal(1);
  });
});
