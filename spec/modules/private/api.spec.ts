import { expect } from 'chai';
import { NS, xml } from '../../../lib/module-api.js';
import type { Element } from '../../../lib/module-api.js';
import privateXml, { type PrivateStored } from '../../../modules/private/index.js';
import { Harness, type TestClient } from '../../helpers/harness.js';
import { canonicalXml, expectError } from '../../helpers/xml-assert.js';

const P = NS.privateXml;
const NOTES = 'storage:rosternotes';
const notes = (text: string) => xml('storage', { xmlns: NOTES }, xml('note', { jid: 'bob@example.com' }, text));
const query = (...children: Element[]) => xml('query', { xmlns: P }, ...children);

describe('private (XEP-0049): API for other modules', () => {
  let h: Harness;
  let alice: TestClient;

  beforeEach(async () => {
    h = await Harness.start({ modules: [privateXml], options: { private: { maxSize: 2048, maxItems: 3 } } });
    await h.createAccount('alice');
    alice = await h.connect('alice@example.com/phone');
  });
  afterEach(() => h.stop());

  it('reads what a client stored, and a client reads what the API stored', async () => {
    await alice.iq(xml('iq', { type: 'set' }, query(notes('from the client'))));
    const got = await h.api(privateXml).get('alice', 'storage', NOTES);
    expect(canonicalXml(got!)).to.equal(canonicalXml(notes('from the client')));
    expect(await h.api(privateXml).get('alice', 'other', NOTES)).to.equal(undefined);

    expect(await h.api(privateXml).set('alice', notes('from a module'))).to.deep.equal({ stored: true });
    const reply = await alice.iq(xml('iq', { type: 'get' }, query(xml('storage', { xmlns: NOTES }))));
    expect(canonicalXml(reply.getChild('query')!.getChildElements()[0]!)).to.equal(canonicalXml(notes('from a module')));
  });

  it('removes the fragment for an empty element', async () => {
    await h.api(privateXml).set('alice', notes('x'));
    expect(await h.api(privateXml).set('alice', xml('storage', { xmlns: NOTES }))).to.deep.equal({ stored: true });
    expect(await h.api(privateXml).get('alice', 'storage', NOTES)).to.equal(undefined);
  });

  it('refuses what a client would be refused: a reserved namespace, over maxItems, over maxSize', async () => {
    const reserved = await h.api(privateXml).set('alice', xml('x', { xmlns: NS.client }));
    expect(reserved.stored).to.equal(false);
    for (const ns of ['a:1', 'a:2', 'a:3']) expect((await h.api(privateXml).set('alice', xml('x', { xmlns: ns }, 'v'))).stored).to.equal(true);
    const tooMany = await h.api(privateXml).set('alice', xml('x', { xmlns: 'a:4' }, 'v'));
    expect(tooMany).to.deep.equal({ stored: false, reason: 'at most 3 different elements can be stored' });
    const tooBig = await h.api(privateXml).set('alice', xml('x', { xmlns: 'a:1' }, 'v'.repeat(3000)));
    expect(tooBig).to.deep.equal({ stored: false, reason: 'private storage is limited to 2048 bytes' });
    expect(await h.api(privateXml).get('alice', 'x', 'a:4')).to.equal(undefined);
    expect(canonicalXml((await h.api(privateXml).get('alice', 'x', 'a:1'))!)).to.equal(canonicalXml(xml('x', { xmlns: 'a:1' }, 'v')));
  });

  it('tells listeners of the fragments clients store (not of refused sets, other names, or its own writes), until they unsubscribe', async () => {
    const heard: PrivateStored[] = [];
    const unsubscribe = h.api(privateXml).onStored('storage', NOTES, (e) => { heard.push(e); });
    await alice.iq(xml('iq', { type: 'set' }, query(notes('one'), xml('other', { xmlns: NOTES }, 'v'))));
    await alice.iq(xml('iq', { type: 'set' }, query(xml('storage', { xmlns: NOTES }))));
    expectError(await alice.iq(xml('iq', { type: 'set' }, query(notes('v'.repeat(3000))))), 'not-acceptable', 'modify');
    await h.api(privateXml).set('alice', notes('module'));
    await new Promise((r) => setImmediate(r));
    expect(heard.map((e) => [e.user, canonicalXml(e.fragment)])).to.deep.equal([
      ['alice', canonicalXml(notes('one'))],
      ['alice', canonicalXml(xml('storage', { xmlns: NOTES }))],
    ]);
    unsubscribe();
    await alice.iq(xml('iq', { type: 'set' }, query(notes('two'))));
    await new Promise((r) => setImmediate(r));
    expect(heard).to.have.length(2);
  });

  it('answers the client even when a listener fails', async () => {
    h.api(privateXml).onStored('storage', NOTES, () => { throw new Error('listener bug'); });
    const reply = await alice.iq(xml('iq', { type: 'set', id: 's' }, query(notes('one'))));
    expect(reply.attrs.type).to.equal('result');
  });
});
