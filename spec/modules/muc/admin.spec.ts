import { expect } from 'chai';
import { NS, xml } from '../../../lib/module-api.js';
import type { Element } from '../../../lib/module-api.js';
import type { TestClient } from '../../helpers/harness.js';
import { expectError } from '../../helpers/xml-assert.js';
import disco from '../../../modules/disco/index.js';
import muc from '../../../modules/muc/index.js';
import presence from '../../../modules/presence/index.js';
import roster from '../../../modules/roster/index.js';
import {
  adminItem,
  adminSet,
  configSubmit,
  createRoom,
  fields,
  groupchat,
  itemOf,
  join,
  joinError,
  presenceFrom,
  roomJid,
  startMuc,
  statuses,
  users,
  type MucWorld,
} from './helpers.js';

const ROOM = roomJid('coven');
const list = (attrs: Record<string, string>) => xml('query', { xmlns: NS.mucAdmin }, xml('item', attrs));
const items = (reply: Element) => reply.getChild('query', NS.mucAdmin)!.getChildren('item').map((i) => i.attrs as Record<string, string>);

describe('muc: roles and affiliations (XEP-0045 §8-§10)', () => {
  let w: MucWorld;
  let alice: TestClient; // owner, "crone"
  let bob: TestClient; // "hecate"
  let carol: TestClient; // "third"

  beforeEach(async () => {
    w = await startMuc();
    [alice, bob, carol] = await users(w.h, 'alice', 'bob', 'carol');
    await createRoom(alice, 'coven', 'crone');
    await join(bob, 'coven', 'hecate');
    await join(carol, 'coven', 'third');
  });
  afterEach(() => w.h.stop());

  describe('kicking (§8.2)', () => {
    it('removes the occupant with 307, the actor and the reason, then tells the room', async () => {
      const reply = await alice.set(adminSet(adminItem({ nick: 'hecate', role: 'none' }, 'Avaunt, you cullion!')), ROOM);
      expect(reply.attrs.type).to.equal('result');
      const kicked = await bob.next(presenceFrom('coven', 'hecate', 'unavailable'));
      expect(statuses(kicked)).to.deep.equal([110, 307]);
      const item = kicked.getChild('x', NS.mucUser)!.getChild('item')!;
      expect(item.attrs).to.include({ role: 'none', affiliation: 'none' });
      expect(item.getChild('actor')?.attrs.nick).to.equal('crone');
      expect(item.getChildText('reason')).to.equal('Avaunt, you cullion!');
      const seen = await carol.next(presenceFrom('coven', 'hecate', 'unavailable'));
      expect(statuses(seen)).to.deep.equal([307]);
      expect(w.api.room('coven')!.occupants.map((o) => o.nick).sort()).to.deep.equal(['crone', 'third']);
    });

    it('forbids kicking to non-moderators', async () => {
      expectError(await bob.set(adminSet(adminItem({ nick: 'third', role: 'none' })), ROOM), 'forbidden', 'auth');
    });

    it('refuses to let a moderator kick someone of a higher affiliation (not-allowed)', async () => {
      await alice.set(adminSet(adminItem({ affiliation: 'admin', jid: 'bob@example.com' })), ROOM);
      // bob (admin) cannot kick the owner
      expectError(await bob.set(adminSet(adminItem({ nick: 'crone', role: 'none' })), ROOM), 'not-allowed', 'cancel');
    });

    it('answers item-not-found for an unknown nick', async () => {
      expectError(await alice.set(adminSet(adminItem({ nick: 'nobody', role: 'none' })), ROOM), 'item-not-found');
    });

    it('refuses an item that changes both a role and an affiliation (bad-request)', async () => {
      expectError(await alice.set(adminSet(adminItem({ nick: 'hecate', role: 'none', affiliation: 'outcast', jid: 'bob@example.com' })), ROOM), 'bad-request');
    });

    it('applies nothing when one item of several is refused', async () => {
      await alice.set(adminSet(adminItem({ affiliation: 'admin', jid: 'bob@example.com' })), ROOM);
      const reply = await bob.set(adminSet(adminItem({ nick: 'third', role: 'none' }), adminItem({ nick: 'crone', role: 'none' })), ROOM);
      expectError(reply, 'not-allowed');
      expect(w.api.room('coven')!.occupants).to.have.length(3);
    });
  });

  describe('voice (§8.3-8.5) in a moderated room', () => {
    let dave: TestClient;

    beforeEach(async () => {
      await alice.set(configSubmit({ 'muc#roomconfig_moderatedroom': '1' }), ROOM);
      [dave] = await users(w.h, 'dave');
      await join(dave, 'coven', 'dave');
    });

    it('makes unaffiliated newcomers visitors who cannot speak (forbidden)', async () => {
      expect(w.api.room('coven')!.occupants.find((o) => o.nick === 'dave')!.role).to.equal('visitor');
      await dave.send(groupchat('coven', 'hello?'));
      const err = await dave.next((s) => s.name === 'message' && s.attrs.type === 'error');
      expectError(err, 'forbidden');
    });

    it('grants voice (participant) and revokes it (visitor), with the reason in the presence', async () => {
      expect((await alice.set(adminSet(adminItem({ nick: 'dave', role: 'participant' }, 'A worthy witch indeed!')), ROOM)).attrs.type).to.equal('result');
      const granted = await carol.next((s) => presenceFrom('coven', 'dave')(s) && itemOf(s).role === 'participant');
      expect(granted.getChild('x', NS.mucUser)!.getChild('item')!.getChildText('reason')).to.equal('A worthy witch indeed!');
      await dave.send(groupchat('coven', 'thanks'));
      await carol.next((s) => s.getChildText('body') === 'thanks');
      await alice.set(adminSet(adminItem({ nick: 'dave', role: 'visitor' })), ROOM);
      await carol.next((s) => presenceFrom('coven', 'dave')(s) && itemOf(s).role === 'visitor');
    });

    it('never takes voice from an admin or owner (not-allowed)', async () => {
      await alice.set(adminSet(adminItem({ affiliation: 'admin', jid: 'bob@example.com' })), ROOM);
      expectError(await alice.set(adminSet(adminItem({ nick: 'hecate', role: 'visitor' })), ROOM), 'not-allowed');
    });

    /** Leaves and enters again; returns the role the room gives on entering. */
    async function comeBack(c: TestClient, nick: string): Promise<string> {
      c.clear();
      await c.sendPresence({ to: roomJid('coven', nick), type: 'unavailable' });
      await c.next(presenceFrom('coven', nick, 'unavailable'));
      return itemOf(await join(c, 'coven', nick)).role;
    }

    it('keeps voice taken away across visits (§5.1), a kick included', async () => {
      // A member: participant by default in a moderated room.
      await alice.set(adminSet(adminItem({ affiliation: 'member', jid: 'carol@example.com' })), ROOM);
      await alice.set(adminSet(adminItem({ nick: 'third', role: 'visitor' })), ROOM);
      await carol.next((s) => presenceFrom('coven', 'third')(s) && itemOf(s).role === 'visitor');
      expect(await comeBack(carol, 'third')).to.equal('visitor');
      await alice.set(adminSet(adminItem({ nick: 'third', role: 'none' })), ROOM);
      await carol.next(presenceFrom('coven', 'third', 'unavailable'));
      carol.clear();
      expect(itemOf(await join(carol, 'coven', 'third')).role).to.equal('visitor');
      await carol.send(groupchat('coven', 'still mute?'));
      expectError(await carol.next((s) => s.name === 'message' && s.attrs.type === 'error'), 'forbidden');
    });

    it('keeps voice granted across visits, until it is taken again', async () => {
      await alice.set(adminSet(adminItem({ nick: 'dave', role: 'participant' })), ROOM);
      await dave.next((s) => presenceFrom('coven', 'dave')(s) && itemOf(s).role === 'participant');
      expect(await comeBack(dave, 'dave')).to.equal('participant');
      expect(w.api.room('coven')!.occupants.find((o) => o.nick === 'dave')!.role).to.equal('participant');
      await alice.set(adminSet(adminItem({ nick: 'dave', role: 'visitor' })), ROOM);
      await dave.next((s) => presenceFrom('coven', 'dave')(s) && itemOf(s).role === 'visitor');
      expect(await comeBack(dave, 'dave')).to.equal('visitor');
    });

    it('keeps the voice a moderator grants through a voice request (§8.6)', async () => {
      const approval = xml(
        'message',
        { to: ROOM },
        xml(
          'x',
          { xmlns: NS.dataForms, type: 'submit' },
          xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'http://jabber.org/protocol/muc#request')),
          xml('field', { var: 'muc#role' }, xml('value', {}, 'participant')),
          xml('field', { var: 'muc#roomnick' }, xml('value', {}, 'dave')),
          xml('field', { var: 'muc#request_allow' }, xml('value', {}, 'true')),
        ),
      );
      await alice.send(approval);
      await dave.next((s) => presenceFrom('coven', 'dave')(s) && itemOf(s).role === 'participant');
      expect(await comeBack(dave, 'dave')).to.equal('participant');
    });

    it('forgets a kept role when the affiliation changes, and applies none in an unmoderated room', async () => {
      await alice.set(adminSet(adminItem({ nick: 'dave', role: 'participant' })), ROOM);
      await dave.next((s) => presenceFrom('coven', 'dave')(s) && itemOf(s).role === 'participant');
      await alice.set(adminSet(adminItem({ affiliation: 'member', jid: 'dave@example.com' })), ROOM);
      await alice.set(adminSet(adminItem({ affiliation: 'none', jid: 'dave@example.com' })), ROOM);
      expect(await comeBack(dave, 'dave')).to.equal('visitor');
      await alice.set(adminSet(adminItem({ nick: 'third', role: 'visitor' })), ROOM);
      await carol.next((s) => presenceFrom('coven', 'third')(s) && itemOf(s).role === 'visitor');
      await alice.set(configSubmit({ 'muc#roomconfig_moderatedroom': '0' }), ROOM);
      expect(await comeBack(carol, 'third')).to.equal('participant');
    });

    it('lists the voice list (participants) to moderators only', async () => {
      const reply = await alice.get(list({ role: 'participant' }), ROOM);
      expect(items(reply).map((i) => i.nick).sort()).to.deep.equal(['hecate', 'third']);
      expect(items(reply)[0]).to.have.keys('affiliation', 'jid', 'nick', 'role');
      expectError(await bob.get(list({ role: 'participant' }), ROOM), 'forbidden');
    });
  });

  describe('moderator status (§9.6-9.8)', () => {
    it('lets an admin grant and revoke the moderator role; a mere moderator cannot', async () => {
      await alice.set(adminSet(adminItem({ nick: 'hecate', role: 'moderator' })), ROOM);
      await carol.next((s) => presenceFrom('coven', 'hecate')(s) && itemOf(s).role === 'moderator');
      expectError(await bob.set(adminSet(adminItem({ nick: 'third', role: 'moderator' })), ROOM), 'not-allowed');
      const mods = items(await alice.get(list({ role: 'moderator' }), ROOM));
      expect(mods.map((i) => i.nick).sort()).to.deep.equal(['crone', 'hecate']);
      await alice.set(adminSet(adminItem({ nick: 'hecate', role: 'participant' })), ROOM);
      await carol.next((s) => presenceFrom('coven', 'hecate')(s) && itemOf(s).role === 'participant');
    });

    it('never revokes moderator status from an admin (not-allowed)', async () => {
      await alice.set(adminSet(adminItem({ affiliation: 'admin', jid: 'bob@example.com' })), ROOM);
      expectError(await alice.set(adminSet(adminItem({ nick: 'hecate', role: 'participant' })), ROOM), 'not-allowed');
    });
  });

  describe('banning (§9.1-9.2)', () => {
    it('bans by bare JID: 301 with actor and reason, the room sees it, the ban list shows it', async () => {
      expect((await alice.set(adminSet(adminItem({ affiliation: 'outcast', jid: 'bob@example.com' }, 'Treason')), ROOM)).attrs.type).to.equal('result');
      const banned = await bob.next(presenceFrom('coven', 'hecate', 'unavailable'));
      expect(statuses(banned)).to.deep.equal([110, 301]);
      expect(itemOf(banned)).to.include({ affiliation: 'outcast', role: 'none' });
      const seen = await carol.next(presenceFrom('coven', 'hecate', 'unavailable'));
      expect(statuses(seen)).to.deep.equal([301]);
      const banList = items(await alice.get(list({ affiliation: 'outcast' }), ROOM));
      expect(banList).to.deep.equal([{ affiliation: 'outcast', jid: 'bob@example.com' }]);
      expectError(await joinError(bob, 'coven', 'hecate'), 'forbidden');
      // Lifting the ban.
      await alice.set(adminSet(adminItem({ affiliation: 'none', jid: 'bob@example.com' })), ROOM);
      await join(bob, 'coven', 'hecate');
    });

    it('removes the reserved nick of a banned user', async () => {
      await alice.set(adminSet(adminItem({ affiliation: 'member', jid: 'bob@example.com', nick: 'hecate' })), ROOM);
      await alice.set(adminSet(adminItem({ affiliation: 'outcast', jid: 'bob@example.com' })), ROOM);
      expect(w.api.room('coven')!.affiliations.find((a) => a.jid === 'bob@example.com')!.nick).to.equal(undefined);
    });

    it('refuses to let an admin ban an owner (not-allowed), or anyone ban themselves (conflict)', async () => {
      await alice.set(adminSet(adminItem({ affiliation: 'admin', jid: 'bob@example.com' })), ROOM);
      expectError(await bob.set(adminSet(adminItem({ affiliation: 'outcast', jid: 'alice@example.com' })), ROOM), 'not-allowed');
      expectError(await bob.set(adminSet(adminItem({ affiliation: 'outcast', jid: 'bob@example.com' })), ROOM), 'conflict');
    });

    it('forbids bans and the ban list to non-admins', async () => {
      expectError(await bob.set(adminSet(adminItem({ affiliation: 'outcast', jid: 'carol@example.com' })), ROOM), 'forbidden');
      expectError(await bob.get(list({ affiliation: 'outcast' }), ROOM), 'forbidden');
    });
  });

  describe('membership (§9.3-9.5)', () => {
    it('grants membership: the room sees the new affiliation; the member list shows it with the nick', async () => {
      await alice.set(adminSet(adminItem({ affiliation: 'member', jid: 'bob@example.com', nick: 'hecate' })), ROOM);
      const seen = await carol.next((s) => presenceFrom('coven', 'hecate')(s) && itemOf(s).affiliation === 'member');
      expect(itemOf(seen).role).to.equal('participant');
      expect(items(await alice.get(list({ affiliation: 'member' }), ROOM))).to.deep.equal([{ affiliation: 'member', jid: 'bob@example.com', nick: 'hecate' }]);
    });

    it('removes an unaffiliated occupant from a room made members-only (322), and a revoked member from it (321)', async () => {
      await alice.set(adminSet(adminItem({ affiliation: 'member', jid: 'bob@example.com' })), ROOM);
      await alice.set(configSubmit({ 'muc#roomconfig_membersonly': '1' }), ROOM);
      const removed = await carol.next(presenceFrom('coven', 'third', 'unavailable'));
      expect(statuses(removed)).to.deep.equal([110, 322]);
      await alice.set(adminSet(adminItem({ affiliation: 'none', jid: 'bob@example.com' })), ROOM);
      const revoked = await bob.next(presenceFrom('coven', 'hecate', 'unavailable'));
      expect(statuses(revoked)).to.deep.equal([110, 321]);
    });

    it('lets occupants read the member list as getmemberlist allows', async () => {
      expect(items(await bob.get(list({ affiliation: 'member' }), ROOM))).to.deep.equal([]);
      await alice.set(configSubmit({ 'muc#roomconfig_getmemberlist': ['moderator'] }), ROOM);
      expectError(await bob.get(list({ affiliation: 'member' }), ROOM), 'forbidden');
    });

    it('tells a user whose affiliation changes while away (101)', async () => {
      await w.h.stop();
      w = await startMuc({ modules: [disco, muc, presence, roster] });
      [alice] = await users(w.h, 'alice');
      await createRoom(alice, 'coven', 'crone');
      const [dave] = await users(w.h, 'dave');
      await dave.sendPresence();
      await alice.set(adminSet(adminItem({ affiliation: 'member', jid: 'dave@example.com' })), ROOM);
      const notice = await dave.next((s) => s.name === 'message');
      expect(statuses(notice)).to.deep.equal([101]);
      expect(itemOf(notice)).to.include({ affiliation: 'member', jid: 'dave@example.com' });
    });
  });

  describe('admins and owners (§10.3-10.8)', () => {
    it('lets an owner grant admin and owner status; the room sees the moderator role', async () => {
      await alice.set(adminSet(adminItem({ affiliation: 'admin', jid: 'bob@example.com' })), ROOM);
      const admin = await carol.next((s) => presenceFrom('coven', 'hecate')(s) && itemOf(s).affiliation === 'admin');
      expect(itemOf(admin).role).to.equal('moderator');
      await alice.set(adminSet(adminItem({ affiliation: 'owner', jid: 'carol@example.com' })), ROOM);
      expect(items(await alice.get(list({ affiliation: 'owner' }), ROOM)).map((i) => i.jid).sort()).to.deep.equal(['alice@example.com', 'carol@example.com']);
      expect(items(await alice.get(list({ affiliation: 'admin' }), ROOM)).map((i) => i.jid)).to.deep.equal(['bob@example.com']);
    });

    it('forbids admins to grant admin status and non-owners to read the owner list of a semi-anonymous room', async () => {
      await alice.set(adminSet(adminItem({ affiliation: 'admin', jid: 'bob@example.com' })), ROOM);
      expectError(await bob.set(adminSet(adminItem({ affiliation: 'admin', jid: 'carol@example.com' })), ROOM), 'forbidden');
      expectError(await carol.get(list({ affiliation: 'owner' }), ROOM), 'forbidden');
    });

    it('refuses to let the last owner step down (conflict), but not one of two', async () => {
      expectError(await alice.set(adminSet(adminItem({ affiliation: 'admin', jid: 'alice@example.com' })), ROOM), 'conflict');
      await alice.set(adminSet(adminItem({ affiliation: 'owner', jid: 'bob@example.com' })), ROOM);
      expect((await alice.set(adminSet(adminItem({ affiliation: 'admin', jid: 'alice@example.com' })), ROOM)).attrs.type).to.equal('result');
    });

    it('takes the full admin and owner lists from the configuration form', async () => {
      await alice.set(configSubmit({ 'muc#roomconfig_roomadmins': ['bob@example.com'], 'muc#roomconfig_roomowners': ['alice@example.com', 'carol@example.com'] }), ROOM);
      const room = w.api.room('coven')!;
      expect(room.occupants.find((o) => o.nick === 'hecate')).to.include({ affiliation: 'admin', role: 'moderator' });
      expect(room.occupants.find((o) => o.nick === 'third')).to.include({ affiliation: 'owner', role: 'moderator' });
      const form = (await alice.get(xml('query', { xmlns: NS.mucOwner }), ROOM)).getChild('query')!.getChild('x', NS.dataForms);
      expect(fields(form).get('muc#roomconfig_roomadmins')).to.deep.equal(['bob@example.com']);
    });
  });

  describe('configuration notices (§10.2.1)', () => {
    const notice = (c: TestClient) => c.next((s) => s.name === 'message' && s.attrs.from === ROOM && s.getChild('x', NS.mucUser) !== undefined);

    /** Submits a configuration change; returns the status codes of the notice each occupant gets (one notice each). */
    async function change(fields: Record<string, string | string[]>): Promise<number[][]> {
      for (const c of [alice, bob, carol]) c.clear();
      expect((await alice.set(configSubmit(fields), ROOM)).attrs.type).to.equal('result');
      const got = await Promise.all([alice, bob, carol].map((c) => notice(c)));
      for (const n of got) {
        expect(n.attrs.type, n.toString()).to.equal('groupchat');
        // "a <message/> stanza containing an <x/> element ... which shall contain only a <status/> element".
        expect(n.getChild('x', NS.mucUser)!.getChildElements().every((e) => e.name === 'status'), n.toString()).to.equal(true);
        expect(n.getChild('body')).to.equal(undefined);
      }
      return got.map(statuses);
    }

    it('172 when the room becomes non-anonymous, to every occupant; real JIDs are then shown', async () => {
      expect(await change({ 'muc#roomconfig_whois': 'anyone' })).to.deep.equal([[172], [172], [172]]);
      const p = await bob.next((s) => presenceFrom('coven', 'third')(s) && itemOf(s).jid !== undefined);
      expect(itemOf(p).jid).to.equal('carol@example.com/r');
    });

    it('173 when the room becomes semi-anonymous again', async () => {
      await change({ 'muc#roomconfig_whois': 'anyone' });
      expect(await change({ 'muc#roomconfig_whois': 'moderators' })).to.deep.equal([[173], [173], [173]]);
    });

    it('171 when logging is turned off', async () => {
      expect(await change({ 'muc#roomconfig_enablelogging': '0' })).to.deep.equal([[171], [171], [171]]);
    });

    it('170 when logging is turned on', async () => {
      await change({ 'muc#roomconfig_enablelogging': '0' });
      expect(await change({ 'muc#roomconfig_enablelogging': '1' })).to.deep.equal([[170], [170], [170]]);
    });

    it('104 for a change that is not privacy-related', async () => {
      expect(await change({ 'muc#roomconfig_roomname': 'Renamed' })).to.deep.equal([[104], [104], [104]]);
      expect(await change({ 'muc#roomconfig_maxusers': '50' })).to.deep.equal([[104], [104], [104]]);
    });

    it('104 with the privacy codes when both kinds change at once', async () => {
      expect(await change({ 'muc#roomconfig_enablelogging': '0', 'muc#roomconfig_whois': 'anyone', 'muc#roomconfig_roomdesc': 'A cave' })).to.deep.equal([
        [104, 171, 172],
        [104, 171, 172],
        [104, 171, 172],
      ]);
    });

    it('no notice when the submitted form changes nothing', async () => {
      bob.clear();
      await alice.set(configSubmit({ 'muc#roomconfig_roomname': '' }), ROOM);
      await alice.set(configSubmit({ 'muc#roomconfig_roomname': 'Renamed' }), ROOM);
      // The notice of the later change is the only one.
      expect(statuses(await notice(bob))).to.deep.equal([104]);
      expect(bob.received.filter((s) => s.name === 'message' && s.attrs.from === ROOM)).to.have.length(1);
    });
  });
});
