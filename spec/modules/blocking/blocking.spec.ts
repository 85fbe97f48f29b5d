import { expect } from 'chai';
import { Jid, NS, xml } from '../../../lib/module-api.js';
import type { Element } from '../../../lib/module-api.js';
import { createLogger } from '../../../lib/log.js';
import blocking, { NS_BLOCKING_ERRORS } from '../../../modules/blocking/index.js';
import disco from '../../../modules/disco/index.js';
import ping from '../../../modules/ping/index.js';
import presence from '../../../modules/presence/index.js';
import roster, { emptyItem, type Subscription } from '../../../modules/roster/index.js';
import { Harness, type HarnessOptions, type TestClient } from '../../helpers/harness.js';
import { errorCondition, expectError, expectXml } from '../../helpers/xml-assert.js';

const B = NS.blocking;
const item = (jid: string, ...children: Element[]) => xml('item', { jid }, ...children);
const block = (...items: Element[]) => xml('block', { xmlns: B }, ...items);
const unblock = (...items: Element[]) => xml('unblock', { xmlns: B }, ...items);
const blocklist = () => xml('blocklist', { xmlns: B });
const isPush = (s: Element) => s.name === 'iq' && s.attrs.type === 'set';
const messages = (c: TestClient) => c.received.filter((s) => s.name === 'message');
const presences = (c: TestClient) => c.received.filter((s) => s.name === 'presence');

describe('blocking (XEP-0191)', () => {
  let h: Harness;
  let alice: TestClient;
  let bob: TestClient;

  async function start(options: Partial<HarnessOptions> = {}): Promise<void> {
    h = await Harness.start({ hosts: ['example.com', 'other.org'], modules: [blocking, roster, presence, ping, disco], ...options });
    await h.createAccount('alice');
    await h.createAccount('bob');
    await h.createAccount('carol', 'pw', 'other.org');
    alice = await h.connect('alice@example.com/phone');
    bob = await h.connect('bob@example.com/laptop');
  }

  const list = async (c: TestClient = alice) => (await c.iq(xml('iq', { type: 'get' }, blocklist()))).getChild('blocklist')!.getChildren('item').map((i) => i.attrs.jid);
  const set = (c: TestClient, payload: Element) => c.iq(xml('iq', { type: 'set' }, payload));

  /** Puts `contact` in `owner`'s roster with this subscription, without presence traffic. */
  async function subscription(owner: string, contact: string, s: Subscription): Promise<void> {
    const c = Jid.parse(contact);
    const o = Jid.parse(owner);
    await h.api(roster, o.domain).update(o, c, (cur) => ({ ...(cur ?? emptyItem(c)), subscription: s }));
  }

  afterEach(() => h.stop());

  describe('the blocklist', () => {
    beforeEach(() => start());

    it('advertises blocking and spam reporting on the server, and blocking on accounts', async () => {
      const features = async (to: string) => (await alice.get(xml('query', { xmlns: NS.discoInfo }), to)).getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
      expect(await features('example.com')).to.include.members([B, 'urn:xmpp:reporting:1', 'urn:xmpp:reporting:reason:spam:0', 'urn:xmpp:reporting:reason:abuse:0']);
      expect(await features('alice@example.com')).to.include(B);
    });

    it('is empty at first', async () => {
      const reply = await alice.iq(xml('iq', { type: 'get', id: 'b1' }, blocklist()));
      expectXml(reply, `<iq type='result' id='b1' from='alice@example.com' to='alice@example.com/phone'><blocklist xmlns='urn:xmpp:blocking'/></iq>`);
    });

    it('lists the JIDs blocked, prepared', async () => {
      const reply = await set(alice, block(item('Spammer@Example.NET'), item('example.org'), item('bob@example.com/laptop')));
      expect(reply.attrs.type).to.equal('result');
      expect(await list()).to.deep.equal(['bob@example.com/laptop', 'example.org', 'spammer@example.net']);
    });

    it('pushes a block to the resources that asked for the blocklist, and only to them', async () => {
      const laptop = await h.connect('alice@example.com/laptop');
      const tablet = await h.connect('alice@example.com/tablet');
      await list(laptop);
      await set(alice, block(item('spam@example.net')));
      const push = await laptop.next(isPush);
      expectXml(push, `<iq type='set' id='*' from='alice@example.com' to='alice@example.com/laptop'><block xmlns='urn:xmpp:blocking'><item jid='spam@example.net'/></block></iq>`);
      await h.settle();
      expect(tablet.received.filter(isPush)).to.deep.equal([]);
      expect(alice.received.filter(isPush)).to.deep.equal([]);
    });

    it('pushes nothing when every JID was already blocked', async () => {
      await list();
      await set(alice, block(item('spam@example.net')));
      await alice.next(isPush);
      await set(alice, block(item('spam@example.net')));
      await h.settle();
      expect(alice.received.filter(isPush)).to.have.length(1);
    });

    it('unblocks the JIDs named, pushing them', async () => {
      await set(alice, block(item('a@example.net'), item('b@example.net')));
      await list();
      await set(alice, unblock(item('a@example.net')));
      expectXml((await alice.next(isPush)).getChild('unblock'), `<unblock xmlns='urn:xmpp:blocking'><item jid='a@example.net'/></unblock>`);
      expect(await list()).to.deep.equal(['b@example.net']);
    });

    it('unblocks everyone for an empty unblock, pushing an empty unblock', async () => {
      await set(alice, block(item('a@example.net'), item('b@example.net')));
      await list();
      await set(alice, unblock());
      expectXml((await alice.next(isPush)).getChild('unblock'), `<unblock xmlns='urn:xmpp:blocking'/>`);
      expect(await list()).to.deep.equal([]);
    });

    it('refuses a block without items with bad-request', async () => {
      expectError(await set(alice, block()), 'bad-request', 'modify');
    });

    it('refuses an item without a jid with bad-request, and an invalid jid with jid-malformed, blocking nothing', async () => {
      expectError(await set(alice, block(xml('item'))), 'bad-request');
      expectError(await set(alice, block(item('ok@example.net'), item('a@b@c'))), 'jid-malformed', 'modify');
      expectError(await set(alice, unblock(item('@example.net'))), 'jid-malformed');
      expect(await list()).to.deep.equal([]);
    });

    it('refuses a block beyond maxItems with not-acceptable', async () => {
      await h.stop();
      await start({ options: { blocking: { maxItems: 2 } } });
      await set(alice, block(item('a@example.net'), item('b@example.net')));
      expectError(await set(alice, block(item('c@example.net'))), 'not-acceptable');
      expect(await list()).to.deep.equal(['a@example.net', 'b@example.net']);
    });

    it('answers blocklist requests to another account with service-unavailable', async () => {
      expectError(await alice.get(blocklist(), 'bob@example.com'), 'service-unavailable');
    });

    it('purges the blocklist and reports when the account is deleted', async () => {
      const report = xml('report', { xmlns: 'urn:xmpp:reporting:1', reason: 'urn:xmpp:reporting:spam' });
      await set(alice, block(item('bob@example.com', report)));
      const kv = (s: string) => h.storage.keyval(s).keys('example.com', 'alice');
      expect(await kv('blocklist')).to.have.length(1);
      expect(await kv('spam-reports')).to.have.length(1);
      await h.deleteAccount('alice');
      expect(await kv('blocklist')).to.deep.equal([]);
      expect(await kv('spam-reports')).to.deep.equal([]);
      // Nothing remembered either: the account made anew blocks nobody.
      await h.createAccount('alice');
      const again = await h.connect('alice@example.com/new');
      await bob.sendMessage({ to: 'alice@example.com/new', type: 'chat' }, xml('body', {}, 'hi'));
      expect((await again.next((s) => s.name === 'message')).getChildText('body')).to.equal('hi');
    });
  });

  describe('enforcement', () => {
    beforeEach(async () => {
      await start();
      await set(alice, block(item('bob@example.com')));
    });

    it('bounces a message from a blocked JID with service-unavailable, delivering nothing', async () => {
      await bob.sendMessage({ to: 'alice@example.com', type: 'chat', id: 'm1' }, xml('body', {}, 'hello?'));
      const bounce = await bob.next((s) => s.name === 'message');
      expectError(bounce, 'service-unavailable', 'cancel');
      expect(bounce.attrs.from).to.equal('alice@example.com');
      await bob.sendMessage({ to: 'alice@example.com/phone', type: 'chat' }, xml('body', {}, 'to the resource'));
      expectError(await bob.next((s) => s.name === 'message'), 'service-unavailable');
      expect(messages(alice)).to.deep.equal([]);
    });

    it('drops an error message from a blocked JID without answering it', async () => {
      const err = xml('error', { type: 'cancel' }, xml('item-not-found', { xmlns: NS.stanzaErrors }));
      await bob.sendMessage({ to: 'alice@example.com/phone', type: 'error' }, err);
      await h.settle();
      expect(messages(alice)).to.deep.equal([]);
      expect(messages(bob)).to.deep.equal([]);
    });

    it('answers IQ get and set from a blocked JID with service-unavailable, to the bare and to a full JID', async () => {
      expectError(await bob.get(xml('ping', { xmlns: NS.ping }), 'alice@example.com'), 'service-unavailable');
      expectError(await bob.set(xml('query', { xmlns: 'urn:example:x' }), 'alice@example.com/phone'), 'service-unavailable');
      expect(alice.received.filter((s) => s.name === 'iq' && s.attrs.type !== 'result')).to.deep.equal([]);
    });

    it('drops presence from a blocked JID without a word', async () => {
      await alice.sendPresence();
      await bob.sendPresence({ to: 'alice@example.com' });
      await bob.sendPresence({ to: 'alice@example.com', type: 'subscribe' });
      await bob.sendPresence({ to: 'alice@example.com', type: 'probe' });
      await h.settle();
      expect(presences(alice).filter((p) => p.attrs.from !== alice.jid.toString())).to.deep.equal([]);
      expect(presences(bob).filter((p) => p.attrs.from?.toString().startsWith('alice'))).to.deep.equal([]);
    });

    it('refuses what the user sends to a blocked JID with not-acceptable and <blocked/>', async () => {
      await alice.sendMessage({ to: 'bob@example.com', type: 'chat', id: 'out' }, xml('body', {}, 'psst'));
      const bounce = await alice.next((s) => s.name === 'message');
      expectXml(bounce, `
        <message type='error' id='out' from='bob@example.com' to='alice@example.com/phone'>
          <body>psst</body>
          <error type='cancel'>
            <not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
            <blocked xmlns='${NS_BLOCKING_ERRORS}'/>
          </error>
        </message>`);
      const iq = await alice.get(xml('ping', { xmlns: NS.ping }), 'bob@example.com/laptop');
      expectError(iq, 'not-acceptable', 'cancel');
      expect(iq.getChild('error')!.getChild('blocked', NS_BLOCKING_ERRORS)).to.not.equal(undefined);
      await alice.sendPresence({ to: 'bob@example.com' });
      expect(errorCondition(await alice.next((s) => s.name === 'presence' && s.attrs.type === 'error'))).to.equal('not-acceptable');
      await h.settle();
      expect(messages(bob)).to.deep.equal([]);
      expect(bob.received.filter((s) => s.name === 'iq' && s.attrs.type === 'get')).to.deep.equal([]);
    });

    it('lets everything through again once unblocked', async () => {
      await set(alice, unblock(item('bob@example.com')));
      await bob.sendMessage({ to: 'alice@example.com/phone', type: 'chat' }, xml('body', {}, 'back'));
      expect((await alice.next((s) => s.name === 'message')).getChildText('body')).to.equal('back');
      await alice.sendMessage({ to: 'bob@example.com/laptop', type: 'chat' }, xml('body', {}, 'hi'));
      expect((await bob.next((s) => s.name === 'message')).getChildText('body')).to.equal('hi');
    });

    it('blocks every account of a blocked domain, and that domain itself', async () => {
      const carol = await h.connect('carol@other.org/desk');
      await set(alice, block(item('other.org')));
      await carol.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('body', {}, 'x'));
      expectError(await carol.next((s) => s.name === 'message'), 'service-unavailable');
      expectError(await alice.get(xml('ping', { xmlns: NS.ping }), 'other.org'), 'not-acceptable');
      expectError(await alice.get(xml('ping', { xmlns: NS.ping }), 'carol@other.org'), 'not-acceptable');
    });

    it('blocks only the resource a full JID names', async () => {
      await set(alice, unblock());
      await set(alice, block(item('bob@example.com/laptop')));
      const phone = await h.connect('bob@example.com/phone');
      await phone.sendMessage({ to: 'alice@example.com/phone', type: 'chat' }, xml('body', {}, 'from phone'));
      expect((await alice.next((s) => s.name === 'message')).getChildText('body')).to.equal('from phone');
      await bob.sendMessage({ to: 'alice@example.com/phone', type: 'chat' }, xml('body', {}, 'from laptop'));
      expectError(await bob.next((s) => s.name === 'message'), 'service-unavailable');
    });

    it('never blocks the account\'s own resources, nor its own server\'s replies', async () => {
      await set(alice, block(item('alice@example.com'), item('example.com')));
      const laptop = await h.connect('alice@example.com/laptop');
      await laptop.sendMessage({ to: 'alice@example.com/phone', type: 'chat' }, xml('body', {}, 'self'));
      expect((await alice.next((s) => s.name === 'message')).getChildText('body')).to.equal('self');
      expect((await alice.get(xml('ping', { xmlns: NS.ping }), 'example.com')).attrs.type).to.equal('result');
    });

    it('drops what a local account that blocks the user sends it by other paths (a server-made stanza)', async () => {
      // A stanza generated on alice's behalf (as PEP notifications are), routed by the server.
      await h.route(xml('message', { from: 'alice@example.com', to: 'bob@example.com/laptop', type: 'headline' }, xml('event', { xmlns: 'urn:example:event' })));
      await h.settle();
      expect(messages(bob)).to.deep.equal([]);
    });
  });

  describe('presence', () => {
    beforeEach(async () => {
      await start();
      await subscription('alice@example.com', 'bob@example.com', 'both');
      await subscription('bob@example.com', 'alice@example.com', 'both');
      await bob.sendPresence();
      await alice.sendPresence({}, xml('status', {}, 'here'));
      await h.settle();
      bob.clear();
    });

    it('sends the blocked contact unavailable presence from each available resource, then no presence at all', async () => {
      const laptop = await h.connect('alice@example.com/laptop');
      await laptop.sendPresence();
      await h.settle();
      bob.clear();
      await set(alice, block(item('bob@example.com')));
      await h.settle();
      const unavailable = presences(bob).filter((p) => p.attrs.type === 'unavailable').map((p) => p.attrs.from).sort();
      expect(unavailable).to.deep.equal(['alice@example.com/laptop', 'alice@example.com/phone']);
      bob.clear();
      await alice.sendPresence({}, xml('show', {}, 'away'));
      await h.settle();
      expect(presences(bob)).to.deep.equal([]);
    });

    it('sends no unavailable presence to a blocked JID that was not subscribed to the user', async () => {
      await h.createAccount('dave');
      const dave = await h.connect('dave@example.com/x');
      await dave.sendPresence();
      await h.settle();
      dave.clear();
      await set(alice, block(item('dave@example.com')));
      await h.settle();
      expect(presences(dave)).to.deep.equal([]);
    });

    it('sends the contact the user\'s current presence on unblock', async () => {
      await set(alice, block(item('bob@example.com')));
      await h.settle();
      bob.clear();
      await set(alice, unblock(item('bob@example.com')));
      await h.settle();
      const [p] = presences(bob);
      expect(p.attrs.from).to.equal('alice@example.com/phone');
      expect(p.attrs.type).to.equal(undefined);
      expect(p.getChildText('status')).to.equal('here');
    });

    it('keeps the blocked contact\'s presence from the user', async () => {
      await set(alice, block(item('bob@example.com')));
      await h.settle();
      alice.clear();
      await bob.sendPresence({}, xml('show', {}, 'dnd'));
      await h.settle();
      expect(presences(alice)).to.deep.equal([]);
    });
  });

  describe('toward other servers', () => {
    /** What the router hands to federation, by recipient. */
    let remote: Element[];
    const to = (jid: string) => remote.filter((s) => s.attrs.to === jid || s.attrs.to?.toString().startsWith(`${jid}/`));

    beforeEach(async () => {
      await start();
      remote = [];
      h.router.remote = async (stanza) => { remote.push(stanza.el); };
      await subscription('alice@example.com', 'rob@remote.example', 'both');
      await alice.sendPresence();
      await h.settle();
    });

    it('sends a blocked remote contact unavailable presence, then leaves it out of presence broadcasts', async () => {
      expect(to('rob@remote.example').filter((s) => s.name === 'presence' && s.attrs.type === undefined)).to.have.length(1);
      remote.length = 0;
      await set(alice, block(item('rob@remote.example')));
      await h.settle();
      expectXml(to('rob@remote.example')[0], `<presence type='unavailable' from='alice@example.com/phone' to='rob@remote.example'/>`);
      remote.length = 0;
      await alice.sendPresence({}, xml('show', {}, 'away'));
      await h.settle();
      expect(to('rob@remote.example')).to.deep.equal([]);
    });

    it('refuses a message to a blocked remote JID before it leaves the server', async () => {
      await set(alice, block(item('remote.example')));
      await alice.sendMessage({ to: 'rob@remote.example', type: 'chat' }, xml('body', {}, 'x'));
      expectError(await alice.next((s) => s.name === 'message'), 'not-acceptable', 'cancel');
      expect(to('rob@remote.example').filter((s) => s.name === 'message')).to.deep.equal([]);
    });

    it('bounces a message from a blocked remote JID back to its server with service-unavailable', async () => {
      await set(alice, block(item('rob@remote.example')));
      await h.route(xml('message', { from: 'rob@remote.example/pc', to: 'alice@example.com', type: 'chat', id: 'r1' }, xml('body', {}, 'spam')));
      await h.settle();
      const [bounce] = to('rob@remote.example').filter((st) => st.name === 'message');
      expectError(bounce, 'service-unavailable');
      expect(bounce.attrs.id).to.equal('r1');
      expect(messages(alice)).to.deep.equal([]);
    });

    it('answers an IQ from a blocked remote JID to a full JID with service-unavailable, the client never seeing it', async () => {
      await set(alice, block(item('rob@remote.example')));
      await h.route(xml('iq', { from: 'rob@remote.example/pc', to: 'alice@example.com/phone', type: 'get', id: 'q1' }, xml('query', { xmlns: 'jabber:iq:version' })));
      await h.settle();
      expectError(to('rob@remote.example').filter((st) => st.name === 'iq')[0], 'service-unavailable');
      expect(alice.received.filter((s) => s.name === 'iq' && s.attrs.id === 'q1')).to.deep.equal([]);
    });
  });

  describe('toward other servers, through the core filters', () => {
    let remote: Element[];
    beforeEach(async () => {
      await start();
      remote = [];
      h.router.remote = async (stanza) => { remote.push(stanza.el); };
    });

    it('answers an IQ from a blocked remote JID to the bare JID with service-unavailable before any module sees it', async () => {
      await set(alice, block(item('rob@remote.example')));
      await h.route(xml('iq', { from: 'rob@remote.example/pc', to: 'alice@example.com', type: 'get', id: 'v1' }, xml('vCard', { xmlns: 'vcard-temp' })));
      await h.settle();
      const [reply] = remote.filter((st) => st.name === 'iq' && st.attrs.id === 'v1');
      expectError(reply, 'service-unavailable');
    });

    it('drops a probe the server would send on the user\'s behalf to a blocked remote JID', async () => {
      await set(alice, block(item('rob@remote.example')));
      remote.length = 0;
      await h.route(xml('presence', { type: 'probe', from: 'alice@example.com', to: 'rob@remote.example' }));
      await h.settle();
      expect(remote.filter((st) => st.attrs.to === 'rob@remote.example')).to.deep.equal([]);
    });
  });

  describe('spam reports (XEP-0377)', () => {
    const lines: string[] = [];
    beforeEach(async () => {
      lines.length = 0;
      const log = createLogger({ level: 'info', destination: { write: (s: string) => { lines.push(s); } } });
      await start({ log });
    });

    it('keeps a report for the admins, blocks the JID, and pushes the item without the report', async () => {
      await list();
      const report = xml('report', { xmlns: 'urn:xmpp:reporting:1', reason: 'urn:xmpp:reporting:spam' },
        xml('stanza-id', { xmlns: NS.sid, by: 'alice@example.com', id: '28482-98726-73623' }),
        xml('text', {}, 'Buy cheap pills now!'));
      expect((await set(alice, block(item('spam@example.net', report)))).attrs.type).to.equal('result');
      const reports = await h.api(blocking).reports('alice');
      expect(reports).to.have.length(1);
      expect(reports[0]).to.deep.include({ jid: 'spam@example.net', reason: 'spam', text: 'Buy cheap pills now!' });
      expect(reports[0].stanzaIds).to.deep.equal([{ by: 'alice@example.com', id: '28482-98726-73623' }]);
      expectXml((await alice.next(isPush)).getChild('block'), `<block xmlns='urn:xmpp:blocking'><item jid='spam@example.net'/></block>`);
      expect(await list()).to.deep.equal(['spam@example.net']);
    });

    it('logs who reported whom at info, never the report text', async () => {
      const report = xml('report', { xmlns: 'urn:xmpp:reporting:1', reason: 'urn:xmpp:reporting:abuse' }, xml('text', {}, 'secret words'));
      await set(alice, block(item('troll@example.net', report)));
      const logged = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'spam report received');
      expect(logged).to.deep.include({ reporter: 'alice@example.com', reported: 'troll@example.net', reason: 'abuse', level: 30 });
      expect(lines.join('')).to.not.contain('secret words');
    });

    it('understands the earlier urn:xmpp:reporting:0 form', async () => {
      await set(alice, block(item('old@example.net', xml('report', { xmlns: 'urn:xmpp:reporting:0' }, xml('abuse')))));
      expect((await h.api(blocking).reports('alice')).map((r) => r.reason)).to.deep.equal(['abuse']);
    });

    it('keeps nothing for a block without a report', async () => {
      await set(alice, block(item('quiet@example.net')));
      expect(await h.api(blocking).reports('alice')).to.deep.equal([]);
    });
  });
});
