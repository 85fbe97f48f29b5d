import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { expect } from 'chai';
import { NS, xml } from '../../../lib/module-api.js';
import type { TestClient } from '../../helpers/harness.js';
import { expectError } from '../../helpers/xml-assert.js';
import {
  adminItem,
  adminSet,
  createRoom,
  groupchat,
  isSubject,
  itemOf,
  join,
  joinError,
  joinPresence,
  nextBody,
  roomJid,
  startMuc,
  statuses,
  users,
  type MucWorld,
} from './helpers.js';

describe('muc: a restart keeps persistent rooms (storagePath)', () => {
  let dir: string;
  let w: MucWorld | undefined;

  beforeEach(() => {
    dir = mkdtempSync(joinPath(tmpdir(), 'parley-muc-'));
  });
  afterEach(async () => {
    await w?.h.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const start = () => startMuc({ storagePath: joinPath(dir, 'parley.db') });

  it('keeps configuration, affiliations, reserved nicks, subject, archive and occupant ids; temporary rooms vanish', async () => {
    w = await start();
    let [alice, bob, carol] = await users(w.h, 'alice', 'bob', 'carol');
    await createRoom(alice, 'coven', 'crone', {
      'muc#roomconfig_persistentroom': '1',
      'muc#roomconfig_roomname': 'A Dark Cave',
      'muc#roomconfig_membersonly': '1',
      'muc#roomconfig_passwordprotectedroom': '1',
      'muc#roomconfig_roomsecret': 'cauldronburn',
    });
    await createRoom(alice, 'temp', 'crone');
    await alice.set(adminSet(adminItem({ affiliation: 'member', jid: 'bob@example.com', nick: 'hecate' })), roomJid('coven'));
    await alice.set(adminSet(adminItem({ affiliation: 'outcast', jid: 'carol@example.com' }, 'Treason')), roomJid('coven'));
    await alice.send(xml('message', { to: roomJid('coven'), type: 'groupchat' }, xml('subject', {}, 'Spells')));
    const selfBefore = await join(bob, 'coven', 'hecate', { password: 'cauldronburn' });
    await bob.send(groupchat('coven', 'before the restart'));
    const live = await nextBody(alice, 'before the restart');
    // What the server does on server/stopping (the harness stops without it): the room's
    // archive writes, which never hold up the fan-out, are durable before the database closes.
    await w.api.shutdown();
    await w.h.stop();

    w = await start();
    [alice, bob, carol] = await users(w.h, 'alice', 'bob', 'carol');
    expect(await w.api.exists('coven')).to.equal(true);
    expect(await w.api.exists('temp')).to.equal(false);
    expectError(await joinError(carol, 'coven', 'third', { password: 'cauldronburn' }), 'forbidden');
    expectError(await joinError(carol, 'coven', 'hecate', { password: 'cauldronburn' }), 'forbidden');
    expectError(await joinError(alice, 'coven', 'crone'), 'not-authorized');
    await alice.send(joinPresence('coven', 'crone', { password: 'cauldronburn' }));
    const self = await alice.next((s) => s.name === 'presence' && statuses(s).includes(110));
    expect(statuses(self)).to.not.include(201);
    expect(itemOf(self)).to.include({ affiliation: 'owner', role: 'moderator' });
    // History from the archive, then the subject that was kept.
    const history = await alice.next((s) => s.name === 'message' && s.getChildText('body') === 'before the restart');
    expect(history.getChild('stanza-id', NS.sid)!.attrs.id).to.equal(live.getChild('stanza-id', NS.sid)!.attrs.id);
    const subject = await alice.next(isSubject('coven'));
    expect(subject.getChildText('subject')).to.equal('Spells');
    expect(w.api.room('coven')!.config).to.include({ name: 'A Dark Cave', persistent: true, membersOnly: true });
    const selfAfter = await join(bob, 'coven', 'hecate', { password: 'cauldronburn' });
    expect(itemOf(selfAfter)).to.include({ affiliation: 'member' });
    expect(selfAfter.getChild('occupant-id', NS.occupantId)!.attrs.id).to.equal(selfBefore.getChild('occupant-id', NS.occupantId)!.attrs.id);
    const bans = await alice.get(xml('query', { xmlns: NS.mucAdmin }, xml('item', { affiliation: 'outcast' })), roomJid('coven'));
    expect(bans.getChild('query')!.getChild('item')!.getChildText('reason')).to.equal('Treason');
    const archive = await alice.set(xml('query', { xmlns: NS.mam }), roomJid('coven'));
    // The subject change and the message.
    expect(archive.getChild('fin', NS.mam)!.getChild('set')!.getChildText('count')).to.equal('2');
  });

  it('keeps an empty persistent room, and forgets it once destroyed', async () => {
    w = await start();
    let [alice] = await users(w.h, 'alice');
    await createRoom(alice, 'coven', 'crone', { 'muc#roomconfig_persistentroom': '1' });
    await alice.sendPresence({ to: roomJid('coven', 'crone'), type: 'unavailable' });
    expect(w.api.room('coven')).to.equal(undefined);
    expect(await w.api.exists('coven')).to.equal(true);
    await w.h.stop();
    w = await start();
    [alice] = await users(w.h, 'alice');
    const reply = await alice.set(xml('query', { xmlns: NS.mucOwner }, xml('destroy')), roomJid('coven'));
    expect(reply.attrs.type).to.equal('result');
    await w.h.stop();
    w = await start();
    expect(await w.api.exists('coven')).to.equal(false);
  });

  it('gives a new room no trace of a temporary room of the same name that a stop cut short', async () => {
    w = await start();
    let [alice, bob] = await users(w.h, 'alice', 'bob');
    await createRoom(alice, 'temp', 'crone');
    await alice.send(groupchat('temp', 'said in a temporary room'));
    await nextBody(alice, 'said in a temporary room');
    await w.h.stop();
    w = await start();
    [alice, bob] = await users(w.h, 'alice', 'bob');
    await createRoom(bob, 'temp', 'hecate');
    const archive = await bob.set(xml('query', { xmlns: NS.mam }), roomJid('temp'));
    expect(archive.getChild('fin', NS.mam)!.getChild('set')!.getChildText('count')).to.equal('0');
    const history = await join(alice, 'temp', 'crone');
    expect(statuses(history)).to.not.include(201);
    expect(alice.received.some((s) => s.getChildText('body') === 'said in a temporary room')).to.equal(false);
  });

  it('keeps the voice moderators gave or took across a restart (XEP-0045 §5.1), and drops it with the room', async () => {
    w = await start();
    let [alice, bob, dave] = await users(w.h, 'alice', 'bob', 'dave');
    await createRoom(alice, 'coven', 'crone', { 'muc#roomconfig_persistentroom': '1', 'muc#roomconfig_moderatedroom': '1' });
    await alice.set(adminSet(adminItem({ affiliation: 'member', jid: 'bob@example.com' })), roomJid('coven'));
    await join(bob, 'coven', 'hecate');
    await join(dave, 'coven', 'dave');
    expect((await alice.set(adminSet(adminItem({ nick: 'hecate', role: 'visitor' }), adminItem({ nick: 'dave', role: 'participant' })), roomJid('coven'))).attrs.type).to.equal('result');
    await w.h.stop();

    w = await start();
    [alice, bob, dave] = await users(w.h, 'alice', 'bob', 'dave');
    expect(itemOf(await join(bob, 'coven', 'hecate'))).to.include({ affiliation: 'member', role: 'visitor' });
    expect(itemOf(await join(dave, 'coven', 'dave'))).to.include({ affiliation: 'none', role: 'participant' });
    await join(alice, 'coven', 'crone');
    expect((await alice.set(xml('query', { xmlns: NS.mucOwner }, xml('destroy')), roomJid('coven'))).attrs.type).to.equal('result');
    const rows = await w.h.storage.db.selectFrom('muc_roles' as never).selectAll().execute();
    expect(rows).to.deep.equal([]);
  });

  it('forgets a room made temporary again when its last occupant leaves', async () => {
    w = await start();
    const [alice]: TestClient[] = await users(w.h, 'alice');
    await createRoom(alice, 'coven', 'crone', { 'muc#roomconfig_persistentroom': '1' });
    await alice.set(
      xml('query', { xmlns: NS.mucOwner }, xml('x', { xmlns: NS.dataForms, type: 'submit' }, xml('field', { var: 'muc#roomconfig_persistentroom' }, xml('value', {}, '0')))),
      roomJid('coven'),
    );
    await alice.sendPresence({ to: roomJid('coven', 'crone'), type: 'unavailable' });
    expect(await w.api.exists('coven')).to.equal(false);
  });
});
