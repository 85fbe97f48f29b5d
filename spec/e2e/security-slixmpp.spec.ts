// A legacy-SASL third-party client (slixmpp 1.8, no SASL2) and a two-factor account: refused
// with the account password, let in with an app password over PLAIN, shut out once it is revoked.
import { expect } from 'chai';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { loggedIn, type RawClient } from '../helpers/raw-client.js';
import { INSTALL_HINT, PythonClient, pythonHas, SYSTEM_PYTHON } from './clients/python-client.js';
import { iq, runCommand } from './helpers-security.js';
import { totp, base32Decode } from '../../lib/accounts/totp.js';

const DRIVER = new URL('../../../spec/e2e/clients/slixmpp_driver.py', import.meta.url);
const NODE = 'urn:parley:security';

describe('e2e: slixmpp (legacy SASL) with a two-factor account', function () {
  this.timeout(30_000);
  let srv: TestServer;
  const running: PythonClient[] = [];
  const raw: RawClient[] = [];

  before(async function () {
    if (!pythonHas('slixmpp')) {
      console.log(`    (skipped: slixmpp is not importable by ${SYSTEM_PYTHON}; ${INSTALL_HINT})`);
      this.skip();
    }
    srv = await startTestServer();
    await srv.addUser('frank', 'secret-pw');
  });
  after(async () => {
    await Promise.all(running.map((c) => c.kill()));
    for (const c of raw) c.destroy();
    await srv?.stop();
  });

  const slixmpp = (password: string) => {
    const c = new PythonClient(DRIVER, { host: '127.0.0.1', port: srv.port('c2s'), jid: 'frank@localhost', password, mechanism: 'PLAIN', mode: 'starttls', actions: ['ping'] });
    running.push(c);
    return c;
  };

  it('refuses the account password, accepts an app password, and refuses it after revocation', async () => {
    const manager = await loggedIn(srv, 'frank', { resource: 'manager' });
    raw.push(manager);
    const { first } = await runCommand(manager, srv.domain, `${NODE}#totp-enable`);
    const secret = base32Decode(first.field('secret')[0]!)!;
    await iq(
      manager, 'set', srv.domain,
      `<command xmlns='http://jabber.org/protocol/commands' node='${NODE}#totp-enable' sessionid='${first.sessionId}' action='complete'><x xmlns='jabber:x:data' type='submit'><field var='code'><value>${totp(secret, Date.now())}</value></field></x></command>`,
    );
    const created = (await runCommand(manager, srv.domain, `${NODE}#app-password-create`, { label: 'slixmpp bot' })).last;
    const appPassword = created.field('password')[0]!;
    const appId = created.field('id')[0]!;

    const refused = await slixmpp('secret-pw').waitFor('error');
    expect(refused).to.include({ stage: 'login' });
    expect(JSON.stringify(refused)).to.include('not-authorized');

    const ok = slixmpp(appPassword);
    expect((await ok.waitFor('bound')).jid).to.match(/^frank@localhost\//);
    expect((await ok.waitFor('pong')).type).to.equal('result');

    expect((await iq(manager, 'set', undefined, `<revoke xmlns='urn:xmpp:cam:0' id='a-${appId}'/>`)).attrs.type).to.equal('result');
    const after = await slixmpp(appPassword).waitFor('error');
    expect(JSON.stringify(after)).to.include('not-authorized');
  });
});
