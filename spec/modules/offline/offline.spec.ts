import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { NS, xml } from '../../../lib/module-api.js';
import type { Element } from '../../../lib/module-api.js';
import disco from '../../../modules/disco/index.js';
import offline, { type OfflineApi } from '../../../modules/offline/index.js';
import { Harness, type HarnessOptions, type TestClient } from '../../helpers/harness.js';
import { expectError, expectXml } from '../../helpers/xml-assert.js';
import { presenceStub } from './presence-stub.js';

const HINTS = NS.hints;
const CHATSTATES = 'http://jabber.org/protocol/chatstates';
const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

const chat = (body: string, attrs: Record<string, string> = {}) =>
  xml('message', { to: 'alice@example.com', type: 'chat', id: `m-${body}`, ...attrs }, xml('body', {}, body));

const bodies = (stanzas: Element[]) => stanzas.filter((s) => s.name === 'message').map((s) => s.getChildText('body'));

describe('offline (XEP-0160, XEP-0203)', () => {
  let h: Harness;
  let bob: TestClient;
  let api: OfflineApi;

  async function start(options: Partial<HarnessOptions> = {}): Promise<void> {
    h = await Harness.start({ modules: [offline, presenceStub, disco], ...options });
    await h.createAccount('alice');
    await h.createAccount('bob');
    bob = await h.connect('bob@example.com/laptop');
    api = h.api(offline);
  }

  afterEach(() => h.stop());

  describe('storing', () => {
    beforeEach(() => start());

    it('advertises msgoffline on the server', async () => {
      const reply = await bob.get(xml('query', { xmlns: NS.discoInfo }));
      const features = reply.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
      expect(features).to.include('msgoffline');
      expect(features).to.not.include(NS.offline);
    });

    it('keeps a chat message for an account with no resource, without bouncing it', async () => {
      await bob.send(chat('hello'));
      await h.settle();
      expect(await api.count('alice')).to.equal(1);
      expect(bob.received).to.deep.equal([]);
    });

    it('keeps a message without a type (normal)', async () => {
      await bob.send(xml('message', { to: 'alice@example.com' }, xml('body', {}, 'hi')));
      expect(await api.count('alice')).to.equal(1);
    });

    it('keeps a message to a full JID whose resource is gone', async () => {
      await bob.send(chat('to-resource', { to: 'alice@example.com/phone' }));
      expect(await api.count('alice')).to.equal(1);
    });

    it('keeps a message when the only resource has a negative priority', async () => {
      const hidden = await h.connect('alice@example.com/hidden');
      await hidden.sendPresence({}, xml('priority', {}, '-1'));
      await bob.send(chat('while-hidden'));
      await h.settle();
      expect(await api.count('alice')).to.equal(1);
      expect(bodies(hidden.received)).to.deep.equal([]);
    });

    it('does not keep headline messages (nor bounce them)', async () => {
      await bob.send(chat('news', { type: 'headline' }));
      await h.settle();
      expect(await api.count('alice')).to.equal(0);
      expect(bob.received).to.deep.equal([]);
    });

    it('does not keep groupchat messages: they bounce with service-unavailable', async () => {
      await bob.send(chat('room', { type: 'groupchat' }));
      expectError(await bob.next((s) => s.name === 'message'), 'service-unavailable');
      expect(await api.count('alice')).to.equal(0);
    });

    it('does not keep error messages', async () => {
      const err = xml('error', { type: 'cancel' }, xml('item-not-found', { xmlns: NS.stanzaErrors }));
      await bob.send(xml('message', { to: 'alice@example.com', type: 'error' }, xml('body', {}, 'x'), err));
      await h.settle();
      expect(await api.count('alice')).to.equal(0);
    });

    it('does not keep a message with <no-store/>: it bounces with service-unavailable', async () => {
      await bob.send(xml('message', { to: 'alice@example.com', type: 'chat', id: 'ns' }, xml('body', {}, 'otr'), xml('no-store', { xmlns: HINTS })));
      const bounce = await bob.next((s) => s.name === 'message');
      expectError(bounce, 'service-unavailable');
      expect(bounce.attrs.id).to.equal('ns');
      expect(await api.count('alice')).to.equal(0);
    });

    it('keeps a message with <no-permanent-store/>: offline storage is temporary (XEP-0334 §3)', async () => {
      await bob.send(xml('message', { to: 'alice@example.com', type: 'chat' }, xml('body', {}, 'x'), xml('no-permanent-store', { xmlns: HINTS })));
      expect(await api.count('alice')).to.equal(1);
    });

    it('drops a chat-state-only message silently, without storing or bouncing it', async () => {
      await bob.send(xml('message', { to: 'alice@example.com', type: 'chat' }, xml('composing', { xmlns: CHATSTATES }), xml('origin-id', { xmlns: NS.sid, id: 'o1' })));
      await h.settle();
      expect(await api.count('alice')).to.equal(0);
      expect(bob.received).to.deep.equal([]);
    });

    it('keeps a message without a body when it carries other content (a receipt)', async () => {
      await bob.send(xml('message', { to: 'alice@example.com' }, xml('received', { xmlns: 'urn:xmpp:receipts', id: 'm1' })));
      expect(await api.count('alice')).to.equal(1);
    });

    it('keeps a chat-state-only message that carries the <store/> hint', async () => {
      await bob.send(xml('message', { to: 'alice@example.com', type: 'chat' }, xml('active', { xmlns: CHATSTATES }), xml('store', { xmlns: HINTS })));
      expect(await api.count('alice')).to.equal(1);
    });
  });

  describe('the limit', () => {
    beforeEach(() => start({ options: { offline: { maxMessages: 2 } } }));

    it('bounces the message past maxMessages with resource-constraint, echoing it, and keeps the first ones', async () => {
      await bob.send(chat('1'));
      await bob.send(chat('2'));
      await bob.send(chat('3'));
      const bounce = await bob.next((s) => s.name === 'message');
      expectXml(bounce, `
        <message type='error' id='m-3' from='alice@example.com' to='bob@example.com/laptop'>
          <body>3</body>
          <error type='wait'>
            <resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
            <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>*</text>
          </error>
        </message>`);
      expect(await api.count('alice')).to.equal(2);
      const alice = await h.connect('alice@example.com/phone');
      await alice.sendPresence();
      expect(bodies(alice.received)).to.deep.equal(['1', '2']);
    });

    it('refuses a limit that is not a positive whole number', async () => {
      await h.stop();
      let error: unknown;
      await Harness.start({ modules: [offline], options: { offline: { maxMessages: 0 } } }).catch((e: unknown) => { error = e; });
      expect(error).to.be.instanceOf(Error);
      await Harness.start({ modules: [offline], options: { offline: { maxMesages: 5 } } }).catch((e: unknown) => { error = e; });
      expect(String(error)).to.match(/maxMesages/);
    });
  });

  describe('delivery', () => {
    beforeEach(() => start());

    it('delivers stored messages at initial presence, with a delay from the server, then forgets them', async () => {
      const before = Date.now();
      await bob.send(chat('hello'));
      const alice = await h.connect('alice@example.com/phone');
      await alice.sendPresence();
      const [m] = alice.received.filter((s) => s.name === 'message');
      expectXml(m, `
        <message from='bob@example.com/laptop' to='alice@example.com' type='chat' id='m-hello'>
          <body>hello</body>
          <delay xmlns='urn:xmpp:delay' from='example.com' stamp='*'>Offline Storage</delay>
        </message>`);
      const stamp = m.getChild('delay', NS.delay)!.attrs.stamp as string;
      expect(stamp).to.match(ISO_MS);
      expect(Date.parse(stamp)).to.be.within(before, Date.now());
      expect(await api.count('alice')).to.equal(0);
    });

    it('delivers them in the order they came, across several pages', async () => {
      const sent = Array.from({ length: 230 }, (_, i) => String(i));
      for (const b of sent) await bob.send(chat(b));
      const alice = await h.connect('alice@example.com/phone');
      await alice.sendPresence();
      expect(bodies(alice.received)).to.deep.equal(sent);
      expect(await api.count('alice')).to.equal(0);
    });

    it('delivers nothing to a resource with a negative priority, and everything to the next one with priority 0', async () => {
      await bob.send(chat('a'));
      await bob.send(chat('b'));
      const hidden = await h.connect('alice@example.com/hidden');
      await hidden.sendPresence({}, xml('priority', {}, '-5'));
      expect(bodies(hidden.received)).to.deep.equal([]);
      expect(await api.count('alice')).to.equal(2);
      const phone = await h.connect('alice@example.com/phone');
      await phone.sendPresence({}, xml('priority', {}, '0'));
      expect(bodies(phone.received)).to.deep.equal(['a', 'b']);
      expect(bodies(hidden.received)).to.deep.equal([]);
    });

    it('does not deliver them again to a later resource, nor on a later presence of the same one', async () => {
      await bob.send(chat('once'));
      const phone = await h.connect('alice@example.com/phone');
      await phone.sendPresence();
      await phone.sendPresence({}, xml('show', {}, 'away'));
      const laptop = await h.connect('alice@example.com/laptop');
      await laptop.sendPresence();
      expect(bodies(phone.received)).to.deep.equal(['once']);
      expect(bodies(laptop.received)).to.deep.equal([]);
    });

    it('gives each message to one resource only when two become available at the same time', async () => {
      for (let i = 0; i < 150; i++) await bob.send(chat(String(i)));
      const phone = await h.connect('alice@example.com/phone');
      const laptop = await h.connect('alice@example.com/laptop');
      await Promise.all([phone.sendPresence(), laptop.sendPresence()]);
      const got = [...bodies(phone.received), ...bodies(laptop.received)];
      expect(got).to.have.length(150);
      expect(new Set(got).size).to.equal(150);
      expect(await api.count('alice')).to.equal(0);
    });

    it('replaces a delay that claims to come from this server (XEP-0203 §5)', async () => {
      await bob.send(xml('message', { to: 'alice@example.com', type: 'chat' }, xml('body', {}, 'x'),
        xml('delay', { xmlns: NS.delay, from: 'example.com', stamp: '2001-01-01T00:00:00Z' })));
      const alice = await h.connect('alice@example.com/phone');
      await alice.sendPresence();
      const delays = alice.received[0].getChildren('delay', NS.delay);
      expect(delays).to.have.length(1);
      expect(delays[0].attrs.stamp).to.not.equal('2001-01-01T00:00:00Z');
    });

    it('lets the archive module skip the push for sessions that sync from the archive, still deleting them', async () => {
      await bob.send(chat('archived'));
      const remove = api.setArchivedCheck((s) => s.jid.resource === 'mam');
      const mam = await h.connect('alice@example.com/mam');
      await mam.sendPresence();
      expect(bodies(mam.received)).to.deep.equal([]);
      expect(await api.count('alice')).to.equal(0);
      remove();
      await mam.disconnect();
      await bob.send(chat('plain'));
      const other = await h.connect('alice@example.com/other');
      await other.sendPresence();
      expect(bodies(other.received)).to.deep.equal(['plain']);
    });
  });

  describe('skipWhenArchived: false', () => {
    beforeEach(() => start({ options: { offline: { skipWhenArchived: false } } }));

    it('pushes offline messages even to sessions the archive module names', async () => {
      await bob.send(chat('pushed'));
      api.setArchivedCheck(() => true);
      const alice = await h.connect('alice@example.com/phone');
      await alice.sendPresence();
      expect(bodies(alice.received)).to.deep.equal(['pushed']);
    });
  });

  describe('durability', () => {
    let dir: string;

    beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'parley-offline-')); });
    afterEach(async () => {
      await h.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    it('delivers messages stored before a restart of the server on the same database', async function () {
      const path = join(dir, 'parley.db');
      const options = { modules: [offline, presenceStub], storagePath: path };
      h = await Harness.start(options);
      expect(existsSync(path)).to.equal(true);
      await h.createAccount('alice');
      await h.createAccount('bob');
      bob = await h.connect('bob@example.com/laptop');
      await bob.send(chat('before'));
      await bob.send(chat('restart'));
      await h.stop();

      h = await Harness.start(options);
      const alice = await h.connect('alice@example.com/phone');
      await alice.sendPresence();
      expect(bodies(alice.received)).to.deep.equal(['before', 'restart']);
      expect(alice.received[0].getChild('delay', NS.delay)?.attrs.from).to.equal('example.com');
    });
  });

  describe('account deletion', () => {
    beforeEach(() => start());

    it('purges the account\'s stored messages', async () => {
      await bob.send(chat('gone'));
      expect(await api.count('alice')).to.equal(1);
      await h.deleteAccount('alice');
      expect(await h.storage.archive('offline').count('example.com', 'alice')).to.equal(0);
      await h.createAccount('alice');
      const alice = await h.connect('alice@example.com/phone');
      await alice.sendPresence();
      expect(bodies(alice.received)).to.deep.equal([]);
    });
  });
});
