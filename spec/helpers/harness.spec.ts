import { expect } from 'chai';
import { defineModule, NS, StanzaError, xml, z } from '../../lib/module-api.js';
import ping from '../../modules/ping/index.js';
import { Harness } from './harness.js';
import { expectError, expectXml } from './xml-assert.js';

const SVC = "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'";

/** A module that records the hooks it sees and owns a few test IQs. */
function recorder(events: string[]) {
  return defineModule({
    name: 'recorder',
    config: z.strictObject({ label: z.string().default('none') }),
    setup(ctx) {
      ctx.on('session/bound', ({ session }) => { events.push(`bound ${session.jid} ${ctx.config.label}`); });
      ctx.on('session/closed', ({ session, reason }) => { events.push(`closed ${session.jid} ${reason}`); });
      ctx.on('account/deleted', ({ host, user }) => { events.push(`deleted ${user}@${host}`); });
      ctx.iq.get({ ns: 'urn:test', name: 'boom', to: ['host'] }, () => { throw new Error('bug'); });
      ctx.iq.get({ ns: 'urn:test', name: 'refuse', to: ['host'] }, () => StanzaError.forbidden('no'));
      ctx.iq.get({ ns: 'urn:test', name: 'label', to: ['host'] }, () => xml('label', { xmlns: 'urn:test' }, ctx.config.label));
      ctx.streamFeature({ stage: 'pre-auth', build: () => xml('test-feature', { xmlns: 'urn:test' }) });
    },
  });
}

describe('harness', () => {
  let h: Harness;
  let events: string[];

  beforeEach(async () => {
    events = [];
    h = await Harness.start({ hosts: ['example.com', 'other.org'], modules: [ping, recorder(events)] });
    await h.createAccount('alice', 'pw');
    await h.createAccount('bob', 'pw');
  });
  afterEach(() => h.stop());

  describe('the core, through it', () => {
    it('answers an IQ no module owns with service-unavailable from the core', async () => {
      const alice = await h.connect('alice@example.com/phone');
      const reply = await alice.iq(xml('iq', { type: 'get', to: 'example.com', id: 'u1' }, xml('query', { xmlns: 'urn:example:unknown' })));
      expectXml(reply, `
        <iq type='error' id='u1' from='example.com' to='alice@example.com/phone'>
          <query xmlns='urn:example:unknown'/>
          <error type='cancel'><service-unavailable ${SVC}/></error>
        </iq>`);
    });

    it('bounces a get with two children as bad-request', async () => {
      const alice = await h.connect('alice@example.com/phone');
      const reply = await alice.iq(xml('iq', { type: 'get', to: 'example.com', id: 'two' }, xml('ping', { xmlns: NS.ping }), xml('ping', { xmlns: NS.ping })));
      expectError(reply, 'bad-request', 'modify');
      expect(reply.attrs.id).to.equal('two');
    });

    it('never answers an error IQ, even a malformed one', async () => {
      const alice = await h.connect('alice@example.com/phone');
      const err = xml('error', { type: 'cancel' }, xml('service-unavailable', { xmlns: NS.stanzaErrors }));
      await alice.send(xml('iq', { type: 'error', id: 'e1', to: 'example.com' }, err));
      await alice.send(xml('iq', { type: 'error', id: 'e2', to: 'bob@example.com' }, err));
      await alice.send(xml('iq', { type: 'error', to: 'example.com' }, err)); // no id
      await h.settle();
      expect(alice.received).to.deep.equal([]);
    });

    it('answers an IQ its owner handles with an empty result', async () => {
      const alice = await h.connect('alice@example.com/phone');
      const reply = await alice.get(xml('ping', { xmlns: NS.ping }));
      expectXml(reply, `<iq type='result' id='*' from='example.com' to='alice@example.com/phone'/>`);
    });

    it('answers a StanzaError returned by a handler as that error', async () => {
      const alice = await h.connect('alice@example.com/phone');
      expectError(await alice.get(xml('refuse', { xmlns: 'urn:test' })), 'forbidden', 'auth');
    });

    it('answers an exception thrown by a handler as internal-server-error', async () => {
      const alice = await h.connect('alice@example.com/phone');
      expectError(await alice.get(xml('boom', { xmlns: 'urn:test' })), 'internal-server-error', 'cancel');
    });

    it('answers an IQ to the bare JID of a non-existent account with service-unavailable', async () => {
      const alice = await h.connect('alice@example.com/phone');
      expectError(await alice.get(xml('ping', { xmlns: NS.ping }), 'nobody@example.com'), 'service-unavailable');
    });

    it('passes an IQ to a full JID that no module owns to that session, and its reply back', async () => {
      const alice = await h.connect('alice@example.com/phone');
      const bob = await h.connect('bob@example.com/laptop');
      const pending = alice.iq(xml('iq', { type: 'get', to: 'bob@example.com/laptop', id: 'v1' }, xml('query', { xmlns: NS.version })));
      const forwarded = await bob.next((s) => s.name === 'iq');
      expectXml(forwarded, `<iq type='get' to='bob@example.com/laptop' id='v1' from='alice@example.com/phone'><query xmlns='${NS.version}'/></iq>`);
      await bob.send(xml('iq', { type: 'result', id: 'v1', to: 'alice@example.com/phone' }, xml('query', { xmlns: NS.version }, xml('name', {}, 'Client'))));
      expectXml(await pending, `<iq type='result' id='v1' from='bob@example.com/laptop' to='alice@example.com/phone'><query xmlns='${NS.version}'><name>Client</name></query></iq>`);
    });

    it('routes between hosts of the same harness', async () => {
      const alice = await h.connect('alice@example.com/phone');
      const reply = await alice.get(xml('ping', { xmlns: NS.ping }), 'other.org');
      expectXml(reply, `<iq type='result' id='*' from='other.org' to='alice@example.com/phone'/>`);
    });
  });

  describe('sessions', () => {
    it('fires session/bound on connect and session/closed on disconnect', async () => {
      const alice = await h.connect('alice@example.com/phone');
      await alice.disconnect();
      expect(events).to.deep.equal(['bound alice@example.com/phone none', 'closed alice@example.com/phone closed']);
      expect(h.sessions.get(alice.jid)).to.equal(undefined);
    });

    it('gives a JID without resource a random one', async () => {
      const alice = await h.connect('alice@example.com');
      expect(alice.jid.resource).to.be.a('string').and.not.equal('');
      expect(h.sessions.get(alice.jid)).to.equal(alice.session);
    });

    it('refuses to connect an account that does not exist', async () => {
      let error: Error | undefined;
      await h.connect('nobody@example.com/x').catch((e: Error) => { error = e; });
      expect(error?.message).to.match(/no account nobody@example\.com/);
    });

    it('closes the older session with conflict when the same full JID binds again', async () => {
      const first = await h.connect('alice@example.com/phone');
      const second = await h.connect('alice@example.com/phone');
      expect(first.closed?.condition).to.equal('conflict');
      expect(second.closed).to.equal(undefined);
      expect(h.sessions.get(second.jid)).to.equal(second.session);
    });

    it('ends the session with invalid-from when a stanza names someone else as sender', async () => {
      const alice = await h.connect('alice@example.com/phone');
      await alice.send(xml('iq', { type: 'get', id: 'f', from: 'bob@example.com/laptop', to: 'example.com' }, xml('ping', { xmlns: NS.ping })));
      expect(alice.closed?.condition).to.equal('invalid-from');
      expect(h.sessions.get(alice.jid)).to.equal(undefined);
    });

    it('accepts the client\'s own bare JID as from', async () => {
      const alice = await h.connect('alice@example.com/phone');
      const reply = await alice.iq(xml('iq', { type: 'get', from: 'alice@example.com', to: 'example.com' }, xml('ping', { xmlns: NS.ping })));
      expect(reply.attrs.type).to.equal('result');
    });

    it('takes stanzas from next() in arrival order, each once', async () => {
      const alice = await h.connect('alice@example.com/phone');
      const bob = await h.connect('bob@example.com/laptop');
      await bob.sendMessage({ to: 'alice@example.com/phone', type: 'chat', id: 'm1' }, xml('body', {}, 'one'));
      await bob.sendMessage({ to: 'alice@example.com/phone', type: 'chat', id: 'm2' }, xml('body', {}, 'two'));
      expect((await alice.next()).attrs.id).to.equal('m1');
      expect((await alice.next()).attrs.id).to.equal('m2');
      expect(alice.received.map((s) => s.attrs.id)).to.deep.equal(['m1', 'm2']);
    });

    it('rejects next() after the timeout, listing what was received', async () => {
      const alice = await h.connect('alice@example.com/phone');
      let error: Error | undefined;
      await alice.next((s) => s.name === 'message', 20).catch((e: Error) => { error = e; });
      expect(error?.message).to.match(/received no matching stanza within 20 ms/);
    });
  });

  describe('accounts and modules', () => {
    it('fires account/deleted when an account is deleted', async () => {
      expect(await h.deleteAccount('bob')).to.equal(true);
      expect(events).to.deep.equal(['deleted bob@example.com']);
      expect(await h.accounts.exists('example.com', 'bob')).to.equal(false);
    });

    it('collects stream features from modules', () => {
      expectXml(h.streamFeatures('pre-auth')[0], `<test-feature xmlns='urn:test'/>`);
      expect(h.streamFeatures('post-auth')).to.deep.equal([]);
    });

    it('validates module options with the module schema and applies per-host overrides', async () => {
      const other = await Harness.start({
        hosts: ['a.example', 'b.example'],
        modules: [recorder([])],
        options: { recorder: { label: 'everywhere' } },
        hostOptions: { 'b.example': { recorder: { label: 'only-b' } } },
      });
      try {
        await other.createAccount('u', 'pw', 'a.example');
        await other.createAccount('u', 'pw', 'b.example');
        const a = await other.connect('u@a.example/r');
        const b = await other.connect('u@b.example/r');
        expect((await a.get(xml('label', { xmlns: 'urn:test' }))).getChild('label')?.getText()).to.equal('everywhere');
        expect((await b.get(xml('label', { xmlns: 'urn:test' }))).getChild('label')?.getText()).to.equal('only-b');
      } finally {
        await other.stop();
      }
    });

    it('refuses to start with options the module schema rejects', async () => {
      let error: unknown;
      await Harness.start({ modules: [recorder([])], options: { recorder: { lable: 'typo' } } }).catch((e: unknown) => { error = e; });
      expect(error).to.be.instanceOf(Error);
    });
  });
});
