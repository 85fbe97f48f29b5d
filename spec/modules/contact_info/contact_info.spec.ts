import { expect } from 'chai';
import { NS, xml } from '../../../lib/module-api.js';
import type { Element, ServerInfo } from '../../../lib/module-api.js';
import disco from '../../../modules/disco/index.js';
import contactInfo, { serverInfoForm } from '../../../modules/contact_info/index.js';
import { Harness, type TestClient } from '../../helpers/harness.js';
import { expectXml } from '../../helpers/xml-assert.js';

describe('contact_info (XEP-0157)', () => {
  let h: Harness | undefined;
  let alice: TestClient;

  async function boot(contact: ServerInfo['contact']): Promise<void> {
    h = await Harness.start({ modules: [disco, contactInfo], server: { contact } });
    await h.createAccount('alice', 'pw');
    alice = await h.connect('alice@example.com/phone');
  }
  afterEach(async () => {
    await h?.stop();
    h = undefined;
  });

  const forms = (query: Element | undefined) => query!.getChildren('x', NS.dataForms);

  it('adds the serverinfo form with every configured kind of address to the server\'s disco#info', async () => {
    await boot({
      support: ['https://example.com/help'],
      abuse: ['mailto:abuse@example.com', 'xmpp:abuse@example.com'],
      admin: ['xmpp:admin@example.com'],
      sales: [],
    });
    const reply = await alice.get(xml('query', { xmlns: NS.discoInfo }));
    expectXml(reply.getChild('query'), `
      <query xmlns='${NS.discoInfo}'>
        <identity category='server' type='im' name='Parley'/>
        <feature var='${NS.discoInfo}'/>
        <feature var='${NS.discoItems}'/>
        <x xmlns='jabber:x:data' type='result'>
          <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/network/serverinfo</value></field>
          <field var='abuse-addresses'>
            <value>mailto:abuse@example.com</value>
            <value>xmpp:abuse@example.com</value>
          </field>
          <field var='admin-addresses'><value>xmpp:admin@example.com</value></field>
          <field var='support-addresses'><value>https://example.com/help</value></field>
        </x>
      </query>`);
  });

  it('adds no form when no address is configured', async () => {
    await boot({});
    expect(forms((await alice.get(xml('query', { xmlns: NS.discoInfo }))).getChild('query'))).to.deep.equal([]);
  });

  it('adds no form when every list is empty', async () => {
    await boot({ abuse: [], admin: [] });
    expect(forms((await alice.get(xml('query', { xmlns: NS.discoInfo }))).getChild('query'))).to.deep.equal([]);
  });

  it('adds the form to the server only, not to accounts', async () => {
    await boot({ abuse: ['mailto:abuse@example.com'] });
    expect(forms((await alice.get(xml('query', { xmlns: NS.discoInfo }), 'alice@example.com')).getChild('query'))).to.deep.equal([]);
  });

  it('needs the disco module', async () => {
    let error: Error | undefined;
    await Harness.start({ modules: [contactInfo] }).catch((e: Error) => { error = e; });
    expect(error?.message).to.match(/contact_info requires module disco/);
  });

  it('refuses unknown options', async () => {
    let error: unknown;
    await Harness.start({ modules: [disco, contactInfo], options: { contact_info: { abuse: 'x' } } }).catch((e: unknown) => { error = e; });
    expect(error).to.be.instanceOf(Error);
  });

  it('builds fields in name order from any kind of address', () => {
    const form = serverInfoForm({ security: ['mailto:sec@example.com'], feedback: ['https://example.com/f'] });
    expect(form!.getChildren('field').map((f) => f.attrs.var)).to.deep.equal(['FORM_TYPE', 'feedback-addresses', 'security-addresses']);
    expect(serverInfoForm({ abuse: undefined })).to.equal(undefined);
  });
});
