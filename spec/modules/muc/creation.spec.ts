import { expect } from 'chai';
import { NS, xml } from '../../../lib/module-api.js';
import type { TestClient } from '../../helpers/harness.js';
import { errorCondition, expectError, expectXml } from '../../helpers/xml-assert.js';
import {
  configSubmit,
  createRoom,
  fields,
  isSubject,
  itemOf,
  join,
  joinError,
  joinPresence,
  ROOMCONFIG,
  roomJid,
  SERVICE,
  startMuc,
  statuses,
  users,
  type MucWorld,
} from './helpers.js';

describe('muc: creating rooms (XEP-0045 §10.1)', () => {
  let w: MucWorld;
  let alice: TestClient;
  let bob: TestClient;

  beforeEach(async () => {
    w = await startMuc();
    [alice, bob] = await users(w.h, 'alice', 'bob');
  });
  afterEach(() => w.h.stop());

  it('creates a locked room owned by its creator, with 110 and 201 in the self-presence and an empty subject', async () => {
    await alice.send(joinPresence('coven', 'crone', { id: 'create1' }));
    const self = await alice.next((s) => s.name === 'presence');
    expectXml(
      self,
      `<presence from='coven@${SERVICE}/crone' to='alice@example.com/r' id='create1'>
         <x xmlns='${NS.mucUser}'>
           <item affiliation='owner' role='moderator' jid='alice@example.com/r'/>
           <status code='110'/><status code='170'/><status code='201'/>
         </x>
         <occupant-id xmlns='${NS.occupantId}' id='*'/>
       </presence>`,
    );
    const subject = await alice.next(isSubject('coven'));
    expectXml(subject, `<message type='groupchat' from='coven@${SERVICE}' to='alice@example.com/r' id='*'><subject/></message>`);
    expect(w.api.room('coven')?.locked).to.equal(true);
  });

  it('keeps others out of a locked room with item-not-found', async () => {
    await join(alice, 'coven', 'crone');
    const err = await joinError(bob, 'coven', 'hecate');
    expectError(err, 'item-not-found', 'cancel');
    expect(err.attrs.from).to.equal(roomJid('coven', 'hecate'));
    expect(err.getChild('error')?.attrs.by).to.equal(roomJid('coven'));
    expect(err.getChild('x', NS.muc), 'the error keeps the <x/>').to.not.equal(undefined);
  });

  it('unlocks an instant room on an empty submitted form', async () => {
    await createRoom(alice, 'coven', 'crone');
    expect(w.api.room('coven')?.locked).to.equal(false);
    const self = await join(bob, 'coven', 'hecate');
    expect(statuses(self)).to.deep.equal([110, 170]);
    expect(itemOf(self)).to.include({ affiliation: 'none', role: 'participant' });
  });

  it('sends the configuration form of a reserved room with every standard field and the defaults', async () => {
    await join(alice, 'coven', 'crone');
    const reply = await alice.get(xml('query', { xmlns: NS.mucOwner }), roomJid('coven'));
    expect(reply.attrs.type).to.equal('result');
    const form = reply.getChild('query', NS.mucOwner)!.getChild('x', NS.dataForms)!;
    expect(form.attrs.type).to.equal('form');
    const f = fields(form);
    expect(f.get('FORM_TYPE')).to.deep.equal([ROOMCONFIG]);
    for (const name of [
      'roomname', 'roomdesc', 'lang', 'persistentroom', 'publicroom', 'membersonly', 'moderatedroom', 'passwordprotectedroom',
      'roomsecret', 'whois', 'maxusers', 'allowinvites', 'allowpm', 'changesubject', 'enablelogging', 'getmemberlist',
      'presencebroadcast', 'roomadmins', 'roomowners',
    ]) {
      expect(f.has(`muc#roomconfig_${name}`), name).to.equal(true);
    }
    expect(f.has('muc#maxhistoryfetch')).to.equal(true);
    expect(f.get('muc#roomconfig_maxusers')).to.deep.equal(['200']);
    expect(f.get('muc#roomconfig_persistentroom')).to.deep.equal(['0']);
    expect(f.get('muc#roomconfig_whois')).to.deep.equal(['moderators']);
    expect(f.get('muc#roomconfig_roomowners')).to.deep.equal(['alice@example.com']);
    expect(f.get('muc#maxhistoryfetch')).to.deep.equal(['20']);
  });

  it('applies a submitted configuration and unlocks the room', async () => {
    await join(alice, 'coven', 'crone');
    const reply = await alice.set(
      configSubmit({ 'muc#roomconfig_roomname': 'A Dark Cave', 'muc#roomconfig_persistentroom': '1', 'muc#roomconfig_maxusers': '30', 'muc#roomconfig_whois': 'anyone' }),
      roomJid('coven'),
    );
    expect(reply.attrs.type).to.equal('result');
    const room = w.api.room('coven')!;
    expect(room.locked).to.equal(false);
    expect(room.config).to.include({ name: 'A Dark Cave', persistent: true, maxUsers: 30, whois: 'anyone' });
    expect(await w.api.exists('coven')).to.equal(true);
  });

  it('refuses a password-protected configuration without a password (not-acceptable), leaving the room locked', async () => {
    await join(alice, 'coven', 'crone');
    const reply = await alice.set(configSubmit({ 'muc#roomconfig_passwordprotectedroom': '1' }), roomJid('coven'));
    expectError(reply, 'not-acceptable');
    expect(w.api.room('coven')?.locked).to.equal(true);
  });

  it('refuses a malformed value with bad-request and a maxusers above the service limit with not-acceptable', async () => {
    await join(alice, 'coven', 'crone');
    expectError(await alice.set(configSubmit({ 'muc#roomconfig_allowpm': 'everybody' }), roomJid('coven')), 'bad-request');
    expectError(await alice.set(configSubmit({ 'muc#roomconfig_maxusers': '5000' }), roomJid('coven')), 'not-acceptable');
    expectError(await alice.set(configSubmit({ 'muc#roomconfig_roomowners': [] }), roomJid('coven')), 'not-acceptable');
  });

  it('destroys the room when the owner cancels the initial configuration', async () => {
    await join(alice, 'coven', 'crone');
    const reply = await alice.set(xml('query', { xmlns: NS.mucOwner }, xml('x', { xmlns: NS.dataForms, type: 'cancel' })), roomJid('coven'));
    expect(reply.attrs.type).to.equal('result');
    const gone = await alice.next((s) => s.name === 'presence' && s.attrs.type === 'unavailable');
    expect(gone.getChild('x', NS.mucUser)?.getChild('destroy')).to.not.equal(undefined);
    expect(w.api.room('coven')).to.equal(undefined);
  });

  it('destroys a locked room when its creator leaves before configuring it', async () => {
    await join(alice, 'coven', 'crone');
    await alice.sendPresence({ to: roomJid('coven', 'crone'), type: 'unavailable' });
    expect(w.api.room('coven')).to.equal(undefined);
    expect(await w.api.exists('coven')).to.equal(false);
  });

  it('denies only the owner of forms: others get forbidden', async () => {
    await createRoom(alice, 'coven', 'crone');
    await join(bob, 'coven', 'hecate');
    expectError(await bob.get(xml('query', { xmlns: NS.mucOwner }), roomJid('coven')), 'forbidden', 'auth');
    expectError(await bob.set(configSubmit({ 'muc#roomconfig_roomname': 'mine' }), roomJid('coven')), 'forbidden', 'auth');
  });

  it('answers presence without a nick with jid-malformed', async () => {
    await alice.send(xml('presence', { to: roomJid('coven') }, xml('x', { xmlns: NS.muc })));
    const err = await alice.next((s) => s.name === 'presence');
    expectError(err, 'jid-malformed', 'modify');
  });

  it('refuses an invisible nick', async () => {
    const err = await joinError(alice, 'coven', ' ');
    expect(errorCondition(err)).to.equal('jid-malformed');
  });

  it('answers a groupchat 1.0 join (no <x/>) with an explicit removal: 110, 307, 333', async () => {
    await createRoom(alice, 'coven', 'crone');
    await bob.sendPresence({ to: roomJid('coven', 'hecate') });
    const p = await bob.next((s) => s.name === 'presence');
    expect(p.attrs.type).to.equal('unavailable');
    expect(statuses(p)).to.deep.equal([110, 307, 333]);
    expect(itemOf(p)).to.include({ role: 'none' });
    expect(w.api.room('coven')!.occupants.map((o) => o.nick)).to.deep.equal(['crone']);
  });

  it('destroys a temporary room when its last occupant leaves, archive and all', async () => {
    await createRoom(alice, 'coven', 'crone');
    await alice.send(xml('message', { to: roomJid('coven'), type: 'groupchat' }, xml('body', {}, 'hi')));
    await alice.sendPresence({ to: roomJid('coven', 'crone'), type: 'unavailable' });
    expect(w.api.room('coven')).to.equal(undefined);
    // A new room of the same name starts afresh: created (201) and without history.
    const self = await join(alice, 'coven', 'crone');
    expect(statuses(self)).to.include(201);
  });

  describe('restrictRoomCreation', () => {
    it("'local' (the default) refuses users of other servers with not-allowed", async () => {
      await w.h.route(xml('presence', { from: 'mallory@evil.example/x', to: roomJid('evil', 'm') }, xml('x', { xmlns: NS.muc })));
      expect(w.api.room('evil')).to.equal(undefined);
    });

    it("'admins' lets only server admins create rooms", async () => {
      await w.h.stop();
      w = await startMuc({ server: { admins: [(await import('../../../lib/module-api.js')).Jid.parse('admin@example.com')] } }, { restrictRoomCreation: 'admins' });
      const [admin, carol] = await users(w.h, 'admin', 'carol');
      expectError(await joinError(carol, 'club', 'c'), 'not-allowed', 'cancel');
      const self = await join(admin, 'club', 'boss');
      expect(statuses(self)).to.include(201);
    });
  });
});
