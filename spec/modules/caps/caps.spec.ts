import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { parse } from 'ltx';
import { defineModule, NS, xml, z } from '../../../lib/module-api.js';
import type { Element } from '../../../lib/module-api.js';
import caps, { CAPS_NODE, capsProblem, capsString, capsVer, capsInfoOf, isCapsHash, verOfQuery } from '../../../modules/caps/index.js';
import contactInfo from '../../../modules/contact_info/index.js';
import disco from '../../../modules/disco/index.js';
import ping from '../../../modules/ping/index.js';
import { Harness, type TestClient } from '../../helpers/harness.js';
import { expectError, expectXml } from '../../helpers/xml-assert.js';

const xmlOf = (s: string) => parse(s) as Element;

// XEP-0115 §5.2.
const SIMPLE = xmlOf(`
  <query xmlns='http://jabber.org/protocol/disco#info' node='http://code.google.com/p/exodus#QgayPKawpkPSDYmwT/WM94uAlu0='>
    <identity category='client' name='Exodus 0.9.1' type='pc'/>
    <feature var='http://jabber.org/protocol/caps'/>
    <feature var='http://jabber.org/protocol/disco#info'/>
    <feature var='http://jabber.org/protocol/disco#items'/>
    <feature var='http://jabber.org/protocol/muc'/>
  </query>`);

// XEP-0115 §5.3.
const COMPLEX = xmlOf(`
  <query xmlns='http://jabber.org/protocol/disco#info' node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>
    <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
    <identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>
    <feature var='http://jabber.org/protocol/caps'/>
    <feature var='http://jabber.org/protocol/disco#info'/>
    <feature var='http://jabber.org/protocol/disco#items'/>
    <feature var='http://jabber.org/protocol/muc'/>
    <x xmlns='jabber:x:data' type='result'>
      <field var='FORM_TYPE' type='hidden'>
        <value>urn:xmpp:dataforms:softwareinfo</value>
      </field>
      <field var='ip_version'>
        <value>ipv4</value>
        <value>ipv6</value>
      </field>
      <field var='os'>
        <value>Mac</value>
      </field>
      <field var='os_version'>
        <value>10.5.1</value>
      </field>
      <field var='software'>
        <value>Psi</value>
      </field>
      <field var='software_version'>
        <value>0.11</value>
      </field>
    </x>
  </query>`);

describe('caps (XEP-0115)', () => {
  describe('verification string', () => {
    it('matches the simple example of §5.2', () => {
      const info = capsInfoOf(SIMPLE);
      expect(capsString(info)).to.equal(
        'client/pc//Exodus 0.9.1<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<'
        + 'http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<',
      );
      expect(capsVer(info)).to.equal('QgayPKawpkPSDYmwT/WM94uAlu0=');
      expect(verOfQuery(SIMPLE)).to.equal('QgayPKawpkPSDYmwT/WM94uAlu0=');
    });

    it('matches the complex example of §5.3, with localised identities and a form', () => {
      const info = capsInfoOf(COMPLEX);
      expect(capsString(info)).to.equal(
        'client/pc/el/Ψ 0.11<client/pc/en/Psi 0.11<http://jabber.org/protocol/caps<http://jabber.org/protocol/disco#info<'
        + 'http://jabber.org/protocol/disco#items<http://jabber.org/protocol/muc<urn:xmpp:dataforms:softwareinfo<'
        + 'ip_version<ipv4<ipv6<os<Mac<os_version<10.5.1<software<Psi<software_version<0.11<',
      );
      expect(capsVer(info)).to.equal('q07IKJEyjvHSyhy//CH0CxmKi8w=');
      expect(verOfQuery(COMPLEX)).to.equal('q07IKJEyjvHSyhy//CH0CxmKi8w=');
    });

    it('does not depend on the order of identities, features, forms, fields or values', () => {
      const form = (type: string, ...fields: Element[]) =>
        xml('x', { xmlns: NS.dataForms, type: 'result' }, xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, type)), ...fields);
      const a = {
        identities: [{ category: 'client', type: 'pc', name: 'B' }, { category: 'client', type: 'pc', name: 'A' }],
        features: ['urn:z', 'urn:a'],
        forms: [form('urn:f2', xml('field', { var: 'y' }, xml('value', {}, '2'), xml('value', {}, '1')), xml('field', { var: 'x' })), form('urn:f1')],
      };
      const b = {
        identities: [...a.identities].reverse(),
        features: [...a.features].reverse(),
        forms: [form('urn:f1'), form('urn:f2', xml('field', { var: 'x' }), xml('field', { var: 'y' }, xml('value', {}, '1'), xml('value', {}, '2')))],
      };
      expect(capsString(a)).to.equal('client/pc//A<client/pc//B<urn:a<urn:z<urn:f1<urn:f2<x<y<1<2<');
      expect(capsVer(a)).to.equal(capsVer(b));
    });

    it('ignores a form whose FORM_TYPE is not hidden, or that has none (§5.4 3.6)', () => {
      const base = { identities: [{ category: 'client', type: 'pc' }], features: ['urn:a'] };
      const notHidden = xml('x', { xmlns: NS.dataForms, type: 'result' }, xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'urn:f')));
      const none = xml('x', { xmlns: NS.dataForms, type: 'result' }, xml('field', { var: 'a' }, xml('value', {}, '1')));
      expect(capsVer({ ...base, forms: [notHidden, none] })).to.equal(capsVer(base));
    });

    it('sorts by UTF-8 bytes (i;octet), not UTF-16 code units', () => {
      // U+FF21 (EF BC A1) sorts before U+1F600 (F0 9F 98 80) in UTF-8, after it in UTF-16.
      expect(capsString({ identities: [], features: ['\u{1F600}', '\uFF21'] })).to.equal('\uFF21<\u{1F600}<');
    });

    it('hashes with the other registered functions when asked', () => {
      const info = capsInfoOf(SIMPLE);
      expect(capsVer(info, 'sha-256')).to.equal(createHash('sha256').update(capsString(info)).digest('base64'));
      expect(isCapsHash('sha-256')).to.equal(true);
      expect(isCapsHash('md5')).to.equal(false);
    });

    it('refuses answers §5.4 calls ill-formed: duplicate identity, feature or FORM_TYPE, or a FORM_TYPE with two values', () => {
      const dupIdentity = xmlOf(`<query xmlns='${NS.discoInfo}'><identity category='client' type='pc'/><identity category='client' type='pc'/></query>`);
      const dupFeature = xmlOf(`<query xmlns='${NS.discoInfo}'><identity category='client' type='pc'/><feature var='a'/><feature var='a'/></query>`);
      const f = `<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:f</value></field></x>`;
      const dupForm = xmlOf(`<query xmlns='${NS.discoInfo}'><identity category='client' type='pc'/>${f}${f}</query>`);
      const twoValues = xmlOf(`<query xmlns='${NS.discoInfo}'><identity category='client' type='pc'/><x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>urn:a</value><value>urn:b</value></field></x></query>`);
      expect(capsProblem(capsInfoOf(dupIdentity))).to.equal('duplicate identity');
      expect(capsProblem(capsInfoOf(dupFeature))).to.equal('duplicate feature');
      expect(capsProblem(capsInfoOf(dupForm))).to.equal('two forms with FORM_TYPE urn:f');
      expect(capsProblem(capsInfoOf(twoValues))).to.equal('FORM_TYPE with several values');
      for (const q of [dupIdentity, dupFeature, dupForm, twoValues]) expect(verOfQuery(q)).to.equal(undefined);
      expect(capsProblem(capsInfoOf(COMPLEX))).to.equal(undefined);
    });
  });

  describe('on the server', () => {
    let h: Harness;
    let alice: TestClient;
    const started: Harness[] = [];

    async function boot(modules: Parameters<typeof Harness.start>[0]['modules'], server?: Parameters<typeof Harness.start>[0]['server']): Promise<Harness> {
      const harness = await Harness.start({ modules, server });
      started.push(harness);
      return harness;
    }
    function offeredVer(harness: Harness, stage: 'pre-auth' | 'post-auth' = 'pre-auth'): string | undefined {
      return harness.streamFeatures(stage).find((f) => f.is('c', NS.caps))?.attrs.ver as string | undefined;
    }

    beforeEach(async () => {
      h = await boot([disco, caps, ping]);
      await h.createAccount('alice', 'pw');
      alice = await h.connect('alice@example.com/phone');
    });
    afterEach(async () => {
      for (const harness of started.splice(0)) await harness.stop();
    });

    it('offers <c/> with the ver of its disco#info before and after authentication', async () => {
      const expected = capsVer({
        identities: [{ category: 'server', type: 'im', name: 'Parley' }],
        features: [NS.caps, NS.discoInfo, NS.discoItems, NS.ping],
      });
      const [pre] = h.streamFeatures('pre-auth');
      const [post] = h.streamFeatures('post-auth');
      expectXml(pre, `<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://parley.im' ver='${expected}'/>`);
      expectXml(post, `<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='https://parley.im' ver='${expected}'/>`);
      // And that is the hash of what a client actually receives.
      const reply = await alice.get(xml('query', { xmlns: NS.discoInfo }));
      expect(verOfQuery(reply.getChild('query', NS.discoInfo)!)).to.equal(expected);
    });

    it('advertises http://jabber.org/protocol/caps in the server\'s disco#info', async () => {
      const reply = await alice.get(xml('query', { xmlns: NS.discoInfo }));
      expect(reply.getChild('query')!.getChildren('feature').map((f) => f.attrs.var)).to.include(NS.caps);
    });

    it('changes ver when a module with a feature is added', async () => {
      const without = await boot([disco, caps]);
      expect(offeredVer(without)).to.be.a('string');
      expect(offeredVer(h)).to.be.a('string').and.not.equal(offeredVer(without));
    });

    it('changes ver when a module adds a feature at runtime through disco', async () => {
      const before = offeredVer(h);
      h.api(disco).addInfoProvider({ target: 'host' }, () => ({ features: ['urn:xmpp:extdisco:2'] }));
      await h.settle();
      const after = offeredVer(h);
      expect(after).to.be.a('string').and.not.equal(before);
      expect(after).to.equal(h.api(caps).ver());
      expect(verOfQuery((await alice.get(xml('query', { xmlns: NS.discoInfo }))).getChild('query')!)).to.equal(after);
    });

    it('covers XEP-0128 forms, such as the contact addresses', async () => {
      const plain = await boot([disco, caps]);
      const withForm = await boot([disco, caps, contactInfo], { contact: { abuse: ['mailto:abuse@example.com'] } });
      await withForm.createAccount('bob', 'pw');
      const bob = await withForm.connect('bob@example.com/x');
      const query = (await bob.get(xml('query', { xmlns: NS.discoInfo }))).getChild('query')!;
      expect(query.getChildren('x', NS.dataForms)).to.have.length(1);
      expect(offeredVer(withForm)).to.equal(verOfQuery(query)).and.not.equal(offeredVer(plain));
    });

    it('includes the features of modules loaded after it', async () => {
      const late = defineModule({
        name: 'zz-late',
        requires: [disco],
        config: z.strictObject({}),
        setup(ctx) {
          ctx.deps.get(disco).addInfoProvider({ target: 'host' }, () => ({ features: ['urn:late'] }));
        },
      });
      const harness = await boot([disco, caps, late]);
      expect(offeredVer(harness)).to.equal(capsVer({
        identities: [{ category: 'server', type: 'im', name: 'Parley' }],
        features: [NS.caps, NS.discoInfo, NS.discoItems, 'urn:late'],
      }));
    });

    it('answers disco#info on node#ver like disco#info without a node', async () => {
      const ver = offeredVer(h)!;
      const reply = await alice.get(xml('query', { xmlns: NS.discoInfo, node: `${CAPS_NODE}#${ver}` }));
      const root = (await alice.get(xml('query', { xmlns: NS.discoInfo }))).getChild('query')!;
      const q = reply.getChild('query')!;
      expect(q.attrs.node).to.equal(`${CAPS_NODE}#${ver}`);
      expect(q.children.map(String)).to.deep.equal(root.children.map(String));
    });

    it('answers item-not-found on the node of another ver', async () => {
      expectError(await alice.get(xml('query', { xmlns: NS.discoInfo, node: `${CAPS_NODE}#AAAAAAAAAAAAAAAAAAAAAAAAAAA=` })), 'item-not-found');
    });

    it('needs the disco module and refuses unknown options', async () => {
      let missing: Error | undefined;
      await Harness.start({ modules: [caps] }).catch((e: Error) => { missing = e; });
      expect(missing?.message).to.match(/caps requires module disco/);
      let typo: unknown;
      await Harness.start({ modules: [disco, caps], options: { caps: { hash: 'sha-256' } } }).catch((e: unknown) => { typo = e; });
      expect(typo).to.be.instanceOf(Error);
    });
  });
});
