import { expect } from 'chai';
import { NS, xml } from '../../../lib/module-api.js';
import type { Element } from '../../../lib/module-api.js';
import disco from '../../../modules/disco/index.js';
import vcard from '../../../modules/vcard/index.js';
import { Harness, type TestClient } from '../../helpers/harness.js';
import { canonicalXml, expectError, expectXml } from '../../helpers/xml-assert.js';

const V = NS.vcard;
const empty = () => xml('vCard', { xmlns: V });
const card = (fn: string, ...more: Element[]) => xml('vCard', { xmlns: V }, xml('FN', {}, fn), xml('NICKNAME', {}, fn.toLowerCase()), ...more);
const features = (reply: Element) => reply.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);

describe('vcard (XEP-0054)', () => {
  let h: Harness;
  let alice: TestClient;
  let bob: TestClient;

  beforeEach(async () => {
    h = await Harness.start({ modules: [vcard, disco], options: { vcard: { maxSize: 2048 } } });
    await h.createAccount('alice');
    await h.createAccount('bob');
    await h.createAccount('carol');
    alice = await h.connect('alice@example.com/phone');
    bob = await h.connect('bob@example.com/laptop');
  });
  afterEach(() => h.stop());

  it('advertises vcard-temp on the server and on accounts', async () => {
    expect(features(await alice.get(xml('query', { xmlns: NS.discoInfo })))).to.include('vcard-temp');
    expect(features(await alice.get(xml('query', { xmlns: NS.discoInfo }), 'bob@example.com'))).to.include('vcard-temp');
  });

  it('answers an empty vCard to an account that has none yet', async () => {
    const reply = await alice.iq(xml('iq', { type: 'get', id: 'v1' }, empty()));
    expectXml(reply, `<iq type='result' id='v1' from='alice@example.com' to='alice@example.com/phone'><vCard xmlns='vcard-temp'/></iq>`);
  });

  it('stores the vCard an account sets and gives it back whole', async () => {
    const mine = card('Alice', xml('PHOTO', {}, xml('TYPE', {}, 'image/png'), xml('BINVAL', {}, 'iVBORw0KGgo=')));
    const set = await alice.iq(xml('iq', { type: 'set', id: 's1' }, mine));
    expectXml(set, `<iq type='result' id='s1' from='alice@example.com' to='alice@example.com/phone'/>`);
    const reply = await alice.iq(xml('iq', { type: 'get' }, empty()));
    expect(canonicalXml(reply.getChild('vCard')!)).to.equal(canonicalXml(mine));
  });

  it('replaces the whole vCard on a second set (no partial updates)', async () => {
    await alice.iq(xml('iq', { type: 'set' }, card('Alice', xml('URL', {}, 'https://alice.example'))));
    await alice.iq(xml('iq', { type: 'set' }, card('Alice A.')));
    const reply = await alice.iq(xml('iq', { type: 'get' }, empty()));
    expect(canonicalXml(reply.getChild('vCard')!)).to.equal(canonicalXml(card('Alice A.')));
  });

  it('gives any user another account\'s vCard, answered by the server for the account', async () => {
    await alice.iq(xml('iq', { type: 'set' }, card('Alice')));
    const reply = await bob.iq(xml('iq', { type: 'get', to: 'alice@example.com', id: 'o1' }, empty()));
    expectXml(reply, `
      <iq type='result' id='o1' from='alice@example.com' to='bob@example.com/laptop'>
        <vCard xmlns='vcard-temp'><FN>Alice</FN><NICKNAME>alice</NICKNAME></vCard>
      </iq>`);
    expect(alice.received.filter((s) => s.name === 'iq' && s.attrs.type === 'get')).to.deep.equal([]);
  });

  it('answers service-unavailable for an account without a vCard, exactly as for an account that does not exist', async () => {
    const none = await bob.iq(xml('iq', { type: 'get', to: 'carol@example.com', id: 'x' }, empty()));
    const missing = await bob.iq(xml('iq', { type: 'get', to: 'nobody@example.com', id: 'x' }, empty()));
    expectError(none, 'service-unavailable', 'cancel');
    expectError(missing, 'service-unavailable', 'cancel');
    const strip = (el: Element) => canonicalXml(el).replace(/carol|nobody/g, 'X');
    expect(strip(none)).to.equal(strip(missing));
  });

  it('forbids setting another account\'s vCard and leaves it unchanged', async () => {
    await alice.iq(xml('iq', { type: 'set' }, card('Alice')));
    expectError(await bob.iq(xml('iq', { type: 'set', to: 'alice@example.com' }, card('Mallory'))), 'forbidden', 'auth');
    const reply = await bob.iq(xml('iq', { type: 'get', to: 'alice@example.com' }, empty()));
    expect(reply.getChild('vCard')!.getChildText('FN')).to.equal('Alice');
  });

  it('refuses a vCard larger than maxSize with not-acceptable and keeps the previous one', async () => {
    await alice.iq(xml('iq', { type: 'set' }, card('Alice')));
    const big = card('Alice', xml('PHOTO', {}, xml('BINVAL', {}, 'A'.repeat(2048))));
    expectError(await alice.iq(xml('iq', { type: 'set' }, big)), 'not-acceptable', 'modify');
    const reply = await alice.iq(xml('iq', { type: 'get' }, empty()));
    expect(canonicalXml(reply.getChild('vCard')!)).to.equal(canonicalXml(card('Alice')));
  });

  it('accepts a vCard of exactly maxSize bytes', async () => {
    const filler = 'B'.repeat(2048 - card('Alice', xml('DESC', {}, '')).toString().length);
    const fits = card('Alice', xml('DESC', {}, filler));
    expect(Buffer.byteLength(fits.toString())).to.equal(2048);
    expect((await alice.iq(xml('iq', { type: 'set' }, fits))).attrs.type).to.equal('result');
  });

  it('removes the vCard when an empty one is set', async () => {
    await alice.iq(xml('iq', { type: 'set' }, card('Alice')));
    expect((await alice.iq(xml('iq', { type: 'set' }, empty()))).attrs.type).to.equal('result');
    expect(await h.storage.keyval('vcard').keys('example.com', 'alice')).to.deep.equal([]);
    expectError(await bob.iq(xml('iq', { type: 'get', to: 'alice@example.com' }, empty())), 'service-unavailable');
  });

  it('purges the vCard when the account is deleted', async () => {
    await alice.iq(xml('iq', { type: 'set' }, card('Alice')));
    expect(await h.storage.keyval('vcard').keys('example.com', 'alice')).to.have.length(1);
    await h.deleteAccount('alice');
    expect(await h.storage.keyval('vcard').keys('example.com', 'alice')).to.deep.equal([]);
  });

  it('refuses a maxSize below 1 KiB', async () => {
    let error: unknown;
    await Harness.start({ modules: [vcard], options: { vcard: { maxSize: 10 } } }).catch((e: unknown) => { error = e; });
    expect(error).to.be.instanceOf(Error);
  });
});
