// XEP-0198 stream management over real sockets: the feature, <enable/>, and acks both ways.
import { expect } from 'chai';
import { Jid } from '../../lib/jid/jid.js';
import { escapeAttr, loggedIn, nextId, XMLNS, type RawClient } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import {
  authenticated, chat, countingFrom, enable, messagesAfter, receivedIds, requestAck, roundTrip, SM, sleep, smElement, stanzasAfter,
} from '../modules/sm/wire.js';

describe('e2e: stream management (XEP-0198) acks', function () {
  this.timeout(15_000);
  let srv: TestServer;
  const clients: RawClient[] = [];

  before(async () => {
    srv = await startTestServer({ modules: { sm: { resumeTimeout: '2s', requestAckEvery: 3, requestAckAfter: '1s', maxUnacked: 10 } } });
    for (const user of ['alice', 'bob', 'carol']) await srv.addUser(user, 'secret-pw');
  });
  after(async () => srv?.stop());
  afterEach(() => {
    for (const c of clients.splice(0)) c.destroy();
  });

  async function login(user: string, resource?: string): Promise<RawClient> {
    const c = await loggedIn(srv, user, { resource });
    clients.push(c);
    return c;
  }

  async function pings(c: RawClient, n: number): Promise<void> {
    for (let i = 0; i < n; i++) await roundTrip(c);
  }

  it('offers <sm/> after authentication, next to bind, and not before', async () => {
    const { c, features } = await authenticated(srv, 'alice');
    clients.push(c);
    expect(features.child('sm', SM), features.toString()).to.not.equal(undefined);
    expect(features.child('bind', XMLNS.bind)).to.not.equal(undefined);
    const preAuth = c.elements.filter((e) => e.is('features', XMLNS.stream))[1]!; // after STARTTLS, before SASL
    expect(preAuth.child('mechanisms', XMLNS.sasl)).to.not.equal(undefined);
    expect(preAuth.child('sm', SM)).to.equal(undefined);
  });

  it("enables resumption with an unguessable id per stream and the server's max", async () => {
    const a = await login('alice');
    const b = await login('alice');
    const ea = await enable(a);
    const eb = await enable(b);
    expect(ea.name).to.equal('enabled');
    expect(ea.attrs).to.include({ resume: 'true', max: '2' });
    expect(ea.attrs.id).to.match(/^[A-Za-z0-9_-]{24,}$/);
    expect(eb.attrs.id).to.not.equal(ea.attrs.id);
  });

  it('honours a shorter max asked by the client, never a longer one', async () => {
    expect((await enable(await login('alice'), "resume='true' max='1'")).attrs.max).to.equal('1');
    expect((await enable(await login('alice'), "resume='1' max='3600'")).attrs.max).to.equal('2');
  });

  it('enables without resumption when the client does not ask for it: no id', async () => {
    const enabled = await enable(await login('alice'), '');
    expect(enabled.name).to.equal('enabled');
    expect(enabled.attrs.id).to.equal(undefined);
    expect(enabled.attrs.resume).to.equal(undefined);
  });

  it('refuses <enable/> before resource binding with unexpected-request, and binding still works', async () => {
    const { c } = await authenticated(srv, 'alice');
    clients.push(c);
    const answer = await enable(c);
    expect(answer.name).to.equal('failed');
    expect(answer.child('unexpected-request', XMLNS.stanzas), answer.toString()).to.not.equal(undefined);
    expect(await c.bind('phone')).to.equal('alice@localhost/phone');
  });

  it('refuses a second <enable/> with unexpected-request and keeps counting for the first', async () => {
    const c = await login('alice');
    await enable(c);
    await roundTrip(c);
    const again = await enable(c);
    expect(again.name).to.equal('failed');
    expect(again.child('unexpected-request', XMLNS.stanzas)).to.not.equal(undefined);
    expect(await requestAck(c)).to.equal(1);
  });

  it('answers <r/> with the stanzas handled since <enable/>, not those before', async () => {
    const c = await login('alice');
    await pings(c, 2);
    await enable(c);
    expect(await requestAck(c)).to.equal(0);
    await pings(c, 2);
    c.send(`<message to='bob@localhost' type='chat' id='${nextId('m')}'><body>hi</body></message>`);
    c.send(`<presence/>`);
    expect(await requestAck(c)).to.equal(4);
  });

  it('ignores <r/> and <a/> before <enable/>', async () => {
    const c = await login('alice');
    const from = c.elements.length;
    c.send(`<r xmlns='${SM}'/><a xmlns='${SM}' h='5'/>`);
    await roundTrip(c);
    expect(c.elements.slice(from).filter((e) => e.ns === SM)).to.deep.equal([]);
  });

  it('counts what it sends: an ack of one more ends the stream with handled-count-too-high and the send count', async () => {
    const c = await login('alice');
    await enable(c);
    await pings(c, 2);
    const sent = stanzasAfter(c, countingFrom(c)).length;
    expect(sent).to.equal(2);
    c.send(`<a xmlns='${SM}' h='${sent}'/>`);
    await roundTrip(c);
    c.send(`<a xmlns='${SM}' h='${sent + 2}'/>`);
    const error = await c.streamError();
    expect(error.child('undefined-condition', XMLNS.streams)).to.not.equal(undefined);
    expect(error.child('handled-count-too-high', SM)?.attrs).to.deep.equal({ xmlns: SM, h: String(sent + 2), 'send-count': String(sent + 1) });
    await c.waitClosed();
  });

  it("ends the stream with bad-format for an <a/> whose h is not an unsignedInt", async () => {
    const c = await login('alice');
    await enable(c);
    c.send(`<a xmlns='${SM}' h='-1'/>`);
    const error = await c.streamError();
    expect(error.child('bad-format', XMLNS.streams)).to.not.equal(undefined);
  });

  it('asks for an ack with <r/> after requestAckEvery stanzas, then waits for the answer', async () => {
    const c = await login('alice');
    await enable(c);
    const start = c.elements.length;
    await pings(c, 3);
    const r = await smElement(c, ['r'], start, 500);
    // Right after the third stanza, before any timer.
    expect(stanzasAfter(c, start).length).to.equal(3);
    expect(c.elements.indexOf(r)).to.be.greaterThan(c.elements.indexOf(stanzasAfter(c, start)[2]!));
    c.send(`<a xmlns='${SM}' h='3'/>`);
    await pings(c, 2);
    expect(c.elements.slice(start).filter((e) => e.is('r', SM))).to.have.length(1);
  });

  it('asks for an ack after requestAckAfter when a stanza stays unacknowledged', async () => {
    const c = await login('alice');
    await enable(c);
    const start = c.elements.length;
    await roundTrip(c);
    await sleep(300);
    expect(c.elements.slice(start).some((e) => e.is('r', SM))).to.equal(false);
    await smElement(c, ['r'], start, 2000);
  });

  it('does not ask again once everything is acknowledged', async () => {
    const c = await login('alice');
    await enable(c);
    const start = c.elements.length;
    await roundTrip(c);
    c.send(`<a xmlns='${SM}' h='1'/>`);
    await sleep(1500);
    expect(c.elements.slice(start).some((e) => e.is('r', SM))).to.equal(false);
  });

  it('counts the RFC 3921 session establishment reply like any stanza', async () => {
    const c = await login('alice');
    await enable(c);
    const id = nextId('sess');
    c.send(`<iq type='set' id='${escapeAttr(id)}'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>`);
    await c.waitForElement((e) => e.is('iq', XMLNS.client) && e.attrs.id === id);
    c.send(`<a xmlns='${SM}' h='2'/>`);
    const error = await c.streamError();
    expect(error.child('handled-count-too-high', SM)?.attrs['send-count']).to.equal('1');
  });

  it('ends the stream with resource-constraint when a client leaves more than maxUnacked stanzas unacknowledged', async () => {
    const c = await login('alice');
    await enable(c);
    for (let i = 0; i < 10; i++) c.send(`<iq type='get' id='${nextId('flood')}' to='localhost'><ping xmlns='${XMLNS.ping}'/></iq>`);
    await roundTrip(c).catch(() => undefined);
    const error = await c.streamError();
    expect(error.child('resource-constraint', XMLNS.streams), error.toString()).to.not.equal(undefined);
    expect(stanzasAfter(c, countingFrom(c)).length).to.equal(11);
  });

  it('ends a hibernating session early once more than maxUnacked stanzas wait for it; they go to offline storage', async () => {
    const c = await login('carol', 'full');
    await enable(c);
    c.destroy();
    await c.closed;
    await sleep(50);
    const full = Jid.parse('carol@localhost/full');
    expect(srv.server.sessions.get(full)?.hibernating).to.equal(true);
    const alice = await login('alice');
    for (let i = 1; i <= 11; i++) alice.send(chat('carol@localhost/full', `f${i}`, `${i}`));
    await roundTrip(alice);
    await sleep(100);
    // Long before resumeTimeout (2s).
    expect(srv.server.sessions.get(full)).to.equal(undefined);
    const back = await login('carol', 'back');
    back.send('<presence/>');
    const ids = Array.from({ length: 11 }, (_, i) => `f${i + 1}`);
    await receivedIds(back, ids);
    expect(messagesAfter(back).map((m) => m.id)).to.deep.equal(ids);
  });
});
