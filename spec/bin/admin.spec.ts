// `parley admin token ...` and `parley reload` against a real `parley start` in a child process.
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}
const BIN = join(repoRoot(), 'dist', 'bin', 'parley.js');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], cwd: string): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, PARLEY_CONFIG: '' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end('');
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('parley admin token and parley reload', function () {
  this.timeout(60_000);
  let dir: string;
  let child: ChildProcess | undefined;
  let stderr = '';
  let port: number;

  const config = (extra = '') =>
    writeFileSync(
      join(dir, 'parley.yaml'),
      `hosts: [localhost]\nlisteners:\n  - { type: http, port: ${port}, address: 127.0.0.1 }\ntls: { certificates: certs, generate: true }\n` +
        `storage: { driver: sqlite, path: data/parley.db }\nlog: { level: warn, pretty: false }\n${extra}`,
    );

  async function start(): Promise<void> {
    const proc = spawn(process.execPath, [BIN, 'start', '--config', 'parley.yaml'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.stdout.resume();
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/admin/api/openapi.json`).catch(() => undefined))?.status === 200, 'the server');
  }

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'parley-admin-cli-'));
    port = await freePort();
    config();
  });
  afterEach(() => {
    if (child !== undefined && child.exitCode === null) child.kill('SIGKILL');
    child = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates a scoped token the running server accepts, lists it, and revokes it', async () => {
    await start();
    const created = await run(['admin', 'token', 'create', 'monitoring', '--scope', 'stats:read', '--config', 'parley.yaml'], dir);
    expect(created.code, created.stderr).to.equal(0);
    const token = created.stdout.trim();
    expect(token).to.match(/^parley_[\w-]{43}$/);
    // Stored hashed: the secret is nowhere in the database file.
    expect(readFileSync(join(dir, 'data', 'parley.db')).includes(Buffer.from(token))).to.equal(false);
    const auth = { authorization: `Bearer ${token}` };
    expect((await fetch(`http://127.0.0.1:${port}/admin/api/stats`, { headers: auth })).status).to.equal(200);
    expect((await fetch(`http://127.0.0.1:${port}/admin/api/users`, { headers: auth })).status).to.equal(403);

    const list = await run(['admin', 'token', 'list', '--config', 'parley.yaml'], dir);
    expect(list.stdout).to.match(/^monitoring\tstats:read\t\d{4}-/);
    expect(list.stdout).to.not.contain(token);
    const again = await run(['admin', 'token', 'create', 'monitoring', '--config', 'parley.yaml'], dir);
    expect(again.code).to.equal(3);
    expect(again.stderr).to.equal('parley: a token named monitoring exists (revoke it first, or choose another name)\n');

    expect((await run(['admin', 'token', 'revoke', 'monitoring', '--config', 'parley.yaml'], dir)).code).to.equal(0);
    expect((await fetch(`http://127.0.0.1:${port}/admin/api/stats`, { headers: auth })).status).to.equal(401);
  });

  it('refuses an unknown scope as a usage error', async () => {
    const r = await run(['admin', 'token', 'create', 'x', '--scope', 'users:reed', '--config', 'parley.yaml'], dir);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/^parley: unknown scope "users:reed" \(use some of users:read, .*\)\n$/);
  });

  it('reload: checks the config, signals the server, which reloads; a bad config is refused before the signal', async () => {
    await start();
    const pidFile = join(dir, 'data', 'parley.pid');
    await waitFor(() => existsSync(pidFile), 'the pid file');
    expect(readFileSync(pidFile, 'utf8').trim()).to.equal(String(child!.pid));
    config('modules:\n  version: { showOs: true }\n');
    const ok = await run(['reload', '--config', 'parley.yaml'], dir);
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stdout).to.contain(`asked the server (pid ${child!.pid}) to reload`);
    await waitFor(() => stderr.includes('parley: config and certificates reloaded'), 'the reload message');

    config('modules:\n  version: { showOss: true }\n');
    const bad = await run(['reload', '--config', 'parley.yaml'], dir);
    expect(bad.code).to.equal(2);
    expect(bad.stderr).to.match(/^parley: parley\.yaml:\d+:\d+: modules\.version\.showOss: unknown key \(did you mean "showOs"\?\)\n$/);

    // The same file reaching the server by SIGHUP alone is refused there too; it keeps running.
    child!.kill('SIGHUP');
    await waitFor(() => stderr.includes('parley: reload refused, the running config stays:'), 'the refusal');
    expect((await fetch(`http://127.0.0.1:${port}/admin/api/openapi.json`)).status).to.equal(200);

    config('limits: { depth: 32 }\n');
    const restart = await run(['reload', '--config', 'parley.yaml'], dir);
    expect(restart.code).to.equal(0);
    await waitFor(() => stderr.includes('restart to apply limits'), 'the restart notice');

    child!.kill('SIGTERM');
    await new Promise((r) => child!.once('exit', r));
    expect(existsSync(join(dir, 'data', 'parley.pid'))).to.equal(false);
  });

  it('reload without a running server is one line and exit 3', async () => {
    const r = await run(['reload', '--config', 'parley.yaml'], dir);
    expect(r.code).to.equal(3);
    expect(r.stderr).to.equal(`parley: no running server: ${join(dir, 'data', 'parley.pid')} does not exist (start it with parley start)\n`);
  });
});
