// XEP-0352 client state indication over real sockets, and with stream management counting.
import { expect } from 'chai';
import { loggedIn, XMLNS, type RawClient, type XNode } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { chat, countingFrom, CSI, enable, receivedIds, roundTrip, SM, sleep, stanzasAfter } from '../modules/sm/wire.js';

describe('e2e: client state indication (XEP-0352)', function () {
  this.timeout(15_000);
  let srv: TestServer;
  const clients: RawClient[] = [];

  before(async () => {
    srv = await startTestServer({ modules: { csi: { maxHeld: 3 }, sm: { requestAckEvery: 1000 } } });
    for (const user of ['alice', 'bob']) await srv.addUser(user, 'secret-pw');
  });
  after(async () => srv?.stop());
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });

  async function login(user: string, resource: string): Promise<RawClient> {
    const c = await loggedIn(srv, user, { resource });
    clients.push(c);
    return c;
  }

  /** Directed presence from bob to alice's full JID, with a status. */
  const presence = (status: string) => `<presence to='alice@localhost/phone'><status>${status}</status></presence>`;
  const presences = (c: RawClient, from: number) =>
    c.elements.slice(from).filter((e) => e.is('presence', XMLNS.client)).map((e) => e.child('status')?.text ?? e.attrs.type);

  it('offers <csi/> after authentication', async () => {
    const c = await login('alice', 'features');
    const features = c.elements.filter((e: XNode) => e.is('features', XMLNS.stream)).at(-1)!;
    expect(features.child('csi', CSI)).to.not.equal(undefined);
  });

  it('holds presence while inactive and sends only the latest per contact on <active/>, before the next answer', async () => {
    const alice = await login('alice', 'phone');
    const bob = await login('bob', 'desk');
    alice.send(`<inactive xmlns='${CSI}'/>`);
    await roundTrip(alice);
    const from = alice.elements.length;
    for (const s of ['one', 'two', 'three']) bob.send(presence(s));
    await roundTrip(bob);
    await sleep(200);
    expect(presences(alice, from)).to.deep.equal([]);
    // XEP-0352 §5.1: what <active/> releases comes before the answer to what follows it.
    alice.send(`<active xmlns='${CSI}'/><iq type='get' id='after-active' to='localhost'><ping xmlns='${XMLNS.ping}'/></iq>`);
    const pong = await alice.waitForElement((e) => e.attrs.id === 'after-active', 5000, from);
    expect(presences(alice, from)).to.deep.equal(['three']);
    const held = alice.elements.findIndex((e, i) => i >= from && e.is('presence', XMLNS.client));
    expect(held).to.be.lessThan(alice.elements.indexOf(pong));
  });

  it('lets a message with a body through at once, after the presence it held', async () => {
    const alice = await login('alice', 'phone');
    const bob = await login('bob', 'desk');
    alice.send(`<inactive xmlns='${CSI}'/>`);
    await roundTrip(alice);
    const from = alice.elements.length;
    bob.send(presence('busy'));
    bob.send(chat('alice@localhost/phone', 'b1', 'hello'));
    await receivedIds(alice, ['b1']);
    const got = alice.elements.slice(from).filter((e) => e.is('presence', XMLNS.client) || e.is('message', XMLNS.client));
    expect(got.map((e) => e.name)).to.deep.equal(['presence', 'message']);
  });

  it('sends what it holds once maxHeld stanzas wait', async () => {
    const alice = await login('alice', 'phone');
    const bob = await login('bob', 'desk');
    alice.send(`<inactive xmlns='${CSI}'/>`);
    await roundTrip(alice);
    const from = alice.elements.length;
    const receipt = (id: string) => `<message to='alice@localhost/phone' id='${id}'><received xmlns='urn:xmpp:receipts' id='x${id}'/></message>`;
    bob.send(receipt('rc1') + receipt('rc2'));
    await roundTrip(bob);
    await sleep(200);
    expect(stanzasAfter(alice, from)).to.deep.equal([]);
    bob.send(receipt('rc3'));
    await receivedIds(alice, ['rc1', 'rc2', 'rc3']);
  });

  it('stream management counts each held stanza once, when it is finally written', async () => {
    const alice = await login('alice', 'phone');
    const bob = await login('bob', 'desk');
    expect((await enable(alice)).name).to.equal('enabled');
    const start = countingFrom(alice);
    alice.send(`<inactive xmlns='${CSI}'/>`);
    for (const s of ['one', 'two']) bob.send(presence(s));
    bob.send(`<message to='alice@localhost/phone' id='rcpt'><received xmlns='urn:xmpp:receipts' id='x'/></message>`);
    await roundTrip(bob);
    await sleep(100);
    alice.send(`<active xmlns='${CSI}'/>`);
    await receivedIds(alice, ['rcpt']);
    await roundTrip(alice);
    const received = stanzasAfter(alice, start).length;
    expect(received).to.equal(3); // the latest presence, the receipt, the pong
    // The server's send count, through the error it gives for an ack of one more.
    alice.send(`<a xmlns='${SM}' h='${received + 1}'/>`);
    const error = await alice.streamError();
    expect(error.child('handled-count-too-high', SM)?.attrs['send-count']).to.equal(String(received));
  });
});
