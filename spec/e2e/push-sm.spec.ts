// XEP-0357 with XEP-0198 over real sockets: messages written to a device whose connection then
// drops, never acknowledged, may be lost with the connection; the device is woken once for them.
import { expect } from 'chai';
import { escapeAttr, loggedIn, XMLNS, type RawClient, type XNode } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { chat, countingFrom, enable, receivedIds, roundTrip, SM, sleep, stanzasAfter } from '../modules/sm/wire.js';

const NS_PUSH = 'urn:xmpp:push:0';
const PUBSUB = 'http://jabber.org/protocol/pubsub';
const DATA_FORMS = 'jabber:x:data';

describe('e2e: push (XEP-0357) for messages in flight when a session hibernates (XEP-0198)', function () {
  this.timeout(20_000);
  let srv: TestServer;
  const clients: RawClient[] = [];
  let testNo = 0;
  const u = (name: string) => `${name}${testNo}`;

  before(async () => {
    srv = await startTestServer({ modules: { sm: { resumeTimeout: '30s' }, push: { minInterval: '0s' } } });
  });
  beforeEach(async () => {
    testNo++;
    for (const name of ['alice', 'bob', 'appsrv']) await srv.addUser(u(name), 'secret-pw');
  });
  after(async () => srv?.stop());
  afterEach(() => {
    for (const c of clients.splice(0)) c.destroy();
  });

  async function login(user: string, resource: string): Promise<RawClient> {
    const c = await loggedIn(srv, u(user), { resource });
    clients.push(c);
    return c;
  }

  const isPublish = (e: XNode) => e.is('iq', XMLNS.client) && e.attrs.type === 'set' && e.child('pubsub', PUBSUB) !== undefined;
  const publishes = (app: RawClient) => app.elements.filter(isPublish);

  /** The summary form of a publish IQ: field → value. */
  function summaryOf(iq: XNode): Record<string, string> {
    const x = iq.child('pubsub', PUBSUB)!.child('publish')!.child('item')!.child('notification', NS_PUSH)!.child('x', DATA_FORMS)!;
    return Object.fromEntries(x.children.filter((f) => f.name === 'field').map((f) => [f.attrs.var!, f.child('value')?.text ?? '']));
  }

  /** The phone: bound, resumable stream management, push enabled towards the app server's session. */
  async function phoneWithPush(app: RawClient): Promise<RawClient> {
    const phone = await login('alice', 'phone');
    expect((await enable(phone)).name).to.equal('enabled');
    const from = phone.elements.length;
    phone.send(`<iq type='set' id='push-on' to='${u('alice')}@localhost'><enable xmlns='${NS_PUSH}' jid='${escapeAttr(app.jid!)}' node='device-1'/></iq>`);
    const reply = await phone.waitForElement((e) => e.is('iq', XMLNS.client) && e.attrs.id === 'push-on', 5000, from);
    expect(reply.attrs.type, reply.toString()).to.equal('result');
    return phone;
  }

  /** Acknowledges everything the phone received on this stream so far. */
  async function ackAll(phone: RawClient): Promise<void> {
    phone.send(`<a xmlns='${SM}' h='${stanzasAfter(phone, countingFrom(phone)).length}'/>`);
    await roundTrip(phone);
  }

  /** Kills the TCP connection without a word (the session hibernates) and waits until the server noticed. */
  async function kill(c: RawClient): Promise<void> {
    c.destroy();
    await c.closed;
    await sleep(50);
  }

  it('publishes one notification counting the unacknowledged messages when the connection drops', async () => {
    const app = await login('appsrv', 'srv');
    const phone = await phoneWithPush(app);
    const bob = await login('bob', 'pc');
    const to = `${u('alice')}@localhost/phone`;

    bob.send(chat(to, 'm1', 'seen'));
    await receivedIds(phone, ['m1']);
    await ackAll(phone);
    for (const n of [2, 3, 4]) bob.send(chat(to, `m${n}`, `in flight ${n}`));
    // A chat state alone is nothing to wake a device for.
    bob.send(`<message to='${escapeAttr(to)}' type='chat' id='cs'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`);
    await receivedIds(phone, ['m2', 'm3', 'm4', 'cs']);
    await roundTrip(bob);
    await sleep(100);
    // While the phone is connected and active, nothing is pushed.
    expect(publishes(app)).to.deep.equal([]);

    await kill(phone);
    const publish = await app.waitForElement(isPublish, 5000);
    expect(publish.attrs.from).to.equal(`${u('alice')}@localhost`);
    expect(publish.child('pubsub', PUBSUB)!.child('publish')!.attrs.node).to.equal('device-1');
    expect(summaryOf(publish)).to.include({ 'message-count': '3', 'last-message-sender': `${u('bob')}@localhost/pc` });
    app.send(`<iq type='result' id='${escapeAttr(publish.attrs.id!)}' to='${escapeAttr(publish.attrs.from!)}'/>`);
    await sleep(300);
    expect(publishes(app)).to.have.length(1);

    // Messages arriving while it hibernates are counted on from there.
    bob.send(chat(to, 'm5', 'while away'));
    const second = await app.waitForElement(isPublish, 5000, app.elements.indexOf(publish) + 1);
    expect(summaryOf(second)['message-count']).to.equal('4');
  });

  it('publishes nothing when the connection drops with every message acknowledged', async () => {
    const app = await login('appsrv', 'srv');
    const phone = await phoneWithPush(app);
    const bob = await login('bob', 'pc');
    for (const n of [1, 2]) bob.send(chat(`${u('alice')}@localhost/phone`, `a${n}`, `${n}`));
    await receivedIds(phone, ['a1', 'a2']);
    await ackAll(phone);
    await kill(phone);
    await sleep(300);
    expect(publishes(app)).to.deep.equal([]);
  });
});
