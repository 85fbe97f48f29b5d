// The built-in web client for real: Converse.js, served by Parley at /chat, in headless
// Chromium (playwright-core), logs in over WebSocket and chats with a TCP client (@xmpp/client).
// Skips, saying what to install, when Chromium is missing.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { chromium, type Browser, type Page } from 'playwright-core';
import { client, xml, type XmppClient } from '@xmpp/client';
import { INSTALL_HINT, pythonHas, SYSTEM_PYTHON } from './clients/python-client.js';
import { SlixIm } from './clients/slixmpp-im.js';
import type { Element } from 'ltx';
import { startTestServer, type TestServer } from '../helpers/server.js';

// @xmpp/client (bob, over STARTTLS) meets the generated self-signed certificate. The page itself
// uses plain http and ws on loopback.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

const CHROMIUM = process.env.PARLEY_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(process.cwd(), '.artifacts');

function tcpClient(srv: TestServer, user: string, resource: string): Promise<XmppClient> {
  const c = client({ service: `xmpp://127.0.0.1:${srv.port('c2s')}`, domain: srv.domain, username: user, password: 'secret-pw', resource });
  c.on('error', () => undefined);
  return c.start().then(() => c);
}

describe('e2e: Converse.js web client in Chromium', function () {
  this.timeout(90_000);
  let srv: TestServer;
  let browser: Browser | undefined;
  let page: Page | undefined;
  const pageErrors: string[] = [];
  const cspViolations: string[] = [];

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      console.log(`      (skipped: no Chromium at ${CHROMIUM}; apt-get install chromium, or set PARLEY_CHROMIUM)`);
      this.skip();
    }
    srv = await startTestServer();
    await srv.addUser('alice', 'secret-pw');
    await srv.addUser('bob', 'secret-pw');
    // Converse drops chat messages from JIDs outside the roster (allow_non_roster_messaging):
    // alice has bob as a contact, as after a subscription.
    const alice = await tcpClient(srv, 'alice', 'setup');
    await alice.iqCaller.request(xml('iq', { type: 'set' }, xml('query', { xmlns: 'jabber:iq:roster' }, xml('item', { jid: 'bob@localhost', name: 'Bob' }))));
    await alice.stop();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
  });

  after(async () => {
    await browser?.close();
    await srv?.stop();
  });

  afterEach(async function () {
    if (page && this.currentTest?.state === 'failed') {
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'web-converse-failure.png'), fullPage: true }).catch(() => undefined);
    }
  });

  it('logs in over WebSocket, sends a message a TCP client receives, and shows the reply', async () => {
    const p = page!;
    const bob = await tcpClient(srv, 'bob', 'tcp');
    try {
      await bob.send(xml('presence'));
      await p.goto(`http://127.0.0.1:${srv.port('http')}/chat`);
      await p.waitForSelector('#converse-login-jid', { timeout: 30_000 });
      // default_domain is the server's domain: the bare username is enough.
      await p.fill('#converse-login-jid', 'alice');
      await p.fill('#converse-login-password', 'secret-pw');
      await p.click('#converse-login button[type=submit]');
      await p.waitForSelector('converse-roster', { timeout: 30_000 });

      const received = new Promise<Element>((resolve) => {
        bob.on('stanza', (s) => {
          if (s.is('message') && s.getChildText('body')) resolve(s);
        });
      });
      // Converse opens a chat from the URL fragment.
      await p.evaluate("location.hash = 'converse/chat?jid=bob@localhost'");
      const textarea = p.locator('converse-chats textarea.chat-textarea');
      await textarea.waitFor({ timeout: 30_000 });
      await textarea.fill('Hello Bob, from Converse');
      await textarea.press('Enter');

      const msg = await received;
      expect(msg.getChildText('body')).to.equal('Hello Bob, from Converse');
      expect(msg.attrs.from).to.match(/^alice@localhost\/.+/);

      await bob.send(xml('message', { to: msg.attrs.from as string, type: 'chat', id: 'reply-1' }, xml('body', {}, 'Hi Alice, Bob here over TCP')));
      await p.getByText('Hi Alice, Bob here over TCP').first().waitFor({ timeout: 30_000 });

      mkdirSync(ARTIFACTS, { recursive: true });
      await p.screenshot({ path: join(ARTIFACTS, 'web-converse.png'), fullPage: true });
      expect(pageErrors, 'uncaught errors in the page').to.deep.equal([]);
      expect(cspViolations, 'Content-Security-Policy violations').to.deep.equal([]);
    } finally {
      await bob.stop();
    }
  });

  it('chats with a slixmpp client: it receives what the page sends, and its reply shows in the page', async function () {
    if (!pythonHas('slixmpp')) {
      console.log(`      (skipped: slixmpp is not importable by ${SYSTEM_PYTHON}; ${INSTALL_HINT})`);
      this.skip();
    }
    const p = page!;
    const bob = new SlixIm({ host: '127.0.0.1', port: srv.port('c2s'), jid: 'bob@localhost', password: 'secret-pw', resource: 'slix' });
    try {
      await bob.bound();
      await bob.cmd({ cmd: 'presence' });
      const mark = bob.mark();
      // The page is still logged in as alice, in the chat with bob from the test above.
      const textarea = p.locator('converse-chats textarea.chat-textarea');
      await textarea.waitFor({ timeout: 30_000 });
      await textarea.fill('Hello slixmpp, from Converse');
      await textarea.press('Enter');
      const got = await bob.waitFor((e) => e.event === 'message' && e.body === 'Hello slixmpp, from Converse', { after: mark, timeoutMs: 30_000 });
      expect(String(got.from)).to.match(/^alice@localhost\/.+/);
      await bob.cmd({ cmd: 'send', to: String(got.from), body: 'Hi Alice, slixmpp here' });
      await p.getByText('Hi Alice, slixmpp here').first().waitFor({ timeout: 30_000 });
      mkdirSync(ARTIFACTS, { recursive: true });
      await p.screenshot({ path: join(ARTIFACTS, 'web-converse-slixmpp.png'), fullPage: true });
    } finally {
      await bob.kill();
    }
  });
});
