import { expect } from 'chai';
import { Jid, NS, xml } from '../../../lib/module-api.js';
import type { Element, PreAuthOrigin } from '../../../lib/module-api.js';
import { preAuthKey } from '../../../lib/routing/host-runtime.js';
import adhoc from '../../../modules/adhoc/index.js';
import disco from '../../../modules/disco/index.js';
import invites, { NS_PARS } from '../../../modules/invites/index.js';
import presence from '../../../modules/presence/index.js';
import register from '../../../modules/register/index.js';
import roster from '../../../modules/roster/index.js';
import { Harness, type TestClient } from '../../helpers/harness.js';
import { expectError } from '../../helpers/xml-assert.js';

const R = NS.register;

describe('invites (XEP-0401, XEP-0379, XEP-0445)', () => {
  let h: Harness;
  let boss: TestClient;
  let alice: TestClient;

  async function start(options: Record<string, Record<string, unknown>> = {}): Promise<void> {
    h = await Harness.start({
      modules: [disco, adhoc, invites, register, roster, presence],
      server: { admins: [Jid.parse('boss@example.com')] },
      options,
    });
    await h.createAccount('boss');
    await h.createAccount('alice');
    boss = await h.connect('boss@example.com/desk');
    alice = await h.connect('alice@example.com/phone');
  }
  afterEach(() => h.stop());

  const origin = (stream: object = {}): PreAuthOrigin => ({ host: 'example.com', remoteAddress: '198.51.100.7', secure: true, stream });
  function preAuth(type: 'get' | 'set', payload: Element, from: PreAuthOrigin) {
    const handler = h.runtime().preAuthIqs.get(preAuthKey(type, String(payload.attrs.xmlns), payload.name));
    if (!handler) throw new Error(`no pre-auth handler for ${payload.name}`);
    return handler(xml('iq', { type, id: 'p1' }, payload), from);
  }
  const preauth = (token: string, from: PreAuthOrigin) => preAuth('set', xml('preauth', { xmlns: NS_PARS, token }), from);
  const signup = (user: string, from: PreAuthOrigin, ...extra: Element[]) =>
    preAuth('set', xml('query', { xmlns: R }, xml('username', {}, user), xml('password', {}, 'pw-of-' + user), ...extra), from);
  const command = (c: TestClient, node: string) => c.set(xml('command', { xmlns: NS.commands, node, action: 'execute' }));
  function fields(reply: Element): Record<string, string> {
    const x = reply.getChild('command')!.getChild('x', NS.dataForms)!;
    return Object.fromEntries(x.getChildren('field').map((f) => [String(f.attrs.var), f.getChildText('value') ?? '']));
  }
  /** A pre-auth handler's answer is a StanzaError with this condition. */
  const refused = (result: unknown, condition: string) => expect(result).to.have.property('condition', condition);
  const tokenOf = (uri: string) => /preauth=([^;]+)/.exec(uri)![1]!;

  describe('ad-hoc commands', () => {
    beforeEach(() => start());

    it('gives a user a contact invite URI (XEP-0379) with an expiry, not one that creates accounts', async () => {
      const f = fields(await command(alice, 'urn:xmpp:invite#invite'));
      expect(f.uri).to.match(/^xmpp:alice@example\.com\?roster;preauth=[A-Za-z0-9_-]{24}$/);
      expect(Date.parse(f.expire!) - Date.now()).to.be.within(6.9 * 86_400_000, 7 * 86_400_000);
      // usersMayInviteNewUsers is off: the token does not open registration.
      refused(await preauth(tokenOf(f.uri!), origin()), 'item-not-found');
    });

    it('gives an admin a contact invite that also creates an account (ibr=y)', async () => {
      const f = fields(await command(boss, 'urn:xmpp:invite#invite'));
      expect(f.uri).to.match(/^xmpp:boss@example\.com\?roster;preauth=[^;]+;ibr=y$/);
    });

    it('gives an admin an account invite (XEP-0401 create-account)', async () => {
      const f = fields(await command(boss, 'urn:xmpp:invite#create-account'));
      expect(f.uri).to.match(/^xmpp:example\.com\?register;preauth=/);
    });

    it('refuses the create-account command to a user with forbidden, and hides it from them', async () => {
      expectError(await command(alice, 'urn:xmpp:invite#create-account'), 'forbidden');
      const items = await alice.get(xml('query', { xmlns: NS.discoItems, node: NS.commands }));
      const nodes = items.getChild('query')!.getChildren('item').map((i) => i.attrs.node);
      expect(nodes).to.include('urn:xmpp:invite#invite').and.not.include('urn:xmpp:invite#create-account');
    });

    it('limits the unused invites of a user with resource-constraint', async () => {
      await h.stop();
      await start({ invites: { maxPendingPerUser: 2 } });
      await command(alice, 'urn:xmpp:invite#invite');
      await command(alice, 'urn:xmpp:invite#invite');
      expectError(await command(alice, 'urn:xmpp:invite#invite'), 'resource-constraint');
    });

    it('advertises the invite stream features before authentication', () => {
      const names = h.streamFeatures('pre-auth').map((f) => `${f.name} ${f.attrs.xmlns}`);
      expect(names).to.include.members(['register urn:xmpp:invite', 'register urn:xmpp:ibr-token:0']);
    });
  });

  describe('registration with an invite while open registration is off', () => {
    beforeEach(() => start({ invites: { usersMayInviteNewUsers: true } }));

    it('creates the account after a valid <preauth/> on the same stream, and makes the inviter and the invitee mutual contacts', async () => {
      await alice.get(xml('query', { xmlns: NS.roster }), 'alice@example.com'); // interested in roster pushes (RFC 6121 §2.1.6)
      const token = tokenOf(fields(await command(alice, 'urn:xmpp:invite#invite')).uri!);
      const stream = {};
      expect(await preauth(token, origin(stream))).to.equal(undefined);
      expect(await signup('juliet', origin(stream))).to.equal(undefined);
      expect(await h.accounts.verifyPassword('example.com', 'juliet', 'pw-of-juliet')).to.equal(true);
      const aliceItems = await h.api(roster).items(Jid.parse('alice@example.com'));
      expect(aliceItems.map((i) => [i.jid.toString(), i.subscription])).to.deep.equal([['juliet@example.com', 'both']]);
      const julietItems = await h.api(roster).items(Jid.parse('juliet@example.com'));
      expect(julietItems.map((i) => [i.jid.toString(), i.subscription])).to.deep.equal([['alice@example.com', 'both']]);
      // The inviter's online session saw the roster push.
      const push = await alice.next((s) => s.name === 'iq' && s.getChild('query', NS.roster) !== undefined);
      expect(push.getChild('query')!.getChild('item')!.attrs).to.include({ jid: 'juliet@example.com', subscription: 'both' });
    });

    it('does not carry a token validated on one stream over to another', async () => {
      const token = tokenOf(fields(await command(boss, 'urn:xmpp:invite#create-account')).uri!);
      expect(await preauth(token, origin({}))).to.equal(undefined);
      refused(await signup('mallory', origin({})), 'forbidden');
      expect(await h.accounts.exists('example.com', 'mallory')).to.equal(false);
    });

    it('accepts the token inside the registration query too (XEP-0445 form)', async () => {
      const token = tokenOf(fields(await command(boss, 'urn:xmpp:invite#create-account')).uri!);
      expect(await signup('romeo', origin(), xml('preauth', { xmlns: NS_PARS, token }))).to.equal(undefined);
      expect(await h.accounts.exists('example.com', 'romeo')).to.equal(true);
    });

    it('refuses registration without an invite with forbidden', async () => {
      refused(await signup('mallory', origin()), 'forbidden');
      expect(await h.accounts.exists('example.com', 'mallory')).to.equal(false);
    });

    it('answers an unknown token with item-not-found', async () => {
      refused(await preauth('no-such-token', origin()), 'item-not-found');
    });

    it('spends a single-use invite once: a second stream with the same token is refused', async () => {
      const token = tokenOf(fields(await command(boss, 'urn:xmpp:invite#create-account')).uri!);
      const first = {};
      const second = {};
      expect(await preauth(token, origin(first))).to.equal(undefined);
      expect(await preauth(token, origin(second))).to.equal(undefined);
      const [a, b] = await Promise.all([signup('one', origin(first)), signup('two', origin(second))]);
      expect([a, b].filter((r) => r === undefined)).to.have.length(1);
      expect((await h.accounts.list('example.com')).map((x) => x.user).filter((u) => u === 'one' || u === 'two')).to.have.length(1);
      refused(await preauth(token, origin()), 'item-not-found');
    });

    it('keeps a single-use invite when the chosen name is taken', async () => {
      const token = tokenOf(fields(await command(boss, 'urn:xmpp:invite#create-account')).uri!);
      const stream = {};
      await preauth(token, origin(stream));
      refused(await signup('alice', origin(stream)), 'conflict');
      expect(await signup('alice2', origin(stream))).to.equal(undefined);
    });

    it('refuses an expired invite', async () => {
      const api = h.api(invites);
      const created = await api.create({ kind: 'account', register: true, uses: 1, createdBy: 'test', lifetimeMs: 1 });
      await new Promise((r) => setTimeout(r, 5));
      refused(await preauth(created.invite.token, origin()), 'item-not-found');
    });

    it('lets a multi-use invite create as many accounts as it allows', async () => {
      const api = h.api(invites);
      const created = await api.create({ kind: 'account', register: true, uses: 2, createdBy: 'test' });
      for (const user of ['m1', 'm2', 'm3']) {
        const stream = {};
        const ok = await preauth(created.invite.token, origin(stream));
        if (user === 'm3') refused(ok, 'item-not-found');
        else expect(await signup(user, origin(stream))).to.equal(undefined);
      }
      expect(await h.accounts.exists('example.com', 'm3')).to.equal(false);
    });

    it('forgets the invites of a deleted account', async () => {
      const token = tokenOf(fields(await command(alice, 'urn:xmpp:invite#invite')).uri!);
      await h.accounts.delete('example.com', 'alice');
      refused(await preauth(token, origin()), 'item-not-found');
    });
  });

  describe('a subscription request carrying a contact invite token (XEP-0379)', () => {
    beforeEach(() => start());

    it('is approved at once, and spends the invite', async () => {
      const token = tokenOf(fields(await command(alice, 'urn:xmpp:invite#invite')).uri!);
      await h.createAccount('juliet');
      const juliet = await h.connect('juliet@example.com/balcony');
      await juliet.get(xml('query', { xmlns: NS.roster }), 'juliet@example.com'); // RFC 6121 §3.1.6: to interested resources
      await juliet.sendPresence();
      await juliet.sendPresence({ to: 'alice@example.com', type: 'subscribe' }, xml('preauth', { xmlns: NS_PARS, token }));
      const approved = await juliet.next((s) => s.name === 'presence' && s.attrs.type === 'subscribed');
      expect(approved.attrs.from).to.equal('alice@example.com');
      const item = await h.api(roster).get(Jid.parse('alice@example.com'), Jid.parse('juliet@example.com'));
      expect(item?.subscription).to.equal('from');
      // Spent: a second person's request with the same token waits for alice as usual.
      await h.createAccount('nurse');
      const nurse = await h.connect('nurse@example.com/x');
      await nurse.get(xml('query', { xmlns: NS.roster }), 'nurse@example.com');
      await nurse.sendPresence();
      await nurse.sendPresence({ to: 'alice@example.com', type: 'subscribe' }, xml('preauth', { xmlns: NS_PARS, token }));
      await new Promise((r) => setTimeout(r, 50));
      expect(nurse.received.some((s) => s.name === 'presence' && s.attrs.type === 'subscribed')).to.equal(false);
    });

    it('is left to the user when the token is not one of theirs', async () => {
      const token = tokenOf(fields(await command(boss, 'urn:xmpp:invite#invite')).uri!);
      await h.createAccount('juliet');
      const juliet = await h.connect('juliet@example.com/balcony');
      await juliet.sendPresence();
      await juliet.sendPresence({ to: 'alice@example.com', type: 'subscribe' }, xml('preauth', { xmlns: NS_PARS, token }));
      await new Promise((r) => setTimeout(r, 50));
      expect(juliet.received.some((s) => s.name === 'presence' && s.attrs.type === 'subscribed')).to.equal(false);
    });
  });

  it('leaves registration closed (service-unavailable) without the invites module', async () => {
    h = await Harness.start({ modules: [register] });
    const handler = h.runtime().preAuthIqs.get(preAuthKey('get', R, 'query'));
    expect(handler).to.equal(undefined);
    expect(h.runtime().preAuthIqs.get(preAuthKey('set', NS_PARS, 'preauth'))).to.equal(undefined);
  });
});
