// XEP-0357 push notifications in process. The app server is real: the pubsub module serving
// pubsub.app.example on a second host, with a node the app server's account owns (whitelist,
// alice publish-only) and subscribes to; or, for error answers it cannot be made to give, an
// app-server session that receives the publish IQs and answers them itself.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { NS, xml, type Element } from '../../../lib/module-api.js';
import { Harness, type TestClient } from '../../helpers/harness.js';
import { expectError } from '../../helpers/xml-assert.js';
import roster from '../../../modules/roster/index.js';
import presence from '../../../modules/presence/index.js';
import disco from '../../../modules/disco/index.js';
import pep, { PUBSUB, PUBSUB_EVENT, PUBSUB_OWNER } from '../../../modules/pep/index.js';
import pubsub from '../../../modules/pubsub/index.js';
import csi from '../../../modules/csi/index.js';
import offline from '../../../modules/offline/index.js';
import muc from '../../../modules/muc/index.js';
import push, { INCLUDE_BODY_FIELD, NS_PUSH, NS_SUMMARY } from '../../../modules/push/index.js';
import mds, { NS_MDS } from '../../../modules/mds/index.js';
import { configSubmit } from '../pep/world.js';

const APP = 'pubsub.app.example';
const PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';

const ps = (...c: Element[]) => xml('pubsub', { xmlns: PUBSUB }, ...c);
const own = (...c: Element[]) => xml('pubsub', { xmlns: PUBSUB_OWNER }, ...c);
const optionsForm = (fields: Record<string, string>) =>
  xml('x', { xmlns: NS.dataForms, type: 'submit' },
    xml('field', { var: 'FORM_TYPE' }, xml('value', {}, PUBLISH_OPTIONS)),
    Object.entries(fields).map(([k, v]) => xml('field', { var: k }, xml('value', {}, v))));
const enable = (jid: string, node: string | undefined, form?: Element) => xml('enable', { xmlns: NS_PUSH, jid, node }, form ?? null);
const chat = (from: string, to: string, text: string) => xml('message', { from, to, type: 'chat' }, xml('body', {}, text));
const isEvent = (el: Element) => el.name === 'message' && el.getChild('event', PUBSUB_EVENT) !== undefined;

/** The summary form of a notification event: field → value. */
function summaryOf(event: Element): Record<string, string> {
  const x = event.getChild('event', PUBSUB_EVENT)!.getChild('items')!.getChild('item')!.getChild('notification', NS_PUSH)!.getChild('x', NS.dataForms)!;
  return Object.fromEntries(x.getChildren('field').map((f) => [f.attrs.var as string, f.getChildText('value') ?? '']));
}

/** A hibernating session, as stream management leaves one whose connection was lost. */
function hibernate(c: TestClient): void {
  c.session.detach({ write() {}, close() {}, remoteAddress: '127.0.0.1', secure: true });
}

describe('push (XEP-0357)', function () {
  this.timeout(10_000);
  let h: Harness;
  let appserver: TestClient;
  let bob: TestClient;

  async function start(options: Record<string, unknown> = {}, storagePath?: string): Promise<void> {
    h = await Harness.start({
      hosts: ['example.com', 'app.example'],
      modules: [roster, presence, disco, pep, pubsub, csi, offline, muc, mds, push],
      options: { push: { minInterval: '0s', retryDelay: '20ms', retries: 2, timeout: '2s', ...options } },
      storagePath,
    });
    if (!(await h.accounts.exists('example.com', 'alice'))) {
      await h.createAccount('alice');
      await h.createAccount('bob');
      await h.createAccount('appserver', 'pw', 'app.example');
    }
    appserver = await h.connect('appserver@app.example/srv');
    taken = 0;
    // Notifications go to the subscribed bare JID, that is to available sessions.
    await appserver.sendPresence();
    bob = await h.connect('bob@example.com/b');
    await bob.sendPresence();
  }
  afterEach(() => h?.stop());

  /** The app server provisions a node for alice's device: whitelist, alice may only publish, and it listens. */
  async function provision(node: string): Promise<void> {
    const set = (payload: Element) => appserver.iq(xml('iq', { type: 'set', to: APP }, payload));
    expect((await set(ps(xml('create', { node }), xml('configure', {}, configSubmit({ 'pubsub#access_model': 'whitelist' }))))).attrs.type).to.equal('result');
    expect((await set(own(xml('affiliations', { node }, xml('affiliation', { jid: 'alice@example.com', affiliation: 'publish-only' }))))).attrs.type).to.equal('result');
    expect((await set(ps(xml('subscribe', { node, jid: 'appserver@app.example' })))).attrs.type).to.equal('result');
    // The service looks for a last item to send the new subscriber on a later turn: let it find none.
    await new Promise((r) => setTimeout(r, 10));
  }

  let taken = 0;
  const notification = () => {
    taken++;
    return appserver.next(isEvent);
  };
  /** No notification beyond those the test took. */
  async function noNotification(ms = 150): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    await h.settle();
    expect(appserver.received.filter(isEvent).slice(taken).map((e) => e.toString())).to.deep.equal([]);
  }

  it('advertises urn:xmpp:push:0 on the account', async () => {
    await start();
    const alice = await h.connect('alice@example.com/phone');
    const info = await alice.get(xml('query', { xmlns: NS.discoInfo }), 'alice@example.com');
    expect(info.getChild('query')!.getChildren('feature').map((f) => f.attrs.var)).to.include(NS_PUSH);
  });

  it('refuses an enable without jid or node, with a bad jid, or with a form that is not publish-options', async () => {
    await start();
    const alice = await h.connect('alice@example.com/phone');
    expectError(await alice.set(xml('enable', { xmlns: NS_PUSH, node: 'n' }), 'alice@example.com'), 'bad-request');
    expectError(await alice.set(enable(APP, undefined), 'alice@example.com'), 'bad-request');
    expectError(await alice.set(enable('a@@b', 'n'), 'alice@example.com'), 'jid-malformed');
    const wrongForm = xml('x', { xmlns: NS.dataForms, type: 'submit' }, xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'urn:other')));
    expectError(await alice.set(enable(APP, 'n', wrongForm), 'alice@example.com'), 'bad-request');
    expect(await h.api(push).registrations('alice')).to.deep.equal([]);
  });

  it('publishes a summary (count, sender, no body) to the app server for a device with no session, and keeps counting', async () => {
    await start();
    await provision('dev1');
    const phone = await h.connect('alice@example.com/phone');
    expect((await phone.set(enable(APP, 'dev1'), 'alice@example.com')).attrs.type).to.equal('result');
    await phone.disconnect();
    await noNotification();

    await bob.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('body', {}, 'are you there?'));
    const first = summaryOf(await notification());
    expect(first).to.deep.equal({ FORM_TYPE: NS_SUMMARY, 'message-count': '1', 'last-message-sender': 'bob@example.com/b' });
    await bob.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('body', {}, 'hello?'));
    expect(summaryOf(await notification())['message-count']).to.equal('2');
    // The message itself went to offline storage.
    expect(await h.api(offline).count('alice')).to.equal(2);
    // Chat states alone wake nobody.
    await bob.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' }));
    await noNotification();
  });

  it('does not push again when offline storage hands its messages to an inactive session', async () => {
    await start();
    await provision('dev1');
    const phone = await h.connect('alice@example.com/phone');
    await phone.set(enable(APP, 'dev1'), 'alice@example.com');
    await phone.disconnect();
    await bob.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('body', {}, 'stored'));
    expect(summaryOf(await notification())['message-count']).to.equal('1');
    const again = await h.connect('alice@example.com/phone');
    await again.send(xml('inactive', { xmlns: NS.csi }));
    await again.sendPresence();
    await again.next((s) => s.name === 'message' && s.getChildText('body') === 'stored');
    await noNotification();
  });

  it('starts the count over once the user marked a chat displayed on any device (XEP-0490)', async () => {
    await start();
    await provision('dev1');
    const phone = await h.connect('alice@example.com/phone');
    await phone.set(enable(APP, 'dev1'), 'alice@example.com');
    await phone.disconnect();
    for (const text of ['one', 'two']) await bob.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('body', {}, text));
    await notification();
    expect(summaryOf(await notification())['message-count']).to.equal('2');
    const desktop = await h.connect('alice@example.com/desktop');
    await desktop.sendPresence();
    const displayed = xml('displayed', { xmlns: NS_MDS }, xml('stanza-id', { xmlns: NS.sid, by: 'alice@example.com', id: 'x1' }));
    await desktop.sendMessage({ to: 'bob@example.com' }, xml('displayed', { xmlns: 'urn:xmpp:chat-markers:0', id: 'm' }), displayed);
    await h.settle();
    await desktop.disconnect();
    await bob.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('body', {}, 'three'));
    expect(summaryOf(await notification())['message-count']).to.equal('1');
  });

  it('keeps registrations across a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-push-'));
    try {
      await start({}, join(dir, 'db.sqlite'));
      await provision('dev1');
      const phone = await h.connect('alice@example.com/phone');
      await phone.set(enable(APP, 'dev1', optionsForm({ 'pubsub#access_model': 'whitelist' })), 'alice@example.com');
      await h.stop();
      await start({}, join(dir, 'db.sqlite'));
      const regs = await h.api(push).registrations('alice');
      expect(regs.map((r) => [r.jid, r.node, r.resource])).to.deep.equal([[APP, 'dev1', 'phone']]);
      await bob.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('body', {}, 'after the restart'));
      expect(summaryOf(await notification())['message-count']).to.equal('1');
    } finally {
      await h.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('publishes for a hibernating session and a CSI-inactive one, and not for an active one', async () => {
    await start();
    await provision('dev1');
    const phone = await h.connect('alice@example.com/phone');
    await phone.sendPresence();
    await phone.set(enable(APP, 'dev1'), 'alice@example.com');

    await bob.sendMessage({ to: 'alice@example.com/phone', type: 'chat' }, xml('body', {}, 'active'));
    await phone.next((s) => s.name === 'message');
    await noNotification();

    await phone.send(xml('inactive', { xmlns: NS.csi }));
    await bob.sendMessage({ to: 'alice@example.com/phone', type: 'chat' }, xml('body', {}, 'inactive'));
    expect(summaryOf(await notification())['message-count']).to.equal('1');
    // The message reached the (inactive) session as well.
    await phone.next((s) => s.name === 'message' && s.getChildText('body') === 'inactive');

    await phone.send(xml('active', { xmlns: NS.csi }));
    hibernate(phone);
    await bob.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('body', {}, 'hibernating'));
    expect(summaryOf(await notification())['message-count']).to.equal('2');
  });

  it('publishes for a message to the bare JID that goes past a bound session without available presence', async () => {
    await start();
    await provision('dev1');
    const phone = await h.connect('alice@example.com/phone');
    await phone.set(enable(APP, 'dev1'), 'alice@example.com');
    await bob.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('body', {}, 'to the account'));
    expect(summaryOf(await notification())['message-count']).to.equal('1');
    // Addressed to the session itself, it reaches it (active): nothing to push.
    await bob.sendMessage({ to: 'alice@example.com/phone', type: 'chat' }, xml('body', {}, 'to the phone'));
    await phone.next((s) => s.name === 'message' && s.getChildText('body') === 'to the phone');
    await noNotification();
  });

  it('publishes only for the device whose session cannot take the message, not for another device online', async () => {
    await start();
    await provision('phone-node');
    await provision('tablet-node');
    const phone = await h.connect('alice@example.com/phone');
    const tablet = await h.connect('alice@example.com/tablet');
    for (const c of [phone, tablet]) await c.sendPresence();
    await phone.set(enable(APP, 'phone-node'), 'alice@example.com');
    await tablet.set(enable(APP, 'tablet-node'), 'alice@example.com');
    hibernate(phone);
    await bob.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('body', {}, 'for both'));
    const event = await notification();
    expect(event.getChild('event', PUBSUB_EVENT)!.getChild('items')!.attrs.node).to.equal('phone-node');
    await noNotification();
  });

  it('sends the body only when the admin allows it and the client asked, and passes the rest of the form on as publish-options', async () => {
    await start({ includeBody: 'when-requested' });
    await provision('dev1');
    const phone = await h.connect('alice@example.com/phone');
    // The app server's pubsub checks publish-options as preconditions: our own field must not reach it.
    const form = optionsForm({ 'pubsub#access_model': 'whitelist', [INCLUDE_BODY_FIELD]: 'true' });
    await phone.set(enable(APP, 'dev1', form), 'alice@example.com');
    await phone.disconnect();
    await bob.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('body', {}, 'secret plans'));
    expect(summaryOf(await notification())['last-message-body']).to.equal('secret plans');

    // Enabled again without asking: no body.
    const again = await h.connect('alice@example.com/phone');
    await again.set(enable(APP, 'dev1', optionsForm({ 'pubsub#access_model': 'whitelist' })), 'alice@example.com');
    await again.disconnect();
    await bob.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('body', {}, 'more plans'));
    expect(summaryOf(await notification())).to.not.have.property('last-message-body');
  });

  it('never sends the body by default, even when a client asks', async () => {
    await start();
    await provision('dev1');
    const phone = await h.connect('alice@example.com/phone');
    await phone.set(enable(APP, 'dev1', optionsForm({ [INCLUDE_BODY_FIELD]: 'true' })), 'alice@example.com');
    await phone.disconnect();
    await bob.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('body', {}, 'private'));
    const summary = summaryOf(await notification());
    expect(summary).to.not.have.property('last-message-body');
    expect(JSON.stringify(summary)).to.not.include('private');
  });

  it('wakes a hibernating device for a room message that mentions its nick, and not for other room traffic', async () => {
    await start();
    await provision('dev1');
    const phone = await h.connect('alice@example.com/phone');
    await phone.sendPresence();
    await phone.set(enable(APP, 'dev1'), 'alice@example.com');
    await phone.send(xml('presence', { to: 'room@conference.example.com/Alice' }, xml('x', { xmlns: NS.muc })));
    await phone.next((s) => s.name === 'presence' && s.getChild('x', NS.mucUser)?.getChildren('status').some((c) => c.attrs.code === '110') === true);
    // A new room is locked until its owner accepts the default configuration (XEP-0045 §10.1.2).
    const unlock = await phone.set(xml('query', { xmlns: 'http://jabber.org/protocol/muc#owner' }, xml('x', { xmlns: NS.dataForms, type: 'submit' })), 'room@conference.example.com');
    expect(unlock.attrs.type).to.equal('result');
    await bob.send(xml('presence', { to: 'room@conference.example.com/bob' }, xml('x', { xmlns: NS.muc })));
    await bob.next((s) => s.name === 'presence' && s.attrs.from === 'room@conference.example.com/bob' && s.attrs.type === undefined);
    hibernate(phone);

    const say = (text: string) => bob.sendMessage({ to: 'room@conference.example.com', type: 'groupchat' }, xml('body', {}, text));
    await say('lunch anyone?');
    await say('Alicelike words do not count');
    await noNotification();
    await say('alice: are you coming?');
    const summary = summaryOf(await notification());
    expect(summary['last-message-sender']).to.equal('room@conference.example.com/bob');
    expect(summary['message-count']).to.equal('1');
  });

  it('publishes at most once per minInterval per device and sums up what came meanwhile', async () => {
    await start({ minInterval: '400ms' });
    await provision('dev1');
    const phone = await h.connect('alice@example.com/phone');
    await phone.set(enable(APP, 'dev1'), 'alice@example.com');
    await phone.disconnect();
    for (const text of ['one', 'two', 'three']) await bob.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('body', {}, text));
    const first = summaryOf(await notification());
    expect(first['message-count']).to.equal('1');
    const started = Date.now();
    const second = summaryOf(await notification());
    expect(Date.now() - started).to.be.greaterThan(200);
    expect(second['message-count']).to.equal('3');
    await noNotification(500);
  });

  it('disables the registration when the app server took the right to publish (forbidden)', async () => {
    await start();
    await provision('revoked');
    const phone = await h.connect('alice@example.com/phone');
    await phone.set(enable(APP, 'revoked'), 'alice@example.com');
    await phone.disconnect();
    const set = (payload: Element) => appserver.iq(xml('iq', { type: 'set', to: APP }, payload));
    expect((await set(own(xml('affiliations', { node: 'revoked' }, xml('affiliation', { jid: 'alice@example.com', affiliation: 'none' }))))).attrs.type).to.equal('result');
    await bob.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('body', {}, 'anyone?'));
    for (let i = 0; i < 50 && (await h.api(push).registrations('alice')).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await h.api(push).registrations('alice')).to.deep.equal([]);
  });

  it('disables the registration when the publish-options do not match the node (precondition-not-met)', async () => {
    await start();
    await provision('dev1');
    const phone = await h.connect('alice@example.com/phone');
    await phone.set(enable(APP, 'dev1', optionsForm({ 'pubsub#access_model': 'open' })), 'alice@example.com');
    await phone.disconnect();
    await bob.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('body', {}, 'x'));
    for (let i = 0; i < 50 && (await h.api(push).registrations('alice')).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await h.api(push).registrations('alice')).to.deep.equal([]);
    await noNotification();
  });

  describe('with an app server that answers the publish IQs itself', () => {
    const SRV = 'appserver@app.example/srv';
    const publishIq = () => appserver.next((s) => s.name === 'iq' && s.attrs.type === 'set' && s.getChild('pubsub', PUBSUB) !== undefined);
    const answer = (iq: Element, error?: Element) =>
      appserver.send(xml('iq', { type: error ? 'error' : 'result', id: iq.attrs.id, to: iq.attrs.from }, error ?? null));
    const err = (type: string, condition: string) => xml('error', { type }, xml(condition, { xmlns: NS.stanzaErrors }));

    async function enabledOffline(form?: Element): Promise<void> {
      const phone = await h.connect('alice@example.com/phone');
      await phone.set(enable(SRV, 'raw-node', form), 'alice@example.com');
      await phone.disconnect();
    }

    it('publishes from the account bare JID to the node, with the publish-options the client gave', async () => {
      await start();
      await enabledOffline(optionsForm({ secret: 'eruio234vzxc2kla-91' }));
      await bob.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('body', {}, 'hi'));
      const iq = await publishIq();
      expect(iq.attrs.from).to.equal('alice@example.com');
      const pubsubEl = iq.getChild('pubsub', PUBSUB)!;
      expect(pubsubEl.getChild('publish')!.attrs.node).to.equal('raw-node');
      const opts = pubsubEl.getChild('publish-options')!.getChild('x', NS.dataForms)!;
      expect(opts.getChildren('field').map((f) => [f.attrs.var, f.getChildText('value')])).to.deep.equal([['FORM_TYPE', PUBLISH_OPTIONS], ['secret', 'eruio234vzxc2kla-91']]);
      await answer(iq);
    });

    it('publishes to an app server on another domain through federation, and reads its answer', async () => {
      await start();
      const sent: Element[] = [];
      h.router.remote = async (stanza) => {
        sent.push(stanza.el);
      };
      const phone = await h.connect('alice@example.com/phone');
      await phone.set(enable('push.remote.example', 'n1'), 'alice@example.com');
      await phone.disconnect();
      await bob.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('body', {}, 'hi'));
      for (let i = 0; i < 100 && sent.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      const iq = sent[0];
      expect(iq.attrs).to.include({ type: 'set', from: 'alice@example.com', to: 'push.remote.example' });
      expect(iq.getChild('pubsub', PUBSUB)!.getChild('publish')!.attrs.node).to.equal('n1');
      // The remote push service refuses: the registration goes.
      await h.route(xml('iq', { type: 'error', id: iq.attrs.id, from: 'push.remote.example', to: 'alice@example.com' }, err('cancel', 'item-not-found')));
      await h.settle();
      expect(await h.api(push).registrations('alice')).to.deep.equal([]);
    });

    it('retries transient errors with growing delays, then succeeds and keeps the registration', async () => {
      await start({ retries: 3, retryDelay: '50ms' });
      await enabledOffline();
      await bob.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('body', {}, 'hi'));
      const times: number[] = [];
      for (const e of [err('wait', 'resource-constraint'), err('cancel', 'internal-server-error')]) {
        const iq = await publishIq();
        times.push(Date.now());
        await answer(iq, e);
      }
      const last = await publishIq();
      times.push(Date.now());
      await answer(last);
      expect(times[1] - times[0]).to.be.greaterThan(40);
      expect(times[2] - times[1]).to.be.greaterThan(90);
      await h.settle();
      expect((await h.api(push).registrations('alice')).length).to.equal(1);
    });

    it('gives up after the retries but keeps the registration, then disables it after too many failures in a row', async () => {
      await start({ retries: 1, retryDelay: '10ms', disableAfterFailures: 2 });
      await enabledOffline();
      for (let round = 0; round < 2; round++) {
        await bob.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('body', {}, `round ${round}`));
        for (let attempt = 0; attempt < 2; attempt++) await answer(await publishIq(), err('wait', 'remote-server-timeout'));
        await new Promise((r) => setTimeout(r, 50));
        expect((await h.api(push).registrations('alice')).length).to.equal(round === 0 ? 1 : 0);
      }
    });

    for (const [type, condition] of [['auth', 'not-authorized'], ['cancel', 'item-not-found']]) {
      it(`disables the registration at once on ${condition}, without retrying`, async () => {
        await start({ retries: 3 });
        await enabledOffline();
        await bob.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('body', {}, 'hi'));
        await answer(await publishIq(), err(type, condition));
        await new Promise((r) => setTimeout(r, 100));
        expect(await h.api(push).registrations('alice')).to.deep.equal([]);
        expect(appserver.received.filter((s) => s.name === 'iq' && s.attrs.type === 'set')).to.have.length(1);
      });
    }

    it('stops on <disable/> (all nodes of a service, or one) and on the service\'s affiliation change notice', async () => {
      await start();
      const phone = await h.connect('alice@example.com/phone');
      for (const node of ['a', 'b', 'c']) await phone.set(enable(SRV, node), 'alice@example.com');
      await phone.set(enable(APP, 'other'), 'alice@example.com');
      expect((await phone.set(xml('disable', { xmlns: NS_PUSH, jid: SRV, node: 'a' }), 'alice@example.com')).attrs.type).to.equal('result');
      expect((await h.api(push).registrations('alice')).map((r) => r.node)).to.deep.equal(['b', 'c', 'other']);
      // XEP-0357 §8: the push service removed alice's affiliation on node b.
      await appserver.send(xml('message', { to: 'alice@example.com' }, xml('pubsub', { xmlns: PUBSUB, node: 'b' }, xml('affiliation', { jid: 'alice@example.com', affiliation: 'none' }))));
      await h.settle();
      expect((await h.api(push).registrations('alice')).map((r) => r.node)).to.deep.equal(['c', 'other']);
      await phone.set(xml('disable', { xmlns: NS_PUSH, jid: SRV }), 'alice@example.com');
      expect((await h.api(push).registrations('alice')).map((r) => r.node)).to.deep.equal(['other']);
      await phone.disconnect();
      await bob.sendMessage({ to: 'alice@example.com', type: 'chat' }, xml('body', {}, 'hi'));
      await noNotification();
      expect(appserver.received.filter((s) => s.name === 'iq')).to.deep.equal([]);
    });
  });
});
