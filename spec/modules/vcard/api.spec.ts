import { expect } from 'chai';
import { NS, xml } from '../../../lib/module-api.js';
import type { Element } from '../../../lib/module-api.js';
import vcard, { type VcardChanged } from '../../../modules/vcard/index.js';
import { Harness, type TestClient } from '../../helpers/harness.js';
import { canonicalXml, expectError } from '../../helpers/xml-assert.js';

const V = NS.vcard;
const card = (fn: string, ...more: Element[]) => xml('vCard', { xmlns: V }, xml('FN', {}, fn), ...more);

describe('vcard (XEP-0054): API for other modules', () => {
  let h: Harness;
  let alice: TestClient;

  beforeEach(async () => {
    h = await Harness.start({ modules: [vcard], options: { vcard: { maxSize: 2048 } } });
    await h.createAccount('alice');
    alice = await h.connect('alice@example.com/phone');
  });
  afterEach(() => h.stop());

  it('stores a vCard a client then reads, and removes it for an empty one', async () => {
    expect(await h.api(vcard).set('alice', card('Alice'))).to.deep.equal({ stored: true });
    const reply = await alice.iq(xml('iq', { type: 'get' }, xml('vCard', { xmlns: V })));
    expect(canonicalXml(reply.getChild('vCard')!)).to.equal(canonicalXml(card('Alice')));
    expect(await h.api(vcard).set('alice', xml('vCard', { xmlns: V }))).to.deep.equal({ stored: true });
    expect(await h.api(vcard).get('alice')).to.equal(undefined);
  });

  it('refuses a vCard over maxSize and keeps the previous one', async () => {
    await h.api(vcard).set('alice', card('Alice'));
    const big = await h.api(vcard).set('alice', card('A'.repeat(3000)));
    expect(big).to.deep.equal({ stored: false, reason: 'a vCard may have at most 2048 bytes' });
    expect(canonicalXml((await h.api(vcard).get('alice'))!)).to.equal(canonicalXml(card('Alice')));
  });

  it('tells listeners of the vCards clients set (undefined when removed), not of refused sets nor its own writes', async () => {
    const heard: VcardChanged[] = [];
    const unsubscribe = h.api(vcard).onChanged((e) => { heard.push(e); });
    await alice.iq(xml('iq', { type: 'set' }, card('Alice')));
    expectError(await alice.iq(xml('iq', { type: 'set' }, card('A'.repeat(3000)))), 'not-acceptable', 'modify');
    await alice.iq(xml('iq', { type: 'set' }, xml('vCard', { xmlns: V })));
    await h.api(vcard).set('alice', card('module'));
    await new Promise((r) => setImmediate(r));
    expect(heard.map((e) => [e.user, e.vcard && canonicalXml(e.vcard)])).to.deep.equal([
      ['alice', canonicalXml(card('Alice'))],
      ['alice', undefined],
    ]);
    unsubscribe();
    await alice.iq(xml('iq', { type: 'set' }, card('Later')));
    await new Promise((r) => setImmediate(r));
    expect(heard).to.have.length(2);
  });
});
