import { expect } from 'chai';
import { NS, xml, type Element } from '../../../lib/module-api.js';
import { expectError, expectXml } from '../../helpers/xml-assert.js';
import type { TestClient } from '../../helpers/harness.js';
import { Jid } from '../../../lib/jid/jid.js';
import { emptyItem } from '../../../modules/roster/index.js';
import { CHANGELOG_LENGTH } from '../../../modules/roster/store.js';

const CAROL = Jid.parse('carol@example.com');
import { ALICE, BOB, ROMEO, isPush, online, presencesTo, pushes, seed, startWorld, stateNow, type World } from '../presence/world.js';

const q = (attrs: Record<string, string> = {}, ...children: Element[]) => xml('query', { xmlns: NS.roster, ...attrs }, ...children);
const item = (attrs: Record<string, string>, ...groups: string[]) => xml('item', attrs, ...groups.map((g) => xml('group', {}, g)));

function itemsOf(el: Element): Element[] {
  return el.getChild('query', NS.roster)?.getChildren('item') ?? [];
}

describe('roster', () => {
  let w: World;
  beforeEach(async () => {
    w = await startWorld();
  });
  afterEach(() => w.h.stop());

  const getRoster = (c: TestClient, attrs: Record<string, string> = {}) => c.get(q(attrs), c.jid.bare().toString());
  const setRoster = (c: TestClient, payload: Element) => c.set(q({}, payload), c.jid.bare().toString());

  describe('get (RFC 6121 §2.2)', () => {
    it('returns an empty roster with a version', async () => {
      const alice = await w.h.connect('alice@example.com/phone');
      const reply = await getRoster(alice);
      expectXml(reply, `<iq type='result' id='*' from='alice@example.com' to='alice@example.com/phone'><query xmlns='jabber:iq:roster' ver='0'/></iq>`);
    });

    it('also answers a get without a to (the account itself)', async () => {
      const alice = await w.h.connect('alice@example.com/phone');
      const reply = await alice.iq(xml('iq', { type: 'get' }, q()));
      expect(reply.attrs.type).to.equal('result');
      expect(reply.getChild('query', NS.roster)).to.not.equal(undefined);
    });

    it('returns every item with its name, subscription, ask, approved and groups', async () => {
      const alice = await w.h.connect('alice@example.com/phone');
      await seed(w, ALICE, ROMEO, 'None + Pending Out', { name: 'Romeo', groups: ['Friends', 'Verona'] });
      await seed(w, ALICE, BOB, 'From', { approved: false });
      await seed(w, ALICE, CAROL, 'None', { approved: true });
      const reply = await getRoster(alice);
      expectXml(reply.getChild('query')!, `
        <query xmlns='jabber:iq:roster' ver='*'>
          <item jid='bob@example.com' subscription='from'/>
          <item jid='carol@example.com' subscription='none' approved='true'/>
          <item jid='romeo@remote.example' name='Romeo' subscription='none' ask='subscribe'><group>Friends</group><group>Verona</group></item>
        </query>`);
    });

    it('marks the resource interested: it gets pushes, a resource that never asked does not', async () => {
      const phone = await w.h.connect('alice@example.com/phone');
      const laptop = await w.h.connect('alice@example.com/laptop');
      await getRoster(phone);
      expect(phone.session.interested).to.equal(true);
      expect(laptop.session.interested).to.equal(false);
      await setRoster(phone, item({ jid: 'bob@example.com' }));
      await w.h.settle();
      expect(pushes(phone)).to.have.length(1);
      expect(pushes(laptop)).to.have.length(0);
    });

    it("refuses to show or change another account's roster (forbidden)", async () => {
      const alice = await w.h.connect('alice@example.com/phone');
      expectError(await alice.get(q(), 'bob@example.com'), 'forbidden', 'auth');
      expectError(await alice.set(q({}, item({ jid: 'mallory@example.com' })), 'bob@example.com'), 'forbidden', 'auth');
      expect(await w.roster.items(ALICE.bare())).to.deep.equal([]);
    });

    it('advertises roster versioning as a stream feature after authentication', () => {
      const features = w.h.streamFeatures('post-auth').map((el) => el.toString());
      expect(features).to.include(`<ver xmlns="${NS.rosterVer}"/>`);
      expect(w.h.streamFeatures('pre-auth').map((el) => el.attrs.xmlns)).to.not.include(NS.rosterVer);
    });
  });

  describe('set (RFC 6121 §2.3, §2.4)', () => {
    it('adds an item, answers with an empty result and pushes it from the bare JID with a version', async () => {
      const phone = await online(w, 'alice@example.com/phone', { presence: false });
      const laptop = await online(w, 'alice@example.com/laptop', { presence: false });
      const reply = await setRoster(phone, item({ jid: 'Bob@Example.com', name: 'Bob' }, 'Friends'));
      expectXml(reply, `<iq type='result' id='*' from='alice@example.com' to='alice@example.com/phone'/>`);
      await w.h.settle();
      for (const c of [phone, laptop]) {
        const [push] = pushes(c);
        expectXml(push, `
          <iq type='set' id='*' from='alice@example.com' to='${c.jid}'>
            <query xmlns='jabber:iq:roster' ver='*'>
              <item jid='bob@example.com' name='Bob' subscription='none'><group>Friends</group></item>
            </query>
          </iq>`);
      }
      const [get] = itemsOf(await getRoster(phone));
      expect(get.attrs.jid).to.equal('bob@example.com');
      expect(pushes(phone)[0].getChild('query')!.attrs.ver).to.equal((await getRoster(phone)).getChild('query')!.attrs.ver);
    });

    it('updates name and groups but keeps the subscription the server holds', async () => {
      await seed(w, ALICE, ROMEO, 'Both', { name: 'R', groups: ['A'] });
      const alice = await online(w, 'alice@example.com/phone', { presence: false });
      await setRoster(alice, item({ jid: 'romeo@remote.example', name: 'Romeo' }, 'B', 'C'));
      const stored = await w.roster.get(ALICE, ROMEO);
      expect(stored).to.include({ name: 'Romeo', subscription: 'both', ask: false });
      expect(stored!.groups).to.deep.equal(['B', 'C']);
      // No groups at all removes the item from every group; an empty name removes the name.
      await setRoster(alice, item({ jid: 'romeo@remote.example', name: '' }));
      expect(await w.roster.get(ALICE, ROMEO)).to.deep.include({ name: undefined, groups: [], subscription: 'both' });
    });

    it('ignores subscription, ask and approved values a client sets (RFC 6121 §2.1.2)', async () => {
      const alice = await online(w, 'alice@example.com/phone', { presence: false });
      const reply = await setRoster(alice, item({ jid: 'bob@example.com', subscription: 'both', ask: 'subscribe', approved: 'true' }));
      expect(reply.attrs.type).to.equal('result');
      const bob = await w.roster.get(ALICE, BOB);
      expect(bob).to.include({ subscription: 'none', ask: false, approved: false });
      const [push] = pushes(alice);
      expectXml(push.getChild('query')!.getChild('item')!, `<item jid='bob@example.com' subscription='none'/>`);
    });

    it('does not push or move the version when an update changes nothing', async () => {
      const alice = await online(w, 'alice@example.com/phone', { presence: false });
      await setRoster(alice, item({ jid: 'bob@example.com', name: 'Bob' }));
      const ver = (await getRoster(alice)).getChild('query')!.attrs.ver;
      alice.clear();
      await setRoster(alice, item({ jid: 'bob@example.com', name: 'Bob' }));
      await w.h.settle();
      expect(pushes(alice)).to.have.length(0);
      expect((await getRoster(alice)).getChild('query')!.attrs.ver).to.equal(ver);
    });

    describe('errors (RFC 6121 §2.3.3)', () => {
      let alice: TestClient;
      beforeEach(async () => {
        alice = await online(w, 'alice@example.com/phone', { presence: false });
        alice.clear();
      });
      afterEach(async () => {
        // A refused set never changes the roster nor pushes anything.
        await w.h.settle();
        expect(alice.received.filter(isPush)).to.have.length(0);
      });

      it('refuses two items as bad-request', async () => {
        const reply = await alice.set(q({}, item({ jid: 'bob@example.com' }), item({ jid: 'carol@example.com' })), 'alice@example.com');
        expectError(reply, 'bad-request', 'modify');
      });

      it('refuses a query without an item as bad-request', async () => {
        expectError(await alice.set(q(), 'alice@example.com'), 'bad-request', 'modify');
      });

      it('refuses an item without a jid as bad-request', async () => {
        expectError(await alice.set(q({}, xml('item', { name: 'x' })), 'alice@example.com'), 'bad-request', 'modify');
      });

      it('refuses an invalid jid as jid-malformed', async () => {
        expectError(await alice.set(q({}, item({ jid: 'a@b@c@' })), 'alice@example.com'), 'jid-malformed', 'modify');
      });

      it('refuses a full JID as bad-request', async () => {
        expectError(await alice.set(q({}, item({ jid: 'bob@example.com/phone' })), 'alice@example.com'), 'bad-request', 'modify');
      });

      it('refuses an empty group as not-acceptable', async () => {
        expectError(await alice.set(q({}, item({ jid: 'bob@example.com' }, 'A', '')), 'alice@example.com'), 'not-acceptable', 'modify');
      });

      it('refuses a duplicate group as bad-request', async () => {
        expectError(await alice.set(q({}, item({ jid: 'bob@example.com' }, 'A', 'A')), 'alice@example.com'), 'bad-request', 'modify');
      });

      it('refuses the account itself as an item (not-allowed)', async () => {
        expectError(await alice.set(q({}, item({ jid: 'alice@example.com' })), 'alice@example.com'), 'not-allowed', 'cancel');
      });

      it('refuses to remove an item that is not there (item-not-found)', async () => {
        expectError(await alice.set(q({}, item({ jid: 'nobody@example.com', subscription: 'remove' })), 'alice@example.com'), 'item-not-found', 'cancel');
      });
    });

    describe('limits from the configuration', () => {
      let small: World;
      beforeEach(async () => {
        small = await startWorld({ roster: { maxItems: 2, maxNameLength: 8, maxGroupNameLength: 6 } });
      });
      afterEach(() => small.h.stop());

      it('refuses an item beyond maxItems with not-allowed, but still updates existing ones', async () => {
        const alice = await online(small, 'alice@example.com/phone', { presence: false });
        await setRoster(alice, item({ jid: 'a@example.com' }));
        await setRoster(alice, item({ jid: 'b@example.com' }));
        expectError(await setRoster(alice, item({ jid: 'c@example.com' })), 'not-allowed', 'cancel');
        expect((await setRoster(alice, item({ jid: 'b@example.com', name: 'B' }))).attrs.type).to.equal('result');
        expect((await small.roster.items(ALICE)).map((i) => i.jid.toString())).to.deep.equal(['a@example.com', 'b@example.com']);
      });

      it('refuses a subscribe that would create an item beyond maxItems, with a presence error, and does not route it', async () => {
        const alice = await online(small, 'alice@example.com/phone', { presence: false });
        await setRoster(alice, item({ jid: 'a@example.com' }));
        await setRoster(alice, item({ jid: 'b@example.com' }));
        await alice.sendPresence({ type: 'subscribe', to: 'romeo@remote.example' });
        const err = await alice.next((el) => el.name === 'presence' && el.attrs.type === 'error');
        expectError(err, 'not-allowed', 'cancel');
        expect(small.remote).to.have.length(0);
      });

      it('refuses a name longer than maxNameLength bytes with not-acceptable', async () => {
        const alice = await online(small, 'alice@example.com/phone', { presence: false });
        expectError(await setRoster(alice, item({ jid: 'a@example.com', name: 'ééééé' })), 'not-acceptable', 'modify'); // 10 bytes
        expect((await setRoster(alice, item({ jid: 'a@example.com', name: 'éééé' }))).attrs.type).to.equal('result'); // 8 bytes
      });

      it('refuses a group longer than maxGroupNameLength bytes with not-acceptable', async () => {
        const alice = await online(small, 'alice@example.com/phone', { presence: false });
        expectError(await setRoster(alice, item({ jid: 'a@example.com' }, 'abcdefg')), 'not-acceptable', 'modify');
        expect((await setRoster(alice, item({ jid: 'a@example.com' }, 'abcdef'))).attrs.type).to.equal('result');
      });

      it('defaults to 1000 items and 1023-byte names and groups', async function () {
        // 999 transactional inserts: slow on a loaded machine, not a timing assertion.
        this.timeout(120_000);
        const alice = await online(w, 'alice@example.com/phone', { presence: false });
        const long = 'x'.repeat(1023);
        expect((await setRoster(alice, item({ jid: 'a@example.com', name: long }, long))).attrs.type).to.equal('result');
        expectError(await setRoster(alice, item({ jid: 'a@example.com', name: `${long}x` })), 'not-acceptable');
        expectError(await setRoster(alice, item({ jid: 'a@example.com' }, `${long}x`)), 'not-acceptable');
        for (let i = 1; i < 1000; i++) await w.roster.update(ALICE, Jid.parse(`c${i}@example.com`), () => emptyItem(Jid.parse(`c${i}@example.com`)));
        expectError(await setRoster(alice, item({ jid: 'one-too-many@example.com' })), 'not-allowed', 'cancel');
      });
    });
  });

  describe('remove (RFC 6121 §2.5)', () => {
    it('deletes the item and pushes subscription=remove to every interested resource', async () => {
      const phone = await online(w, 'alice@example.com/phone', { presence: false });
      await setRoster(phone, item({ jid: 'romeo@remote.example', name: 'R' }));
      phone.clear();
      const reply = await setRoster(phone, item({ jid: 'romeo@remote.example', subscription: 'remove' }));
      expect(reply.attrs.type).to.equal('result');
      await w.h.settle();
      const [push] = pushes(phone);
      expectXml(push, `<iq type='set' id='*' from='alice@example.com' to='alice@example.com/phone'><query xmlns='jabber:iq:roster' ver='*'><item jid='romeo@remote.example' subscription='remove'/></query></iq>`);
      expect(await w.roster.get(ALICE, ROMEO)).to.equal(undefined);
      // Nothing to cancel: no subscription either way.
      expect(w.remote).to.have.length(0);
    });

    it('sends unsubscribe, unavailable and unsubscribed when the subscription was both', async () => {
      await seed(w, ALICE, ROMEO, 'Both');
      const phone = await online(w, 'alice@example.com/phone');
      w.remote.length = 0;
      await setRoster(phone, item({ jid: 'romeo@remote.example', subscription: 'remove' }));
      await w.h.settle();
      expect(presencesTo(w.remote).map((el) => [el.attrs.type, el.attrs.from, el.attrs.to])).to.deep.equal([
        ['unsubscribe', 'alice@example.com', 'romeo@remote.example'],
        ['unavailable', 'alice@example.com/phone', 'romeo@remote.example'],
        ['unsubscribed', 'alice@example.com', 'romeo@remote.example'],
      ]);
    });

    it('sends unsubscribe for a pending outbound request (ask)', async () => {
      await seed(w, ALICE, ROMEO, 'None + Pending Out');
      const phone = await online(w, 'alice@example.com/phone', { presence: false });
      await setRoster(phone, item({ jid: 'romeo@remote.example', subscription: 'remove' }));
      await w.h.settle();
      expect(presencesTo(w.remote).map((el) => el.attrs.type)).to.deep.equal(['unsubscribe']);
    });

    it('sends unsubscribed for a pending inbound request, and forgets the request', async () => {
      await seed(w, ALICE, ROMEO, 'None + Pending Out+In');
      const phone = await online(w, 'alice@example.com/phone', { presence: false });
      await setRoster(phone, item({ jid: 'romeo@remote.example', subscription: 'remove' }));
      await w.h.settle();
      expect(presencesTo(w.remote).map((el) => el.attrs.type)).to.deep.equal(['unsubscribe', 'unsubscribed']);
      expect(await stateNow(w, ALICE, ROMEO)).to.equal('None');
    });

    it('updates the roster of a local contact through its own subscription processing', async () => {
      await seed(w, ALICE, BOB, 'Both');
      await seed(w, BOB, ALICE, 'Both');
      const alice = await online(w, 'alice@example.com/phone', { presence: false });
      const bob = await online(w, 'bob@example.com/pc');
      bob.clear();
      await setRoster(alice, item({ jid: 'bob@example.com', subscription: 'remove' }));
      await w.h.settle();
      expect(await stateNow(w, BOB, ALICE)).to.equal('None');
      const bobPush = pushes(bob).map((p) => p.getChild('query')!.getChild('item')!.attrs.subscription);
      expect(bobPush).to.deep.equal(['to', 'none']);
    });
  });

  describe('versioning (XEP-0237)', () => {
    async function verOf(c: TestClient): Promise<string> {
      return (await getRoster(c)).getChild('query')!.attrs.ver as string;
    }

    it('answers a get with the current version with an empty result', async () => {
      const alice = await online(w, 'alice@example.com/phone', { presence: false });
      await setRoster(alice, item({ jid: 'bob@example.com' }));
      const ver = await verOf(alice);
      const reply = await getRoster(alice, { ver });
      expectXml(reply, `<iq type='result' id='*' from='alice@example.com' to='alice@example.com/phone'/>`);
    });

    it('answers an empty ver (bootstrap) and an unknown ver with the full roster and its version', async () => {
      const alice = await online(w, 'alice@example.com/phone', { presence: false });
      await setRoster(alice, item({ jid: 'bob@example.com' }));
      const ver = await verOf(alice);
      for (const asked of ['', 'garbage', '0']) {
        const reply = await getRoster(alice, { ver: asked });
        expect(reply.getChild('query')!.attrs.ver).to.equal(ver);
        expect(itemsOf(reply).map((i) => i.attrs.jid)).to.deep.equal(['bob@example.com']);
      }
    });

    it('sends the changes since an older version as pushes after an empty result, ending at the current version', async () => {
      const alice = await online(w, 'alice@example.com/phone', { presence: false });
      for (const jid of ['a@example.com', 'b@example.com', 'c@example.com', 'd@example.com']) await setRoster(alice, item({ jid }));
      const old = await verOf(alice);
      await setRoster(alice, item({ jid: 'b@example.com', name: 'B1' }));
      await setRoster(alice, item({ jid: 'c@example.com', subscription: 'remove' }));
      await setRoster(alice, item({ jid: 'b@example.com', name: 'B2' }));
      const current = await verOf(alice);

      const cached = await w.h.connect('alice@example.com/cached');
      const reply = await getRoster(cached, { ver: old });
      expectXml(reply, `<iq type='result' id='*' from='alice@example.com' to='alice@example.com/cached'/>`);
      await w.h.settle();
      const interim = pushes(cached);
      // One push per changed item, its final state, in order of last change.
      expect(interim.map((p) => p.getChild('query')!.getChild('item')!.toString())).to.deep.equal([
        xml('item', { jid: 'c@example.com', subscription: 'remove' }).toString(),
        xml('item', { jid: 'b@example.com', name: 'B2', subscription: 'none' }).toString(),
      ]);
      expect(interim.at(-1)!.getChild('query')!.attrs.ver).to.equal(current);
      expect(new Set(interim.map((p) => p.attrs.from))).to.deep.equal(new Set(['alice@example.com']));
      // The result came before the pushes.
      const order = cached.received.map((el) => `${el.name}:${el.attrs.type}`);
      expect(order[0]).to.equal('iq:result');
    });

    it('sends the full roster when pushes would cost more than the roster itself', async () => {
      const alice = await online(w, 'alice@example.com/phone', { presence: false });
      await setRoster(alice, item({ jid: 'a@example.com' }));
      const old = await verOf(alice);
      await setRoster(alice, item({ jid: 'b@example.com' }));
      await setRoster(alice, item({ jid: 'a@example.com', subscription: 'remove' }));
      const reply = await getRoster(alice, { ver: old });
      expect(itemsOf(reply).map((i) => i.attrs.jid)).to.deep.equal(['b@example.com']);
    });

    it(`sends the full roster when the version is older than the changelog (${CHANGELOG_LENGTH} versions)`, async () => {
      const alice = await online(w, 'alice@example.com/phone', { presence: false });
      for (let i = 0; i < 5; i++) await setRoster(alice, item({ jid: `c${i}@example.com` }));
      const old = await verOf(alice);
      for (let i = 0; i <= CHANGELOG_LENGTH; i++) await setRoster(alice, item({ jid: 'c0@example.com', name: `n${i}` }));
      const reply = await getRoster(alice, { ver: old });
      expect(itemsOf(reply)).to.have.length(5);
    });

    it('never matches a version of a deleted and re-created account', async () => {
      const alice = await online(w, 'alice@example.com/phone', { presence: false });
      await setRoster(alice, item({ jid: 'bob@example.com' }));
      const old = await verOf(alice);
      await alice.disconnect();
      await w.h.deleteAccount('alice');
      await w.h.createAccount('alice');
      const again = await online(w, 'alice@example.com/phone', { presence: false });
      await setRoster(again, item({ jid: 'carol@example.com' }));
      const reply = await getRoster(again, { ver: old });
      expect(itemsOf(reply).map((i) => i.attrs.jid)).to.deep.equal(['carol@example.com']);
    });
  });

  describe('hostile input', () => {
    it('routes a client-made "roster push" to another resource as a plain IQ from that client, changing nothing', async () => {
      const phone = await online(w, 'alice@example.com/phone', { presence: false });
      const laptop = await online(w, 'alice@example.com/laptop', { presence: false });
      const fake = xml('iq', { type: 'set', id: 'evil', to: 'alice@example.com/laptop', from: 'alice@example.com' },
        q({ ver: '999' }, item({ jid: 'mallory@evil.example', subscription: 'both' })));
      await phone.send(fake);
      await w.h.settle();
      const got = laptop.received.filter((el) => el.attrs.id === 'evil');
      expect(got).to.have.length(1);
      // The server stamps the sender's full JID: clients ignore pushes not from the bare JID (RFC 6121 §2.1.6).
      expect(got[0].attrs.from).to.equal('alice@example.com/phone');
      expect(await w.roster.items(ALICE)).to.deep.equal([]);
    });

    it('never sends a roster push from anything but the bare JID', async () => {
      const phone = await online(w, 'alice@example.com/phone');
      await setRoster(phone, item({ jid: 'bob@example.com' }));
      await phone.sendPresence({ type: 'subscribe', to: 'bob@example.com' });
      await w.h.route(xml('presence', { type: 'subscribed', from: 'romeo@remote.example', to: 'alice@example.com' }));
      await phone.sendPresence({ type: 'subscribe', to: 'romeo@remote.example' });
      await w.h.route(xml('presence', { type: 'subscribed', from: 'romeo@remote.example', to: 'alice@example.com' }));
      await setRoster(phone, item({ jid: 'bob@example.com', subscription: 'remove' }));
      await w.h.settle();
      const all = pushes(phone);
      expect(all.length).to.be.greaterThan(3);
      for (const p of all) expect(p.attrs.from).to.equal('alice@example.com');
    });
  });

  it('purges the roster of a deleted account', async () => {
    const alice = await online(w, 'alice@example.com/phone', { presence: false });
    await setRoster(alice, item({ jid: 'bob@example.com' }));
    await alice.disconnect();
    await w.h.deleteAccount('alice');
    for (const table of ['roster_items', 'roster_versions', 'roster_changes']) {
      const rows = await w.h.storage.db.selectFrom(table).selectAll().where('user', '=', 'alice').execute();
      expect(rows, table).to.deep.equal([]);
    }
  });
});
