// nbxmpp 4.2 (Debian python3-nbxmpp, the library under Gajim) against a real server: STARTTLS
// and direct TLS, SCRAM and PLAIN, bind, ping, and messages at full JIDs. The client runs on a
// GLib main loop in a child process (spec/e2e/clients/nbxmpp_driver.py) reporting JSON lines.
//
// No -PLUS login here: nbxmpp 4.2 has no channel binding (SASL.start_auth() drops every
// SCRAM-*-PLUS, "currently not supported via GLib"); one test pins that down.
import { expect } from 'chai';
import { client as xmppClient } from '@xmpp/client';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { INSTALL_HINT, PythonClient, pythonHas, SYSTEM_PYTHON, type DriverOptions } from './clients/python-client.js';

// @xmpp/client, for the cross-client message, meets the generated self-signed certificate.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

const DRIVER = new URL('../../../spec/e2e/clients/nbxmpp_driver.py', import.meta.url);

describe('e2e: nbxmpp', function () {
  this.timeout(20_000);
  let srv: TestServer;
  const running: PythonClient[] = [];

  before(async function () {
    if (!pythonHas('gi', 'nbxmpp')) {
      console.log(`    (skipped: nbxmpp is not importable by ${SYSTEM_PYTHON}; ${INSTALL_HINT})`);
      this.skip();
    }
    srv = await startTestServer();
    for (const user of ['alice', 'bob', 'mallory']) await srv.addUser(user, 'secret-pw');
  });
  after(async () => srv?.stop());
  afterEach(async () => {
    await Promise.all(running.splice(0).map((c) => c.kill()));
  });

  function nbxmpp(opts: Partial<DriverOptions> & Pick<DriverOptions, 'jid' | 'mechanism' | 'mode'>): PythonClient {
    const c = new PythonClient(DRIVER, {
      host: '127.0.0.1',
      port: srv.port(opts.mode === 'direct' ? 'c2s-tls' : 'c2s'),
      password: 'secret-pw',
      ...opts,
    });
    running.push(c);
    return c;
  }

  for (const mechanism of ['SCRAM-SHA-1', 'SCRAM-SHA-256', 'PLAIN']) {
    for (const mode of ['starttls', 'direct'] as const) {
      it(`logs in with ${mechanism} over ${mode === 'direct' ? 'direct TLS' : 'STARTTLS'}, binds and pings the server`, async () => {
        const c = nbxmpp({ jid: 'alice@localhost', mechanism, mode, actions: ['ping'] });
        const bound = await c.waitFor('bound');
        expect(bound.jid).to.match(/^alice@localhost\/.+/);
        expect(bound.mechanism).to.equal(mechanism);
        expect(bound.tls).to.include({ version: 'TLSv1.3' });
        if (mode === 'direct') expect(bound.tls).to.include({ alpn: 'xmpp-client' });
        const pong = await c.waitFor('pong');
        expect(pong).to.include({ type: 'result', from: 'localhost' });
        await c.waitFor('done');
        expect(await c.exited).to.equal(0);
      });
    }
  }

  it('cannot be made to use SCRAM-SHA-256-PLUS: nbxmpp 4.2 gives up before any <auth/>', async () => {
    const c = nbxmpp({ jid: 'bob@localhost', mechanism: 'SCRAM-SHA-256-PLUS', mode: 'starttls' });
    const err = await c.waitFor('error');
    expect(err).to.include({ stage: 'login', condition: 'invalid-mechanism' });
  });

  it('refuses a wrong password', async () => {
    const c = nbxmpp({ jid: 'mallory@localhost', password: 'not-the-password', mechanism: 'SCRAM-SHA-256', mode: 'direct', actions: ['ping'] });
    const err = await c.waitFor('error');
    expect(err).to.include({ stage: 'login', domain: 'StreamError.SASL', condition: 'not-authorized' });
    expect(c.events.map((e) => e.event)).not.to.include('bound');
    expect(await c.exited).to.equal(1);
  });

  it("delivers a chat message between two nbxmpp sessions at full JIDs, from the sender's full JID", async () => {
    const bob = nbxmpp({ jid: 'bob@localhost', resource: 'nb-bob', mechanism: 'SCRAM-SHA-1', mode: 'starttls', actions: ['recv'] });
    const bobJid = (await bob.waitFor('bound')).jid;
    expect(bobJid).to.equal('bob@localhost/nb-bob');
    const body = 'héllo <bob> & 🐍';
    const alice = nbxmpp({ jid: 'alice@localhost', resource: 'nb-alice', mechanism: 'PLAIN', mode: 'direct', actions: ['send', 'bob@localhost/nb-bob', body] });
    const aliceJid = (await alice.waitFor('bound')).jid;
    const sent = await alice.waitFor('sent');
    const msg = await bob.waitFor('message');
    expect(msg).to.include({ body, type: 'chat', from: aliceJid, to: bobJid, id: sent.id });
    expect(msg.from).to.equal('alice@localhost/nb-alice');
    expect(await bob.exited).to.equal(0);
  });

  it('delivers a chat message from nbxmpp to an @xmpp/client session', async () => {
    const bob = xmppClient({ service: `xmpps://127.0.0.1:${srv.port('c2s-tls')}`, domain: srv.domain, username: 'bob', password: 'secret-pw', resource: 'xjs' });
    bob.on('error', () => undefined);
    await bob.start();
    try {
      const got = new Promise<import('ltx').Element>((resolve) => {
        bob.on('stanza', (s) => {
          if (s.is('message')) resolve(s);
        });
      });
      const alice = nbxmpp({ jid: 'alice@localhost', resource: 'nb', mechanism: 'SCRAM-SHA-256', mode: 'starttls', actions: ['send', 'bob@localhost/xjs', 'to xmpp.js'] });
      const aliceJid = (await alice.waitFor('bound')).jid;
      const msg = await got;
      expect(msg.attrs.from).to.equal(aliceJid).and.to.equal('alice@localhost/nb');
      expect(msg.attrs.to).to.equal('bob@localhost/xjs');
      expect(msg.getChildText('body')).to.equal('to xmpp.js');
      await alice.waitFor('done');
    } finally {
      await bob.stop();
    }
  });
});
