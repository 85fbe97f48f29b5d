// Two Parley servers in one process, a.test and b.test, federating over real sockets with
// STARTTLS and self-signed certificates, so that they authenticate each other by dialback
// (XEP-0220): messages both ways, an IQ ping across, a presence subscription across, and the
// bounce for a domain that does not exist.
import { expect } from 'chai';
import type { TestServer } from '../helpers/server.js';
import { DEFAULT_PASSWORD, loggedIn, nextId, XMLNS, type RawClient, type XNode } from '../helpers/raw-client.js';
import { federatedServer, linkServers } from '../lib/s2s/federation-helpers.js';
import { verOfQuery } from '../../modules/caps/ver.js';
import { cloneElement, xml, type Element } from '../../lib/xml/element.js';

/** A client's disco#info with +notify for one PEP node. */
function verQuery(node: string): Element {
  return xml(
    'query',
    { xmlns: 'http://jabber.org/protocol/disco#info' },
    xml('identity', { category: 'client', type: 'pc', name: 'raw' }),
    xml('feature', { var: 'http://jabber.org/protocol/disco#info' }),
    xml('feature', { var: `${node}+notify` }),
  );
}

const isMessageFrom = (from: string) => (e: XNode) => e.is('message') && e.attrs.from?.startsWith(from) === true;

describe('e2e: federation between two Parley servers (dialback)', function () {
  this.timeout(30_000);
  let a: TestServer;
  let b: TestServer;
  let alice: RawClient;
  let bob: RawClient;

  before(async () => {
    a = await federatedServer('a.test');
    b = await federatedServer('b.test');
    linkServers(a, b);
    await a.addUser('alice', DEFAULT_PASSWORD);
    await b.addUser('bob', DEFAULT_PASSWORD);
    alice = await loggedIn(a, 'alice', { resource: 'phone' });
    bob = await loggedIn(b, 'bob', { resource: 'laptop' });
    alice.send('<presence/>');
    bob.send('<presence/>');
  });

  after(async () => {
    alice?.destroy();
    bob?.destroy();
    await a?.stop();
    await b?.stop();
  });

  it('delivers a message from a.test to b.test, authenticated by dialback', async () => {
    alice.send(`<message to='bob@b.test' type='chat' id='m1'><body>hello from a</body></message>`);
    const msg = await bob.waitForElement(isMessageFrom('alice@a.test'), 10_000);
    expect(msg.attrs.from).to.equal('alice@a.test/phone');
    expect(msg.attrs.to).to.equal('bob@b.test');
    expect(msg.child('body')?.text).to.equal('hello from a');
    const out = a.server.federation!.outgoingStream('a.test', 'b.test');
    expect(out?.ready).to.equal(true);
    expect(out?.authenticatedBy).to.equal('dialback');
  });

  it('delivers a message from b.test to a.test', async () => {
    bob.send(`<message to='alice@a.test/phone' type='chat' id='m2'><body>hello from b</body></message>`);
    const msg = await alice.waitForElement(isMessageFrom('bob@b.test'), 10_000);
    expect(msg.attrs.from).to.equal('bob@b.test/laptop');
    expect(msg.child('body')?.text).to.equal('hello from b');
  });

  it('answers an IQ ping to the remote server and to a remote full JID', async () => {
    await alice.ping('b.test', 10_000);
    // A ping to bob's full JID reaches his client, which answers it.
    const id = nextId('ping');
    alice.send(`<iq type='get' id='${id}' to='bob@b.test/laptop'><ping xmlns='${XMLNS.ping}'/></iq>`);
    const req = await bob.waitForElement((e) => e.is('iq') && e.attrs.id === id, 10_000);
    expect(req.attrs.from).to.equal('alice@a.test/phone');
    bob.send(`<iq type='result' id='${id}' to='${req.attrs.from}'/>`);
    const res = await alice.waitForElement((e) => e.is('iq') && e.attrs.id === id, 10_000);
    expect(res.attrs.type).to.equal('result');
    expect(res.attrs.from).to.equal('bob@b.test/laptop');
  });

  it('carries a presence subscription handshake across', async () => {
    alice.send(`<iq type='get' id='roster1'><query xmlns='jabber:iq:roster'/></iq>`);
    bob.send(`<iq type='get' id='roster2'><query xmlns='jabber:iq:roster'/></iq>`);
    await alice.waitForElement((e) => e.is('iq') && e.attrs.id === 'roster1');
    await bob.waitForElement((e) => e.is('iq') && e.attrs.id === 'roster2');
    alice.send(`<presence to='bob@b.test' type='subscribe'/>`);
    const request = await bob.waitForElement((e) => e.is('presence') && e.attrs.type === 'subscribe', 10_000);
    expect(request.attrs.from).to.equal('alice@a.test');
    const mark = alice.elements.length;
    bob.send(`<presence to='alice@a.test' type='subscribed'/>`);
    const approved = await alice.waitForElement((e) => e.is('presence') && e.attrs.type === 'subscribed' && e.attrs.from === 'bob@b.test', 10_000, mark);
    expect(approved).to.not.equal(undefined);
    // Subscribed: alice's server probes, and bob's available presence comes back.
    const available = await alice.waitForElement((e) => e.is('presence') && e.attrs.type === undefined && e.attrs.from === 'bob@b.test/laptop', 10_000, mark);
    expect(available).to.not.equal(undefined);
    // And alice's roster now says she sees bob.
    const push = await alice.waitForElement(
      (e) => e.is('iq') && e.attrs.type === 'set' && e.child('query', 'jabber:iq:roster')?.child('item')?.attrs.subscription === 'to',
      10_000,
    );
    expect(push.child('query')?.child('item')?.attrs.jid).to.equal('bob@b.test');
  });

  it('broadcasts a presence change of a subscribed contact across', async () => {
    const mark = alice.elements.length;
    bob.send(`<presence><show>away</show><status>lunch</status></presence>`);
    const p = await alice.waitForElement((e) => e.is('presence') && e.attrs.from === 'bob@b.test/laptop' && e.child('show')?.text === 'away', 10_000, mark);
    expect(p.child('status')?.text).to.equal('lunch');
  });

  it('delivers a PEP notification across, filtered by the subscriber\'s verified caps', async () => {
    // alice advertises +notify for a node through XEP-0115; her caps are verified by asking her
    // client (both servers share this process's caps cache), then bob's server notifies her of
    // his publish over federation.
    const node = 'urn:example:mood';
    const query = verQuery(node);
    const ver = verOfQuery(query)!;
    const mark = alice.elements.length;
    // Directed to bob: with only a `to` subscription, alice's broadcast would not reach b.test.
    alice.send(`<presence to='bob@b.test'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://parley.test' ver='${ver}'/></presence>`);
    const ask = await alice.waitForElement((e) => e.is('iq') && e.attrs.type === 'get' && e.child('query', 'http://jabber.org/protocol/disco#info') !== undefined, 10_000, mark);
    const answer = cloneElement(query);
    answer.attrs.node = ask.child('query')?.attrs.node;
    alice.send(`<iq type='result' id='${ask.attrs.id}' to='${ask.attrs.from}'>${answer.toString()}</iq>`);
    await new Promise((r) => setTimeout(r, 300));
    const before = alice.elements.length;
    bob.send(`<iq type='set' id='pub1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='${node}'><item id='current'><mood xmlns='${node}'>happy</mood></item></publish></pubsub></iq>`);
    const event = await alice.waitForElement((e) => e.is('message') && e.attrs.from === 'bob@b.test' && e.child('event', 'http://jabber.org/protocol/pubsub#event') !== undefined, 10_000, before);
    const item = event.child('event', 'http://jabber.org/protocol/pubsub#event')?.child('items')?.child('item');
    expect(item?.attrs.id).to.equal('current');
  });

  it('bounces a message to a domain with no server as remote-server-not-found', async () => {
    alice.send(`<message to='someone@nowhere.invalid' type='chat' id='lost'><body>anyone?</body></message>`);
    const err = await alice.waitForElement((e) => e.is('message') && e.attrs.id === 'lost', 15_000);
    expect(err.attrs.type).to.equal('error');
    expect(err.attrs.from).to.equal('someone@nowhere.invalid');
    expect(err.child('error')?.child('remote-server-not-found', XMLNS.stanzas)).to.not.equal(undefined);
  });

  it('bounces as remote-server-not-found when the remote port refuses connections', async () => {
    a.server.federation!.setTarget('closed.test', { host: '127.0.0.1', port: 1, directTls: false });
    alice.send(`<message to='x@closed.test' id='refused'><body>hi</body></message>`);
    const err = await alice.waitForElement((e) => e.is('message') && e.attrs.id === 'refused', 10_000);
    expect(err.child('error')?.child('remote-server-not-found', XMLNS.stanzas)).to.not.equal(undefined);
  });
});
