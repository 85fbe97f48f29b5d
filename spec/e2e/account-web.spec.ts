// The account self-service pages for real, in headless Chromium (playwright-core): a user logs
// in with their XMPP password, turns on TOTP by reading the secret off the page (the test
// computes the codes, as an authenticator app would), then needs a code to log in again; creates
// an app password that logs in over XMPP with PLAIN until it is revoked on the page; and reads
// their security events. An admin then sees 2FA on the Users page and resets it. All under the
// pages' strict Content-Security-Policy. Screenshots go to .artifacts/. Skips, saying what to
// install, when Chromium is missing.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { chromium, type Browser, type Page } from 'playwright-core';
import { base32Decode, totp } from '../../lib/accounts/totp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { loggedIn, type RawClient } from '../helpers/raw-client.js';

const CHROMIUM = process.env.PARLEY_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(process.cwd(), '.artifacts');

describe('e2e: account self-service pages in Chromium', function () {
  this.timeout(120_000);
  let srv: TestServer;
  let browser: Browser | undefined;
  let page: Page;
  let base: string;
  let secret: Buffer;
  let appPassword: string;
  let legacy: RawClient | undefined;
  const pageErrors: string[] = [];
  const cspViolations: string[] = [];

  const shot = async (name: string, p: Page = page) => {
    mkdirSync(ARTIFACTS, { recursive: true });
    await p.screenshot({ path: join(ARTIFACTS, `account-web-${name}.png`), fullPage: true });
  };
  const watch = (p: Page) => {
    p.on('pageerror', (e) => pageErrors.push(e.message));
    p.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
    });
    p.on('dialog', (d) => void d.accept());
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
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
    watch(page);
  });

  after(async () => {
    legacy?.destroy();
    await browser?.close();
    await srv?.stop();
  });

  afterEach(async function () {
    if (browser && this.currentTest?.state === 'failed') await shot(`failure-${this.currentTest.title.slice(0, 30).replace(/\W+/g, '-')}`).catch(() => undefined);
  });

  /** Waits until the page's script has set up its handlers. */
  const ready = () => page.locator('body[data-ready="1"]').waitFor();

  async function logIn(password: string, code?: string): Promise<void> {
    await page.goto(`${base}/account/login`);
    await ready();
    await page.fill('#username', 'alice');
    await page.fill('#password', password);
    if (code !== undefined) {
      await page.click('#login button[type=submit]');
      await page.locator('#code').waitFor({ state: 'visible' });
      await page.fill('#code', code);
    }
    await page.click('#login button[type=submit]');
  }

  it('sends a visitor without a session to the login page, and logs the user in with their XMPP password', async () => {
    await page.goto(`${base}/account/`);
    expect(page.url()).to.equal(`${base}/account/login`);
    await logIn('secret-pw');
    await page.waitForURL(`${base}/account/`);
    await ready();
    await page.locator('#who', { hasText: 'alice@localhost' }).waitFor();
    await page.locator('#totp-off').waitFor({ state: 'visible' });
  });

  it('turns on TOTP: shows the QR code and the secret, confirms with a code, shows the recovery codes once', async () => {
    await ready();
    await page.click('#totp-start');
    await page.locator('#enrol').waitFor({ state: 'visible' });
    const uri = (await page.textContent('#totp-uri'))!;
    const text = (await page.textContent('#totp-secret'))!;
    expect(uri).to.match(/^otpauth:\/\/totp\/localhost:alice%40localhost\?secret=/);
    expect(uri).to.contain(`secret=${text}`);
    expect(await page.getAttribute('#totp-qr', 'src')).to.match(/^data:image\/png;base64,/);
    // The QR image decoded and laid out at its size (a blocked data: image would have no box).
    const box = await page.locator('#totp-qr').boundingBox();
    expect(box?.width).to.be.greaterThan(100);
    secret = base32Decode(text)!;
    await shot('totp-enrol');
    await page.fill('#confirm-code', totp(secret, Date.now()));
    await page.click('#totp-confirm button[type=submit]');
    await page.locator('#recovery').waitFor({ state: 'visible' });
    expect(await page.locator('#recovery-codes li').count()).to.equal(10);
    await page.locator('#totp-on').waitFor({ state: 'visible' });
    expect(await page.textContent('#recovery-left')).to.equal('10');
    await shot('totp-on');
    // Shown once: a reload shows that 2FA is on, and no codes.
    await page.reload();
    await page.locator('#totp-on').waitFor({ state: 'visible' });
    expect(await page.locator('#recovery').isHidden()).to.equal(true);
  });

  it('after logging out, the password alone no longer opens the page; with a code it does', async () => {
    await page.click('#logout');
    await page.waitForURL(`${base}/account/login`);
    await ready();
    await page.goto(`${base}/account/`);
    expect(page.url()).to.equal(`${base}/account/login`);
    await logIn('secret-pw');
    await page.locator('#code-label').waitFor({ state: 'visible' });
    expect(await page.textContent('#message')).to.contain('enter the code');
    expect(page.url()).to.equal(`${base}/account/login`);
    await page.fill('#code', '123456');
    await page.click('#login button[type=submit]');
    await page.locator('#message', { hasText: 'wrong or already used code' }).waitFor();
    expect(page.url()).to.equal(`${base}/account/login`);
    await shot('login-code');
    // The next time step's code (within the accepted drift, and not yet used).
    await page.fill('#code', totp(secret, Date.now() + 30_000));
    await page.click('#login button[type=submit]');
    await page.waitForURL(`${base}/account/`);
    await page.locator('#totp-on').waitFor({ state: 'visible' });
  });

  it('creates an app password that logs in over XMPP with PLAIN, shown once', async () => {
    await page.click('nav a[href="/account/clients"]');
    await page.waitForURL(`${base}/account/clients`);
    await ready();
    await page.fill('#app-label', 'Old desktop client');
    await page.click('#create-app-password button[type=submit]');
    await page.locator('#new-password').waitFor({ state: 'visible' });
    appPassword = (await page.textContent('#new-password-value'))!.trim();
    expect(appPassword).to.match(/^[0-9a-f]{6}(-[0-9a-f]{6}){4}$/);
    // TOTP is on, yet this client needs no code: that is what an app password is for.
    legacy = await loggedIn(srv, 'alice', { password: appPassword, mechanism: 'PLAIN', resource: 'legacy' });
    await page.reload();
    await ready();
    const row = page.locator('#clients tr[data-name="Old desktop client"]');
    await row.waitFor();
    expect(await row.locator('td').nth(2).textContent()).to.equal('yes');
    expect(await page.locator('#new-password').isHidden(), 'the password is not shown again').to.equal(true);
    await shot('clients');
  });

  it('revokes the app password: its session ends and it no longer logs in', async () => {
    const row = page.locator('#clients tr[data-name="Old desktop client"]');
    await row.locator('button', { hasText: 'Revoke' }).click();
    const err = await legacy!.streamError();
    expect(err.children.map((c) => c.name)).to.include('not-authorized');
    await row.waitFor({ state: 'detached' });
    expect(await page.textContent('#message')).to.equal('revoked Old desktop client');
    let failure = '';
    await loggedIn(srv, 'alice', { password: appPassword, mechanism: 'PLAIN' }).then((c) => c.destroy(), (e: Error) => (failure = e.message));
    expect(failure).to.match(/not-authorized/);
  });

  it('lists the security events, newest first', async () => {
    await page.click('nav a[href="/account/events"]');
    await page.waitForURL(`${base}/account/events`);
    await page.locator('#events tr').first().waitFor();
    const kinds = await Promise.all((await page.locator('#events tr').all()).map((r) => r.getAttribute('data-kind')));
    const at = (k: string) => kinds.indexOf(k);
    for (const k of ['second-factor-enabled', 'login', 'login-failed', 'app-password-created', 'app-password-revoked']) expect(kinds, k).to.include(k);
    // Newest first: the failed XMPP login after the revocation, then the revocation, ... the enrolment.
    expect(kinds[0]).to.equal('login-failed');
    expect(at('app-password-revoked')).to.be.lessThan(at('app-password-created'));
    expect(at('app-password-created')).to.be.lessThan(at('second-factor-enabled'));
    const times = await page.locator('#events tr td:first-child').allTextContents();
    expect([...times].sort().reverse()).to.deep.equal(times);
    expect(await page.locator('#events tr[data-kind="app-password-created"] td').nth(2).textContent()).to.contain('label=Old desktop client');
    await shot('events');
  });

  it('shows an admin that alice has 2FA on, and resets it on the Users page', async () => {
    const admin = await browser!.newPage({ viewport: { width: 1100, height: 720 } });
    watch(admin);
    try {
      await admin.goto(`${base}/admin/login`);
      await admin.fill('#username', 'root');
      await admin.fill('#password', 'root-pw');
      await admin.click('#login button[type=submit]');
      await admin.waitForURL(`${base}/admin/`);
      await admin.click('nav a[href="/admin/users"]');
      const row = admin.locator('#users tr[data-jid="alice@localhost"]');
      await row.waitFor();
      expect(await row.getAttribute('data-two-factor')).to.equal('on');
      expect(await admin.getAttribute('#users tr[data-jid="root@localhost"]', 'data-two-factor')).to.equal('off');
      await shot('admin-users', admin);
      await row.locator('button', { hasText: 'Reset 2FA' }).click();
      await admin.locator('#message', { hasText: 'reset the second factor of alice@localhost' }).waitFor();
      await admin.locator('#users tr[data-jid="alice@localhost"][data-two-factor="off"]').waitFor();
    } finally {
      await admin.close();
    }
    // Alice sees it among her events, with who did it, and her password alone opens the page again.
    await page.reload();
    const reset = page.locator('#events tr[data-kind="second-factor-reset"]');
    await reset.waitFor();
    expect(await reset.locator('td').nth(2).textContent()).to.equal('by=root@localhost');
    await page.click('#logout');
    await page.waitForURL(`${base}/account/login`);
    await logIn('secret-pw');
    await page.waitForURL(`${base}/account/`);
    await page.locator('#totp-off').waitFor({ state: 'visible' });
  });

  it('ran without page errors or Content-Security-Policy violations', () => {
    expect(pageErrors, 'uncaught errors in the page').to.deep.equal([]);
    expect(cspViolations, 'Content-Security-Policy violations').to.deep.equal([]);
  });
});
