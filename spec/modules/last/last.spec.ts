import { expect } from 'chai';
import { Jid, NS, xml } from '../../../lib/module-api.js';
import type { Element } from '../../../lib/module-api.js';
import disco from '../../../modules/disco/index.js';
import last, { NS_LAST } from '../../../modules/last/index.js';
import roster, { emptyItem, type Subscription } from '../../../modules/roster/index.js';
import { Harness, type TestClient } from '../../helpers/harness.js';
import { expectError, expectXml } from '../../helpers/xml-assert.js';

const q = () => xml('query', { xmlns: NS_LAST });
const realNow = Date.now;
/** Moves the clock the modules read forward. */
const advance = (ms: number) => {
  const base = Date.now;
  Date.now = () => base() + ms;
};

describe('last (XEP-0012)', () => {
  let h: Harness;
  let bob: TestClient;

  /** Gives `owner`'s roster an item for `contact` with this subscription. */
  async function subscription(owner: string, contact: string, s: Subscription): Promise<void> {
    const c = Jid.parse(contact);
    await h.api(roster).update(Jid.parse(owner), c, (cur) => ({ ...(cur ?? emptyItem(c)), subscription: s }));
  }

  async function loggedOut(status?: string): Promise<void> {
    const alice = await h.connect('alice@example.com/phone');
    await alice.sendPresence();
    await alice.sendPresence({ type: 'unavailable' }, status === undefined ? null : xml('status', {}, status));
    await alice.disconnect();
  }

  beforeEach(async () => {
    h = await Harness.start({ modules: [last, roster, disco] });
    await h.createAccount('alice');
    await h.createAccount('bob');
    bob = await h.connect('bob@example.com/laptop');
  });
  afterEach(async () => {
    Date.now = realNow;
    await h.stop();
  });

  it('advertises jabber:iq:last on the server and on accounts', async () => {
    for (const to of ['example.com', 'alice@example.com']) {
      const reply = await bob.get(xml('query', { xmlns: NS.discoInfo }), to);
      expect(reply.getChild('query')!.getChildren('feature').map((f) => f.attrs.var)).to.include(NS_LAST);
    }
  });

  it('answers the server\'s uptime in seconds, without text', async () => {
    advance(125_400);
    const reply = await bob.iq(xml('iq', { type: 'get', to: 'example.com', id: 'u' }, q()));
    expectXml(reply, `<iq type='result' id='u' from='example.com' to='bob@example.com/laptop'><query xmlns='jabber:iq:last' seconds='125'/></iq>`);
  });

  it('tells a subscriber (from) the seconds since the account logged out, with its last status', async () => {
    await subscription('alice@example.com', 'bob@example.com', 'from');
    await loggedOut('Heading Home');
    advance(903_000);
    const reply = await bob.iq(xml('iq', { type: 'get', to: 'alice@example.com', id: 'l1' }, q()));
    expectXml(reply, `
      <iq type='result' id='l1' from='alice@example.com' to='bob@example.com/laptop'>
        <query xmlns='jabber:iq:last' seconds='903'>Heading Home</query>
      </iq>`);
  });

  it('tells a subscriber with both directions too, without text when the logout had no status', async () => {
    await subscription('alice@example.com', 'bob@example.com', 'both');
    await loggedOut();
    advance(60_000);
    const reply = await bob.get(q(), 'alice@example.com');
    expectXml(reply.getChild('query'), `<query xmlns='jabber:iq:last' seconds='60'/>`);
  });

  it('forbids an entity the account only subscribes to (to), or one not in its roster', async () => {
    await loggedOut('gone');
    expectError(await bob.get(q(), 'alice@example.com'), 'forbidden', 'auth');
    await subscription('alice@example.com', 'bob@example.com', 'to');
    expectError(await bob.get(q(), 'alice@example.com'), 'forbidden', 'auth');
    await subscription('alice@example.com', 'bob@example.com', 'none');
    expectError(await bob.get(q(), 'alice@example.com'), 'forbidden', 'auth');
  });

  it('forbids the query before saying whether the account is online', async () => {
    await h.connect('alice@example.com/phone');
    expectError(await bob.get(q(), 'alice@example.com'), 'forbidden');
  });

  it('answers 0 seconds while the account has a connected resource', async () => {
    await subscription('alice@example.com', 'bob@example.com', 'from');
    await loggedOut('old');
    await h.connect('alice@example.com/laptop');
    advance(5_000);
    const reply = await bob.get(q(), 'alice@example.com');
    expectXml(reply.getChild('query'), `<query xmlns='jabber:iq:last' seconds='0'/>`);
  });

  it('answers the account itself (no to) with 0 while it is connected', async () => {
    const alice = await h.connect('alice@example.com/phone');
    const reply = await alice.iq(xml('iq', { type: 'get', id: 's' }, q()));
    expectXml(reply, `<iq type='result' id='s' from='alice@example.com' to='alice@example.com/phone'><query xmlns='jabber:iq:last' seconds='0'/></iq>`);
  });

  it('records a logout only when the account\'s last resource goes, with that resource\'s status', async () => {
    await subscription('alice@example.com', 'bob@example.com', 'from');
    const phone = await h.connect('alice@example.com/phone');
    const laptop = await h.connect('alice@example.com/laptop');
    await phone.sendPresence({ type: 'unavailable' }, xml('status', {}, 'phone off'));
    await phone.disconnect();
    expect(await h.storage.keyval('last').keys('example.com', 'alice')).to.deep.equal([]);
    advance(100_000);
    await laptop.sendPresence({ type: 'unavailable' }, xml('status', {}, 'laptop off'));
    await laptop.disconnect();
    advance(10_000);
    const reply = await bob.get(q(), 'alice@example.com');
    expectXml(reply.getChild('query'), `<query xmlns='jabber:iq:last' seconds='10'>laptop off</query>`);
  });

  it('forgets the status of an unavailable presence followed by available presence', async () => {
    await subscription('alice@example.com', 'bob@example.com', 'from');
    const alice = await h.connect('alice@example.com/phone');
    await alice.sendPresence({ type: 'unavailable' }, xml('status', {}, 'brb'));
    await alice.sendPresence();
    await alice.disconnect();
    const reply = await bob.get(q(), 'alice@example.com');
    expectXml(reply.getChild('query'), `<query xmlns='jabber:iq:last' seconds='0'/>`);
  });

  it('answers service-unavailable for an account that never logged out', async () => {
    await subscription('alice@example.com', 'bob@example.com', 'from');
    expectError(await bob.get(q(), 'alice@example.com'), 'service-unavailable');
  });

  it('passes a query to a full JID to the client when the sender may see the user\'s presence', async () => {
    await subscription('alice@example.com', 'bob@example.com', 'from');
    const alice = await h.connect('alice@example.com/phone');
    await bob.send(xml('iq', { type: 'get', to: 'alice@example.com/phone', id: 'f1' }, q()));
    const got: Element = await alice.next((s) => s.name === 'iq');
    expect(got.attrs.id).to.equal('f1');
  });

  it('answers forbidden for the client when a query to its full JID comes from someone else', async () => {
    const alice = await h.connect('alice@example.com/phone');
    const reply = await bob.iq(xml('iq', { type: 'get', to: 'alice@example.com/phone', id: 'f2' }, q()));
    expectXml(reply, `
      <iq type='error' id='f2' from='alice@example.com/phone' to='bob@example.com/laptop'>
        <query xmlns='jabber:iq:last'/>
        <error type='auth'><forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>
      </iq>`);
    await h.settle();
    expect(alice.received.filter((s) => s.name === 'iq')).to.deep.equal([]);
  });

  it('lets the account\'s own resources query each other', async () => {
    const phone = await h.connect('alice@example.com/phone');
    const laptop = await h.connect('alice@example.com/laptop');
    await laptop.send(xml('iq', { type: 'get', to: 'alice@example.com/phone', id: 'own' }, q()));
    expect((await phone.next((s) => s.name === 'iq')).attrs.id).to.equal('own');
  });

  it('purges the logout record when the account is deleted', async () => {
    await loggedOut('bye');
    expect(await h.storage.keyval('last').keys('example.com', 'alice')).to.have.length(1);
    await h.deleteAccount('alice');
    expect(await h.storage.keyval('last').keys('example.com', 'alice')).to.deep.equal([]);
  });

  describe('without the roster module', () => {
    it('forbids other accounts, having no subscriptions to consult', async () => {
      await h.stop();
      h = await Harness.start({ modules: [last] });
      await h.createAccount('alice');
      await h.createAccount('bob');
      bob = await h.connect('bob@example.com/laptop');
      await loggedOut('x');
      expectError(await bob.get(q(), 'alice@example.com'), 'forbidden');
    });
  });
});
