import { expect } from 'chai';
import { NS, xml } from '../../../lib/module-api.js';
import type { Element } from '../../../lib/module-api.js';
import carbons, { NS_CARBONS_RULES } from '../../../modules/carbons/index.js';
import disco from '../../../modules/disco/index.js';
import { Harness, type TestClient } from '../../helpers/harness.js';
import { expectError, expectXml } from '../../helpers/xml-assert.js';
import {
  available, carbonIds, carbonKind, enableCarbons, forwardedMessage, isCarbon, messageIds, presenceStub, setSelf,
} from './support.js';

const body = (text: string) => xml('body', {}, text);
const MUC_USER = NS.mucUser;
const isReceivedCarbon = (s: Element) => carbonKind(s) === 'received';
const isSentCarbon = (s: Element) => carbonKind(s) === 'sent';

describe('carbons (XEP-0280)', () => {
  let h: Harness;
  let laptop: TestClient;
  let phone: TestClient;
  let bob: TestClient;

  beforeEach(async () => {
    h = await Harness.start({ modules: [carbons, presenceStub, disco] });
    await h.createAccount('alice');
    await h.createAccount('bob');
    laptop = await h.connect('alice@example.com/laptop');
    phone = await h.connect('alice@example.com/phone');
    bob = await h.connect('bob@example.com/pc');
  });
  afterEach(() => h.stop());

  describe('discovery and enabling', () => {
    it('advertises urn:xmpp:carbons:2 and the exact §6.1 rules (urn:xmpp:carbons:rules:0) on the server', async () => {
      const reply = await laptop.get(xml('query', { xmlns: NS.discoInfo }));
      const features = reply.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
      expect(features).to.include.members([NS.carbons, NS_CARBONS_RULES]);
    });

    it('answers <enable/> with an empty result from the account\'s bare JID', async () => {
      const reply = await laptop.iq(xml('iq', { type: 'set', id: 'e1' }, xml('enable', { xmlns: NS.carbons })));
      expectXml(reply, `<iq type='result' id='e1' from='alice@example.com' to='alice@example.com/laptop'/>`);
    });

    it('accepts <enable/> twice in a row and <disable/> while disabled (§10.1)', async () => {
      for (const name of ['enable', 'enable', 'disable', 'disable']) {
        const reply = await setSelf(laptop, xml(name, { xmlns: NS.carbons }));
        expect(reply.attrs.type, reply.toString()).to.equal('result');
      }
    });

    it('does not let a client enable Carbons on another account', async () => {
      const reply = await laptop.iq(xml('iq', { type: 'set', to: 'bob@example.com' }, xml('enable', { xmlns: NS.carbons })));
      expectError(reply, 'service-unavailable');
    });

    it('stops copying to a resource that sent <disable/>, and never copies to one that did not enable', async () => {
      const tablet = await h.connect('alice@example.com/tablet');
      await enableCarbons(phone);
      await setSelf(phone, xml('disable', { xmlns: NS.carbons }));
      await enableCarbons(tablet);
      await laptop.sendMessage({ to: 'bob@example.com', type: 'chat', id: 'm1' }, body('hi'));
      await tablet.next(isCarbon);
      await h.settle();
      expect(carbonIds(phone)).to.deep.equal([]);
      expect(carbonIds(laptop)).to.deep.equal([]);
    });

    it('enables Carbons through the API (inline enabling, XEP-0386)', async () => {
      h.api(carbons).enable(phone.session);
      expect(h.api(carbons).isEnabled(phone.session)).to.equal(true);
      await laptop.sendMessage({ to: 'bob@example.com', type: 'chat', id: 'api' }, body('hi'));
      expect(forwardedMessage(await phone.next(isCarbon))!.attrs.id).to.equal('api');
    });
  });

  describe('sent messages (§8)', () => {
    beforeEach(() => enableCarbons(phone));

    it('copies a chat message to the other Carbons-enabled resources inside <sent><forwarded/></sent>, from the bare JID', async () => {
      await laptop.sendMessage({ to: 'bob@example.com/pc', type: 'chat', id: 's1' }, body('Neither, fair saint'), xml('thread', {}, 't1'));
      const copy = await phone.next(isCarbon);
      expectXml(copy, `
        <message from='alice@example.com' to='alice@example.com/phone' type='chat'>
          <sent xmlns='urn:xmpp:carbons:2'>
            <forwarded xmlns='urn:xmpp:forward:0'>
              <message xmlns='jabber:client' from='alice@example.com/laptop' to='bob@example.com/pc' type='chat' id='s1'>
                <body>Neither, fair saint</body>
                <thread>t1</thread>
              </message>
            </forwarded>
          </sent>
        </message>`);
      expect(messageIds(bob)).to.deep.equal(['s1']);
    });

    it('does not copy a message back to the Carbons-enabled resource that sent it', async () => {
      await enableCarbons(laptop);
      await laptop.sendMessage({ to: 'bob@example.com', type: 'chat', id: 's2' }, body('hi'));
      await phone.next(isCarbon);
      await h.settle();
      expect(carbonIds(laptop)).to.deep.equal([]);
    });

    it('copies what a resource without Carbons sends to the resources that have them', async () => {
      await laptop.sendMessage({ to: 'bob@example.com', type: 'chat', id: 's3' }, body('hi'));
      expect(forwardedMessage(await phone.next(isSentCarbon))!.attrs.id).to.equal('s3');
    });
  });

  describe('received messages (§7)', () => {
    beforeEach(() => enableCarbons(phone));

    it('copies a message sent to one resource to the other Carbons-enabled resources inside <received/>', async () => {
      await bob.sendMessage({ to: 'alice@example.com/laptop', type: 'chat', id: 'r1' }, body('What man art thou'));
      const copy = await phone.next(isCarbon);
      expectXml(copy, `
        <message from='alice@example.com' to='alice@example.com/phone' type='chat'>
          <received xmlns='urn:xmpp:carbons:2'>
            <forwarded xmlns='urn:xmpp:forward:0'>
              <message xmlns='jabber:client' from='bob@example.com/pc' to='alice@example.com/laptop' type='chat' id='r1'>
                <body>What man art thou</body>
              </message>
            </forwarded>
          </received>
        </message>`);
      expect(messageIds(laptop)).to.deep.equal(['r1']);
      expect(messageIds(phone)).to.deep.equal([]);
    });

    it('copies a bare-JID message to the Carbons-enabled resources of lower priority than the one it went to', async () => {
      await enableCarbons(laptop);
      await available(laptop, 5);
      await available(phone, 1);
      await bob.sendMessage({ to: 'alice@example.com', type: 'chat', id: 'r2' }, body('hi'));
      expect(forwardedMessage(await phone.next(isCarbon))!.attrs.id).to.equal('r2');
      expect(messageIds(laptop)).to.deep.equal(['r2']);
      expect(carbonIds(laptop)).to.deep.equal([]);
    });

    it('sends no copy to resources that shared the top priority and got the original', async () => {
      const tablet = await h.connect('alice@example.com/tablet');
      await enableCarbons(laptop);
      await enableCarbons(tablet);
      await available(laptop, 5);
      await available(phone, 5);
      await available(tablet, 1);
      await bob.sendMessage({ to: 'alice@example.com', type: 'chat', id: 'r3' }, body('hi'));
      expect(forwardedMessage(await tablet.next(isCarbon))!.attrs.id).to.equal('r3');
      await h.settle();
      expect(messageIds(laptop)).to.deep.equal(['r3']);
      expect(messageIds(phone)).to.deep.equal(['r3']);
      expect(carbonIds(laptop)).to.deep.equal([]);
      expect(carbonIds(phone)).to.deep.equal([]);
    });

    it('copies a message no resource takes to a Carbons-enabled resource of negative priority', async () => {
      await available(phone, -1);
      await bob.sendMessage({ to: 'alice@example.com', type: 'chat', id: 'r4' }, body('anyone?'));
      expect(forwardedMessage(await phone.next(isReceivedCarbon))!.attrs.id).to.equal('r4');
      expect(messageIds(phone)).to.deep.equal([]);
    });
  });

  describe('eligibility (§6.1, every rule)', () => {
    const MARK = () => xml('message', { to: 'bob@example.com', type: 'chat', id: 'mark' }, body('mark'));

    beforeEach(() => enableCarbons(phone));

    /** The phone gets a sent carbon of this message (and of nothing sent before it). */
    async function expectSentCopied(stanza: Element): Promise<void> {
      await laptop.send(stanza);
      const copy = await phone.next(isSentCarbon);
      expect(forwardedMessage(copy)!.attrs.id).to.equal(stanza.attrs.id);
    }

    /** No sent carbon of this message: the next copy the phone gets is of a chat message sent after it. */
    async function expectSentNotCopied(stanza: Element): Promise<void> {
      await laptop.send(stanza);
      await laptop.send(MARK());
      const copy = await phone.next(isSentCarbon);
      expect(forwardedMessage(copy)!.attrs.id).to.equal('mark');
    }

    /** `deliver` gets a message to alice/laptop delivered; the phone gets a received carbon of it. */
    async function expectReceivedCopied(deliver: () => Promise<void>, id: string): Promise<void> {
      await deliver();
      const copy = await phone.next(isReceivedCarbon);
      expect(forwardedMessage(copy)!.attrs.id).to.equal(id);
    }

    async function expectReceivedNotCopied(deliver: () => Promise<void>): Promise<void> {
      await deliver();
      await bob.sendMessage({ to: 'alice@example.com/laptop', type: 'chat', id: 'mark' }, body('mark'));
      const copy = await phone.next(isReceivedCarbon);
      expect(forwardedMessage(copy)!.attrs.id).to.equal('mark');
    }

    it('copies a chat message without a body (a chat state)', () =>
      expectSentCopied(xml('message', { to: 'bob@example.com', type: 'chat', id: 'c1' }, xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' }))));

    it('copies a normal message with a body', () =>
      expectSentCopied(xml('message', { to: 'bob@example.com', id: 'n1' }, body('hi'))));

    it('does not copy a normal message without a body or IM payload', () =>
      expectSentNotCopied(xml('message', { to: 'bob@example.com', id: 'n2' }, xml('x', { xmlns: 'urn:example:other' }))));

    it('copies a normal message carrying a delivery receipt (XEP-0184)', () =>
      expectSentCopied(xml('message', { to: 'bob@example.com', id: 'n3' }, xml('received', { xmlns: 'urn:xmpp:receipts', id: 'x' }))));

    it('copies a normal message carrying a chat marker (XEP-0333)', () =>
      expectSentCopied(xml('message', { to: 'bob@example.com', id: 'n4' }, xml('displayed', { xmlns: 'urn:xmpp:chat-markers:0', id: 'x' }))));

    it('copies a normal message carrying only a chat state (XEP-0085)', () =>
      expectSentCopied(xml('message', { to: 'bob@example.com', id: 'n5' }, xml('active', { xmlns: 'http://jabber.org/protocol/chatstates' }))));

    it('does not copy a headline, even with a body', () =>
      expectSentNotCopied(xml('message', { to: 'bob@example.com', type: 'headline', id: 'h1' }, body('news'))));

    it('never copies a groupchat message, even one carrying IM payloads', () =>
      expectSentNotCopied(xml('message', { to: 'room@muc.remote.example', type: 'groupchat', id: 'g1' }, body('hello room'),
        xml('active', { xmlns: 'http://jabber.org/protocol/chatstates' }), xml('request', { xmlns: 'urn:xmpp:receipts' }))));

    it('copies a direct MUC invitation (XEP-0249)', () =>
      expectSentCopied(xml('message', { to: 'bob@example.com', id: 'i1' }, xml('x', { xmlns: 'jabber:x:conference', jid: 'room@muc.remote.example' }))));

    it('copies a mediated MUC invitation from the room (XEP-0045 §7.8.2)', () =>
      expectReceivedCopied(
        () => h.route(xml('message', { from: 'room@muc.remote.example', to: 'alice@example.com/laptop', id: 'i2' },
          xml('x', { xmlns: MUC_USER }, xml('invite', { from: 'carol@remote.example' })))),
        'i2',
      ));

    it('copies a private message a local user sends to a room occupant', () =>
      expectSentCopied(xml('message', { to: 'room@muc.remote.example/nick', type: 'chat', id: 'p1' }, body('psst'), xml('x', { xmlns: MUC_USER }))));

    it('does not copy a private message received from a room occupant (the room sends it to every joined client)', () =>
      expectReceivedNotCopied(() => h.route(xml('message', { from: 'room@muc.remote.example/nick', to: 'alice@example.com/laptop', type: 'chat', id: 'p2' },
        body('psst'), xml('x', { xmlns: MUC_USER })))));

    it('does not copy a sent message marked <private/> with <no-copy/> (§9)', () =>
      expectSentNotCopied(xml('message', { to: 'bob@example.com', type: 'chat', id: 'x1' }, body('secret'),
        xml('private', { xmlns: NS.carbons }), xml('no-copy', { xmlns: NS.hints }))));

    it('does not copy a message marked <private/> alone', () =>
      expectSentNotCopied(xml('message', { to: 'bob@example.com', type: 'chat', id: 'x2' }, body('secret'), xml('private', { xmlns: NS.carbons }))));

    it('does not copy a message with the XEP-0334 <no-copy/> hint alone', () =>
      expectSentNotCopied(xml('message', { to: 'bob@example.com', type: 'chat', id: 'x3' }, body('secret'), xml('no-copy', { xmlns: NS.hints }))));

    it('does not copy a received <private/> message, and delivers it with <private/> kept (removal was dropped in 0.14)', async () => {
      await expectReceivedNotCopied(() => bob.sendMessage({ to: 'alice@example.com/laptop', type: 'chat', id: 'x4' }, body('secret'),
        xml('private', { xmlns: NS.carbons }), xml('no-copy', { xmlns: NS.hints })));
      const original = laptop.received.find((s) => s.attrs.id === 'x4')!;
      expect(original.getChild('private', NS.carbons)).to.not.equal(undefined);
    });

    it('copies an error answering a message that was eligible', async () => {
      await laptop.sendMessage({ to: 'bob@example.com/pc', type: 'chat', id: 'q1' }, body('hello?'));
      await expectReceivedCopied(() => bob.sendMessage({ to: 'alice@example.com/laptop', type: 'error', id: 'q1' },
        xml('error', { type: 'cancel' }, xml('service-unavailable', { xmlns: NS.stanzaErrors }))), 'q1');
    });

    it('does not copy an error that answers no eligible message', () =>
      expectReceivedNotCopied(() => bob.sendMessage({ to: 'alice@example.com/laptop', type: 'error', id: 'unknown' },
        xml('error', { type: 'cancel' }, xml('service-unavailable', { xmlns: NS.stanzaErrors })))));
  });

  describe('forged carbons (§11)', () => {
    const forged = (kind: 'sent' | 'received', from: string, to = 'alice@example.com') =>
      xml('message', { from, to, type: 'chat', id: 'forged' },
        xml(kind, { xmlns: NS.carbons }, xml('forwarded', { xmlns: NS.forward },
          xml('message', { xmlns: NS.client, from: 'juliet@capulet.example/balcony', to: 'alice@example.com/laptop', type: 'chat' },
            body('Thou shall meet me tonite')))));

    beforeEach(async () => {
      await available(laptop, 1);
      await available(phone, 1);
    });

    async function expectNotDelivered(): Promise<void> {
      await bob.sendMessage({ to: 'alice@example.com/laptop', type: 'chat', id: 'after' }, body('after'));
      await laptop.next((s) => s.attrs.id === 'after');
      await h.settle();
      expect(laptop.received.filter((s) => s.attrs.id === 'forged')).to.deep.equal([]);
      expect(phone.received.filter((s) => s.attrs.id === 'forged')).to.deep.equal([]);
    }

    it('drops a <received/> wrapper from a remote JID instead of delivering it', async () => {
      await h.route(forged('received', 'tybalt@capulet.example/home'));
      await expectNotDelivered();
    });

    it('drops a <sent/> wrapper from another local account', async () => {
      const el = forged('sent', 'bob@example.com/pc', 'alice@example.com/laptop');
      delete el.attrs.from;
      await bob.send(el);
      await expectNotDelivered();
    });

    it('drops a wrapper one of the account\'s own resources sends to another (only the bare JID speaks for the account)', async () => {
      const el = forged('received', 'alice@example.com/phone', 'alice@example.com/laptop');
      delete el.attrs.from;
      await phone.send(el);
      await expectNotDelivered();
    });

    it('delivers a wrapper that comes from the account\'s own bare JID', async () => {
      await h.route(forged('received', 'alice@example.com', 'alice@example.com/laptop'));
      const got = await laptop.next((s) => s.attrs.id === 'forged');
      expect(carbonKind(got)).to.equal('received');
    });
  });
});
