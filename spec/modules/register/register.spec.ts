import { expect } from 'chai';
import { defineModule, Jid, NS, xml, z } from '../../../lib/module-api.js';
import type { Element } from '../../../lib/module-api.js';
import { C2sSession } from '../../../lib/sessions/c2s-session.js';
import blocking from '../../../modules/blocking/index.js';
import disco from '../../../modules/disco/index.js';
import last from '../../../modules/last/index.js';
import offline from '../../../modules/offline/index.js';
import privateXml from '../../../modules/private/index.js';
import register, { type RegisterApi } from '../../../modules/register/index.js';
import type { PreAuthOrigin } from '../../../lib/module-api.js';
import roster from '../../../modules/roster/index.js';
import vcard from '../../../modules/vcard/index.js';
import { Harness, type TestClient } from '../../helpers/harness.js';
import { expectError, expectXml } from '../../helpers/xml-assert.js';
import { presenceStub } from '../offline/presence-stub.js';

const R = NS.register;
const query = (...children: Element[]) => xml('query', { xmlns: R }, ...children);
const text = (name: string, value: string) => xml(name, {}, value);

describe('register (XEP-0077)', () => {
  let h: Harness;
  let alice: TestClient;

  afterEach(() => h.stop());

  describe('for a logged-in user', () => {
    beforeEach(async () => {
      h = await Harness.start({ modules: [register, disco] });
      await h.createAccount('alice', 'old-password');
      alice = await h.connect('alice@example.com/phone');
    });

    it('advertises jabber:iq:register on the server', async () => {
      const reply = await alice.get(xml('query', { xmlns: NS.discoInfo }));
      expect(reply.getChild('query')!.getChildren('feature').map((f) => f.attrs.var)).to.include(R);
    });

    it('tells the user it is registered, and as whom, to the server or without a to', async () => {
      for (const to of ['example.com', undefined]) {
        const reply = await alice.iq(xml('iq', { type: 'get', to, id: 'g' }, query()));
        expectXml(reply.getChild('query'), `<query xmlns='jabber:iq:register'><registered/><username>alice</username><password/></query>`);
      }
    });

    it('changes the password', async () => {
      const reply = await alice.iq(xml('iq', { type: 'set', to: 'example.com', id: 'c1' }, query(text('username', 'alice'), text('password', 'new-password'))));
      expectXml(reply, `<iq type='result' id='c1' from='example.com' to='alice@example.com/phone'/>`);
      expect(await h.accounts.verifyPassword('example.com', 'alice', 'new-password')).to.equal(true);
      expect(await h.accounts.verifyPassword('example.com', 'alice', 'old-password')).to.equal(false);
    });

    it('accepts the username as a bare JID', async () => {
      const reply = await alice.set(query(text('username', 'Alice@example.com'), text('password', 'pw2')));
      expect(reply.attrs.type).to.equal('result');
      expect(await h.accounts.verifyPassword('example.com', 'alice', 'pw2')).to.equal(true);
    });

    it('refuses a password change without a username, or naming another account, with bad-request', async () => {
      expectError(await alice.set(query(text('password', 'x1'))), 'bad-request', 'modify');
      expectError(await alice.set(query(text('username', 'bob'), text('password', 'x2'))), 'bad-request', 'modify');
      expectError(await alice.set(query(text('username', 'alice@other.org'), text('password', 'x3'))), 'bad-request');
      expect(await h.accounts.verifyPassword('example.com', 'alice', 'old-password')).to.equal(true);
    });

    it('keeps the password when the new one is empty, answering not-acceptable', async () => {
      expectError(await alice.set(query(text('username', 'alice'), xml('password'))), 'not-acceptable');
      expect(await h.accounts.verifyPassword('example.com', 'alice', 'old-password')).to.equal(true);
    });

    it('refuses a password SASLprep prohibits with not-acceptable', async () => {
      expectError(await alice.set(query(text('username', 'alice'), text('password', 'bad\u0007bell'))), 'not-acceptable');
      expect(await h.accounts.verifyPassword('example.com', 'alice', 'old-password')).to.equal(true);
    });

    it('refuses a password change over a connection without TLS with not-authorized', async () => {
      const written: Element[] = [];
      const jid = Jid.parse('alice@example.com/plain');
      const session = new C2sSession(jid, { write: (el) => written.push(el), close: () => undefined, remoteAddress: '192.0.2.1', secure: false }, undefined);
      h.sessions.add(session);
      const iq = xml('iq', { type: 'set', id: 'p', from: jid.toString() }, query(text('username', 'alice'), text('password', 'sniffed')));
      await h.router.fromClient(session, iq);
      await h.settle();
      expectError(written[0], 'not-authorized');
      expect(await h.accounts.verifyPassword('example.com', 'alice', 'old-password')).to.equal(true);
      h.sessions.remove(session);
    });

    it('refuses a query that is neither a password change nor a removal with bad-request', async () => {
      expectError(await alice.set(query(text('email', 'a@example.org'))), 'bad-request');
    });

    it('refuses <remove/> with other children with bad-request and keeps the account', async () => {
      expectError(await alice.set(query(xml('remove'), text('username', 'alice'))), 'bad-request');
      expect(await h.accounts.exists('example.com', 'alice')).to.equal(true);
    });
  });

  describe('for a user of another host', () => {
    let carol: TestClient;

    beforeEach(async () => {
      h = await Harness.start({ hosts: ['example.com', 'other.org'], modules: [register] });
      await h.createAccount('carol', 'carol-pw', 'other.org');
      carol = await h.connect('carol@other.org/desk');
    });

    it('answers service-unavailable to a registration query: there is nothing to register after login', async () => {
      expectError(await carol.get(query(), 'example.com'), 'service-unavailable');
    });

    it('forbids changing a password or removing an account on a host that is not the user\'s', async () => {
      expectError(await carol.set(query(text('username', 'carol'), text('password', 'x')), 'example.com'), 'forbidden');
      expectError(await carol.set(query(xml('remove')), 'example.com'), 'forbidden');
      expect(await h.accounts.verifyPassword('other.org', 'carol', 'carol-pw')).to.equal(true);
    });
  });

  describe('removing one\'s account', () => {
    const created: string[] = [];
    const recorder = defineModule({
      name: 'recorder',
      config: z.strictObject({}),
      setup(ctx) {
        ctx.on('account/deleted', ({ user }) => { created.push(`deleted ${user}`); });
      },
    });

    beforeEach(async () => {
      created.length = 0;
      h = await Harness.start({ modules: [register, recorder, vcard, privateXml, offline, last, blocking, roster, presenceStub] });
      await h.createAccount('alice');
      await h.createAccount('bob');
      alice = await h.connect('alice@example.com/phone');
    });

    it('answers the removal, deletes the account, and ends every session with not-authorized', async () => {
      const laptop = await h.connect('alice@example.com/laptop');
      const reply = await alice.iq(xml('iq', { type: 'set', id: 'rm' }, query(xml('remove'))));
      expectXml(reply, `<iq type='result' id='rm' from='alice@example.com' to='alice@example.com/phone'/>`);
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(await h.accounts.exists('example.com', 'alice')).to.equal(false);
      expect(alice.closed?.condition).to.equal('not-authorized');
      expect(laptop.closed?.condition).to.equal('not-authorized');
      expect(h.sessions.of(Jid.parse('alice@example.com'))).to.deep.equal([]);
      expect(created).to.deep.equal(['deleted alice']);
    });

    it('leaves no data behind: every module purges the account on account/deleted', async () => {
      const bob = await h.connect('bob@example.com/laptop');
      await alice.set(xml('vCard', { xmlns: NS.vcard }, xml('FN', {}, 'Alice')), 'alice@example.com');
      await alice.set(xml('query', { xmlns: NS.privateXml }, xml('storage', { xmlns: 'storage:bookmarks' }, xml('x'))), 'alice@example.com');
      await alice.set(xml('block', { xmlns: NS.blocking }, xml('item', { jid: 'spam@example.net' }, xml('report', { xmlns: 'urn:xmpp:reporting:1', reason: 'urn:xmpp:reporting:spam' }))), 'alice@example.com');
      await alice.set(xml('query', { xmlns: NS.roster }, xml('item', { jid: 'bob@example.com' })), 'alice@example.com');
      await alice.disconnect(); // a logout record (last) and, while away, an offline message
      await bob.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('body', {}, 'while away'));
      const kv = (store: string) => h.storage.keyval(store).keys('example.com', 'alice');
      expect(await kv('vcard')).to.have.length(1);
      expect(await kv('private')).to.have.length(1);
      expect(await kv('blocklist')).to.have.length(1);
      expect(await kv('spam-reports')).to.have.length(1);
      expect(await kv('last')).to.have.length(1);
      expect(await h.storage.archive('offline').count('example.com', 'alice')).to.equal(1);
      expect(await h.storage.db.selectFrom('roster_items').select('contact').where('user', '=', 'alice').execute()).to.have.length(1);

      alice = await h.connect('alice@example.com/phone');
      expect((await alice.set(query(xml('remove')), 'alice@example.com')).attrs.type).to.equal('result');
      // Its sessions end just after: nothing they leave on closing may outlive the account either.
      await new Promise((resolve) => setTimeout(resolve, 10));
      expect(alice.closed?.condition).to.equal('not-authorized');

      for (const store of ['vcard', 'private', 'blocklist', 'spam-reports', 'last']) expect(await kv(store), store).to.deep.equal([]);
      expect(await h.storage.archive('offline').count('example.com', 'alice')).to.equal(0);
      expect(await h.storage.db.selectFrom('roster_items').select('contact').where('user', '=', 'alice').execute()).to.deep.equal([]);
    });
  });

  describe('before authentication (through the API the core will call)', () => {
    let api: RegisterApi;
    const origin = (remoteAddress = '198.51.100.7', secure = true): PreAuthOrigin => ({ host: 'example.com', remoteAddress, secure, stream: {} });
    const iq = (type: 'get' | 'set', ...children: Element[]) => xml('iq', { type, id: 'r' }, query(...children));
    const signup = (user: string, password = 'secret', from = origin()) => api.preAuthIq(iq('set', text('username', user), text('password', password)), from);

    describe('with registration off (the default)', () => {
      beforeEach(async () => {
        h = await Harness.start({ modules: [register] });
        api = h.api(register);
      });

      it('answers service-unavailable to a request for the fields and to an attempt', async () => {
        expect(await api.preAuthIq(iq('get'), origin())).to.have.property('condition', 'service-unavailable');
        expect(await signup('mallory')).to.have.property('condition', 'service-unavailable');
        expect(await h.accounts.exists('example.com', 'mallory')).to.equal(false);
      });

      it('offers no registration stream feature', () => {
        expect(h.streamFeatures('pre-auth')).to.deep.equal([]);
      });
    });

    describe('with registration on', () => {
      const events: string[] = [];
      const recorder = defineModule({
        name: 'recorder',
        config: z.strictObject({}),
        setup(ctx) {
          ctx.on('account/created', ({ host, user }) => { events.push(`${user}@${host}`); });
        },
      });

      beforeEach(async () => {
        events.length = 0;
        h = await Harness.start({ modules: [register, recorder], options: { register: { allowRegistration: true, registrationsPerIpPerHour: 2 } } });
        api = h.api(register);
      });

      it('lists the fields to fill, with instructions', async () => {
        const fields = await api.preAuthIq(iq('get'), origin());
        expectXml(fields as Element, `<query xmlns='jabber:iq:register'><instructions>*</instructions><username/><password/></query>`);
      });

      it('creates the account, which can then log in, and announces it with account/created', async () => {
        expect(await signup('Newbie', 'first-pw')).to.equal(undefined);
        expect(await h.accounts.verifyPassword('example.com', 'newbie', 'first-pw')).to.equal(true);
        expect(events).to.deep.equal(['newbie@example.com']);
      });

      it('answers conflict for a username that is taken', async () => {
        await h.createAccount('taken');
        expect(await signup('taken')).to.have.property('condition', 'conflict');
      });

      it('answers not-acceptable when a field is missing or empty, or the username is not valid', async () => {
        expect(await api.preAuthIq(iq('set', text('username', 'u1')), origin())).to.have.property('condition', 'not-acceptable');
        expect(await api.preAuthIq(iq('set', text('username', 'u2'), xml('password')), origin())).to.have.property('condition', 'not-acceptable');
        expect(await signup('a b')).to.have.property('condition', 'not-acceptable');
        expect(await h.accounts.list('example.com')).to.deep.equal([]);
      });

      it('limits the accounts one address creates per hour with resource-constraint, other addresses unaffected', async () => {
        expect(await signup('one')).to.equal(undefined);
        expect(await signup('two')).to.equal(undefined);
        const third = await signup('three');
        expect(third).to.have.property('condition', 'resource-constraint');
        expect(third).to.have.property('type', 'wait');
        expect(await signup('four', 'pw', origin('203.0.113.9'))).to.equal(undefined);
        expect(await h.accounts.exists('example.com', 'three')).to.equal(false);
      });

      it('does not count failed attempts against the address', async () => {
        await h.createAccount('taken');
        for (let i = 0; i < 3; i++) expect(await signup('taken')).to.have.property('condition', 'conflict');
        expect(await signup('fresh')).to.equal(undefined);
      });

      it('refuses registration over a connection without TLS with not-authorized', async () => {
        expect(await signup('plain', 'pw', origin('198.51.100.8', false))).to.have.property('condition', 'not-authorized');
      });

      it('answers unexpected-request to <remove/> before authentication', async () => {
        expect(await api.preAuthIq(iq('set', xml('remove')), origin())).to.have.property('condition', 'unexpected-request');
      });

      it('offers the iq-register stream feature before authentication', () => {
        const features = h.streamFeatures('pre-auth');
        expect(features.map((f) => `${f.name} ${String(f.attrs.xmlns)}`)).to.include('register http://jabber.org/features/iq-register');
      });
    });
  });
});
