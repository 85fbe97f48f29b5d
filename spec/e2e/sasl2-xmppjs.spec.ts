// @xmpp/client as a third-party SASL2 client: it takes SASL2 with Bind2 when offered, asks for a
// FAST token (XEP-0484), and logs in again with the token alone (HT-SHA-256-NONE).
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { client, xml } from '@xmpp/client';
import type { XmppClient } from '@xmpp/client';
import { startTestServer, type TestServer } from '../helpers/server.js';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

interface Token {
  mechanism: string;
  token: string;
  expiry: string;
}

describe('e2e: @xmpp/client over SASL2, Bind2 and FAST', function () {
  this.timeout(30_000);
  let srv: TestServer;
  const running: XmppClient[] = [];

  before(async () => {
    srv = await startTestServer();
    await srv.addUser('fasty', 'secret-pw');
  });
  after(async () => {
    for (const c of running) await c.stop().catch(() => undefined);
    await srv?.stop();
  });

  function make(id: string, password: string, store: { token?: Token }, seen: string[]): XmppClient {
    const c = client({
      service: `xmpp://127.0.0.1:${srv.port('c2s')}`,
      domain: srv.domain,
      username: 'fasty',
      password,
      resource: 'xjs',
      userAgent: xml('user-agent', { id }, xml('software', {}, 'xmpp.js')),
    } as Parameters<typeof client>[0]);
    const fast = (c as unknown as { fast: { saveToken(t: Token): Promise<void>; fetchToken(): Promise<Token | undefined> } }).fast;
    fast.saveToken = async (t) => void (store.token = t);
    fast.fetchToken = async () => store.token;
    c.on('error', () => undefined);
    (c as unknown as { on(e: 'send', f: (el: { toString(): string }) => void): void }).on('send', (el) => seen.push(el.toString()));
    running.push(c);
    return c;
  }

  it('logs in with a password over SASL2 + Bind2, gets a token, and logs in again with the token alone', async () => {
    const id = randomUUID();
    const store: { token?: Token } = {};
    const out1: string[] = [];
    const first = make(id, 'secret-pw', store, out1);
    await first.start();
    expect(out1.join('')).to.include("urn:xmpp:sasl:2").and.to.include('urn:xmpp:bind:0');
    expect(first.jid?.toString()).to.equal('fasty@localhost/xjs');
    expect(store.token?.mechanism).to.equal('HT-SHA-256-NONE');
    await first.stop();

    const out2: string[] = [];
    // A wrong password: only the token can get this client in.
    const second = make(id, 'not-the-password', store, out2);
    await second.start();
    expect(out2.join('')).to.include('HT-SHA-256-NONE');
    const pong = await second.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    expect(pong.attrs.type).to.equal('result');
    await second.stop();
  });
});
