// XEP-0077 over a real stream: IQs before authentication reach the register module only when
// registration is on, and only after TLS.
import { expect } from 'chai';
import { RawClient } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REG = 'jabber:iq:register';

describe('e2e: in-band registration', () => {
  let srv: TestServer | undefined;
  afterEach(async () => {
    await srv?.stop();
    srv = undefined;
  });

  async function negotiating(s: TestServer): Promise<RawClient> {
    const c = await RawClient.connect(s.port('c2s'));
    await c.openStream();
    await c.starttls();
    c.restart();
    return c;
  }

  it('creates an account before authentication when registration is on, then logs in with it', async () => {
    srv = await startTestServer({ modules: { register: { allowRegistration: true } } });
    const c = await negotiating(srv);
    const features = await c.openStream();
    expect(features.child('register', 'http://jabber.org/features/iq-register')).to.not.equal(undefined);
    c.send(`<iq type='get' id='g1'><query xmlns='${REG}'/></iq>`);
    const form = await c.waitForElement((e) => e.name === 'iq' && e.attrs.id === 'g1');
    expect(form.attrs.type).to.equal('result');
    expect(form.child('query', REG)?.child('password')).to.not.equal(undefined);
    c.send(`<iq type='set' id='s1'><query xmlns='${REG}'><username>newbie</username><password>pw-123456</password></query></iq>`);
    const done = await c.waitForElement((e) => e.name === 'iq' && e.attrs.id === 's1');
    expect(done.attrs.type).to.equal('result');
    await c.authenticate('newbie', 'pw-123456');
    c.close();
    expect(await srv.server.accounts.exists('localhost', 'newbie')).to.equal(true);
  });

  it('answers an iq before authentication with not-authorized when registration is off', async () => {
    srv = await startTestServer();
    const c = await negotiating(srv);
    const features = await c.openStream();
    expect(features.child('register', 'http://jabber.org/features/iq-register')).to.equal(undefined);
    c.send(`<iq type='get' id='g1'><query xmlns='${REG}'/></iq>`);
    const err = await c.streamError();
    expect(err.child('not-authorized', 'urn:ietf:params:xml:ns:xmpp-streams')).to.not.equal(undefined);
  });

  it('refuses a registration iq before TLS with not-authorized', async () => {
    srv = await startTestServer({ modules: { register: { allowRegistration: true } } });
    const c = await RawClient.connect(srv.port('c2s'));
    await c.openStream();
    c.send(`<iq type='get' id='g1'><query xmlns='${REG}'/></iq>`);
    const err = await c.streamError();
    expect(err.child('not-authorized', 'urn:ietf:params:xml:ns:xmpp-streams')).to.not.equal(undefined);
  });

  it('closes a stream that sends more than ten iqs before authenticating', async () => {
    srv = await startTestServer({ modules: { register: { allowRegistration: true } } });
    const c = await negotiating(srv);
    await c.openStream();
    for (let i = 0; i < 11; i++) c.send(`<iq type='get' id='g${i}'><query xmlns='${REG}'/></iq>`);
    const err = await c.streamError();
    expect(err.child('policy-violation', 'urn:ietf:params:xml:ns:xmpp-streams')).to.not.equal(undefined);
  });
});
