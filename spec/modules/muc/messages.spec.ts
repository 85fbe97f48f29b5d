import { expect } from 'chai';
import { NS, serialize, xml } from '../../../lib/module-api.js';
import type { Element } from '../../../lib/module-api.js';
import type { TestClient } from '../../helpers/harness.js';
import { expectError, expectXml } from '../../helpers/xml-assert.js';
import {
  adminItem,
  adminSet,
  bodyOf,
  configSubmit,
  createRoom,
  fields,
  groupchat,
  isSubject,
  itemOf,
  join,
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
const errorOf = (c: TestClient) => c.next((s) => s.name === 'message' && s.attrs.type === 'error');

describe('muc: messages (XEP-0045 §7.4-7.8, §8.1)', () => {
  let w: MucWorld;
  let alice: TestClient;
  let bob: TestClient;
  let carol: TestClient;

  beforeEach(async () => {
    w = await startMuc();
    [alice, bob, carol] = await users(w.h, 'alice', 'bob', 'carol');
    await createRoom(alice, 'coven', 'crone');
    await join(bob, 'coven', 'hecate');
  });
  afterEach(() => w.h.stop());

  describe('to everyone (§7.4)', () => {
    it('reflects a message to every occupant from the occupant JID, keeping its id, with stanza-id and occupant-id', async () => {
      await bob.send(groupchat('coven', 'Harpier cries', { id: 'hysf1v37' }));
      const got = await nextBody(alice, 'Harpier cries');
      expectXml(
        got,
        `<message type='groupchat' from='coven@${SERVICE}/hecate' to='alice@example.com/r' id='hysf1v37'>
           <body>Harpier cries</body>
           <occupant-id xmlns='${NS.occupantId}' id='*'/>
           <stanza-id xmlns='${NS.sid}' id='*' by='coven@${SERVICE}'/>
         </message>`,
      );
      const own = await nextBody(bob, 'Harpier cries');
      expect(own.getChild('stanza-id', NS.sid)!.attrs.id).to.equal(got.getChild('stanza-id', NS.sid)!.attrs.id);
    });

    it('sends each occupant its own envelope around shared children that nothing can change in place', async () => {
      await bob.send(groupchat('coven', 'shared words', { id: 'sh1' }));
      const a = await nextBody(alice, 'shared words');
      const b = await nextBody(bob, 'shared words');
      expect([a.attrs.to, b.attrs.to]).to.deep.equal(['alice@example.com/r', 'bob@example.com/r']);
      expect(a.getChild('body')).to.equal(b.getChild('body'));
      expect(serialize(a)).to.equal(a.toString());
      // Frozen: a change would show in every copy (and in the text kept for them), so it throws.
      expect(() => { a.getChild('body')!.children.push(' and more'); }).to.throw(TypeError);
      expect(() => { a.getChild('body')!.attrs.id = 'x'; }).to.throw(TypeError);
      a.attrs.to = 'someone@example.com/else';
      a.cnode(xml('extra', { xmlns: 'urn:example' }));
      expect(b.attrs.to).to.equal('bob@example.com/r');
      expect(serialize(b)).to.equal(b.toString());
      expect(serialize(b)).to.not.include('extra');
      expect(bodyOf(b)).to.equal('shared words');
    });

    it('gives a message without id one id for all its copies', async () => {
      await bob.send(xml('message', { to: ROOM, type: 'groupchat' }, xml('body', {}, 'no id')));
      const a = await nextBody(alice, 'no id');
      const b = await nextBody(bob, 'no id');
      expect(a.attrs.id).to.be.a('string').and.equal(b.attrs.id);
    });

    it("replaces a client's own stanza-id (by the room) and occupant-id, and drops its muc#user extension", async () => {
      await bob.send(
        groupchat('coven', 'forged', {}),
      );
      await nextBody(alice, 'forged');
      await bob.send(
        xml(
          'message',
          { to: ROOM, type: 'groupchat', id: 'f2' },
          xml('body', {}, 'forged2'),
          xml('stanza-id', { xmlns: NS.sid, id: 'fake', by: ROOM }),
          xml('occupant-id', { xmlns: NS.occupantId, id: 'fake' }),
          xml('x', { xmlns: NS.mucUser }, xml('item', { affiliation: 'owner' })),
        ),
      );
      const got = await nextBody(alice, 'forged2');
      expect(got.getChildren('stanza-id', NS.sid)).to.have.length(1);
      expect(got.getChild('stanza-id', NS.sid)!.attrs.id).to.not.equal('fake');
      expect(got.getChildren('occupant-id', NS.occupantId)).to.have.length(1);
      expect(got.getChild('occupant-id', NS.occupantId)!.attrs.id).to.not.equal('fake');
      expect(got.getChild('x', NS.mucUser)).to.equal(undefined);
    });

    it('passes chat states through without archiving them', async () => {
      await bob.send(xml('message', { to: ROOM, type: 'groupchat' }, xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' })));
      const got = await alice.next((s) => s.name === 'message' && s.getChild('composing') !== undefined);
      expect(got.getChild('stanza-id', NS.sid)).to.equal(undefined);
    });

    it('answers a non-occupant with not-acceptable, and a missing room with item-not-found', async () => {
      await carol.send(groupchat('coven', 'let me in'));
      expectError(await errorOf(carol), 'not-acceptable');
      await carol.send(groupchat('nowhere', 'hello'));
      expectError(await errorOf(carol), 'item-not-found');
    });

    it('refuses a body sent to the room with another type than groupchat (bad-request)', async () => {
      await bob.send(xml('message', { to: ROOM, type: 'chat' }, xml('body', {}, 'wrong type')));
      expectError(await errorOf(bob), 'bad-request');
    });

    it('limits how fast an occupant may send (policy-violation, type wait)', async () => {
      await w.h.stop();
      w = await startMuc({}, { messageRate: { perSecond: 0.001, burst: 2 } });
      [alice] = await users(w.h, 'alice');
      await createRoom(alice, 'coven', 'crone');
      for (const n of [1, 2]) await alice.send(groupchat('coven', `m${n}`));
      await alice.send(groupchat('coven', 'm3'));
      expectError(await errorOf(alice), 'policy-violation', 'wait');
    });
  });

  describe('subject (§7.2.15, §8.1)', () => {
    it('lets a moderator change it: everyone gets it from the occupant JID; newcomers get it with a delay', async () => {
      await alice.send(xml('message', { to: ROOM, type: 'groupchat', id: 's1' }, xml('subject', {}, 'Fire Burn and Cauldron Bubble!')));
      const got = await bob.next((s) => s.name === 'message' && s.getChildText('subject') === 'Fire Burn and Cauldron Bubble!');
      expect(got.attrs.from).to.equal(roomJid('coven', 'crone'));
      expect(got.getChild('body')).to.equal(undefined);
      await join(carol, 'coven', 'third');
      const subject = carol.received.find(isSubject('coven'))!;
      expect(subject.getChildText('subject')).to.equal('Fire Burn and Cauldron Bubble!');
      expect(subject.attrs.from).to.equal(roomJid('coven', 'crone'));
      expect(subject.getChild('delay', NS.delay)?.attrs.from).to.equal(ROOM);
      expect(w.api.room('coven')!.subject).to.equal('Fire Burn and Cauldron Bubble!');
    });

    it('forbids participants to change it unless changesubject allows it', async () => {
      await bob.send(xml('message', { to: ROOM, type: 'groupchat' }, xml('subject', {}, 'mine')));
      expectError(await errorOf(bob), 'forbidden');
      await alice.set(configSubmit({ 'muc#roomconfig_changesubject': '1' }), ROOM);
      await bob.send(xml('message', { to: ROOM, type: 'groupchat' }, xml('subject', {}, 'mine')));
      await alice.next((s) => s.name === 'message' && s.getChildText('subject') === 'mine');
    });

    it('treats a message with a subject and a body as a message, not a subject change', async () => {
      await bob.send(xml('message', { to: ROOM, type: 'groupchat' }, xml('subject', {}, 's'), xml('body', {}, 'b')));
      await nextBody(alice, 'b');
      expect(w.api.room('coven')!.subject).to.equal(undefined);
    });
  });

  describe('private messages (§7.5)', () => {
    it('delivers from the sender occupant JID with <x xmlns=muc#user/>', async () => {
      await bob.send(xml('message', { to: roomJid('coven', 'crone'), type: 'chat', id: 'pm1' }, xml('body', {}, "I'll give thee a wind."), xml('x', { xmlns: NS.mucUser })));
      const got = await nextBody(alice, "I'll give thee a wind.");
      expectXml(
        got,
        `<message type='chat' from='coven@${SERVICE}/hecate' to='alice@example.com/r' id='pm1'>
           <body>I'll give thee a wind.</body>
           <x xmlns='${NS.mucUser}'/>
           <occupant-id xmlns='${NS.occupantId}' id='*'/>
         </message>`,
      );
    });

    it('refuses type groupchat (bad-request), an unknown nick (item-not-found), a non-occupant (not-acceptable)', async () => {
      await bob.send(xml('message', { to: roomJid('coven', 'crone'), type: 'groupchat' }, xml('body', {}, 'x')));
      expectError(await errorOf(bob), 'bad-request');
      await bob.send(xml('message', { to: roomJid('coven', 'nobody'), type: 'chat' }, xml('body', {}, 'x')));
      expectError(await errorOf(bob), 'item-not-found');
      await carol.send(xml('message', { to: roomJid('coven', 'crone'), type: 'chat' }, xml('body', {}, 'x')));
      expectError(await errorOf(carol), 'not-acceptable');
    });

    it('follows allowpm: nobody, or moderators only', async () => {
      await alice.set(configSubmit({ 'muc#roomconfig_allowpm': 'moderators' }), ROOM);
      await bob.send(xml('message', { to: roomJid('coven', 'crone'), type: 'chat' }, xml('body', {}, 'x')));
      expectError(await errorOf(bob), 'forbidden');
      await alice.send(xml('message', { to: roomJid('coven', 'hecate'), type: 'chat' }, xml('body', {}, 'from a moderator')));
      await nextBody(bob, 'from a moderator');
      await alice.set(configSubmit({ 'muc#roomconfig_allowpm': 'none' }), ROOM);
      await alice.send(xml('message', { to: roomJid('coven', 'hecate'), type: 'chat' }, xml('body', {}, 'y')));
      expectError(await errorOf(alice), 'forbidden');
    });

    it('passes a direct invitation (XEP-0249) through unchanged', async () => {
      await bob.send(xml('message', { to: roomJid('coven', 'crone'), type: 'chat' }, xml('x', { xmlns: 'jabber:x:conference', jid: 'other@conference.example.com', reason: 'come' })));
      const got = await alice.next((s) => s.name === 'message' && s.getChild('x', 'jabber:x:conference') !== undefined);
      expect(got.getChild('x', 'jabber:x:conference')!.attrs).to.include({ jid: 'other@conference.example.com', reason: 'come' });
    });
  });

  describe('invitations (§7.8.2)', () => {
    const invite = (to: string, reason?: string) =>
      xml('message', { to: ROOM, id: 'inv1' }, xml('x', { xmlns: NS.mucUser }, xml('invite', { to }, reason ? xml('reason', {}, reason) : null)));

    it('passes a mediated invitation on from the room, with the inviter, the reason and the password', async () => {
      await alice.set(configSubmit({ 'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': 'cauldronburn' }), ROOM);
      await bob.send(invite('carol@example.com/r', 'the place for all good witches'));
      const got = await carol.next((s) => s.name === 'message' && s.attrs.from === ROOM);
      const x = got.getChild('x', NS.mucUser)!;
      expect(x.getChild('invite')!.attrs.from).to.equal('bob@example.com');
      expect(x.getChild('invite')!.getChildText('reason')).to.equal('the place for all good witches');
      expect(x.getChildText('password')).to.equal('cauldronburn');
    });

    it('answers an invitation to a local account that does not exist with item-not-found', async () => {
      await bob.send(invite('nobody@example.com'));
      expectError(await errorOf(bob), 'item-not-found');
    });

    it('in a members-only room lets only admins invite, and makes the invitee a member', async () => {
      await alice.set(adminSet(adminItem({ affiliation: 'member', jid: 'bob@example.com' })), ROOM);
      await alice.set(configSubmit({ 'muc#roomconfig_membersonly': '1' }), ROOM);
      await bob.send(invite('carol@example.com/r'));
      expectError(await errorOf(bob), 'forbidden');
      await alice.send(invite('carol@example.com/r'));
      await carol.next((s) => s.name === 'message' && s.getChild('x', NS.mucUser)?.getChild('invite') !== undefined);
      expect(w.api.room('coven')!.affiliations.find((a) => a.jid === 'carol@example.com')?.affiliation).to.equal('member');
      await join(carol, 'coven', 'third');
    });

    it('lets members invite to a members-only room when allowinvites is on', async () => {
      await alice.set(adminSet(adminItem({ affiliation: 'member', jid: 'bob@example.com' })), ROOM);
      await alice.set(configSubmit({ 'muc#roomconfig_membersonly': '1', 'muc#roomconfig_allowinvites': '1' }), ROOM);
      await bob.send(invite('carol@example.com/r'));
      await carol.next((s) => s.name === 'message' && s.getChild('x', NS.mucUser)?.getChild('invite') !== undefined);
    });

    it('sends a decline back to the inviter, from the room', async () => {
      await carol.send(xml('message', { to: ROOM }, xml('x', { xmlns: NS.mucUser }, xml('decline', { to: 'bob@example.com/r' }, xml('reason', {}, 'too busy')))));
      const got = await bob.next((s) => s.name === 'message' && s.getChild('x', NS.mucUser)?.getChild('decline') !== undefined);
      expect(got.attrs.from).to.equal(ROOM);
      const d = got.getChild('x', NS.mucUser)!.getChild('decline')!;
      expect(d.attrs.from).to.equal('carol@example.com');
      expect(d.getChildText('reason')).to.equal('too busy');
    });
  });

  describe('voice requests (§7.13, §8.6)', () => {
    const request = (allow?: boolean, nick?: string) =>
      xml(
        'message',
        { to: ROOM },
        xml(
          'x',
          { xmlns: NS.dataForms, type: 'submit' },
          xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'http://jabber.org/protocol/muc#request')),
          xml('field', { var: 'muc#role' }, xml('value', {}, 'participant')),
          nick !== undefined ? xml('field', { var: 'muc#roomnick' }, xml('value', {}, nick)) : null,
          allow !== undefined ? xml('field', { var: 'muc#request_allow' }, xml('value', {}, allow ? 'true' : 'false')) : null,
        ),
      );

    it('forwards a visitor’s request to the moderators and grants voice on approval', async () => {
      await alice.set(configSubmit({ 'muc#roomconfig_moderatedroom': '1' }), ROOM);
      await join(carol, 'coven', 'third');
      await carol.send(request());
      const form: Element = await alice.next((s) => s.name === 'message' && s.getChild('x', NS.dataForms) !== undefined);
      const f = fields(form.getChild('x', NS.dataForms));
      expect(f.get('muc#roomnick')).to.deep.equal(['third']);
      expect(f.get('muc#jid')).to.deep.equal(['carol@example.com/r']);
      await alice.send(request(true, 'third'));
      const voiced = await carol.next((s) => presenceFrom('coven', 'third')(s) && itemOf(s).role === 'participant');
      expect(statuses(voiced)).to.include(110);
    });
  });
});
