import { release, type } from 'node:os';
import { expect } from 'chai';
import { NS, xml } from '../../../lib/module-api.js';
import disco from '../../../modules/disco/index.js';
import version from '../../../modules/version/index.js';
import { Harness, type TestClient } from '../../helpers/harness.js';
import { expectError, expectXml } from '../../helpers/xml-assert.js';

describe('version (XEP-0092)', () => {
  let h: Harness;
  let alice: TestClient;

  async function boot(options?: Record<string, unknown>): Promise<void> {
    h = await Harness.start({ modules: [disco, version], options, server: { version: '1.2.3' } });
    await h.createAccount('alice', 'pw');
    await h.createAccount('bob', 'pw');
    alice = await h.connect('alice@example.com/phone');
  }
  afterEach(() => h.stop());

  it('answers the server name and version, without the operating system by default', async () => {
    await boot();
    const reply = await alice.iq(xml('iq', { type: 'get', to: 'example.com', id: 'v1' }, xml('query', { xmlns: NS.version })));
    expectXml(reply, `
      <iq type='result' id='v1' from='example.com' to='alice@example.com/phone'>
        <query xmlns='jabber:iq:version'>
          <name>Parley</name>
          <version>1.2.3</version>
        </query>
      </iq>`);
  });

  it('adds the operating system when showOs is true', async () => {
    await boot({ version: { showOs: true } });
    const reply = await alice.get(xml('query', { xmlns: NS.version }));
    expectXml(reply.getChild('query'), `
      <query xmlns='jabber:iq:version'>
        <name>Parley</name>
        <version>1.2.3</version>
        <os>${type()} ${release()}</os>
      </query>`);
  });

  it('shows jabber:iq:version in the server\'s disco#info', async () => {
    await boot();
    const reply = await alice.get(xml('query', { xmlns: NS.discoInfo }));
    expect(reply.getChild('query')!.getChildren('feature').map((f) => f.attrs.var)).to.include(NS.version);
  });

  it('does not advertise it on accounts, nor answer for an account\'s bare JID', async () => {
    await boot();
    const features = (await alice.get(xml('query', { xmlns: NS.discoInfo }), 'bob@example.com')).getChild('query')!.getChildren('feature');
    expect(features.map((f) => f.attrs.var)).to.not.include(NS.version);
    expectError(await alice.get(xml('query', { xmlns: NS.version }), 'bob@example.com'), 'service-unavailable');
  });

  it('leaves a version set to the core, which answers service-unavailable', async () => {
    await boot();
    expectError(await alice.set(xml('query', { xmlns: NS.version })), 'service-unavailable');
  });

  it('refuses unknown options and a showOs that is not a boolean', async () => {
    for (const options of [{ version: { showOS: true } }, { version: { showOs: 'yes' } }]) {
      let error: unknown;
      await Harness.start({ modules: [version], options }).catch((e: unknown) => { error = e; });
      expect(error, JSON.stringify(options)).to.be.instanceOf(Error);
    }
  });
});
