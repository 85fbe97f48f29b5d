import { expect } from 'chai';
import { NS, xml } from '../../../lib/module-api.js';
import type { Element } from '../../../lib/module-api.js';
import disco from '../../../modules/disco/index.js';
import privateXml from '../../../modules/private/index.js';
import { Harness, type TestClient } from '../../helpers/harness.js';
import { canonicalXml, expectError, expectXml } from '../../helpers/xml-assert.js';

const P = NS.privateXml;
const query = (...children: Element[]) => xml('query', { xmlns: P }, ...children);
const bookmarks = (...rooms: string[]) =>
  xml('storage', { xmlns: 'storage:bookmarks' }, rooms.map((r) => xml('conference', { jid: r, autojoin: 'true' }, xml('nick', {}, 'al'))));

describe('private (XEP-0049)', () => {
  let h: Harness;
  let alice: TestClient;
  let bob: TestClient;

  beforeEach(async () => {
    h = await Harness.start({ modules: [privateXml, disco], options: { private: { maxSize: 2048, maxItems: 3 } } });
    await h.createAccount('alice');
    await h.createAccount('bob');
    alice = await h.connect('alice@example.com/phone');
    bob = await h.connect('bob@example.com/laptop');
  });
  afterEach(() => h.stop());

  const get = (client: TestClient, el: Element, to?: string) => client.iq(xml('iq', { type: 'get', to }, query(el)));
  const set = (client: TestClient, ...els: Element[]) => client.iq(xml('iq', { type: 'set' }, query(...els)));

  it('advertises jabber:iq:private on accounts', async () => {
    const reply = await alice.get(xml('query', { xmlns: NS.discoInfo }), 'alice@example.com');
    expect(reply.getChild('query')!.getChildren('feature').map((f) => f.attrs.var)).to.include(P);
  });

  it('stores an element and returns it for a get naming its element and namespace', async () => {
    const stored = bookmarks('room@conference.example.com');
    expectXml(await alice.iq(xml('iq', { type: 'set', id: 's' }, query(stored))), `<iq type='result' id='s' from='alice@example.com' to='alice@example.com/phone'/>`);
    const reply = await alice.iq(xml('iq', { type: 'get', id: 'g' }, query(xml('storage', { xmlns: 'storage:bookmarks' }))));
    expectXml(reply, `
      <iq type='result' id='g' from='alice@example.com' to='alice@example.com/phone'>
        <query xmlns='jabber:iq:private'>
          <storage xmlns='storage:bookmarks'><conference jid='room@conference.example.com' autojoin='true'><nick>al</nick></conference></storage>
        </query>
      </iq>`);
  });

  it('returns the requested element empty when nothing is stored for it', async () => {
    const reply = await get(alice, xml('prefs', { xmlns: 'exodus:prefs' }));
    expectXml(reply.getChild('query'), `<query xmlns='jabber:iq:private'><prefs xmlns='exodus:prefs'/></query>`);
  });

  it('keeps elements apart by name and namespace', async () => {
    await set(alice, xml('storage', { xmlns: 'storage:bookmarks' }, xml('a')), xml('storage', { xmlns: 'storage:rosternotes' }, xml('b')));
    await set(alice, xml('other', { xmlns: 'storage:bookmarks' }, xml('c')));
    const a = await get(alice, xml('storage', { xmlns: 'storage:bookmarks' }));
    const b = await get(alice, xml('storage', { xmlns: 'storage:rosternotes' }));
    const c = await get(alice, xml('other', { xmlns: 'storage:bookmarks' }));
    expect([a, b, c].map((r) => r.getChild('query')!.getChildElements()[0].getChildElements()[0].name)).to.deep.equal(['a', 'b', 'c']);
  });

  it('replaces an element on a new set, and forgets it when set empty', async () => {
    await set(alice, bookmarks('one@conference.example.com'));
    await set(alice, bookmarks('two@conference.example.com'));
    let reply = await get(alice, xml('storage', { xmlns: 'storage:bookmarks' }));
    expect(canonicalXml(reply.getChild('query')!.getChildElements()[0])).to.equal(canonicalXml(bookmarks('two@conference.example.com')));
    await set(alice, xml('storage', { xmlns: 'storage:bookmarks' }));
    expect(await h.storage.keyval('private').keys('example.com', 'alice')).to.deep.equal([]);
    reply = await get(alice, xml('storage', { xmlns: 'storage:bookmarks' }));
    expectXml(reply.getChild('query'), `<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query>`);
  });

  it('forbids another user to get or set an account\'s private data', async () => {
    await set(alice, bookmarks('secret@conference.example.com'));
    expectError(await get(bob, xml('storage', { xmlns: 'storage:bookmarks' }), 'alice@example.com'), 'forbidden', 'auth');
    expectError(await bob.iq(xml('iq', { type: 'set', to: 'alice@example.com' }, query(bookmarks('evil@x')))), 'forbidden', 'auth');
    const reply = await get(alice, xml('storage', { xmlns: 'storage:bookmarks' }));
    expect(reply.toString()).to.contain('secret@conference.example.com');
  });

  for (const ns of [NS.client, NS.server, NS.privateXml]) {
    it(`refuses to store or get an element in the reserved namespace ${ns} with not-acceptable`, async () => {
      expectError(await set(alice, xml('x', { xmlns: ns })), 'not-acceptable', 'modify');
      expectError(await get(alice, xml('x', { xmlns: ns })), 'not-acceptable', 'modify');
      expect(await h.storage.keyval('private').keys('example.com', 'alice')).to.deep.equal([]);
    });
  }

  it('refuses an element without a namespace of its own with not-acceptable', async () => {
    const bare = xml('query', { xmlns: P }, xml('settings'));
    expectError(await alice.iq(xml('iq', { type: 'set' }, bare)), 'not-acceptable');
  });

  it('refuses a set without an element, and a get without one, with not-acceptable', async () => {
    expectError(await alice.iq(xml('iq', { type: 'set' }, query())), 'not-acceptable');
    expectError(await alice.iq(xml('iq', { type: 'get' }, query())), 'not-acceptable');
  });

  it('refuses a get naming two elements with bad-request', async () => {
    const reply = await alice.iq(xml('iq', { type: 'get' }, query(xml('a', { xmlns: 'urn:a' }), xml('b', { xmlns: 'urn:b' }))));
    expectError(reply, 'bad-request');
  });

  it('refuses a set that would exceed maxSize bytes in total, storing none of it', async () => {
    await set(alice, xml('a', { xmlns: 'urn:a' }, 'x'.repeat(1000)));
    const reply = await set(alice, xml('b', { xmlns: 'urn:b' }, 'y'.repeat(600)), xml('c', { xmlns: 'urn:c' }, 'z'.repeat(600)));
    expectError(reply, 'not-acceptable');
    expect(await h.storage.keyval('private').keys('example.com', 'alice')).to.deep.equal(['{urn:a}a']);
    // Replacing the large element with a small one frees its room.
    expect((await set(alice, xml('a', { xmlns: 'urn:a' }), xml('b', { xmlns: 'urn:b' }, 'y'.repeat(1500)))).attrs.type).to.equal('result');
  });

  it('refuses a set that would store more than maxItems elements', async () => {
    await set(alice, xml('a', { xmlns: 'urn:a' }, '1'), xml('b', { xmlns: 'urn:b' }, '2'), xml('c', { xmlns: 'urn:c' }, '3'));
    expectError(await set(alice, xml('d', { xmlns: 'urn:d' }, '4')), 'not-acceptable');
    expect((await set(alice, xml('c', { xmlns: 'urn:c' }, 'three'))).attrs.type).to.equal('result');
  });

  it('purges the account\'s private data when it is deleted', async () => {
    await set(alice, bookmarks('r@conference.example.com'), xml('prefs', { xmlns: 'exodus:prefs' }, 'p'));
    expect(await h.storage.keyval('private').keys('example.com', 'alice')).to.have.length(2);
    await h.deleteAccount('alice');
    expect(await h.storage.keyval('private').keys('example.com', 'alice')).to.deep.equal([]);
  });
});
