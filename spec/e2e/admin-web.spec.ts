// The web admin for real, in headless Chromium (playwright-core): a non-admin is refused, an admin
// logs in with their XMPP password, sees the live status, lists users, creates one, and kicks a
// session of a connected client, all under the page's strict Content-Security-Policy.
// Screenshots go to .artifacts/. Skips, saying what to install, when Chromium is missing.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { loggedIn, type RawClient } from '../helpers/raw-client.js';

const CHROMIUM = process.env.PARLEY_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(process.cwd(), '.artifacts');

describe('e2e: web admin in Chromium', function () {
  this.timeout(90_000);
  let srv: TestServer;
  let browser: Browser | undefined;
  let page: Page;
  let base: string;
  let alice: RawClient | undefined;
  const pageErrors: string[] = [];
  const cspViolations: string[] = [];

  const shot = async (name: string) => {
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, `admin-web-${name}.png`), fullPage: true });
  };

  before(async function () {
    if (!existsSync(CHROMIUM)) {
      console.log(`      (skipped: no Chromium at ${CHROMIUM}; apt-get install chromium, or set PARLEY_CHROMIUM)`);
      this.skip();
    }
    srv = await startTestServer({ admins: ['root@localhost'] });
    base = `http://127.0.0.1:${srv.port('http')}`;
    await srv.addUser('root', 'root-pw');
    await srv.addUser('alice', 'secret-pw');
    await srv.addUser('bob', 'secret-pw');
    alice = await loggedIn(srv, 'alice', { resource: 'laptop' });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1100, height: 720 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    page.on('dialog', (d) => void d.accept());
  });

  after(async () => {
    alice?.destroy();
    await browser?.close();
    await srv?.stop();
  });

  afterEach(async function () {
    if (browser && this.currentTest?.state === 'failed') await shot(`failure-${this.currentTest.title.slice(0, 30).replace(/\W+/g, '-')}`).catch(() => undefined);
  });

  it('sends a visitor without a session to the login page, and refuses an account that is not an admin', async () => {
    await page.goto(`${base}/admin/`);
    await page.waitForURL(`${base}/admin/login`);
    await page.fill('#username', 'alice');
    await page.fill('#password', 'secret-pw');
    await page.click('#login button[type=submit]');
    const message = page.locator('#message');
    await message.waitFor({ state: 'visible' });
    expect(await message.textContent()).to.contain('alice@localhost is not an admin');
    expect(page.url()).to.equal(`${base}/admin/login`);
    await shot('login-refused');
  });

  it('logs an admin in and shows the live server status', async () => {
    await page.fill('#username', 'root');
    await page.fill('#password', 'root-pw');
    await page.click('#login button[type=submit]');
    await page.waitForURL(`${base}/admin/`);
    await expect_text('#who', 'root@localhost');
    await page.locator('#stat-sessions', { hasText: /^1$/ }).waitFor();
    expect(await page.textContent('#stat-accounts')).to.equal('3');
    expect(await page.textContent('#stat-hosts')).to.equal('localhost');
    // Live: a second session shows up at the next poll without reloading the page.
    const bob = await loggedIn(srv, 'bob', { resource: 'phone' });
    try {
      await page.locator('#stat-sessions', { hasText: /^2$/ }).waitFor({ timeout: 10_000 });
      // Traffic shows as a stanza rate above zero in the live chart.
      for (let i = 0; i < 40; i++) await bob.ping();
      await page.locator('#stat-rate', { hasText: /^[1-9]/ }).waitFor({ timeout: 10_000 });
      await page.locator('#history .bar').nth(2).waitFor({ timeout: 10_000 });
      await shot('status');
    } finally {
      bob.destroy();
    }
  });

  it('lists users and creates one', async () => {
    await page.click('nav a[href="/admin/users"]');
    await page.waitForSelector('#users tr[data-jid="alice@localhost"]');
    const jids = await Promise.all((await page.locator('#users tr').all()).map((r) => r.getAttribute('data-jid')));
    expect(jids).to.deep.equal(['alice@localhost', 'bob@localhost', 'root@localhost']);
    await page.fill('#new-jid', 'newbie@localhost');
    await page.fill('#new-password', 'newbie-pw');
    await page.click('#create-user button[type=submit]');
    await page.waitForSelector('#users tr[data-jid="newbie@localhost"]');
    expect(await page.textContent('#message')).to.equal('created newbie@localhost');
    expect(await srv.server.accounts.verifyPassword('localhost', 'newbie', 'newbie-pw')).to.equal(true);
    await shot('users');
  });

  it('kicks a session: the client gets a policy-violation stream error', async () => {
    await page.click('nav a[href="/admin/sessions"]');
    const row = page.locator('#sessions tr[data-jid="alice@localhost/laptop"]');
    await row.waitFor();
    await shot('sessions');
    await row.locator('button', { hasText: 'Kick' }).click();
    const err = await alice!.streamError();
    expect(err.children.map((c) => c.name)).to.include('policy-violation');
    await row.waitFor({ state: 'detached' });
    expect(await page.textContent('#message')).to.equal('ended the session alice@localhost/laptop');
  });

  it('ran without page errors or Content-Security-Policy violations', () => {
    expect(pageErrors, 'uncaught errors in the page').to.deep.equal([]);
    expect(cspViolations, 'Content-Security-Policy violations').to.deep.equal([]);
  });

  async function expect_text(selector: string, text: string): Promise<void> {
    // Locators, not page.waitForFunction: the page's CSP forbids evaluating strings.
    await page.locator(selector, { hasText: text }).waitFor();
  }
});
