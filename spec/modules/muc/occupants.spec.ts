import { expect } from 'chai';
import { NS, xml } from '../../../lib/module-api.js';
import type { Element } from '../../../lib/module-api.js';
import type { TestClient } from '../../helpers/harness.js';
import { expectError } from '../../helpers/xml-assert.js';
import {
  adminItem,
  adminSet,
  createRoom,
  groupchat,
  isSelf,
  itemOf,
  join,
  joinError,
  joinPresence,
  nextBody,
  presenceFrom,
  roomJid,
  startMuc,
  statuses,
  users,
  type MucWorld,
} from './helpers.js';

describe('muc: entering, presence and leaving (XEP-0045 §7)', () => {
  let w: MucWorld;
  let alice: TestClient;
  let bob: TestClient;
  let carol: TestClient;

  beforeEach(async () => {
    w = await startMuc();
    [alice, bob, carol] = await users(w.h, 'alice', 'bob', 'carol');
  });
  afterEach(() => w.h.stop());

  describe('admission errors (§7.2.6-7.2.10)', () => {
    it('refuses a wrong or missing password with not-authorized (401) and admits the right one', async () => {
      await createRoom(alice, 'coven', 'crone', { 'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': 'cauldronburn' });
      expectError(await joinError(bob, 'coven', 'hecate'), 'not-authorized', 'auth');
      expectError(await joinError(bob, 'coven', 'hecate', { password: 'nope' }), 'not-authorized', 'auth');
      const self = await join(bob, 'coven', 'hecate', { password: 'cauldronburn' });
      expect(statuses(self)).to.include(110);
    });

    it('refuses non-members of a members-only room with registration-required (407) and admits members', async () => {
      await createRoom(alice, 'coven', 'crone', { 'muc#roomconfig_membersonly': '1' });
      expectError(await joinError(bob, 'coven', 'hecate'), 'registration-required', 'auth');
      expect((await alice.set(adminSet(adminItem({ affiliation: 'member', jid: 'bob@example.com' })), roomJid('coven'))).attrs.type).to.equal('result');
      const self = await join(bob, 'coven', 'hecate');
      expect(itemOf(self)).to.include({ affiliation: 'member', role: 'participant' });
    });

    it('refuses a banned user with forbidden (403), and a whole banned domain', async () => {
      await createRoom(alice, 'coven', 'crone');
      await alice.set(adminSet(adminItem({ affiliation: 'outcast', jid: 'bob@example.com' })), roomJid('coven'));
      expectError(await joinError(bob, 'coven', 'hecate'), 'forbidden', 'auth');
      await alice.set(adminSet(adminItem({ affiliation: 'outcast', jid: 'evil.example' })), roomJid('coven'));
      expect(w.api.room('coven')!.affiliations.map((a) => a.jid)).to.include('evil.example');
    });

    it('refuses a nick in use by someone else with conflict (409)', async () => {
      await createRoom(alice, 'coven', 'crone');
      await join(bob, 'coven', 'hecate');
      expectError(await joinError(carol, 'coven', 'hecate'), 'conflict', 'cancel');
      // Nicks differing only in case conflict too.
      expectError(await joinError(carol, 'coven', 'HECATE'), 'conflict', 'cancel');
    });

    it('refuses a nick reserved by another user with conflict', async () => {
      await createRoom(alice, 'coven', 'crone');
      await alice.set(adminSet(adminItem({ affiliation: 'member', jid: 'bob@example.com', nick: 'hecate' })), roomJid('coven'));
      expectError(await joinError(carol, 'coven', 'hecate'), 'conflict', 'cancel');
      await join(bob, 'coven', 'hecate');
    });

    it('refuses a full room with service-unavailable (503, type wait), but lets an admin in', async () => {
      await createRoom(alice, 'coven', 'crone', { 'muc#roomconfig_maxusers': '2' });
      await join(bob, 'coven', 'hecate');
      expectError(await joinError(carol, 'coven', 'third'), 'service-unavailable', 'wait');
      await alice.set(adminSet(adminItem({ affiliation: 'admin', jid: 'carol@example.com' })), roomJid('coven'));
      const self = await join(carol, 'coven', 'third');
      expect(itemOf(self)).to.include({ affiliation: 'admin', role: 'moderator' });
    });
  });

  describe('presence broadcast (§7.2.3-7.2.5)', () => {
    it('sends the newcomer the others first, then itself; the others see it arrive', async () => {
      await createRoom(alice, 'coven', 'crone');
      await join(bob, 'coven', 'hecate');
      alice.clear();
      carol.clear();
      await join(carol, 'coven', 'third');
      const presences = carol.received.filter((s) => s.name === 'presence');
      expect(presences.map((p) => p.attrs.from)).to.deep.equal([roomJid('coven', 'crone'), roomJid('coven', 'hecate'), roomJid('coven', 'third')]);
      expect(isSelf(presences[2])).to.equal(true);
      const seen = await alice.next(presenceFrom('coven', 'third'));
      expect(itemOf(seen)).to.include({ affiliation: 'none', role: 'participant' });
      expect(seen.getChild('occupant-id', NS.occupantId)?.attrs.id).to.be.a('string');
    });

    it('shows real JIDs only to moderators in a semi-anonymous room', async () => {
      await createRoom(alice, 'coven', 'crone');
      await join(bob, 'coven', 'hecate');
      const toOwner = await alice.next(presenceFrom('coven', 'hecate'));
      expect(itemOf(toOwner).jid).to.equal('bob@example.com/r');
      await join(carol, 'coven', 'third');
      const toParticipant = carol.received.find(presenceFrom('coven', 'hecate'))!;
      expect(itemOf(toParticipant).jid).to.equal(undefined);
    });

    it('shows real JIDs to everyone in a non-anonymous room, and says so with 100', async () => {
      await createRoom(alice, 'coven', 'crone', { 'muc#roomconfig_whois': 'anyone' });
      await join(bob, 'coven', 'hecate');
      const self = await join(carol, 'coven', 'third');
      expect(statuses(self)).to.include(100);
      expect(itemOf(carol.received.find(presenceFrom('coven', 'hecate'))!).jid).to.equal('bob@example.com/r');
    });

    it('hides the presence of roles left out of presencebroadcast, except from themselves', async () => {
      await createRoom(alice, 'coven', 'crone', { 'muc#roomconfig_moderatedroom': '1', 'muc#roomconfig_presencebroadcast': ['moderator', 'participant'] });
      const self = await join(bob, 'coven', 'visitor');
      expect(itemOf(self)).to.include({ role: 'visitor' });
      await w.h.settle();
      expect(alice.received.some(presenceFrom('coven', 'visitor'))).to.equal(false);
      // Granted voice, the occupant becomes visible.
      await alice.set(adminSet(adminItem({ nick: 'visitor', role: 'participant' })), roomJid('coven'));
      const now = await alice.next(presenceFrom('coven', 'visitor'));
      expect(itemOf(now)).to.include({ role: 'participant' });
    });

    it('resynchronises a session that joins again: the whole state once more', async () => {
      await createRoom(alice, 'coven', 'crone');
      await join(bob, 'coven', 'hecate');
      bob.clear();
      const self = await join(bob, 'coven', 'hecate');
      expect(statuses(self)).to.include(110);
      expect(bob.received.some(presenceFrom('coven', 'crone'))).to.equal(true);
      expect(w.api.room('coven')!.occupants).to.have.length(2);
    });
  });

  describe('changing presence and nick (§7.6-7.7)', () => {
    beforeEach(async () => {
      await createRoom(alice, 'coven', 'crone');
      await join(bob, 'coven', 'hecate');
    });

    it('reflects a presence change to everyone, with the role and affiliation', async () => {
      await bob.send(xml('presence', { to: roomJid('coven', 'hecate') }, xml('show', {}, 'xa'), xml('status', {}, 'gone where the goblins go')));
      const p = await alice.next((s) => presenceFrom('coven', 'hecate')(s) && s.getChildText('show') === 'xa');
      expect(p.getChildText('status')).to.equal('gone where the goblins go');
      expect(itemOf(p)).to.include({ role: 'participant', affiliation: 'none' });
      const self = await bob.next((s) => presenceFrom('coven', 'hecate')(s) && s.getChildText('show') === 'xa');
      expect(statuses(self)).to.deep.equal([110]);
    });

    it('changes a nick: unavailable with 303 and the new nick, then available from the new nick', async () => {
      await bob.sendPresence({ to: roomJid('coven', 'oldhag') });
      const gone = await alice.next(presenceFrom('coven', 'hecate', 'unavailable'));
      expect(statuses(gone)).to.deep.equal([303]);
      expect(itemOf(gone)).to.include({ nick: 'oldhag', role: 'participant' });
      const back = await alice.next(presenceFrom('coven', 'oldhag'));
      expect(itemOf(back)).to.include({ role: 'participant' });
      const selfGone = await bob.next(presenceFrom('coven', 'hecate', 'unavailable'));
      expect(statuses(selfGone)).to.deep.equal([110, 303]);
      expect(w.api.room('coven')!.occupants.map((o) => o.nick).sort()).to.deep.equal(['crone', 'oldhag']);
    });

    it('refuses a nick change to a nick in use with conflict', async () => {
      await bob.sendPresence({ to: roomJid('coven', 'crone') });
      const err = await bob.next((s) => s.name === 'presence' && s.attrs.type === 'error');
      expectError(err, 'conflict');
    });

    it('lets an occupant leave: unavailable with 110 to it, role none to all', async () => {
      await bob.send(xml('presence', { to: roomJid('coven', 'hecate'), type: 'unavailable' }, xml('status', {}, 'bye')));
      const self = await bob.next(presenceFrom('coven', 'hecate', 'unavailable'));
      expect(statuses(self)).to.deep.equal([110]);
      expect(itemOf(self)).to.include({ role: 'none', affiliation: 'none' });
      const seen = await alice.next(presenceFrom('coven', 'hecate', 'unavailable'));
      expect(seen.getChildText('status')).to.equal('bye');
      // The moderator still learns which full JID left.
      expect(itemOf(seen)).to.include({ jid: 'bob@example.com/r', role: 'none' });
      expect(statuses(seen)).to.deep.equal([]);
    });

    it('ignores unavailable presence from non-occupants', async () => {
      alice.clear();
      await carol.sendPresence({ to: roomJid('coven', 'hecate'), type: 'unavailable' });
      await w.h.settle();
      expect(alice.received).to.deep.equal([]);
      expect(w.api.room('coven')!.occupants).to.have.length(2);
    });

    it('makes a session that disconnects leave the room', async () => {
      await bob.disconnect();
      const seen = await alice.next(presenceFrom('coven', 'hecate', 'unavailable'));
      expect(itemOf(seen)).to.include({ role: 'none' });
    });

    it('removes a session whose delivery fails (ghost, 333)', async () => {
      await w.h.route(
        xml('message', { from: 'bob@example.com/r', to: roomJid('coven', 'crone'), type: 'error' }, xml('error', { type: 'cancel' }, xml('service-unavailable', { xmlns: NS.stanzaErrors }))),
      );
      const seen = await alice.next(presenceFrom('coven', 'hecate', 'unavailable'));
      expect(statuses(seen)).to.deep.equal([333]);
    });
  });

  describe('multi-session nicks (§7.2.9)', () => {
    let bob2: TestClient;

    beforeEach(async () => {
      await createRoom(alice, 'coven', 'crone');
      await join(bob, 'coven', 'hecate');
      bob2 = await w.h.connect('bob@example.com/phone');
    });

    it('lets a second resource of the same account share the nick; both get presence and messages', async () => {
      const self = await join(bob2, 'coven', 'hecate');
      expect(statuses(self)).to.include(110);
      expect(w.api.room('coven')!.occupants.find((o) => o.nick === 'hecate')!.sessions).to.deep.equal(['bob@example.com/r', 'bob@example.com/phone']);
      // The first session sees its own nick's presence (110) when the second arrives.
      const update = await bob.next((s) => presenceFrom('coven', 'hecate')(s) && isSelf(s));
      expect(update).to.not.equal(undefined);
      await alice.send(groupchat('coven', 'to all'));
      await nextBody(bob, 'to all');
      await nextBody(bob2, 'to all');
      await alice.send(xml('message', { to: roomJid('coven', 'hecate'), type: 'chat' }, xml('body', {}, 'private')));
      await nextBody(bob, 'private');
      await nextBody(bob2, 'private');
    });

    it('keeps the nick when one of the resources leaves', async () => {
      await join(bob2, 'coven', 'hecate');
      alice.clear();
      await bob2.sendPresence({ to: roomJid('coven', 'hecate'), type: 'unavailable' });
      const self = await bob2.next(presenceFrom('coven', 'hecate', 'unavailable'));
      expect(statuses(self)).to.include(110);
      await w.h.settle();
      expect(alice.received.some(presenceFrom('coven', 'hecate', 'unavailable'))).to.equal(false);
      expect(w.api.room('coven')!.occupants.find((o) => o.nick === 'hecate')!.sessions).to.deep.equal(['bob@example.com/r']);
      await bob.sendPresence({ to: roomJid('coven', 'hecate'), type: 'unavailable' });
      await alice.next(presenceFrom('coven', 'hecate', 'unavailable'));
    });

    it('does not let another account take a nick held by several sessions', async () => {
      await join(bob2, 'coven', 'hecate');
      expectError(await joinError(carol, 'coven', 'hecate'), 'conflict');
    });
  });

  it('keeps presence stanzas well ordered around the history and subject (§7.1)', async () => {
    await createRoom(alice, 'coven', 'crone');
    await alice.send(groupchat('coven', 'one'));
    await alice.send(xml('message', { to: roomJid('coven'), type: 'groupchat' }, xml('subject', {}, 'Spells')));
    bob.clear();
    await bob.send(joinPresence('coven', 'hecate'));
    await bob.next((s: Element) => s.name === 'message' && s.getChildText('subject') === 'Spells');
    const kinds = bob.received.map((s) => (s.name === 'presence' ? (isSelf(s) ? 'self' : 'presence') : s.getChild('subject') ? 'subject' : 'history'));
    expect(kinds).to.deep.equal(['presence', 'self', 'history', 'subject']);
  });
});
