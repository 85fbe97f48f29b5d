import { expect } from 'chai';
import { NS, xml, type Element } from '../../../lib/module-api.js';
import { expectError } from '../../helpers/xml-assert.js';
import type { TestClient } from '../../helpers/harness.js';
import presence from '../../../modules/presence/index.js';
import { ALICE, BOB, ROMEO, online, presences, presencesTo, pushes, seed, startWorld, stateNow, typed, type World } from './world.js';

const avail = (el: Element) => el.attrs.type === undefined;
const from = (jid: string) => (el: Element) => el.attrs.from === jid;
const show = (text: string) => xml('presence', {}, xml('show', {}, text));

describe('presence', () => {
  let w: World;
  beforeEach(async () => {
    w = await startWorld();
  });
  afterEach(() => w.h.stop());

  it('advertises subscription pre-approval as a stream feature after authentication', () => {
    expect(w.h.streamFeatures('post-auth').map((el) => el.toString())).to.include(`<sub xmlns="${NS.preApproval}"/>`);
  });

  describe('initial presence (RFC 6121 §4.2)', () => {
    it('marks the session available with its priority', async () => {
      const alice = await online(w, 'alice@example.com/phone', { presence: xml('presence', {}, xml('priority', {}, '5')) });
      expect(alice.session.available).to.equal(true);
      expect(alice.session.priority).to.equal(5);
      expect(alice.session.presence?.attrs.to).to.equal(undefined);
    });

    it('goes to contacts with a from or both subscription, from the full JID, and not to the others', async () => {
      await seed(w, ALICE, ROMEO, 'From');
      await seed(w, ALICE, BOB, 'To');
      await seed(w, BOB, ALICE, 'From');
      const bob = await online(w, 'bob@example.com/pc');
      bob.clear();
      await online(w, 'alice@example.com/phone', { presence: show('away') });
      const toRomeo = presencesTo(w.remote, avail);
      expect(toRomeo.map((el) => [el.attrs.from, el.attrs.to, el.getChildText('show')])).to.deep.equal([
        ['alice@example.com/phone', 'romeo@remote.example', 'away'],
      ]);
      // Bob is only in "to" in alice's roster: he does not get her presence.
      expect(presences(bob, from('alice@example.com/phone'))).to.deep.equal([]);
    });

    it("goes to the user's available resources, the sender included, but not to those not yet available", async () => {
      const laptop = await online(w, 'alice@example.com/laptop');
      const quiet = await online(w, 'alice@example.com/quiet', { presence: false });
      laptop.clear();
      const phone = await online(w, 'alice@example.com/phone', { presence: show('dnd') });
      for (const c of [laptop, phone]) {
        const got = presences(c, from('alice@example.com/phone'));
        expect(got.map((el) => [el.attrs.to, el.getChildText('show')]), c.jid.toString()).to.deep.equal([[c.jid.toString(), 'dnd']]);
      }
      expect(presences(quiet)).to.deep.equal([]);
    });

    it("gives the new resource the presence of the user's other available resources", async () => {
      await online(w, 'alice@example.com/laptop', { presence: show('xa') });
      const phone = await online(w, 'alice@example.com/phone');
      const got = presences(phone, from('alice@example.com/laptop'));
      expect(got).to.have.length(1);
      expect(got[0].getChildText('show')).to.equal('xa');
      expect(got[0].getChild('delay', NS.delay)?.attrs.from).to.equal('example.com');
    });

    it('probes a local contact: its available resources answer, stamped with their full JIDs and a delay', async () => {
      await seed(w, ALICE, BOB, 'To');
      await seed(w, BOB, ALICE, 'From');
      await online(w, 'bob@example.com/pc', { presence: show('chat') });
      await online(w, 'bob@example.com/mobile', { presence: xml('presence', {}, xml('priority', {}, '-1')) });
      const alice = await online(w, 'alice@example.com/phone');
      const got = presences(alice, (el) => el.attrs.from?.toString().startsWith('bob@') ?? false);
      expect(got.map((el) => [el.attrs.from, el.attrs.to]).sort()).to.deep.equal([
        ['bob@example.com/mobile', 'alice@example.com/phone'],
        ['bob@example.com/pc', 'alice@example.com/phone'],
      ]);
      for (const el of got) expect(el.getChild('delay', NS.delay)).to.not.equal(undefined);
    });

    it('probes a local contact that is offline: it answers unavailable from its bare JID', async () => {
      await seed(w, ALICE, BOB, 'Both');
      await seed(w, BOB, ALICE, 'Both');
      const alice = await online(w, 'alice@example.com/phone');
      expect(presences(alice, from('bob@example.com')).map((el) => el.attrs.type)).to.deep.equal(['unavailable']);
    });

    it('probes a contact on another server from the bare JID', async () => {
      await seed(w, ALICE, ROMEO, 'To');
      await online(w, 'alice@example.com/phone');
      expect(presencesTo(w.remote, typed('probe')).map((el) => [el.attrs.from, el.attrs.to])).to.deep.equal([
        ['alice@example.com', 'romeo@remote.example'],
      ]);
    });

    it('does not probe contacts the user is not subscribed to', async () => {
      await seed(w, ALICE, ROMEO, 'From + Pending Out');
      await online(w, 'alice@example.com/phone');
      expect(presencesTo(w.remote, typed('probe'))).to.deep.equal([]);
    });

    it('does not broadcast to nor probe anyone on subsequent presence, only broadcasts it', async () => {
      await seed(w, ALICE, ROMEO, 'Both');
      const alice = await online(w, 'alice@example.com/phone');
      w.remote.length = 0;
      await alice.send(show('away'));
      await w.h.settle();
      expect(w.remote.map((el) => [el.attrs.type, el.getChildText('show')])).to.deep.equal([[undefined, 'away']]);
      expect(alice.session.presence?.getChildText('show')).to.equal('away');
    });
  });

  describe('probes from others (RFC 6121 §4.3.2)', () => {
    it('answers a subscribed contact with the presence of each available resource', async () => {
      await seed(w, ALICE, ROMEO, 'From');
      await online(w, 'alice@example.com/phone', { presence: show('away') });
      w.remote.length = 0;
      await w.h.route(xml('presence', { type: 'probe', from: 'romeo@remote.example', to: 'alice@example.com' }));
      await w.h.settle();
      expect(w.remote.map((el) => [el.attrs.type, el.attrs.from, el.attrs.to, el.getChildText('show')])).to.deep.equal([
        [undefined, 'alice@example.com/phone', 'romeo@remote.example', 'away'],
      ]);
    });

    it('answers a subscribed contact with unavailable when no resource is available', async () => {
      await seed(w, ALICE, ROMEO, 'Both');
      await w.h.route(xml('presence', { type: 'probe', from: 'romeo@remote.example/balcony', to: 'alice@example.com' }));
      await w.h.settle();
      expect(w.remote.map((el) => [el.attrs.type, el.attrs.from, el.attrs.to])).to.deep.equal([
        ['unavailable', 'alice@example.com', 'romeo@remote.example/balcony'],
      ]);
    });

    it('reveals nothing to an entity without a subscription: it answers unsubscribed', async () => {
      await seed(w, ALICE, ROMEO, 'To');
      await online(w, 'alice@example.com/phone');
      w.remote.length = 0;
      await w.h.route(xml('presence', { type: 'probe', from: 'romeo@remote.example/balcony', to: 'alice@example.com' }));
      await w.h.settle();
      expect(w.remote.map((el) => [el.attrs.type, el.attrs.from, el.attrs.to])).to.deep.equal([
        ['unsubscribed', 'alice@example.com', 'romeo@remote.example'],
      ]);
    });

    it('answers a probe to a user that does not exist with unsubscribed', async () => {
      await w.h.route(xml('presence', { type: 'probe', from: 'romeo@remote.example', to: 'ghost@example.com' }));
      await w.h.settle();
      expect(w.remote.map((el) => [el.attrs.type, el.attrs.from])).to.deep.equal([['unsubscribed', 'ghost@example.com']]);
    });

    it('never hands a probe to the client', async () => {
      await seed(w, ALICE, ROMEO, 'Both');
      const alice = await online(w, 'alice@example.com/phone');
      alice.clear();
      await w.h.route(xml('presence', { type: 'probe', from: 'romeo@remote.example', to: 'alice@example.com/phone' }));
      await w.h.settle();
      expect(presences(alice)).to.deep.equal([]);
    });
  });

  describe('inbound presence (RFC 6121 §4.2.3, §8.5)', () => {
    it('delivers presence to the bare JID to every available resource, negative priority included', async () => {
      const phone = await online(w, 'alice@example.com/phone');
      const away = await online(w, 'alice@example.com/away', { presence: xml('presence', {}, xml('priority', {}, '-5')) });
      const quiet = await online(w, 'alice@example.com/quiet', { presence: false });
      for (const c of [phone, away, quiet]) c.clear();
      await w.h.route(xml('presence', { from: 'romeo@remote.example/balcony', to: 'alice@example.com' }, xml('status', {}, 'hi')));
      await w.h.settle();
      expect(presences(phone, avail)).to.have.length(1);
      expect(presences(away, avail)).to.have.length(1);
      expect(presences(quiet)).to.have.length(0);
    });

    it('delivers presence to a full JID to that session even before its initial presence', async () => {
      const quiet = await online(w, 'alice@example.com/quiet', { presence: false });
      await w.h.route(xml('presence', { from: 'room@muc.remote.example/nick', to: 'alice@example.com/quiet' }));
      await w.h.settle();
      expect(presences(quiet, from('room@muc.remote.example/nick'))).to.have.length(1);
    });

    it('silently ignores presence to a full JID that is not connected', async () => {
      const phone = await online(w, 'alice@example.com/phone');
      phone.clear();
      await w.h.route(xml('presence', { from: 'romeo@remote.example', to: 'alice@example.com/gone' }));
      await w.h.route(xml('presence', { type: 'unavailable', from: 'romeo@remote.example', to: 'alice@example.com/gone' }));
      await w.h.settle();
      expect(phone.received).to.deep.equal([]);
      expect(w.remote).to.deep.equal([]);
    });

    it('delivers an error presence like other presence', async () => {
      const phone = await online(w, 'alice@example.com/phone');
      phone.clear();
      await w.h.route(xml('presence', { type: 'error', from: 'romeo@remote.example', to: 'alice@example.com' }, xml('error', { type: 'cancel' }, xml('remote-server-not-found', { xmlns: NS.stanzaErrors }))));
      await w.h.settle();
      expect(presences(phone, typed('error'))).to.have.length(1);
    });
  });

  describe('unavailable (RFC 6121 §4.5)', () => {
    async function setup() {
      await seed(w, ALICE, ROMEO, 'Both');
      await seed(w, ALICE, BOB, 'From');
      await seed(w, BOB, ALICE, 'To');
      const bob = await online(w, 'bob@example.com/pc');
      const laptop = await online(w, 'alice@example.com/laptop');
      const phone = await online(w, 'alice@example.com/phone');
      // A directed presence to someone who is not a contact (RFC 6121 §4.6).
      await phone.sendPresence({ to: 'juliet@capulet.example/balcony' });
      await w.h.settle();
      for (const c of [bob, laptop, phone]) c.clear();
      w.remote.length = 0;
      return { bob, laptop, phone };
    }

    function expectUnavailableEverywhere(bob: TestClient, laptop: TestClient) {
      expect(presences(bob, typed('unavailable')).map((el) => el.attrs.from)).to.deep.equal(['alice@example.com/phone']);
      expect(presences(laptop, typed('unavailable')).map((el) => el.attrs.from)).to.deep.equal(['alice@example.com/phone']);
      expect(presencesTo(w.remote, typed('unavailable')).map((el) => [el.attrs.from, el.attrs.to]).sort()).to.deep.equal([
        ['alice@example.com/phone', 'juliet@capulet.example/balcony'],
        ['alice@example.com/phone', 'romeo@remote.example'],
      ]);
    }

    it('an explicit unavailable goes to subscribed contacts, own resources and directed-presence targets', async () => {
      const { bob, laptop, phone } = await setup();
      await phone.sendPresence({ type: 'unavailable' }, xml('status', {}, 'bye'));
      await w.h.settle();
      expectUnavailableEverywhere(bob, laptop);
      expect(presences(phone, typed('unavailable'))).to.have.length(1);
      expect(phone.session.available).to.equal(false);
      expect(presencesTo(w.remote, typed('unavailable'))[0].getChildText('status')).to.equal('bye');
    });

    it('an abrupt disconnection sends the same unavailable presence', async () => {
      const { bob, laptop, phone } = await setup();
      await phone.disconnect('connection lost');
      await w.h.settle();
      expectUnavailableEverywhere(bob, laptop);
    });

    it('a second login after unavailable is an initial presence again (probes are sent)', async () => {
      const { phone } = await setup();
      await phone.sendPresence({ type: 'unavailable' });
      w.remote.length = 0;
      await phone.sendPresence();
      await w.h.settle();
      expect(presencesTo(w.remote, typed('probe'))).to.have.length(1);
    });

    it('a session that never became available and sent no directed presence sends nothing when it goes', async () => {
      await seed(w, ALICE, ROMEO, 'Both');
      const quiet = await online(w, 'alice@example.com/quiet', { presence: false });
      await quiet.disconnect();
      await w.h.settle();
      expect(w.remote).to.deep.equal([]);
    });
  });

  describe('directed presence (RFC 6121 §4.6)', () => {
    it('is routed to its target only, not broadcast, and does not change the session presence', async () => {
      await seed(w, ALICE, ROMEO, 'Both');
      const phone = await online(w, 'alice@example.com/phone', { presence: show('chat') });
      const laptop = await online(w, 'alice@example.com/laptop');
      laptop.clear();
      w.remote.length = 0;
      await phone.sendPresence({ to: 'juliet@capulet.example' }, xml('show', {}, 'dnd'));
      await w.h.settle();
      expect(w.remote.map((el) => [el.attrs.from, el.attrs.to, el.getChildText('show')])).to.deep.equal([
        ['alice@example.com/phone', 'juliet@capulet.example', 'dnd'],
      ]);
      expect(presences(laptop)).to.deep.equal([]);
      expect(phone.session.presence?.getChildText('show')).to.equal('chat');
    });

    it('a directed unavailable removes the target: it gets no second unavailable at logout', async () => {
      const phone = await online(w, 'alice@example.com/phone');
      await phone.sendPresence({ to: 'juliet@capulet.example' });
      await phone.sendPresence({ to: 'juliet@capulet.example', type: 'unavailable' });
      await w.h.settle();
      w.remote.length = 0;
      await phone.disconnect();
      await w.h.settle();
      expect(w.remote).to.deep.equal([]);
    });

    it('a session without initial presence still gets unavailable sent to its directed targets (e.g. a MUC) when it goes', async () => {
      const quiet = await online(w, 'alice@example.com/quiet', { presence: false });
      await quiet.sendPresence({ to: 'room@muc.remote.example/alice' });
      await w.h.settle();
      w.remote.length = 0;
      await quiet.disconnect();
      await w.h.settle();
      expect(w.remote.map((el) => [el.attrs.type, el.attrs.to])).to.deep.equal([['unavailable', 'room@muc.remote.example/alice']]);
    });

    it('refuses directed presence beyond maxDirectedPresence with resource-constraint and does not route it', async () => {
      const small = await startWorld({ presence: { maxDirectedPresence: 2 } });
      try {
        const phone = await online(small, 'alice@example.com/phone');
        await phone.sendPresence({ to: 'a@remote.example' });
        await phone.sendPresence({ to: 'b@remote.example' });
        await phone.sendPresence({ to: 'a@remote.example' }); // already tracked: fine
        await phone.sendPresence({ to: 'c@remote.example' });
        await small.h.settle();
        const err = await phone.next(typed('error'));
        expectError(err, 'resource-constraint');
        expect(small.remote.map((el) => el.attrs.to)).to.deep.equal(['a@remote.example', 'b@remote.example', 'a@remote.example']);
      } finally {
        await small.h.stop();
      }
    });
  });

  describe('stored subscription requests (RFC 6121 §3.1.3)', () => {
    it('keeps a request to an offline user and delivers it at every login until answered', async () => {
      await w.h.route(xml('presence', { type: 'subscribe', from: 'romeo@remote.example/balcony', to: 'alice@example.com' }, xml('nick', { xmlns: 'http://jabber.org/protocol/nick' }, 'Romeo')));
      await w.h.settle();
      const first = await online(w, 'alice@example.com/phone');
      const got = presences(first, typed('subscribe'));
      expect(got.map((el) => [el.attrs.from, el.attrs.to, el.getChildText('nick', 'http://jabber.org/protocol/nick')])).to.deep.equal([
        ['romeo@remote.example', 'alice@example.com', 'Romeo'],
      ]);
      await first.disconnect();

      const second = await online(w, 'alice@example.com/laptop');
      expect(presences(second, typed('subscribe'))).to.have.length(1);
      await second.sendPresence({ type: 'subscribed', to: 'romeo@remote.example' });
      await w.h.settle();
      await second.disconnect();

      const third = await online(w, 'alice@example.com/tablet');
      expect(presences(third, typed('subscribe'))).to.deep.equal([]);
      expect(await stateNow(w, ALICE, ROMEO)).to.equal('From');
    });

    it('is not delivered to a session before its initial presence, only at it', async () => {
      const quiet = await online(w, 'alice@example.com/quiet', { presence: false });
      await w.h.route(xml('presence', { type: 'subscribe', from: 'romeo@remote.example', to: 'alice@example.com' }));
      await w.h.settle();
      expect(presences(quiet, typed('subscribe'))).to.deep.equal([]);
      await quiet.sendPresence();
      await w.h.settle();
      expect(presences(quiet, typed('subscribe'))).to.have.length(1);
    });

    it('is forgotten when denied, and when the requester withdraws it', async () => {
      const phone = await online(w, 'alice@example.com/phone');
      await w.h.route(xml('presence', { type: 'subscribe', from: 'romeo@remote.example', to: 'alice@example.com' }));
      await w.h.route(xml('presence', { type: 'subscribe', from: 'juliet@remote.example', to: 'alice@example.com' }));
      await phone.sendPresence({ type: 'unsubscribed', to: 'romeo@remote.example' });
      await w.h.route(xml('presence', { type: 'unsubscribe', from: 'juliet@remote.example', to: 'alice@example.com' }));
      await w.h.settle();
      expect(await w.pending.list('example.com', 'alice', 10)).to.deep.equal([]);
    });

    it(`drops requests beyond maxPendingSubscriptions silently`, async () => {
      const small = await startWorld({ presence: { maxPendingSubscriptions: 2 } });
      try {
        for (const who of ['a', 'b', 'c']) {
          await small.h.route(xml('presence', { type: 'subscribe', from: `${who}@remote.example`, to: 'alice@example.com' }));
        }
        await small.h.settle();
        expect((await small.pending.list('example.com', 'alice', 10)).map((p) => p.contact)).to.deep.equal(['a@remote.example', 'b@remote.example']);
        expect(small.remote).to.deep.equal([]); // no error, no reply: silently
        const alice = await online(small, 'alice@example.com/phone');
        expect(presences(alice, typed('subscribe')).map((el) => el.attrs.from)).to.deep.equal(['a@remote.example', 'b@remote.example']);
      } finally {
        await small.h.stop();
      }
    });

    it('defaults to 1000 pending requests per user', async () => {
      for (let i = 0; i < 1000; i++) await w.pending.put('example.com', 'alice', `c${i}@remote.example`, xml('presence', { type: 'subscribe' }));
      await w.h.route(xml('presence', { type: 'subscribe', from: 'late@remote.example', to: 'alice@example.com' }));
      await w.h.settle();
      expect(await w.pending.has('example.com', 'alice', 'late@remote.example')).to.equal(false);
      expect(await w.pending.count('example.com', 'alice')).to.equal(1000);
    });

    it('purges the stored requests of a deleted account', async () => {
      await w.h.route(xml('presence', { type: 'subscribe', from: 'romeo@remote.example', to: 'alice@example.com' }));
      await w.h.settle();
      expect(await w.pending.count('example.com', 'alice')).to.equal(1);
      await w.h.deleteAccount('alice');
      expect(await w.pending.count('example.com', 'alice')).to.equal(0);
    });
  });

  describe('pre-approval (RFC 6121 §3.4)', () => {
    it('a subscribed without a request notes approved=true (pushed), routes nothing; the later request is approved automatically', async () => {
      const alice = await online(w, 'alice@example.com/phone', { presence: show('chat') });
      await alice.sendPresence({ type: 'subscribed', to: 'bob@example.com' });
      await w.h.settle();
      expect(pushes(alice).map((p) => p.getChild('query')!.getChild('item')!.attrs.approved)).to.deep.equal(['true']);
      expect((await w.roster.get(ALICE, BOB))?.approved).to.equal(true);
      alice.clear();

      const bob = await online(w, 'bob@example.com/pc');
      await bob.sendPresence({ type: 'subscribe', to: 'alice@example.com' });
      await w.h.settle();
      // Alice is not asked; Bob is approved and gets her presence.
      expect(presences(alice, typed('subscribe'))).to.deep.equal([]);
      expect(presences(bob, typed('subscribed')).map((el) => el.attrs.from)).to.deep.equal(['alice@example.com']);
      expect(presences(bob, from('alice@example.com/phone')).map((el) => el.getChildText('show'))).to.deep.equal(['chat']);
      expect(await stateNow(w, ALICE, BOB)).to.equal('From');
      expect(await stateNow(w, BOB, ALICE)).to.equal('To');
      expect((await w.roster.get(ALICE, BOB))?.approved).to.equal(false);
      expect(pushes(alice).map((p) => p.getChild('query')!.getChild('item')!.attrs.subscription)).to.deep.equal(['from']);
    });

    it('an unsubscribed cancels a pre-approval; the next request is asked for again', async () => {
      const alice = await online(w, 'alice@example.com/phone');
      await alice.sendPresence({ type: 'subscribed', to: 'bob@example.com' });
      await alice.sendPresence({ type: 'unsubscribed', to: 'bob@example.com' });
      await w.h.settle();
      expect((await w.roster.get(ALICE, BOB))?.approved).to.equal(false);
      const bob = await online(w, 'bob@example.com/pc');
      await bob.sendPresence({ type: 'subscribe', to: 'alice@example.com' });
      await w.h.settle();
      expect(presences(alice, typed('subscribe')).map((el) => el.attrs.from)).to.deep.equal(['bob@example.com']);
      expect(await stateNow(w, ALICE, BOB)).to.equal('None + Pending In');
    });
  });

  describe('a full subscription between two local users', () => {
    it('ends in Both on each side with presence flowing both ways', async () => {
      const alice = await online(w, 'alice@example.com/phone', { presence: show('chat') });
      const bob = await online(w, 'bob@example.com/pc', { presence: show('away') });
      await alice.sendPresence({ type: 'subscribe', to: 'bob@example.com' });
      await w.h.settle();
      expect(await stateNow(w, ALICE, BOB)).to.equal('None + Pending Out');
      expect(await stateNow(w, BOB, ALICE)).to.equal('None + Pending In');
      expect(presences(bob, typed('subscribe')).map((el) => el.attrs.from)).to.deep.equal(['alice@example.com']);

      await bob.sendPresence({ type: 'subscribed', to: 'alice@example.com' });
      await bob.sendPresence({ type: 'subscribe', to: 'alice@example.com' });
      await alice.sendPresence({ type: 'subscribed', to: 'bob@example.com' });
      await w.h.settle();
      expect(await stateNow(w, ALICE, BOB)).to.equal('Both');
      expect(await stateNow(w, BOB, ALICE)).to.equal('Both');
      // Each got the other's presence after the approval.
      expect(presences(alice, from('bob@example.com/pc')).map((el) => el.getChildText('show'))).to.include('away');
      expect(presences(bob, from('alice@example.com/phone')).map((el) => el.getChildText('show'))).to.include('chat');

      alice.clear();
      await bob.send(show('xa'));
      await w.h.settle();
      expect(presences(alice, from('bob@example.com/pc')).map((el) => el.getChildText('show'))).to.deep.equal(['xa']);
    });
  });

  describe('hostile or odd input', () => {
    it('answers a subscription stanza without a to with bad-request', async () => {
      const alice = await online(w, 'alice@example.com/phone');
      await alice.sendPresence({ type: 'subscribe' });
      expectError(await alice.next(typed('error')), 'bad-request', 'modify');
    });

    it('ignores a subscription to the account itself', async () => {
      const alice = await online(w, 'alice@example.com/phone');
      alice.clear();
      await alice.sendPresence({ type: 'subscribe', to: 'alice@example.com' });
      await w.h.settle();
      expect(await w.roster.items(ALICE)).to.deep.equal([]);
      expect(alice.received).to.deep.equal([]);
    });

    it('a subscription from a remote server cannot change another user than the addressed one', async () => {
      await seed(w, BOB, ROMEO, 'None + Pending Out');
      await w.h.route(xml('presence', { type: 'subscribed', from: 'romeo@remote.example', to: 'alice@example.com' }));
      await w.h.settle();
      expect(await stateNow(w, BOB, ROMEO)).to.equal('None + Pending Out');
      expect(await stateNow(w, ALICE, ROMEO)).to.equal('None');
    });
  });

  describe('gates (the place for XEP-0191 blocking)', () => {
    it('a gate can keep presence from going out to a contact and from coming in', async () => {
      await seed(w, ALICE, ROMEO, 'Both');
      const remove = w.h.api(presence).addGate(({ peer }) => !peer.bare().equals(ROMEO));
      const alice = await online(w, 'alice@example.com/phone');
      expect(presencesTo(w.remote, avail)).to.deep.equal([]);
      await w.h.route(xml('presence', { from: 'romeo@remote.example/x', to: 'alice@example.com' }));
      await w.h.settle();
      expect(presences(alice, from('romeo@remote.example/x'))).to.deep.equal([]);
      remove();
      await w.h.route(xml('presence', { from: 'romeo@remote.example/x', to: 'alice@example.com' }));
      await w.h.settle();
      expect(presences(alice, from('romeo@remote.example/x'))).to.have.length(1);
    });
  });
});
