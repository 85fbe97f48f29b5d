import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

const ROOT = repoRoot();
const BIN = join(ROOT, 'dist', 'bin', 'parley.js');

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], opts: { cwd: string; input?: string; env?: Record<string, string> }): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: opts.cwd,
      env: { ...process.env, PARLEY_CONFIG: '', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

describe('parley CLI', function () {
  this.timeout(30_000);
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'parley-cli-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function writeConfig(text: string, name = 'parley.yaml'): string {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  }

  function quickConfig(listeners: string, extra = ''): string {
    return writeConfig(
      `hosts: [localhost]\nlisteners:\n${listeners}\ntls:\n  certificates: certs\n  generate: true\nstorage:\n  driver: sqlite\n  path: data/parley.db\nlog:\n  level: warn\n  pretty: false\n${extra}`,
    );
  }

  it('prints usage listing every command on --help and exits 0', async () => {
    const result = await run(['--help'], { cwd: dir });
    expect(result.code).to.equal(0);
    for (const command of ['start', 'check', 'user add', 'user del', 'user passwd', 'user list', 'cert generate']) {
      expect(result.stdout).to.include(command);
    }
    expect((await run(['help'], { cwd: dir })).stdout).to.equal(result.stdout);
  });

  it('prints the package version on --version', async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const result = await run(['--version'], { cwd: dir });
    expect(result.code).to.equal(0);
    expect(result.stdout).to.equal(`parley ${version}\n`);
  });

  it('rejects an unknown command with one stderr line, a suggestion and exit code 1', async () => {
    const result = await run(['strat'], { cwd: dir });
    expect(result.code).to.equal(1);
    expect(result.stdout).to.equal('');
    expect(lines(result.stderr)).to.deep.equal(['parley: unknown command "strat" (did you mean "start"? see parley --help)']);
  });

  it('rejects an unknown option with a suggestion and exit code 1', async () => {
    const result = await run(['check', '--confg', 'x.yaml'], { cwd: dir });
    expect(result.code).to.equal(1);
    expect(lines(result.stderr)).to.deep.equal(['parley: unknown option --confg (did you mean "--config"?)']);
  });

  it('rejects an option the command does not take', async () => {
    const result = await run(['start', '--out', 'x'], { cwd: dir });
    expect(result.code).to.equal(1);
    expect(lines(result.stderr)).to.deep.equal(['parley: start does not take --out (see parley --help)']);
  });

  describe('cert generate', () => {
    it('writes a self-signed certificate and an owner-only key per domain into --out', async () => {
      const out = join(dir, 'certs');
      const result = await run(['cert', 'generate', 'a.test', 'B.test', '--out', out], { cwd: dir });
      expect(result.code, result.stderr).to.equal(0);
      for (const domain of ['a.test', 'b.test']) {
        const cert = new X509Certificate(readFileSync(join(out, `${domain}.crt`)));
        expect(cert.checkHost(domain)).to.equal(domain);
        expect(cert.checkHost(`conference.${domain}`)).to.equal(`conference.${domain}`);
        expect(statSync(join(out, `${domain}.key`)).mode & 0o777).to.equal(0o600);
      }
    });

    it('refuses to overwrite an existing certificate', async () => {
      const out = join(dir, 'certs');
      expect((await run(['cert', 'generate', 'a.test', '--out', out], { cwd: dir })).code).to.equal(0);
      const before = readFileSync(join(out, 'a.test.crt'), 'utf8');
      const result = await run(['cert', 'generate', 'a.test', '--out', out], { cwd: dir });
      expect(result.code).to.equal(3);
      expect(lines(result.stderr)).to.deep.equal([`parley: ${join(out, 'a.test.crt')} already exists (delete it first to replace it)`]);
      expect(readFileSync(join(out, 'a.test.crt'), 'utf8')).to.equal(before);
    });

    it("writes into the config's certificates directory when --out is not given", async () => {
      quickConfig('  - { type: c2s, port: 0 }');
      const result = await run(['cert', 'generate', 'localhost', '--config', 'parley.yaml'], { cwd: dir });
      expect(result.code, result.stderr).to.equal(0);
      expect(existsSync(join(dir, 'certs', 'localhost.crt'))).to.equal(true);
    });
  });

  describe('check', () => {
    it('prints each config problem as one line with file, position, path and hint, and exits 2', async () => {
      writeConfig('hots: [localhost]\nlog:\n  level: loud\n', 'bad.yaml');
      const result = await run(['check', '--config', 'bad.yaml'], { cwd: dir });
      expect(result.code).to.equal(2);
      expect(lines(result.stderr)).to.include('parley: bad.yaml:1:1: hots: unknown key (did you mean "hosts"?)');
      expect(lines(result.stderr)).to.include('parley: bad.yaml:3:10: log.level: must be one of "trace", "debug", "info", "warn", "error"');
    });

    it('reads the config named by PARLEY_CONFIG', async () => {
      writeConfig('hots: [localhost]\n', 'env.yaml');
      const result = await run(['check'], { cwd: dir, env: { PARLEY_CONFIG: join(dir, 'env.yaml') } });
      expect(result.code).to.equal(2);
      expect(result.stderr).to.include('env.yaml:1:1: hots: unknown key');
    });

    it('uses config/parley.yaml under the working directory by default', async () => {
      const result = await run(['check'], { cwd: dir });
      expect(result.code).to.equal(2);
      expect(lines(result.stderr)).to.deep.equal([
        `parley: config/parley.yaml: config file ${join(dir, 'config', 'parley.yaml')} does not exist (copy config/parley.example.yaml there, or pass --config FILE)`,
      ]);
    });

    it('reports PARLEY_ERR_PORT_IN_USE for a listener port another process holds, and exits 3', async () => {
      // Another program: it reads what it gets and answers nothing (check probes who listens).
      const busy: Server = createServer((socket) => socket.resume());
      await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
      const { port } = busy.address() as AddressInfo;
      try {
        quickConfig(`  - { type: c2s, port: ${port}, address: 127.0.0.1 }`);
        const result = await run(['check', '--config', 'parley.yaml'], { cwd: dir });
        expect(result.code).to.equal(3);
        expect(result.stdout).to.match(new RegExp(`FAIL +listener c2s 127\\.0\\.0\\.1:${port}: PARLEY_ERR_PORT_IN_USE`));
        expect(lines(result.stderr)).to.deep.equal([`parley: port ${port} on 127.0.0.1 is in use (stop the other server or change listeners[0].port)`]);
      } finally {
        await new Promise<void>((r) => busy.close(() => r()));
      }
    });

    it('passes with free ports, a certificate to be generated and a database to be created', async () => {
      const port = await freePort();
      quickConfig(`  - { type: c2s, port: ${port}, address: 127.0.0.1 }`);
      const result = await run(['check', '--config', 'parley.yaml'], { cwd: dir });
      expect(result.code, result.stdout + result.stderr).to.equal(0);
      expect(result.stdout).to.match(/ok +listener c2s/);
      expect(result.stdout).to.match(/warn +certificate localhost: none yet/);
      expect(result.stdout).to.include('All checks passed.');
      // check changes nothing on disk.
      expect(existsSync(join(dir, 'certs'))).to.equal(false);
      expect(existsSync(join(dir, 'data'))).to.equal(false);
    });

    it('fails with PARLEY_ERR_CERT_MISSING when a host has no certificate and generation is off', async () => {
      writeConfig('hosts: [example.test]\nlisteners: [{ type: c2s, port: 0 }]\ntls: { certificates: certs }\n');
      const result = await run(['check', '--config', 'parley.yaml'], { cwd: dir });
      expect(result.code).to.equal(3);
      expect(result.stdout).to.match(/FAIL +certificate example\.test: PARLEY_ERR_CERT_MISSING no certificate for example\.test/);
      expect(result.stderr).to.include(`parley: no certificate for example.test (put example.test.crt and example.test.key in ${join(dir, 'certs')} or run \`parley cert generate example.test\`)`);
    });
  });

  describe('user', () => {
    beforeEach(() => {
      quickConfig('  - { type: c2s, port: 0 }');
    });

    async function verify(user: string, password: string): Promise<boolean> {
      const { openDatabase } = await import('../../lib/storage/database.js');
      const { openAccounts } = await import('../../lib/accounts/service.js');
      const database = await openDatabase({ driver: 'sqlite', path: join(dir, 'data', 'parley.db') });
      try {
        return await (await openAccounts(database)).verifyPassword('localhost', user, password);
      } finally {
        await database.close();
      }
    }

    it('adds an account with --password, lists it, and refuses to add it twice', async () => {
      const add = await run(['user', 'add', 'alice@localhost', '--password', 's3cret', '--config', 'parley.yaml'], { cwd: dir });
      expect(add.code, add.stderr).to.equal(0);
      expect(await verify('alice', 's3cret')).to.equal(true);
      const list = await run(['user', 'list', '--config', 'parley.yaml'], { cwd: dir });
      expect(list.stdout).to.equal('alice@localhost\n');
      const again = await run(['user', 'add', 'alice@localhost', '--password', 'x', '--config', 'parley.yaml'], { cwd: dir });
      expect(again.code).to.equal(3);
      expect(lines(again.stderr)).to.deep.equal(['parley: alice@localhost already exists (use `parley user passwd` to change its password)']);
    });

    it('reads the password from the first line of standard input when it is not a terminal', async () => {
      expect((await run(['user', 'add', 'bob@localhost', '--config', 'parley.yaml'], { cwd: dir, input: 'from-stdin\nignored\n' })).code).to.equal(0);
      expect(await verify('bob', 'from-stdin')).to.equal(true);
      const passwd = await run(['user', 'passwd', 'bob@localhost', '--config', 'parley.yaml'], { cwd: dir, input: 'changed\n' });
      expect(passwd.code, passwd.stderr).to.equal(0);
      expect(await verify('bob', 'changed')).to.equal(true);
      expect(await verify('bob', 'from-stdin')).to.equal(false);
    });

    it('refuses an empty password', async () => {
      const result = await run(['user', 'add', 'carol@localhost', '--config', 'parley.yaml'], { cwd: dir, input: '\n' });
      expect(result.code).to.equal(1);
      expect(result.stderr).to.match(/^parley: the password is empty/);
    });

    it('deletes an account, and reports deleting a missing one', async () => {
      await run(['user', 'add', 'dave@localhost', '--password', 'pw', '--config', 'parley.yaml'], { cwd: dir });
      expect((await run(['user', 'del', 'dave@localhost', '--config', 'parley.yaml'], { cwd: dir })).code).to.equal(0);
      expect((await run(['user', 'list', 'localhost', '--config', 'parley.yaml'], { cwd: dir })).stdout).to.equal('');
      const again = await run(['user', 'del', 'dave@localhost', '--config', 'parley.yaml'], { cwd: dir });
      expect(again.code).to.equal(3);
      expect(lines(again.stderr)).to.deep.equal(['parley: there is no account dave@localhost (list accounts with `parley user list`)']);
    });

    it('refuses an account on a domain the server does not host', async () => {
      const result = await run(['user', 'add', 'eve@elsewhere.test', '--password', 'pw', '--config', 'parley.yaml'], { cwd: dir });
      expect(result.code).to.equal(3);
      expect(lines(result.stderr)).to.deep.equal(['parley: elsewhere.test is not a host of this server (add it to hosts: in the config, or use one of localhost)']);
    });

    it('rejects a JID without a user part as a usage error', async () => {
      const result = await run(['user', 'add', 'localhost', '--password', 'pw', '--config', 'parley.yaml'], { cwd: dir });
      expect(result.code).to.equal(1);
      expect(result.stderr).to.match(/^parley: "localhost" is not an account JID \(write it as user@domain\)\n$/);
    });
  });

  describe('start', () => {
    let child: ChildProcess | undefined;
    afterEach(() => {
      if (child !== undefined && child.exitCode === null) child.kill('SIGKILL');
      child = undefined;
    });

    it('serves until SIGTERM, reloads config and certificates on SIGHUP, then stops and exits 0', async () => {
      const port = await freePort();
      quickConfig(`  - { type: c2s, port: ${port}, address: 127.0.0.1 }`);
      const proc = spawn(process.execPath, [BIN, 'start', '--config', 'parley.yaml'], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
      child = proc;
      let stderr = '';
      proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      proc.stdout.resume();
      const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
      await waitFor(() => canConnect(port), `the c2s listener on ${port}`);
      // tls.generate wrote the quick-start certificate.
      expect(existsSync(join(dir, 'certs', 'localhost.crt'))).to.equal(true);
      proc.kill('SIGHUP');
      await waitFor(() => stderr.includes('parley: config and certificates reloaded'), 'the reload message');
      proc.kill('SIGTERM');
      expect(await exited).to.equal(0);
      expect(await canConnect(port)).to.equal(false);
    });

    it('exits 2 without starting when the config is invalid', async () => {
      writeConfig('hosts: []\n');
      const result = await run(['start', '--config', 'parley.yaml'], { cwd: dir });
      expect(result.code).to.equal(2);
      expect(lines(result.stderr)).to.deep.equal(['parley: parley.yaml:1:8: hosts: needs at least one domain, e.g. hosts: [example.com]']);
    });
  });
});
