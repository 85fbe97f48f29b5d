// `parley start --nodes 2`: two cluster nodes in two processes sharing one c2s port (node:cluster),
// on the local Redis and PostgreSQL; connections land on both, and messages cross between them.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { openAccounts } from '../../lib/accounts/service.js';
import { openDatabase } from '../../lib/storage/database.js';
import { loggedIn, nextId, XMLNS, type RawClient } from '../helpers/raw-client.js';
import type { TestServer } from '../helpers/server.js';
import { clusterConfig, clusterSkipReason, newWorld, REDIS_URL, sleep, type ClusterWorld } from '../lib/cluster/nodes.js';
import { chat, roundTrip } from '../modules/sm/wire.js';

const PARLEY_BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'parley.js');

describe('e2e: parley start --nodes 2', function () {
  this.timeout(60_000);
  let world: ClusterWorld;
  const clients: RawClient[] = [];

  before(async function () {
    const skip = await clusterSkipReason();
    if (skip) {
      console.log(`      skipped: ${skip}`);
      this.skip();
    }
    world = await newWorld();
  });
  after(async () => {
    for (const c of clients.splice(0)) c.destroy();
    await world?.cleanup();
  });

  it('refuses --nodes without a whole number, and without cluster mode, in one line', () => {
    const bad = spawnSync(process.execPath, [PARLEY_BIN, 'start', '--nodes', 'two'], { encoding: 'utf8' });
    expect(bad.status).to.equal(1);
    expect(bad.stderr.trim().split('\n')).to.have.length(1);
    expect(bad.stderr).to.match(/--nodes must be a whole number from 1 to 64/);
    const dir = mkdtempSync(join(tmpdir(), 'parley-nodes-'));
    try {
      const file = join(dir, 'parley.yaml');
      writeFileSync(file, JSON.stringify({ hosts: ['localhost'] }));
      const single = spawnSync(process.execPath, [PARLEY_BIN, 'start', '--nodes', '2', '--config', file], { encoding: 'utf8' });
      expect(single.status).to.not.equal(0);
      expect(single.stderr.trim().split('\n')).to.have.length(1);
      expect(single.stderr).to.match(/--nodes needs cluster mode.*add cluster:/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs two nodes on one port that deliver to each other, and stops them both', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-nodes-'));
    const file = join(dir, 'parley.yaml');
    writeFileSync(file, JSON.stringify({
      hosts: ['localhost'],
      listeners: [{ type: 'c2s', port: 0, address: '127.0.0.1' }],
      tls: { certificates: 'certs', generate: true },
      auth: { scramIterations: 4096 },
      log: { level: 'info', pretty: false },
      ...clusterConfig(world, 'multi'),
    }));
    const proc = spawn(process.execPath, [PARLEY_BIN, 'start', '--nodes', '2', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    proc.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    proc.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    const r = new Redis(REDIS_URL);
    try {
      for (let i = 0; i < 200 && [...output.matchAll(/"listeners":\["c2s:(\d+)"/g)].length < 2; i++) await sleep(100);
      const ports = [...output.matchAll(/"listeners":\["c2s:(\d+)"/g)].map((m) => Number(m[1]));
      expect(ports, output.slice(-2000)).to.have.length(2);
      expect(ports[0], 'one port shared by both nodes').to.equal(ports[1]);
      expect((await r.smembers(`${world.prefix}nodes`)).sort()).to.deep.equal(['multi-1', 'multi-2']);

      const db = await openDatabase({ driver: 'postgres', url: world.pgUrl });
      const accounts = await openAccounts(db, { scramIterations: 4096 });
      await accounts.create('localhost', 'hal', 'secret-pw');
      await accounts.create('localhost', 'ida', 'secret-pw');
      await db.close();

      const srv = { domain: 'localhost', port: () => ports[0]! } as unknown as TestServer;
      const hal: RawClient[] = [];
      for (let i = 0; i < 4; i++) {
        const c = await loggedIn(srv, 'hal', { resource: `r${i}`, password: 'secret-pw' });
        clients.push(c);
        hal.push(c);
      }
      const ida = await loggedIn(srv, 'ida', { resource: 'x', password: 'secret-pw' });
      clients.push(ida);
      await sleep(300);
      // The connections were spread over both nodes.
      const [on1, on2] = await Promise.all([r.hlen(`${world.prefix}sessions:multi-1`), r.hlen(`${world.prefix}sessions:multi-2`)]);
      expect(on1 + on2).to.equal(5);
      expect(on1, 'sessions on node 1').to.be.above(0);
      expect(on2, 'sessions on node 2').to.be.above(0);

      const ids = hal.map(() => nextId('n'));
      for (const [i, id] of ids.entries()) ida.send(chat(`hal@localhost/r${i}`, id, `to r${i}`));
      await roundTrip(ida);
      for (const [i, c] of hal.entries()) {
        await c.waitForElement((e) => e.is('message', XMLNS.client) && e.attrs.id === ids[i]);
      }

      // `parley reload` finds the primary in the pid file, and every node reloads.
      const pidFile = join(dir, 'data', 'parley.pid');
      expect(Number(readFileSync(pidFile, 'utf8').trim())).to.equal(proc.pid);
      const reload = spawnSync(process.execPath, [PARLEY_BIN, 'reload', '--config', file], { encoding: 'utf8' });
      expect(reload.status, reload.stderr).to.equal(0);
      for (let i = 0; i < 100 && [...output.matchAll(/config and certificates reloaded/g)].length < 2; i++) await sleep(100);
      expect([...output.matchAll(/config and certificates reloaded/g)], output.slice(-2000)).to.have.length(2);

      proc.kill('SIGTERM');
      expect(await exited).to.equal(0);
      expect(await r.smembers(`${world.prefix}nodes`)).to.deep.equal([]);
      expect(existsSync(pidFile), 'the pid file goes with the primary').to.equal(false);
    } finally {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      r.disconnect();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
