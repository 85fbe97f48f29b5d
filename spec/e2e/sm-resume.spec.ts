// XEP-0198 §5 resumption over real sockets: a TCP connection killed mid-conversation, resumed
// from a new one; what fails to resume; and a session that is never resumed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { Jid } from '../../lib/jid/jid.js';
import { loggedIn, XMLNS, type RawClient, type XNode } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import {
  authenticated, befriend, chat, countingFrom, enable, messagesAfter, receivedIds, requestAck, resume, roundTrip, SM, sleep,
  stanzasAfter,
} from '../modules/sm/wire.js';

const RESUME_TIMEOUT_MS = 1000;

describe('e2e: stream management (XEP-0198) resumption', function () {
  this.timeout(20_000);
  let srv: TestServer;
  const clients: RawClient[] = [];

  // Accounts are per test, so that what one test leaves in offline storage (a session expiring
  // after its test) never reaches another.
  let testNo = 0;
  const created = new Set<string>();
  const u = (name: string) => `${name}${testNo}`;
  async function account(name: string): Promise<string> {
    const local = u(name);
    const key = `${srv.port('c2s')} ${local}`;
    if (!created.has(key)) {
      created.add(key);
      await srv.addUser(local, 'secret-pw');
    }
    return local;
  }

  // Long enough for a loaded machine: these tests resume well before it.
  before(async () => {
    srv = await startTestServer({ modules: { sm: { resumeTimeout: '30s' } } });
  });
  beforeEach(() => {
    testNo++;
  });
  after(async () => srv?.stop());
  afterEach(() => {
    for (const c of clients.splice(0)) c.destroy();
  });

  async function login(user: string, resource?: string): Promise<RawClient> {
    const c = await loggedIn(srv, await account(user), { resource });
    clients.push(c);
    return c;
  }

  async function reconnect(user: string): Promise<RawClient> {
    const { c } = await authenticated(srv, await account(user));
    clients.push(c);
    return c;
  }

  /** A bound client with resumable stream management: the client and its SM-ID. */
  async function resumable(user: string, resource: string): Promise<{ c: RawClient; id: string }> {
    const c = await login(user, resource);
    const enabled = await enable(c);
    expect(enabled.name, enabled.toString()).to.equal('enabled');
    return { c, id: enabled.attrs.id! };
  }

  /** Kills the TCP connection without a word and waits until the server has noticed. */
  async function kill(c: RawClient): Promise<void> {
    c.destroy();
    await c.closed;
    await sleep(50);
  }

  const idsOf = (nodes: Array<{ id: string | undefined }>) => nodes.map((n) => n.id);

  it('resumes on a new connection after the TCP connection dies; every message arrives exactly once', async () => {
    const { c: phone, id } = await resumable('alice', 'phone');
    const bob = await login('bob');
    for (const n of [1, 2, 3]) bob.send(chat(`${u('alice')}@localhost/phone`, `m${n}`, `before ${n}`));
    await receivedIds(phone, ['m1', 'm2', 'm3']);
    // The client acknowledged one of them; it handled all three before its connection died.
    phone.send(`<a xmlns='${SM}' h='1'/>`);
    phone.send(`<iq type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>`);
    await phone.waitForElement((e) => e.attrs.id === 'p1');
    const handledByClient = stanzasAfter(phone, countingFrom(phone)).length; // m1-m3 and the pong
    await kill(phone);
    for (const n of [4, 5, 6]) bob.send(chat(`${u('alice')}@localhost/phone`, `m${n}`, `while away ${n}`));
    await roundTrip(bob);

    const again = await reconnect('alice');
    const resumed = await resume(again, id, handledByClient);
    expect(resumed.name, resumed.toString()).to.equal('resumed');
    // The server handled the client's ping: its count is carried over.
    expect(resumed.attrs).to.include({ previd: id, h: '1' });
    await receivedIds(again, ['m4', 'm5', 'm6']);
    bob.send(chat(`${u('alice')}@localhost/phone`, 'm7', 'after'));
    await receivedIds(again, ['m7']);
    const all = [...messagesAfter(phone), ...messagesAfter(again)];
    expect(idsOf(all)).to.deep.equal(['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7']);
    // The same session, on the new stream, counting on.
    expect(await requestAck(again)).to.equal(1);
  });

  it('resends everything after the h the client reports, in order', async () => {
    const { c: phone, id } = await resumable('alice', 'tablet');
    const bob = await login('bob');
    for (const n of [1, 2, 3, 4]) bob.send(chat(`${u('alice')}@localhost/tablet`, `r${n}`, `${n}`));
    await receivedIds(phone, ['r1', 'r2', 'r3', 'r4']);
    await kill(phone);
    const again = await reconnect('alice');
    // The client lost the last three in its own buffers.
    expect((await resume(again, id, 1)).name).to.equal('resumed');
    await receivedIds(again, ['r2', 'r3', 'r4']);
    await roundTrip(again);
    expect(idsOf(messagesAfter(again))).to.deep.equal(['r2', 'r3', 'r4']);
  });

  it('forgets what the client acknowledged: only the unacknowledged message reaches offline storage when the session ends', async () => {
    const c = await login('alice', 'acker');
    expect((await enable(c)).name).to.equal('enabled');
    const bob = await login('bob');
    bob.send(chat(`${u('alice')}@localhost/acker`, 'k1', 'acknowledged'));
    bob.send(chat(`${u('alice')}@localhost/acker`, 'k2', 'not acknowledged'));
    await receivedIds(c, ['k1', 'k2']);
    c.send(`<a xmlns='${SM}' h='1'/>`);
    await roundTrip(c);
    c.close();
    await c.waitClosed();
    const back = await login('alice', 'after-ack');
    back.send('<presence/>');
    await receivedIds(back, ['k2']);
    await roundTrip(back);
    expect(idsOf(messagesAfter(back))).to.deep.equal(['k2']);
  });

  it("closes the old stream with conflict when the session is resumed while it is still open", async () => {
    const { c: old, id } = await resumable('carol', 'desk');
    const bob = await login('bob');
    bob.send(chat(`${u('carol')}@localhost/desk`, 'c1', 'one'));
    await receivedIds(old, ['c1']);
    const fresh = await reconnect('carol');
    const resumed = await resume(fresh, id, 1);
    expect(resumed.name).to.equal('resumed');
    const error = await old.streamError();
    expect(error.child('conflict', XMLNS.streams), error.toString()).to.not.equal(undefined);
    await old.waitClosed();
    bob.send(chat(`${u('carol')}@localhost/desk`, 'c2', 'two'));
    await receivedIds(fresh, ['c2']);
    expect(idsOf(messagesAfter(fresh))).to.deep.equal(['c2']);
  });

  it("refuses another account's SM-ID with item-not-found, never attaching, and its owner still resumes", async () => {
    const { c: phone, id } = await resumable('dave', 'phone');
    await kill(phone);
    const mallory = await reconnect('erin');
    const failed = await resume(mallory, id, 0);
    expect(failed.name).to.equal('failed');
    expect(failed.child('item-not-found', XMLNS.stanzas)).to.not.equal(undefined);
    expect(failed.attrs.h).to.equal(undefined);
    // RFC 6120 resource binding is still possible on that stream (XEP-0198 §5).
    expect(await mallory.bind()).to.match(new RegExp(`^${u('erin')}@localhost/`));
    const owner = await reconnect('dave');
    expect((await resume(owner, id, 0)).name).to.equal('resumed');
  });

  it('refuses an unknown SM-ID with item-not-found', async () => {
    const c = await reconnect('dave');
    const failed = await resume(c, 'no-such-id', 0);
    expect(failed.name).to.equal('failed');
    expect(failed.child('item-not-found', XMLNS.stanzas)).to.not.equal(undefined);
  });

  it('refuses a resume whose h acknowledges more than was sent, and keeps the session for a correct one', async () => {
    const { c: phone, id } = await resumable('dave', 'watch');
    const bob = await login('bob');
    bob.send(chat(`${u('dave')}@localhost/watch`, 'w1', 'one'));
    await receivedIds(phone, ['w1']);
    await kill(phone);
    const confused = await reconnect('dave');
    const failed = await resume(confused, id, 5);
    expect(failed.name).to.equal('failed');
    expect(failed.child('unexpected-request', XMLNS.stanzas), failed.toString()).to.not.equal(undefined);
    expect(failed.attrs.h).to.equal('0');
    confused.destroy();
    const right = await reconnect('dave');
    expect((await resume(right, id, 0)).name).to.equal('resumed');
    await receivedIds(right, ['w1']);
  });

  it('refuses <resume/> on a stream that is already bound', async () => {
    const { c: phone, id } = await resumable('dave', 'car');
    const other = await login('dave', 'bike');
    const failed = await resume(other, id, 0);
    expect(failed.name).to.equal('failed');
    expect(failed.child('unexpected-request', XMLNS.stanzas)).to.not.equal(undefined);
    await roundTrip(phone);
  });

  it('keeps module session state across resumption: an available session still gets bare-JID messages', async () => {
    const { c: phone, id } = await resumable('erin', 'phone');
    phone.send('<presence/>');
    await phone.waitForElement((e) => e.is('presence', XMLNS.client) && e.attrs.from === `${u('erin')}@localhost/phone`);
    await kill(phone);
    const again = await reconnect('erin');
    const h = stanzasAfter(phone, countingFrom(phone)).length;
    expect((await resume(again, id, h)).name).to.equal('resumed');
    const bob = await login('bob');
    bob.send(chat(`${u('erin')}@localhost`, 'bare1', 'to the bare JID'));
    await receivedIds(again, ['bare1']);
  });

  it('does not keep a session enabled without resume="true": it ends with the connection', async () => {
    const phone = await login('carol', 'noresume');
    const enabled = await enable(phone, '');
    expect(enabled.attrs.id).to.equal(undefined);
    const full = Jid.parse(`${u('carol')}@localhost/noresume`);
    expect(srv.server.sessions.get(full)).to.not.equal(undefined);
    await kill(phone);
    expect(srv.server.sessions.get(full)).to.equal(undefined);
  });

  describe('a session never resumed', () => {
    let outer: TestServer;
    before(async () => {
      outer = srv;
      srv = await startTestServer({ modules: { sm: { resumeTimeout: `${RESUME_TIMEOUT_MS}ms` } } });
    });
    after(async () => {
      await srv.stop();
      srv = outer;
    });

    it('keeps a resumable session bound while it hibernates', async () => {
      const { c: phone } = await resumable('carol', 'sleepy');
      const full = Jid.parse(`${u('carol')}@localhost/sleepy`);
      await kill(phone);
      expect(srv.server.sessions.get(full)?.hibernating).to.equal(true);
      await sleep(RESUME_TIMEOUT_MS + 300);
      expect(srv.server.sessions.get(full)).to.equal(undefined);
    });

    it('expires after resumeTimeout: presence unavailable goes out then, and its unacknowledged messages wait in offline storage', async () => {
      const bob = await login('bob', 'home');
      const alice = await login('alice', 'gone');
      alice.send('<presence/>');
      bob.send('<presence/>');
      await roundTrip(alice);
      await roundTrip(bob);
      await befriend(bob, `${u('bob')}@localhost`, alice, `${u('alice')}@localhost`);
      await bob.waitForElement((e) => e.is('presence', XMLNS.client) && e.attrs.from === `${u('alice')}@localhost/gone` && e.attrs.type === undefined);
      expect((await enable(alice)).name).to.equal('enabled');
      bob.send(chat(`${u('alice')}@localhost/gone`, 'x1', 'seen, never acknowledged'));
      await receivedIds(alice, ['x1']);

      const fromBob = bob.elements.length;
      const unavailable = (e: XNode) => e.is('presence', XMLNS.client) && e.attrs.from === `${u('alice')}@localhost/gone` && e.attrs.type === 'unavailable';
      const killedAt = Date.now();
      await kill(alice);
      bob.send(chat(`${u('alice')}@localhost/gone`, 'x2', 'while hibernating'));
      bob.send(chat(`${u('alice')}@localhost`, 'x3', 'to the bare JID while hibernating'));
      await roundTrip(bob);
      await sleep(RESUME_TIMEOUT_MS / 2);
      // Still bound and available: nobody is told she left.
      expect(bob.elements.slice(fromBob).some(unavailable)).to.equal(false);
      await bob.waitForElement(unavailable, 5000, fromBob);
      expect(Date.now() - killedAt).to.be.at.least(RESUME_TIMEOUT_MS - 100);
      // Nothing bounced to the sender.
      expect(bob.elements.slice(fromBob).filter((e) => e.is('message', XMLNS.client) && e.attrs.type === 'error')).to.deep.equal([]);

      const back = await login('alice', 'back');
      back.send('<presence/>');
      await receivedIds(back, ['x1', 'x2', 'x3']);
      await roundTrip(back);
      const offline = back.elements.filter((e) => e.is('message', XMLNS.client) && e.child('body'));
      expect(offline.map((e) => e.attrs.id)).to.deep.equal(['x1', 'x2', 'x3']);
      for (const m of offline) {
        expect(m.attrs.to).to.equal(`${u('alice')}@localhost`);
        expect(m.child('delay', 'urn:xmpp:delay')?.attrs.from).to.equal('localhost');
      }
    });

    it('answers a resume after expiry with item-not-found and the h it had reached', async () => {
      const { c: phone, id } = await resumable('carol', 'late');
      await roundTrip(phone);
      await roundTrip(phone);
      await kill(phone);
      await sleep(RESUME_TIMEOUT_MS + 300);
      const late = await reconnect('carol');
      const failed = await resume(late, id, 2);
      expect(failed.name).to.equal('failed');
      expect(failed.child('item-not-found', XMLNS.stanzas)).to.not.equal(undefined);
      expect(failed.attrs.h).to.equal('2');
      // And the resource is free again.
      expect(await late.bind('late')).to.equal(`${u('carol')}@localhost/late`);
    });

    it('answers unacknowledged IQ requests with service-unavailable when the session ends', async () => {
      const { c: phone } = await resumable('dave', 'iq');
      const bob = await login('bob', 'asker');
      bob.send(`<iq type='get' id='v1' to='${u('dave')}@localhost/iq'><query xmlns='jabber:iq:version'/></iq>`);
      await phone.waitForElement((e) => e.is('iq', XMLNS.client) && e.attrs.id === 'v1');
      await kill(phone);
      const reply = await bob.waitForElement((e) => e.is('iq', XMLNS.client) && e.attrs.id === 'v1', 5000);
      expect(reply.attrs).to.include({ type: 'error', from: `${u('dave')}@localhost/iq` });
      expect(reply.child('error')?.child('service-unavailable', XMLNS.stanzas)).to.not.equal(undefined);
    });

    it('stores unacknowledged messages at once when the client closes its stream cleanly', async () => {
      const bob = await login('bob', 'clean');
      const c = await login('carol', 'clean');
      expect((await enable(c)).name).to.equal('enabled');
      bob.send(chat(`${u('carol')}@localhost/clean`, 'y1', 'never acknowledged'));
      await receivedIds(c, ['y1']);
      c.close();
      await c.waitClosed();
      const back = await login('carol', 'next');
      back.send('<presence/>');
      await receivedIds(back, ['y1']);
      expect(back.elements.find((e) => e.attrs.id === 'y1')?.attrs.to).to.equal(`${u('carol')}@localhost`);
    });
  });

  describe('at shutdown', () => {
    it('ends hibernating sessions, keeping their unacknowledged messages in offline storage', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'parley-sm-'));
      const storage = { driver: 'sqlite', path: join(dir, 'parley.db') };
      let first: TestServer | undefined = await startTestServer({ storage, modules: { sm: { resumeTimeout: '1m' } } });
      let second: TestServer | undefined;
      try {
        for (const user of ['alice', 'bob']) await first.addUser(user, 'secret-pw');
        const alice = await loggedIn(first, 'alice', { resource: 'phone' });
        expect((await enable(alice)).name).to.equal('enabled');
        const bob = await loggedIn(first, 'bob');
        bob.send(chat('alice@localhost/phone', 'z1', 'unacknowledged'));
        await receivedIds(alice, ['z1']);
        alice.destroy();
        await alice.closed;
        await sleep(50);
        bob.send(chat('alice@localhost/phone', 'z2', 'while hibernating'));
        await roundTrip(bob);
        bob.destroy();
        await first.stop();
        first = undefined;

        second = await startTestServer({ storage });
        const back = await loggedIn(second, 'alice', { resource: 'back' });
        back.send('<presence/>');
        await receivedIds(back, ['z1', 'z2']);
        back.destroy();
      } finally {
        await first?.stop();
        await second?.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
