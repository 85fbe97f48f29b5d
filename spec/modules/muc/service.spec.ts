import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { NS, xml } from '../../../lib/module-api.js';
import type { Element } from '../../../lib/module-api.js';
import type { TestClient } from '../../helpers/harness.js';
import { expectError, expectXml } from '../../helpers/xml-assert.js';
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
  nextBody,
  presenceFrom,
  roomJid,
  SERVICE,
  startMuc,
  statuses,
  users,
  type MucWorld,
} from './helpers.js';

const ROOM = roomJid('coven');
const features = (reply: Element) => reply.getChild('query', NS.discoInfo)!.getChildren('feature').map((f) => f.attrs.var as string);
const occupantIdOf = (s: Element) => s.getChild('occupant-id', NS.occupantId)?.attrs.id as string | undefined;

describe('muc: service, disco, occupant ids, self-ping, registration, vCard, destruction', () => {
  let w: MucWorld;
  let alice: TestClient;
  let bob: TestClient;
  let carol: TestClient;

  beforeEach(async () => {
    w = await startMuc();
    [alice, bob, carol] = await users(w.h, 'alice', 'bob', 'carol');
  });
  afterEach(() => w.h.stop());

  describe('disco (XEP-0045 §6)', () => {
    it('lists the service, with its name, among the host’s items', async () => {
      const reply = await alice.get(xml('query', { xmlns: NS.discoItems }));
      const item = reply.getChild('query')!.getChildren('item').find((i) => i.attrs.jid === SERVICE);
      expect(item?.attrs.name).to.equal('Chatrooms');
    });

    it('describes the service: conference/text, muc, stable ids, occupant ids', async () => {
      const reply = await alice.get(xml('query', { xmlns: NS.discoInfo }), SERVICE);
      expectXml(reply.getChild('query')!.getChild('identity'), `<identity category='conference' type='text' name='Chatrooms'/>`);
      expect(features(reply)).to.include.members([NS.muc, 'http://jabber.org/protocol/muc#stable_id', NS.occupantId, NS.discoInfo, NS.discoItems]);
      expect((await alice.get(xml('ping', { xmlns: NS.ping }), SERVICE)).attrs.type).to.equal('result');
      expectError(await alice.get(xml('query', { xmlns: NS.version }), SERVICE), 'service-unavailable');
    });

    it('lists public rooms only (not hidden, not locked), with their names, paged with RSM', async () => {
      await createRoom(alice, 'aaa', 'a', { 'muc#roomconfig_roomname': 'First' });
      await createRoom(alice, 'bbb', 'a', { 'muc#roomconfig_publicroom': '0' });
      await createRoom(alice, 'ccc', 'a', { 'muc#roomconfig_persistentroom': '1' });
      await join(alice, 'ddd', 'a'); // locked
      const reply = await bob.get(xml('query', { xmlns: NS.discoItems }), SERVICE);
      const items = reply.getChild('query')!.getChildren('item').map((i) => i.attrs);
      expect(items).to.deep.equal([{ jid: `aaa@${SERVICE}`, name: 'First' }, { jid: `ccc@${SERVICE}` }]);
      const paged = await bob.get(xml('query', { xmlns: NS.discoItems }, xml('set', { xmlns: NS.rsm }, xml('max', {}, '1'))), SERVICE);
      const q = paged.getChild('query')!;
      expect(q.getChildren('item').map((i) => i.attrs.jid)).to.deep.equal([`aaa@${SERVICE}`]);
      expect(q.getChild('set', NS.rsm)!.getChildText('last')).to.equal(`aaa@${SERVICE}`);
      const next = await bob.get(xml('query', { xmlns: NS.discoItems }, xml('set', { xmlns: NS.rsm }, xml('max', {}, '1'), xml('after', {}, `aaa@${SERVICE}`))), SERVICE);
      expect(next.getChild('query')!.getChildren('item').map((i) => i.attrs.jid)).to.deep.equal([`ccc@${SERVICE}`]);
    });

    it('describes a room by its type, with the roominfo form', async () => {
      await createRoom(alice, 'coven', 'crone', {
        'muc#roomconfig_roomname': 'A Dark Cave',
        'muc#roomconfig_roomdesc': 'The place for all good witches!',
        'muc#roomconfig_persistentroom': '1',
        'muc#roomconfig_membersonly': '1',
        'muc#roomconfig_whois': 'anyone',
        'muc#roomconfig_lang': 'en',
      });
      await alice.send(xml('message', { to: ROOM, type: 'groupchat' }, xml('subject', {}, 'Spells')));
      const reply = await bob.get(xml('query', { xmlns: NS.discoInfo }), ROOM);
      expect(reply.getChild('query')!.getChild('identity')!.attrs).to.deep.equal({ category: 'conference', type: 'text', name: 'A Dark Cave' });
      expect(features(reply)).to.include.members([
        NS.muc, 'http://jabber.org/protocol/muc#stable_id', 'http://jabber.org/protocol/muc#self-ping-optimization', NS.mam, 'urn:xmpp:mam:2#extended',
        NS.occupantId, NS.vcard, 'urn:xmpp:message-moderate:1', 'muc_persistent', 'muc_membersonly', 'muc_nonanonymous', 'muc_public',
        'muc_unmoderated', 'muc_unsecured',
      ]);
      expect(features(reply)).to.not.include.members(['muc_temporary', 'muc_open', 'muc_semianonymous', NS.register]);
      const f = fields(reply.getChild('query')!.getChild('x', NS.dataForms));
      expect(f.get('FORM_TYPE')).to.deep.equal(['http://jabber.org/protocol/muc#roominfo']);
      expect(f.get('muc#roominfo_description')).to.deep.equal(['The place for all good witches!']);
      expect(f.get('muc#roominfo_subject')).to.deep.equal(['Spells']);
      expect(f.get('muc#roominfo_occupants')).to.deep.equal(['1']);
      expect(f.get('muc#roominfo_lang')).to.deep.equal(['en']);
    });

    it('answers item-not-found for a room that does not exist or is locked', async () => {
      expectError(await bob.get(xml('query', { xmlns: NS.discoInfo }), roomJid('nowhere')), 'item-not-found');
      await join(alice, 'locked', 'a');
      expectError(await bob.get(xml('query', { xmlns: NS.discoInfo }), roomJid('locked')), 'item-not-found');
      expect((await alice.get(xml('query', { xmlns: NS.discoInfo }), roomJid('locked'))).attrs.type).to.equal('result');
    });

    it('lists the occupants to occupants only; disco to an occupant JID from outside is bad-request', async () => {
      await createRoom(alice, 'coven', 'crone');
      const inside = await alice.get(xml('query', { xmlns: NS.discoItems }), ROOM);
      expect(inside.getChild('query')!.getChildren('item').map((i) => i.attrs.jid)).to.deep.equal([roomJid('coven', 'crone')]);
      const outside = await bob.get(xml('query', { xmlns: NS.discoItems }), ROOM);
      expect(outside.getChild('query')!.getChildren('item')).to.deep.equal([]);
      expectError(await bob.get(xml('query', { xmlns: NS.discoInfo }), roomJid('coven', 'crone')), 'bad-request');
    });
  });

  describe('occupant ids (XEP-0421)', () => {
    it('gives each account one stable id per room, different across rooms and accounts, on presence and messages', async () => {
      await createRoom(alice, 'coven', 'crone');
      await createRoom(alice, 'other', 'crone');
      const first = occupantIdOf(await join(bob, 'coven', 'hecate'))!;
      expect(first).to.be.a('string').with.length.above(20).and.length.at.most(128);
      await bob.send(groupchat('coven', 'hi'));
      expect(occupantIdOf(await nextBody(alice, 'hi'))).to.equal(first);
      await bob.sendPresence({ to: roomJid('coven', 'hecate'), type: 'unavailable' });
      const again = occupantIdOf(await join(bob, 'coven', 'newnick'))!;
      expect(again).to.equal(first);
      const bob2 = await w.h.connect('bob@example.com/phone');
      expect(occupantIdOf(await join(bob2, 'coven', 'newnick'))).to.equal(first);
      expect(occupantIdOf(await join(bob, 'other', 'hecate'))).to.not.equal(first);
      expect(occupantIdOf(await join(carol, 'coven', 'third'))).to.not.equal(first);
    });
  });

  describe('self-ping (XEP-0410) and IQs between occupants', () => {
    beforeEach(async () => {
      await createRoom(alice, 'coven', 'crone');
      await join(bob, 'coven', 'hecate');
    });

    it('answers a self-ping itself when joined, not-acceptable when not', async () => {
      const ok = await bob.get(xml('ping', { xmlns: NS.ping }), roomJid('coven', 'hecate'));
      expectXml(ok, `<iq type='result' id='*' from='${roomJid('coven', 'hecate')}' to='bob@example.com/r'/>`);
      const err = await carol.get(xml('ping', { xmlns: NS.ping }), roomJid('coven', 'hecate'));
      expectError(err, 'not-acceptable');
      expect(err.getChild('error')!.attrs.by).to.equal(ROOM);
      expectError(await carol.get(xml('ping', { xmlns: NS.ping }), roomJid('nowhere', 'x')), 'not-acceptable');
      const bob2 = await w.h.connect('bob@example.com/phone');
      expectError(await bob2.get(xml('ping', { xmlns: NS.ping }), roomJid('coven', 'hecate')), 'not-acceptable');
    });

    it('passes an IQ to another occupant through the room, hiding both real JIDs', async () => {
      const pending = bob.get(xml('query', { xmlns: NS.version }), roomJid('coven', 'crone'));
      const forwarded = await alice.next((s) => s.name === 'iq' && s.attrs.type === 'get');
      expect(forwarded.attrs.from).to.equal(roomJid('coven', 'hecate'));
      await alice.send(xml('iq', { type: 'result', id: forwarded.attrs.id as string, to: forwarded.attrs.from as string }, xml('query', { xmlns: NS.version }, xml('name', {}, 'Witchcraft'))));
      const reply = await pending;
      expect(reply.attrs.type).to.equal('result');
      expect(reply.attrs.from).to.equal(roomJid('coven', 'crone'));
      expect(reply.getChild('query')!.getChildText('name')).to.equal('Witchcraft');
    });

    it('answers item-not-found for an IQ to a nick nobody has', async () => {
      expectError(await bob.get(xml('query', { xmlns: NS.version }), roomJid('coven', 'nobody')), 'item-not-found');
    });
  });

  describe('registration (XEP-0045 §7.10, §7.12)', () => {
    const register = (nick: string) =>
      xml(
        'query',
        { xmlns: NS.register },
        xml(
          'x',
          { xmlns: NS.dataForms, type: 'submit' },
          xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'http://jabber.org/protocol/muc#register')),
          xml('field', { var: 'muc#register_roomnick' }, xml('value', {}, nick)),
        ),
      );

    beforeEach(() => createRoom(alice, 'coven', 'crone'));

    it('offers the form, registers the nick as a member, and says so afterwards', async () => {
      const form = await bob.get(xml('query', { xmlns: NS.register }), ROOM);
      const f = fields(form.getChild('query', NS.register)!.getChild('x', NS.dataForms));
      expect(f.get('FORM_TYPE')).to.deep.equal(['http://jabber.org/protocol/muc#register']);
      expect(f.has('muc#register_roomnick')).to.equal(true);
      expect((await bob.set(register('thirdwitch'), ROOM)).attrs.type).to.equal('result');
      const again = await bob.get(xml('query', { xmlns: NS.register }), ROOM);
      expectXml(again.getChild('query'), `<query xmlns='${NS.register}'><registered/><username>thirdwitch</username></query>`);
      const nick = await bob.get(xml('query', { xmlns: NS.discoInfo, node: 'x-roomuser-item' }), ROOM);
      expect(nick.getChild('query')!.getChild('identity')!.attrs).to.include({ category: 'conference', type: 'text', name: 'thirdwitch' });
      expect((await carol.get(xml('query', { xmlns: NS.discoInfo, node: 'x-roomuser-item' }), ROOM)).getChild('query')!.getChildren('identity')).to.deep.equal([]);
      expectError(await joinError(carol, 'coven', 'thirdwitch'), 'conflict');
      expect(itemOf(await join(bob, 'coven', 'thirdwitch'))).to.include({ affiliation: 'member' });
    });

    it('refuses a nick reserved by someone else (conflict) and a bad form (bad-request)', async () => {
      await bob.set(register('thirdwitch'), ROOM);
      expectError(await carol.set(register('thirdwitch'), ROOM), 'conflict');
      expectError(await carol.set(xml('query', { xmlns: NS.register }), ROOM), 'bad-request');
    });

    it('refuses registration with a members-only room (not-allowed) and with a missing room (item-not-found)', async () => {
      await alice.set(configSubmit({ 'muc#roomconfig_membersonly': '1' }), ROOM);
      expectError(await bob.get(xml('query', { xmlns: NS.register }), ROOM), 'not-allowed');
      expectError(await bob.get(xml('query', { xmlns: NS.register }), roomJid('nowhere')), 'item-not-found');
    });

    it('cancels a registration with <remove/>', async () => {
      await bob.set(register('thirdwitch'), ROOM);
      expect((await bob.set(xml('query', { xmlns: NS.register }, xml('remove')), ROOM)).attrs.type).to.equal('result');
      expect(w.api.room('coven')!.affiliations.map((a) => a.jid)).to.not.include('bob@example.com');
    });
  });

  describe('room vCard and avatar', () => {
    const PHOTO = Buffer.from('not really a png').toString('base64');
    const vcard = () => xml('vCard', { xmlns: NS.vcard }, xml('FN', {}, 'The Coven'), xml('PHOTO', {}, xml('TYPE', {}, 'image/png'), xml('BINVAL', {}, PHOTO)));

    it('lets owners set it, anyone read it, and announces the avatar hash', async () => {
      await createRoom(alice, 'coven', 'crone');
      await join(bob, 'coven', 'hecate');
      expectError(await bob.set(vcard(), ROOM), 'forbidden');
      expect((await alice.set(vcard(), ROOM)).attrs.type).to.equal('result');
      const hash = createHash('sha1').update(Buffer.from(PHOTO, 'base64')).digest('hex');
      const p = await bob.next((s) => s.name === 'presence' && s.attrs.from === ROOM);
      expect(p.getChild('x', 'vcard-temp:x:update')!.getChildText('photo')).to.equal(hash);
      const got = await carol.get(xml('vCard', { xmlns: NS.vcard }), ROOM);
      expect(got.getChild('vCard', NS.vcard)!.getChildText('FN')).to.equal('The Coven');
      // A newcomer gets the hash after the subject.
      await join(carol, 'coven', 'third');
      const onJoin = carol.received.find((s) => s.name === 'presence' && s.attrs.from === ROOM)!;
      expect(onJoin.getChild('x', 'vcard-temp:x:update')!.getChildText('photo')).to.equal(hash);
      const info = await carol.get(xml('query', { xmlns: NS.discoInfo }), ROOM);
      expect(fields(info.getChild('query')!.getChild('x', NS.dataForms)).get('muc#roominfo_avatarhash')).to.deep.equal([hash]);
    });
  });

  describe('destruction (§10.9)', () => {
    it('removes every occupant with <destroy/>, the alternate venue and the reason, and forgets the room', async () => {
      await createRoom(alice, 'coven', 'crone', { 'muc#roomconfig_persistentroom': '1' });
      await join(bob, 'coven', 'hecate');
      await alice.send(groupchat('coven', 'last words'));
      expectError(await bob.set(xml('query', { xmlns: NS.mucOwner }, xml('destroy')), ROOM), 'forbidden');
      const reply = await alice.set(
        xml('query', { xmlns: NS.mucOwner }, xml('destroy', { jid: roomJid('heath') }, xml('reason', {}, 'Macbeth doth come.'), xml('password', {}, 'pw'))),
        ROOM,
      );
      expect(reply.attrs.type).to.equal('result');
      const gone = await bob.next(presenceFrom('coven', 'hecate', 'unavailable'));
      expectXml(
        gone.getChild('x', NS.mucUser),
        `<x xmlns='${NS.mucUser}'>
           <item affiliation='none' role='none' jid='bob@example.com/r'/>
           <status code='110'/>
           <destroy jid='${roomJid('heath')}'><reason>Macbeth doth come.</reason><password>pw</password></destroy>
         </x>`,
      );
      // One presence each: nobody hears of the others leaving.
      expect(bob.received.filter(presenceFrom('coven', 'crone', 'unavailable'))).to.deep.equal([]);
      expect(await w.api.exists('coven')).to.equal(false);
      expect(await w.h.storage.archive('muc').count(SERVICE, 'coven')).to.equal(0);
    });
  });

  it('announces a shutdown of the service with 332', async () => {
    await createRoom(alice, 'coven', 'crone');
    await w.api.shutdown();
    const p = await alice.next(presenceFrom('coven', 'crone', 'unavailable'));
    expect(statuses(p)).to.deep.equal([110, 332]);
  });

  it('deletes archived messages past the retention', async () => {
    await createRoom(alice, 'coven', 'crone', { 'muc#roomconfig_persistentroom': '1' });
    await alice.send(groupchat('coven', 'old news'));
    expect(await w.api.expireArchives()).to.equal(0);
    expect(await w.api.expireArchives(Date.now() + 366 * 86_400_000)).to.equal(1);
  });

  it("forgets a deleted account's affiliations", async () => {
    await createRoom(alice, 'coven', 'crone', { 'muc#roomconfig_persistentroom': '1' });
    await alice.set(adminSet(adminItem({ affiliation: 'member', jid: 'bob@example.com', nick: 'hecate' })), ROOM);
    await w.h.deleteAccount('bob');
    await w.h.settle();
    expect(w.api.room('coven')!.affiliations.map((a) => a.jid)).to.deep.equal(['alice@example.com']);
    const members = await alice.get(xml('query', { xmlns: NS.mucAdmin }, xml('item', { affiliation: 'member' })), ROOM);
    expect(members.getChild('query')!.getChildren('item')).to.deep.equal([]);
  });
});
