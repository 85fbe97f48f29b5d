// slixmpp 1.8 (Debian python3-slixmpp) against a real server: STARTTLS and direct TLS, SCRAM and
// PLAIN, SCRAM-*-PLUS with tls-unique, bind, ping, and messages at full JIDs. The client runs as
// a child process (spec/e2e/clients/slixmpp_driver.py) reporting JSON lines.
//
// Two slixmpp habits matter here (both visible with PARLEY_E2E_DEBUG=1):
// - Its only channel binding is tls-unique, which TLS 1.3 does not define (RFC 9266); its -PLUS
//   logins therefore run over TLS 1.2 (`--tls-max 1.2`), where the server offers tls-unique.
// - Told to use a non-PLUS SCRAM, it sends GS2 flag 'y' whenever TLS hands it binding data,
//   which a server offering -PLUS must refuse (RFC 5802 §6). The driver declines binding through
//   the plugin's `sasl_callback` hook (flag 'n'); one test keeps the stock behaviour.
import { expect } from 'chai';
import { client as xmppClient, xml } from '@xmpp/client';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { INSTALL_HINT, PythonClient, pythonHas, SYSTEM_PYTHON, type DriverOptions } from './clients/python-client.js';

// @xmpp/client, for the cross-client message, meets the generated self-signed certificate.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

const DRIVER = new URL('../../../spec/e2e/clients/slixmpp_driver.py', import.meta.url);

describe('e2e: slixmpp', function () {
  this.timeout(20_000);
  let srv: TestServer;
  const running: PythonClient[] = [];

  before(async function () {
    if (!pythonHas('slixmpp')) {
      console.log(`    (skipped: slixmpp is not importable by ${SYSTEM_PYTHON}; ${INSTALL_HINT})`);
      this.skip();
    }
    srv = await startTestServer();
    for (const user of ['alice', 'bob', 'carol', 'mallory']) await srv.addUser(user, 'secret-pw');
  });
  after(async () => srv?.stop());
  afterEach(async () => {
    await Promise.all(running.splice(0).map((c) => c.kill()));
  });

  function slixmpp(opts: Partial<DriverOptions> & Pick<DriverOptions, 'jid' | 'mechanism' | 'mode'>): PythonClient {
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
        const c = slixmpp({ jid: 'alice@localhost', mechanism, mode, actions: ['ping'] });
        const bound = await c.waitFor('bound');
        expect(bound.jid).to.match(/^alice@localhost\/.+/);
        expect(bound.mechanism).to.equal(mechanism);
        expect(bound.tls).to.include({ version: 'TLSv1.3' });
        if (mode === 'direct') expect(bound.tls).to.include({ alpn: 'xmpp-client' });
        expect(bound.gs2_header).to.equal(mechanism === 'PLAIN' ? null : 'n,,');
        const pong = await c.waitFor('pong');
        expect(pong).to.include({ type: 'result', from: 'localhost' });
        await c.waitFor('done');
        expect(await c.exited).to.equal(0);
      });
    }
  }

  for (const [mechanism, mode] of [['SCRAM-SHA-256-PLUS', 'starttls'], ['SCRAM-SHA-1-PLUS', 'direct']] as const) {
    it(`logs in with ${mechanism} bound to tls-unique over TLS 1.2 (${mode === 'direct' ? 'direct TLS' : 'STARTTLS'})`, async () => {
      const c = slixmpp({ jid: 'bob@localhost', mechanism, mode, extra: ['--tls-max', '1.2'], actions: ['ping'] });
      const bound = await c.waitFor('bound');
      expect(bound.jid).to.match(/^bob@localhost\/.+/);
      expect(bound).to.include({ mechanism, channel_binding: 'tls-unique', gs2_header: 'p=tls-unique,,' });
      expect(bound.tls).to.include({ version: 'TLSv1.2' });
      expect(await c.waitFor('pong')).to.include({ type: 'result' });
      expect(await c.exited).to.equal(0);
    });
  }

  it('refuses tls-unique over TLS 1.3, where it is undefined', async () => {
    const c = slixmpp({ jid: 'carol@localhost', mechanism: 'SCRAM-SHA-256-PLUS', mode: 'starttls' });
    const err = await c.waitFor('error');
    expect(err).to.include({ stage: 'login', reason: 'auth' });
    expect(err.conditions).to.deep.equal(['not-authorized']);
    expect(await c.exited).to.equal(1);
  });

  it("refuses slixmpp's stock GS2 flag 'y' on SCRAM-SHA-1 as a downgrade, since -PLUS is offered", async () => {
    const c = slixmpp({ jid: 'carol@localhost', mechanism: 'SCRAM-SHA-1', mode: 'starttls', extra: ['--stock-cb-flag'] });
    const err = await c.waitFor('error');
    expect(err).to.include({ stage: 'login', reason: 'auth' });
    expect(err.conditions).to.deep.equal(['not-authorized']);
  });

  it('refuses a wrong password', async () => {
    const c = slixmpp({ jid: 'mallory@localhost', password: 'not-the-password', mechanism: 'SCRAM-SHA-256', mode: 'starttls', actions: ['ping'] });
    const err = await c.waitFor('error');
    expect(err).to.include({ stage: 'login', reason: 'auth' });
    expect(err.conditions).to.deep.equal(['not-authorized']);
    expect(c.events.map((e) => e.event)).not.to.include('bound');
    expect(await c.exited).to.equal(1);
  });

  it("delivers a chat message between two slixmpp sessions at full JIDs, from the sender's full JID", async () => {
    const bob = slixmpp({ jid: 'bob@localhost', resource: 'sli-bob', mechanism: 'SCRAM-SHA-256', mode: 'starttls', actions: ['recv'] });
    const bobJid = (await bob.waitFor('bound')).jid;
    expect(bobJid).to.equal('bob@localhost/sli-bob');
    const body = 'héllo <bob> & 🐍';
    const alice = slixmpp({ jid: 'alice@localhost', resource: 'sli-alice', mechanism: 'PLAIN', mode: 'direct', actions: ['send', 'bob@localhost/sli-bob', body] });
    const aliceJid = (await alice.waitFor('bound')).jid;
    const sent = await alice.waitFor('sent');
    const msg = await bob.waitFor('message');
    expect(msg).to.include({ body, type: 'chat', from: aliceJid, to: bobJid, id: sent.id });
    expect(msg.from).to.equal('alice@localhost/sli-alice');
    expect(await bob.exited).to.equal(0);
  });

  it('delivers a chat message from slixmpp to an @xmpp/client session', async () => {
    const bob = xmppClient({ service: `xmpp://127.0.0.1:${srv.port('c2s')}`, domain: srv.domain, username: 'bob', password: 'secret-pw', resource: 'xjs' });
    bob.on('error', () => undefined);
    await bob.start();
    try {
      const got = new Promise<import('ltx').Element>((resolve) => {
        bob.on('stanza', (s) => {
          if (s.is('message')) resolve(s);
        });
      });
      const alice = slixmpp({ jid: 'alice@localhost', resource: 'sli', mechanism: 'SCRAM-SHA-1', mode: 'starttls', actions: ['send', 'bob@localhost/xjs', 'to xmpp.js'] });
      const aliceJid = (await alice.waitFor('bound')).jid;
      const msg = await got;
      expect(msg.attrs.from).to.equal(aliceJid).and.to.equal('alice@localhost/sli');
      expect(msg.attrs.to).to.equal('bob@localhost/xjs');
      expect(msg.getChildText('body')).to.equal('to xmpp.js');
      await alice.waitFor('done');
    } finally {
      await bob.stop();
    }
  });
});
