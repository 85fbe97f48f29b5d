// `parley check` as a deployment self-check: DNS (SRV and addresses for each host and service,
// asked of a fake DNS server), certificate coverage of service domains, listeners of a running
// server, and risky settings.
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeDns } from '../lib/s2s/fake-dns.js';
import { startTestServer } from '../helpers/server.js';
import { runParley } from './run-parley.js';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe('parley check (deployment self-check)', function () {
  this.timeout(60_000);
  let dir: string;
  let dns: FakeDns;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'parley-check-'));
    dns = await FakeDns.start();
  });
  afterEach(async () => {
    await dns.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('checks SRV and address records of each host and service, certificate coverage, and warns about risky settings', async () => {
    expect((await runParley(['cert', 'generate', 'example.test', '--out', 'certs'], dir)).code).to.equal(0);
    const [c2s, s2s, http] = [await freePort(), await freePort(), await freePort()];
    writeFileSync(join(dir, 'parley.yaml'), `hosts: [example.test]
listeners:
  - { type: c2s, port: ${c2s}, address: 127.0.0.1 }
  - { type: s2s, port: ${s2s}, address: 127.0.0.1 }
  - { type: http, port: ${http}, address: 0.0.0.0 }
tls: { certificates: certs, requireEncryption: false }
storage: { driver: sqlite, path: data/parley.db }
admins: [admin@example.test]
modules: { register: { allowRegistration: true }, muc: { domain: chat.example.test } }
`);
    dns
      .add('_xmpp-client._tcp.example.test', { type: 'SRV', priority: 0, weight: 5, port: 5222, target: 'xmpp.example.test' })
      .add('xmpp.example.test', { type: 'A', address: '192.0.2.10' })
      .add('_xmpp-server._tcp.example.test', { type: 'SRV', priority: 0, weight: 5, port: 5269, target: 'gone.example.test' })
      .add('example.test', { type: 'A', address: '192.0.2.1' })
      .add('example.test', { type: 'AAAA', address: '2001:db8::1' })
      .add('chat.example.test', { type: 'A', address: '192.0.2.1' });
    const r = await runParley(['check', '--config', 'parley.yaml', '--dns', dns.address], dir);
    const out = r.stdout;
    expect(out).to.match(/^ok +dns _xmpp-client\._tcp\.example\.test: → xmpp\.example\.test:5222$/m);
    expect(out).to.match(/^ok +dns _xmpps-client\._tcp\.example\.test: none \(optional/m);
    expect(out).to.match(/^FAIL +dns _xmpp-server\._tcp\.example\.test: → gone\.example\.test:5269, but gone\.example\.test has no A\/AAAA record/m);
    expect(out).to.match(/^ok +dns example\.test: 192\.0\.2\.1, 2001:db8::1$/m);
    expect(out).to.match(/^ok +dns chat\.example\.test: 192\.0\.2\.1$/m);
    expect(out).to.match(/^warn +dns upload\.example\.test: no A\/AAAA or _xmpp-server\._tcp record/m);
    expect(out).to.match(/^ok +certificate example\.test: .*example\.test\.crt, valid until/m);
    // The generated certificate names upload.<host> but not the MUC's own domain.
    expect(out).to.match(/^ok +certificate upload\.example\.test: covered by .*example\.test\.crt/m);
    expect(out).to.match(/^warn +certificate chat\.example\.test: no certificate names chat\.example\.test/m);
    expect(out).to.match(/^warn +setting tls\.requireEncryption: false/m);
    expect(out).to.match(new RegExp(`^warn +setting listeners\\[2\\]: a plain http listener on 0\\.0\\.0\\.0:${http}`, 'm'));
    expect(out).to.match(/^warn +setting modules\.register on example\.test: open registration/m);
    expect(out.trim().split('\n').pop()).to.equal('Problems found.');
    expect(r.code).to.equal(3);
    // It asked the fake server for everything it reports on.
    const asked = dns.queries.map((q) => q.name);
    expect(asked).to.include.members(['_xmpp-client._tcp.example.test', '_xmpps-client._tcp.example.test', '_xmpp-server._tcp.example.test', 'upload.example.test']);
  });

  it('passes with complete DNS, and without SRV records when the host has an address', async () => {
    expect((await runParley(['cert', 'generate', 'example.test', '--out', 'certs'], dir)).code).to.equal(0);
    writeFileSync(join(dir, 'parley.yaml'), `hosts: [example.test]
listeners: [{ type: c2s, port: 0 }]
tls: { certificates: certs }
storage: { driver: sqlite, path: data/parley.db }
admins: [admin@example.test]
modules: { muc: false, upload: false }
`);
    dns.add('example.test', { type: 'A', address: '192.0.2.1' });
    const r = await runParley(['check', '--config', 'parley.yaml', '--dns', dns.address], dir);
    expect(r.code, r.stdout + r.stderr).to.equal(0);
    expect(r.stdout).to.match(/^ok +dns _xmpp-client\._tcp\.example\.test: none; clients will connect to example\.test itself \(192\.0\.2\.1\)/m);
    expect(r.stdout).to.not.match(/^warn/m);
    expect(r.stdout.trim().split('\n').pop()).to.equal('All checks passed.');
  });

  it('reports the listeners of a running server as listening, not as a conflict', async () => {
    const port = await freePort();
    const srv = await startTestServer({ listeners: [{ type: 'c2s', port, address: '127.0.0.1' }] });
    try {
      writeFileSync(join(dir, 'parley.yaml'), `hosts: [localhost]\nlisteners: [{ type: c2s, port: ${port}, address: 127.0.0.1 }]\ntls: { certificates: certs, generate: true }\nstorage: { driver: sqlite, path: data/parley.db }\n`);
      const r = await runParley(['check', '--config', 'parley.yaml'], dir);
      expect(r.stdout).to.match(new RegExp(`^ok +listener c2s 127\\.0\\.0\\.1:${port}: listening \\(a c2s server answers`, 'm'));
      expect(r.code, r.stdout).to.equal(0);
    } finally {
      await srv.stop();
    }
  });
});
