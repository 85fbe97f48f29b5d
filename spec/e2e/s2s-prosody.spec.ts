// Federation with a real Prosody (Debian's prosody 0.12, /usr/bin/prosody): a Parley for
// parley.example and a Prosody for prosody.example on loopback, both requiring TLS with
// self-signed certificates, so each authenticates the other by dialback (XEP-0220) and each
// dials back to the other to verify.
//
// How Prosody finds Parley without touching /etc/hosts or /etc/resolv.conf: Prosody resolves
// through libunbound (lua-unbound), whose options come from Prosody's `unbound` setting, so its
// config forwards every query to a small DNS server in this process (spec/lib/s2s/fake-dns.ts)
// that serves _xmpp-server._tcp.parley.example → 127.0.0.1:<Parley's s2s port>. The names are
// under .example because unbound answers .test (and .invalid, .localhost) itself with NXDOMAIN
// (RFC 6761 default local zones). Parley finds Prosody through its resolver override.
// Skipped, with the reason, when prosody or lua-unbound is missing. KEEP_PROSODY=1 keeps
// Prosody's directory (config, debug log) in the temp dir for a look afterwards.
import { expect } from 'chai';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSelfSigned } from '../../lib/tls/generate.js';
import { FakeDns } from '../lib/s2s/fake-dns.js';
import { DEFAULT_PASSWORD, loggedIn, nextId, RawClient, XMLNS, type XNode } from '../helpers/raw-client.js';
import type { TestServer } from '../helpers/server.js';
import { createTestCa, federatedServer, s2sPort, type TestCa } from '../lib/s2s/federation-helpers.js';

const PROSODY = '/usr/bin/prosody';
const PROSODYCTL = '/usr/bin/prosodyctl';
const PARLEY_DOMAIN = 'parley.example';
const PROSODY_DOMAIN = 'prosody.example';

function prosodyUsable(): string | undefined {
  if (!existsSync(PROSODY) || !existsSync(PROSODYCTL)) return 'prosody is not installed (apt-get install prosody)';
  // Prosody only uses libunbound (and so our `forward`) when lua-unbound is present.
  const lua = spawnSync('lua5.4', ['-e', 'require "lunbound"'], { stdio: 'ignore' });
  if (lua.status !== 0) return 'lua-unbound is not installed (apt-get install lua-unbound)';
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prosody exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`prosody did not listen on ${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const lua = (s: string): string => JSON.stringify(s);

interface Prosody {
  child: ChildProcess;
  c2sPort: number;
  s2sPort: number;
  dir: string;
  logFile: string;
  stop(): Promise<void>;
}

/**
 * With `ca`, Prosody gets a certificate from it and trusts it (so EXTERNAL is possible); with
 * `bidi`, it loads mod_s2s_bidi (XEP-0288).
 */
async function startProsody(dns: FakeDns, opts: { ca?: TestCa; bidi?: boolean } = {}): Promise<Prosody> {
  const { ca, bidi } = opts;
  const dir = mkdtempSync(join(tmpdir(), 'parley-prosody-'));
  mkdirSync(join(dir, 'data'));
  mkdirSync(join(dir, 'certs'));
  let certFile: string;
  let keyFile: string;
  if (ca) {
    ({ cert: certFile, key: keyFile } = ca.issue([PROSODY_DOMAIN]));
  } else {
    const pair = generateSelfSigned([PROSODY_DOMAIN]);
    certFile = join(dir, 'certs', `${PROSODY_DOMAIN}.crt`);
    keyFile = join(dir, 'certs', `${PROSODY_DOMAIN}.key`);
    writeFileSync(certFile, pair.cert);
    writeFileSync(keyFile, pair.key, { mode: 0o600 });
  }
  const c2sPort = await freePort();
  const s2sPort = await freePort();
  const logFile = join(dir, 'prosody.log');
  const ssl = `{ certificate = ${lua(certFile)}; key = ${lua(keyFile)};${ca ? ` cafile = ${lua(ca.caFile)};` : ''} }`;
  const config = `-- Written by spec/e2e/s2s-prosody.spec.ts.
run_as_root = true
daemonize = false
pidfile = ${lua(join(dir, 'prosody.pid'))}
data_path = ${lua(join(dir, 'data'))}
certificates = ${lua(join(dir, 'certs'))}
log = { debug = ${lua(logFile)} }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { ${c2sPort} }
c2s_direct_tls_ports = { }
s2s_ports = { ${s2sPort} }
s2s_direct_tls_ports = { }
modules_enabled = { "roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping"; "presence";${bidi ? ' "s2s_bidi";' : ''} }
modules_disabled = { "offline"; "c2s_timeout"; }
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = false
authentication = "internal_hashed"
storage = "internal"
-- libunbound options: no resolv.conf, no /etc/hosts; every query goes to the test's DNS.
unbound = { resolvconf = false; hoststxt = false; forward = ${lua(`127.0.0.1@${dns.port}`)}; }
ssl = ${ssl}

VirtualHost ${lua(PROSODY_DOMAIN)}
  ssl = ${ssl}
`;
  const configFile = join(dir, 'prosody.cfg.lua');
  writeFileSync(configFile, config);
  const reg = spawnSync(PROSODYCTL, ['--config', configFile, 'register', 'romeo', PROSODY_DOMAIN, DEFAULT_PASSWORD], { cwd: dir, encoding: 'utf8' });
  if (reg.status !== 0) throw new Error(`prosodyctl register failed: ${reg.stdout} ${reg.stderr}`);
  const child = spawn(PROSODY, ['-F', '--config', configFile], { cwd: dir, stdio: 'ignore' });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          child.kill('SIGKILL');
          resolve();
        }, 8_000);
        child.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    if (!process.env.KEEP_PROSODY) rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitForPort(c2sPort, child, 30_000);
    await waitForPort(s2sPort, child, 5_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { child, c2sPort, s2sPort, dir, logFile, stop };
}

/** A Prosody user's session, over STARTTLS with SCRAM-SHA-1. */
async function prosodyClient(port: number, user: string, resource: string): Promise<RawClient> {
  const c = await RawClient.connect(port, { domain: PROSODY_DOMAIN });
  await c.openStream();
  await c.starttls();
  await c.openStream();
  await c.authenticate(user, DEFAULT_PASSWORD, 'SCRAM-SHA-1');
  await c.openStream();
  await c.bind(resource);
  return c;
}

const message = (from: string) => (e: XNode) => e.is('message') && e.attrs.from?.startsWith(from) === true;

describe('e2e: federation with Prosody 0.12 (dialback both ways)', function () {
  this.timeout(60_000);
  const unusable = prosodyUsable();
  let dns: FakeDns;
  let prosody: Prosody | undefined;
  let parley: TestServer;
  let alice: RawClient;
  let romeo: RawClient;

  before(async function () {
    if (unusable) {
      console.log(`      (skipped: ${unusable})`);
      this.skip();
    }
    dns = await FakeDns.start();
    parley = await federatedServer(PARLEY_DOMAIN);
    // Prosody → Parley through DNS, as on the Internet: SRV, then the target's A record.
    dns.add(`_xmpp-server._tcp.${PARLEY_DOMAIN}`, { type: 'SRV', priority: 0, weight: 0, port: s2sPort(parley), target: PARLEY_DOMAIN });
    dns.add(PARLEY_DOMAIN, { type: 'A', address: '127.0.0.1' });
    prosody = await startProsody(dns);
    parley.server.federation!.setTarget(PROSODY_DOMAIN, { host: '127.0.0.1', port: prosody.s2sPort, directTls: false });
    await parley.addUser('alice', DEFAULT_PASSWORD);
    alice = await loggedIn(parley, 'alice', { resource: 'desk' });
    romeo = await prosodyClient(prosody.c2sPort, 'romeo', 'balcony');
    alice.send('<presence/>');
    romeo.send('<presence/>');
  });

  after(async () => {
    alice?.destroy();
    romeo?.destroy();
    await parley?.stop();
    await prosody?.stop();
    await dns?.close();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && prosody && existsSync(prosody.logFile)) {
      const lines = readFileSync(prosody.logFile, 'utf8').split('\n').filter((l) => /s2s|dialback|error|warn/i.test(l));
      console.log(`      prosody log (s2s lines, last 40):\n${lines.slice(-40).join('\n')}`);
    }
  });

  it('delivers a message from Parley to Prosody (Prosody verifies Parley by dialing back through DNS)', async () => {
    alice.send(`<message to='romeo@${PROSODY_DOMAIN}' type='chat' id='p1'><body>hello Prosody</body></message>`);
    const msg = await romeo.waitForElement(message(`alice@${PARLEY_DOMAIN}`), 20_000);
    expect(msg.attrs.from).to.equal(`alice@${PARLEY_DOMAIN}/desk`);
    expect(msg.child('body')?.text).to.equal('hello Prosody');
    expect(parley.server.federation!.outgoingStream(PARLEY_DOMAIN, PROSODY_DOMAIN)?.authenticatedBy).to.equal('dialback');
    // Prosody's side: it verified our key over its own stream to us, found through DNS.
    expect(dns.queries.some((q) => q.name === `_xmpp-server._tcp.${PARLEY_DOMAIN}`)).to.equal(true);
  });

  it('delivers a message from Prosody to Parley (Parley verifies Prosody by dialing back)', async () => {
    romeo.send(`<message to='alice@${PARLEY_DOMAIN}/desk' type='chat' id='p2'><body>hello Parley</body></message>`);
    const msg = await alice.waitForElement(message(`romeo@${PROSODY_DOMAIN}`), 20_000);
    expect(msg.attrs.from).to.equal(`romeo@${PROSODY_DOMAIN}/balcony`);
    expect(msg.child('body')?.text).to.equal('hello Parley');
  });

  it('answers pings across in both directions', async () => {
    await alice.ping(PROSODY_DOMAIN, 20_000);
    await romeo.ping(PARLEY_DOMAIN, 20_000);
    // And a ping to a Prosody user's full JID, answered by that client.
    const id = nextId('xping');
    alice.send(`<iq type='get' id='${id}' to='romeo@${PROSODY_DOMAIN}/balcony'><ping xmlns='${XMLNS.ping}'/></iq>`);
    const req = await romeo.waitForElement((e) => e.is('iq') && e.attrs.id === id, 20_000);
    romeo.send(`<iq type='result' id='${id}' to='${req.attrs.from}'/>`);
    const res = await alice.waitForElement((e) => e.is('iq') && e.attrs.id === id, 20_000);
    expect(res.attrs.type).to.equal('result');
  });

  it('carries a presence subscription from a Parley user to a Prosody user', async () => {
    alice.send(`<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>`);
    romeo.send(`<iq type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>`);
    await alice.waitForElement((e) => e.is('iq') && e.attrs.id === 'r1');
    await romeo.waitForElement((e) => e.is('iq') && e.attrs.id === 'r2');
    alice.send(`<presence to='romeo@${PROSODY_DOMAIN}' type='subscribe'/>`);
    const req = await romeo.waitForElement((e) => e.is('presence') && e.attrs.type === 'subscribe', 20_000);
    expect(req.attrs.from).to.equal(`alice@${PARLEY_DOMAIN}`);
    const mark = alice.elements.length;
    romeo.send(`<presence to='alice@${PARLEY_DOMAIN}' type='subscribed'/>`);
    await alice.waitForElement((e) => e.is('presence') && e.attrs.type === 'subscribed' && e.attrs.from === `romeo@${PROSODY_DOMAIN}`, 20_000, mark);
    const avail = await alice.waitForElement((e) => e.is('presence') && e.attrs.type === undefined && e.attrs.from === `romeo@${PROSODY_DOMAIN}/balcony`, 20_000, mark);
    expect(avail).to.not.equal(undefined);
  });

  it('carries a presence subscription from a Prosody user to a Parley user, then broadcasts presence both ways', async () => {
    romeo.send(`<presence to='alice@${PARLEY_DOMAIN}' type='subscribe'/>`);
    const req = await alice.waitForElement((e) => e.is('presence') && e.attrs.type === 'subscribe' && e.attrs.from === `romeo@${PROSODY_DOMAIN}`, 20_000);
    expect(req.attrs.to).to.equal(`alice@${PARLEY_DOMAIN}`);
    let mark = romeo.elements.length;
    alice.send(`<presence to='romeo@${PROSODY_DOMAIN}' type='subscribed'/>`);
    await romeo.waitForElement((e) => e.is('presence') && e.attrs.type === 'subscribed' && e.attrs.from === `alice@${PARLEY_DOMAIN}`, 20_000, mark);
    // Now both: a presence change on either side reaches the other through the servers.
    mark = romeo.elements.length;
    alice.send(`<presence><show>dnd</show></presence>`);
    const fromAlice = await romeo.waitForElement((e) => e.is('presence') && e.attrs.from === `alice@${PARLEY_DOMAIN}/desk` && e.child('show')?.text === 'dnd', 20_000, mark);
    expect(fromAlice).to.not.equal(undefined);
    const aliceMark = alice.elements.length;
    romeo.send(`<presence><show>away</show></presence>`);
    const fromRomeo = await alice.waitForElement((e) => e.is('presence') && e.attrs.from === `romeo@${PROSODY_DOMAIN}/balcony` && e.child('show')?.text === 'away', 20_000, aliceMark);
    expect(fromRomeo).to.not.equal(undefined);
  });
});

describe('e2e: federation with Prosody 0.12 (certificates from a shared CA: SASL EXTERNAL)', function () {
  this.timeout(60_000);
  const unusable = prosodyUsable();
  let dns: FakeDns;
  let ca: TestCa;
  let prosody: Prosody | undefined;
  let parley: TestServer;
  let alice: RawClient;
  let romeo: RawClient;

  before(async function () {
    if (unusable) this.skip();
    ca = createTestCa();
    dns = await FakeDns.start();
    parley = await federatedServer(PARLEY_DOMAIN, { trustedCAs: [ca.caFile] }, { tls: { certificates: 'certs', generate: true, hosts: { [PARLEY_DOMAIN]: ca.issue([PARLEY_DOMAIN]) } } });
    dns.add(`_xmpp-server._tcp.${PARLEY_DOMAIN}`, { type: 'SRV', priority: 0, weight: 0, port: s2sPort(parley), target: PARLEY_DOMAIN });
    dns.add(PARLEY_DOMAIN, { type: 'A', address: '127.0.0.1' });
    prosody = await startProsody(dns, { ca });
    parley.server.federation!.setTarget(PROSODY_DOMAIN, { host: '127.0.0.1', port: prosody.s2sPort, directTls: false });
    await parley.addUser('alice', DEFAULT_PASSWORD);
    alice = await loggedIn(parley, 'alice', { resource: 'desk' });
    romeo = await prosodyClient(prosody.c2sPort, 'romeo', 'balcony');
  });

  after(async () => {
    alice?.destroy();
    romeo?.destroy();
    await parley?.stop();
    await prosody?.stop();
    await dns?.close();
    ca?.remove();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && prosody && existsSync(prosody.logFile)) {
      const lines = readFileSync(prosody.logFile, 'utf8').split('\n').filter((l) => /s2s|dialback|sasl|cert|error|warn/i.test(l));
      console.log(`      prosody log (last 40 relevant lines):\n${lines.slice(-40).join('\n')}`);
    }
  });

  it('authenticates to Prosody with SASL EXTERNAL and delivers both ways', async () => {
    alice.send(`<message to='romeo@${PROSODY_DOMAIN}/balcony' type='chat' id='x1'><body>certified</body></message>`);
    const msg = await romeo.waitForElement(message(`alice@${PARLEY_DOMAIN}`), 20_000);
    expect(msg.child('body')?.text).to.equal('certified');
    expect(parley.server.federation!.outgoingStream(PARLEY_DOMAIN, PROSODY_DOMAIN)?.authenticatedBy).to.equal('EXTERNAL');
    romeo.send(`<message to='alice@${PARLEY_DOMAIN}/desk' type='chat' id='x2'><body>certified too</body></message>`);
    const back = await alice.waitForElement(message(`romeo@${PROSODY_DOMAIN}`), 20_000);
    expect(back.child('body')?.text).to.equal('certified too');
    // Prosody's log (debug level): it accepted our EXTERNAL, and used EXTERNAL towards us.
    const log = readFileSync(prosody!.logFile, 'utf8');
    expect(log).to.contain(`Accepting SASL EXTERNAL identity from ${PARLEY_DOMAIN}`);
    expect(log).to.match(/Sending\[s2sout_unauthed\]: <auth [^>]*mechanism='EXTERNAL'/);
    expect(log).to.contain(`connection ${PROSODY_DOMAIN}->${PARLEY_DOMAIN} is now authenticated`);
  });
});

describe('e2e: federation with Prosody 0.12 (bidirectional streams, XEP-0288)', function () {
  this.timeout(60_000);
  const unusable = prosodyUsable();
  let dns: FakeDns;
  let prosody: Prosody | undefined;
  let parley: TestServer;
  let alice: RawClient;
  let romeo: RawClient;

  before(async function () {
    if (unusable) this.skip();
    dns = await FakeDns.start();
    parley = await federatedServer(PARLEY_DOMAIN);
    dns.add(`_xmpp-server._tcp.${PARLEY_DOMAIN}`, { type: 'SRV', priority: 0, weight: 0, port: s2sPort(parley), target: PARLEY_DOMAIN });
    dns.add(PARLEY_DOMAIN, { type: 'A', address: '127.0.0.1' });
    prosody = await startProsody(dns, { bidi: true });
    parley.server.federation!.setTarget(PROSODY_DOMAIN, { host: '127.0.0.1', port: prosody.s2sPort, directTls: false });
    await parley.addUser('alice', DEFAULT_PASSWORD);
    alice = await loggedIn(parley, 'alice', { resource: 'desk' });
    romeo = await prosodyClient(prosody.c2sPort, 'romeo', 'balcony');
  });

  after(async () => {
    alice?.destroy();
    romeo?.destroy();
    await parley?.stop();
    await prosody?.stop();
    await dns?.close();
  });

  afterEach(function () {
    if (this.currentTest?.state === 'failed' && prosody && existsSync(prosody.logFile)) {
      const lines = readFileSync(prosody.logFile, 'utf8').split('\n').filter((l) => /s2s|dialback|bidi|error|warn/i.test(l));
      console.log(`      prosody log (last 40 relevant lines):\n${lines.slice(-40).join('\n')}`);
    }
  });

  it('negotiates bidi both ways and exchanges messages and pings', async () => {
    alice.send(`<message to='romeo@${PROSODY_DOMAIN}/balcony' type='chat' id='b1'><body>bidi out</body></message>`);
    await romeo.waitForElement(message(`alice@${PARLEY_DOMAIN}`), 20_000);
    romeo.send(`<message to='alice@${PARLEY_DOMAIN}/desk' type='chat' id='b2'><body>bidi back</body></message>`);
    const back = await alice.waitForElement(message(`romeo@${PROSODY_DOMAIN}`), 20_000);
    expect(back.child('body')?.text).to.equal('bidi back');
    await alice.ping(PROSODY_DOMAIN, 20_000);
    await romeo.ping(PARLEY_DOMAIN, 20_000);
    expect(parley.server.federation!.outgoingStream(PARLEY_DOMAIN, PROSODY_DOMAIN)?.bidirectional).to.equal(true);
    const log = readFileSync(prosody!.logFile, 'utf8');
    expect(log).to.contain('Requested bidirectional stream'); // our <bidi/> on Prosody's s2sin
    expect(log).to.contain('Requesting bidirectional stream'); // Prosody's <bidi/> to us
  });
});

describe('e2e: federation with Prosody 0.12 (EXTERNAL and bidi: one connection for both directions)', function () {
  this.timeout(60_000);
  const unusable = prosodyUsable();
  let dns: FakeDns;
  let ca: TestCa;
  let prosody: Prosody | undefined;
  let parley: TestServer;
  let alice: RawClient;
  let romeo: RawClient;

  before(async function () {
    if (unusable) this.skip();
    ca = createTestCa();
    dns = await FakeDns.start();
    parley = await federatedServer(PARLEY_DOMAIN, { trustedCAs: [ca.caFile] }, { tls: { certificates: 'certs', generate: true, hosts: { [PARLEY_DOMAIN]: ca.issue([PARLEY_DOMAIN]) } } });
    dns.add(`_xmpp-server._tcp.${PARLEY_DOMAIN}`, { type: 'SRV', priority: 0, weight: 0, port: s2sPort(parley), target: PARLEY_DOMAIN });
    dns.add(PARLEY_DOMAIN, { type: 'A', address: '127.0.0.1' });
    prosody = await startProsody(dns, { ca, bidi: true });
    parley.server.federation!.setTarget(PROSODY_DOMAIN, { host: '127.0.0.1', port: prosody.s2sPort, directTls: false });
    await parley.addUser('alice', DEFAULT_PASSWORD);
    alice = await loggedIn(parley, 'alice', { resource: 'desk' });
    romeo = await prosodyClient(prosody.c2sPort, 'romeo', 'balcony');
  });

  after(async () => {
    alice?.destroy();
    romeo?.destroy();
    await parley?.stop();
    await prosody?.stop();
    await dns?.close();
    ca?.remove();
  });

  it('accepts Prosody by EXTERNAL and answers over Prosody\'s own stream', async () => {
    romeo.send(`<message to='alice@${PARLEY_DOMAIN}/desk' type='chat' id='o1'><body>first</body></message>`);
    await alice.waitForElement(message(`romeo@${PROSODY_DOMAIN}`), 20_000);
    alice.send(`<message to='romeo@${PROSODY_DOMAIN}/balcony' type='chat' id='o2'><body>reply</body></message>`);
    const reply = await romeo.waitForElement(message(`alice@${PARLEY_DOMAIN}`), 20_000);
    expect(reply.child('body')?.text).to.equal('reply');
    await alice.ping(PROSODY_DOMAIN, 20_000);
    const fed = parley.server.federation!;
    expect(fed.outgoingStream(PARLEY_DOMAIN, PROSODY_DOMAIN)).to.equal(undefined);
    expect(fed.hasReverseRoute(PARLEY_DOMAIN, PROSODY_DOMAIN)).to.equal(true);
    expect(fed.incomingCount).to.equal(1);
  });
});
