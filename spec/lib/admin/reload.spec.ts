// Live reload on a real server started from a config file: module options and modules enabled
// or disabled take effect while a client stays connected, modules left alone keep their state,
// a bad config is refused with the usual one-line errors and the old one keeps running, and a
// new certificate is served to new connections.
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { loadConfig } from '../../../lib/config/load.js';
import { AdminError, ConfigError } from '../../../lib/config/errors.js';
import { MODULE_CATALOG } from '../../../lib/modules/catalog.js';
import { startServer, type RunningServer } from '../../../lib/server.js';
import { silentLogger } from '../../../lib/log.js';
import { generateSelfSigned } from '../../../lib/tls/generate.js';
import { loggedIn, type RawClient } from '../../helpers/raw-client.js';
import type { TestServer } from '../../helpers/server.js';

const BASE = `hosts: [localhost]
listeners:
  - { type: c2s, port: 0, address: 127.0.0.1 }
  - { type: c2s-tls, port: 0, address: 127.0.0.1 }
tls: { certificates: certs, generate: true }
storage: { driver: sqlite, path: parley.db }
auth: { scramIterations: 4096 }
`;

describe('live reload', function () {
  this.timeout(30_000);
  let dir: string;
  let server: RunningServer;
  let srv: TestServer;
  let alice: RawClient;
  let nextId = 0;

  const writeConfig = (extra: string) => writeFileSync(join(dir, 'parley.yaml'), BASE + extra);

  async function iq(c: RawClient, to: string, payload: string): Promise<string> {
    const id = `q${++nextId}`;
    const from = c.elements.length;
    c.send(`<iq type='get' id='${id}' to='${to}'>${payload}</iq>`);
    return (await c.waitForElement((el) => el.is('iq') && el.attrs.id === id, 5000, from)).toString();
  }
  const version = (c: RawClient) => iq(c, 'localhost', "<query xmlns='jabber:iq:version'/>");

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'parley-reload-'));
    writeConfig('');
    const path = join(dir, 'parley.yaml');
    server = await startServer(loadConfig(path, MODULE_CATALOG), { configPath: path, log: silentLogger() });
    srv = {
      server,
      domain: 'localhost',
      dir,
      port: (type) => server.addresses.find((a) => a.type === type)!.port,
      addUser: (u, p) => server.accounts.create('localhost', u, p),
      stop: () => server.stop(),
    };
    await srv.addUser('alice', 'secret-pw');
    alice = await loggedIn(srv, 'alice', { resource: 'kept' });
  });

  after(async () => {
    alice?.destroy();
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies a changed module option while a session stays connected, restarting only that module', async () => {
    expect(await version(alice)).to.not.contain('<os');
    // A room alice is in: the muc module's state in memory.
    alice.send("<presence to='kept@conference.localhost/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>");
    await alice.waitForElement((el) => el.is('presence') && el.attrs.from === 'kept@conference.localhost/alice');

    writeConfig('modules:\n  version: { showOs: true }\n');
    const result = await server.reload();
    expect(result.modules.localhost!.restarted).to.deep.equal(['version']);
    expect(result.restartNeeded).to.deep.equal([]);

    expect(await version(alice)).to.contain('<os>');
    expect(alice.isClosed).to.equal(false);
    expect(server.sessions.all().map((x) => x.jid.toString())).to.include(alice.jid);
    // The muc module was not restarted: alice is still an occupant.
    const items = await iq(alice, 'kept@conference.localhost', "<query xmlns='http://jabber.org/protocol/disco#info'/>");
    expect(items).to.contain('muc#roominfo_occupants');
    expect(items).to.match(/muc#roominfo_occupants'[^>]*>(<[^>]*>)*<value>1<\/value>/);
  });

  it('disables and re-enables a module without a restart', async () => {
    writeConfig('modules:\n  version: false\n');
    const off = await server.reload();
    expect(off.modules.localhost!.stopped).to.deep.equal(['version']);
    expect(await version(alice)).to.contain('service-unavailable');
    writeConfig('');
    const on = await server.reload();
    expect(on.modules.localhost!.started).to.deep.equal(['version']);
    expect(await version(alice)).to.contain('<name>Parley</name>');
    expect(alice.isClosed).to.equal(false);
  });

  it('refuses a bad config with one line per problem and keeps the running one', async () => {
    writeConfig('modules:\n  version: { showOss: true }\n');
    let error: unknown;
    try {
      await server.reload();
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(ConfigError);
    const lines = (error as ConfigError).lines();
    expect(lines).to.have.length(1);
    expect(lines[0]).to.match(/parley\.yaml:\d+:\d+: modules\.version\.showOss: unknown key \(did you mean "showOs"\?\)/);
    expect(await version(alice)).to.contain('<name>Parley</name>');
    expect(await version(alice)).to.not.contain('<os');
  });

  it('refuses a config whose modules miss a dependency, naming it, and changes nothing', async () => {
    writeConfig('modules:\n  adhoc: false\n  version: { showOs: true }\n');
    let error: unknown;
    try {
      await server.reload();
    } catch (err) {
      error = err;
    }
    expect((error as AdminError).code).to.equal('PARLEY_ERR_RELOAD');
    expect((error as AdminError).oneLine()).to.match(/requires module adhoc.*modules\.adhoc/);
    expect(await version(alice)).to.not.contain('<os');
    writeConfig('');
  });

  it('reports what needs a restart (listeners, limits) instead of applying it', async () => {
    writeConfig('limits: { stanzasPerSecond: 7 }\n');
    const r = await server.reload();
    expect(r.restartNeeded).to.deep.equal(['limits']);
    writeConfig('');
    expect((await server.reload()).restartNeeded).to.deep.equal([]);
  });

  it('serves a new certificate to new connections; established ones stay', async () => {
    const peer = () =>
      new Promise<string>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: srv.port('c2s-tls'), servername: 'localhost', rejectUnauthorized: false }, () => {
          const fp = s.getPeerX509Certificate()!.fingerprint256;
          s.destroy();
          resolve(fp);
        });
        s.on('error', reject);
      });
    const before = await peer();
    const pair = generateSelfSigned(['localhost']);
    writeFileSync(join(dir, 'certs', 'localhost.key'), pair.key);
    writeFileSync(join(dir, 'certs', 'localhost.crt'), pair.cert);
    const r = await server.reload();
    expect(r.certificates).to.equal(true);
    const after = await peer();
    expect(after).to.not.equal(before);
    expect(after).to.equal(new X509Certificate(pair.cert).fingerprint256);
    expect(await version(alice)).to.contain('<name>Parley</name>');
  });
});
