#!/usr/bin/env node
// The parley command line: start | check | reload | user add/del/passwd/list | admin token |
// cert generate | migrate.
// Every failure is one line on stderr, `parley: <message> (<hint>)`, and a non-zero exit:
// 1 for usage, 2 for config, 3 for everything at run time.
import { constants as fsConstants, existsSync, readFileSync } from 'node:fs';
import { unlinkSync } from 'node:fs';
import { access, mkdir, rename, writeFile } from 'node:fs/promises';
import { Resolver } from 'node:dns/promises';
import { isIP, createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { didYouMeanHint } from '../lib/config/did-you-mean.js';
import { AdminError, ConfigError } from '../lib/config/errors.js';
import { loadConfig, type ModuleDescriptor } from '../lib/config/load.js';
import type { ParleyConfig } from '../lib/config/schema.js';
import { Jid, prepDomain } from '../lib/jid/jid.js';
import { writeFileAtomic } from '../lib/util/write-file-atomic.js';
import { CertificateStore } from '../lib/tls/certificates.js';
import { generateSelfSigned } from '../lib/tls/generate.js';
import type { AccountService } from '../lib/accounts/types.js';

const EXIT_USAGE = 1;
const EXIT_CONFIG = 2;
const EXIT_RUNTIME = 3;

const USAGE = `Usage: parley <command> [options]

Commands:
  start [--config FILE] [--nodes N]    run the server (--nodes: N cluster nodes sharing
                                       the ports, one process each; needs cluster: in the config)
  check [--config FILE] [--dns SERVER] validate the config, then check certificates (hosts
                                       and services), ports, the database, Redis, DNS (SRV and
                                       addresses; --dns: ask this server) and risky settings
  user add JID [--password P]          create an account (asks for the password)
  user del JID                         delete an account
  user passwd JID [--password P]       change an account's password
  user list [DOMAIN]                   list accounts, one JID a line
  reload [--config FILE]               validate the config, then make the running server
                                       re-read it and its certificates (SIGHUP to the pid
                                       in <storageDir>/parley.pid)
  admin token create NAME [--scope S,...]
                                       create an admin API token (printed once; stored
                                       hashed); scopes default to all
  admin token list | revoke NAME       list token names and scopes, or revoke one
  cert generate DOMAIN... [--out DIR]  write a self-signed <domain>.crt/.key per domain
                                       (default DIR: tls.certificates of the config)
  invite create [--host H] [--multi N] [--expires 7d] [--contact USER]
                                       print an invite link (XEP-0401) that creates an
                                       account even with registration off; --multi: N
                                       accounts; --contact: also become USER's contact
  invite list [--host H]               list the unused invites, one a line
  export [--host H] [--user U] [--no-archive]
                                       write accounts and their data as XEP-0227 XML to
                                       standard output (every host without --host)
  import FILE                          read a XEP-0227 file (Parley's, Prosody's or
                                       ejabberd's export) into the database
  migrate --from sqlite:PATH --to postgres://URL [--force]
                                       copy every table of an SQLite database into an
                                       empty PostgreSQL database (--force: replace its data)
  help, --help                         show this text
  --version                            print the version

The config file is --config FILE, else $PARLEY_CONFIG, else config/parley.yaml.
Without --password, the password is asked twice on a terminal, or read from the
first line of standard input.`;

class UsageError extends AdminError {
  constructor(message: string, hint = 'see parley --help') {
    super('PARLEY_ERR_USAGE', message, hint);
    this.name = 'UsageError';
  }
}

const OPTIONS = {
  config: { type: 'string', short: 'c' },
  password: { type: 'string', short: 'p' },
  out: { type: 'string', short: 'o' },
  from: { type: 'string' },
  nodes: { type: 'string', short: 'n' },
  to: { type: 'string' },
  force: { type: 'boolean' },
  scope: { type: 'string' },
  host: { type: 'string' },
  multi: { type: 'string' },
  expires: { type: 'string' },
  contact: { type: 'string' },
  user: { type: 'string' },
  'no-archive': { type: 'boolean' },
  dns: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

type OptionName = keyof typeof OPTIONS;

const COMMANDS: Record<string, readonly OptionName[]> = {
  start: ['config', 'nodes'],
  check: ['config', 'dns'],
  user: ['config', 'password'],
  cert: ['config', 'out'],
  migrate: ['from', 'to', 'force'],
  reload: ['config'],
  admin: ['config', 'scope'],
  invite: ['config', 'host', 'multi', 'expires', 'contact'],
  export: ['config', 'host', 'user', 'no-archive'],
  import: ['config'],
  help: [],
};
const USER_COMMANDS = ['add', 'del', 'passwd', 'list'];

interface Args {
  positionals: string[];
  values: {
    config?: string; nodes?: string; password?: string; out?: string; from?: string; to?: string; force?: boolean; scope?: string; help?: boolean; version?: boolean;
    host?: string; multi?: string; expires?: string; contact?: string; user?: string; 'no-archive'?: boolean; dns?: string;
  };
}

/** Returns the exit code, or undefined when the process should keep running (start). */
async function main(argv: string[]): Promise<number | undefined> {
  let args: Args;
  try {
    args = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    const match = /Unknown option '([^']+)'/.exec((err as Error).message);
    if (match) {
      const name = match[1]!.replace(/^-+/, '');
      throw new UsageError(`unknown option ${match[1]}`, didYouMeanHint(name, Object.keys(OPTIONS))?.replace(/"(\w+)"/, '"--$1"') ?? 'see parley --help');
    }
    throw new UsageError((err as Error).message.split('\n')[0]!);
  }
  const { positionals, values } = args;
  if (values.version === true) {
    process.stdout.write(`parley ${version()}\n`);
    return 0;
  }
  const command = positionals[0];
  if (values.help === true || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (command === undefined) throw new UsageError('no command given');
  const allowed = COMMANDS[command];
  if (allowed === undefined) {
    const hint = didYouMeanHint(command, Object.keys(COMMANDS));
    throw new UsageError(`unknown command "${command}"`, hint === undefined ? 'see parley --help' : `${hint} see parley --help`);
  }
  for (const name of Object.keys(values) as OptionName[]) {
    if (name !== 'help' && name !== 'version' && !allowed.includes(name)) {
      throw new UsageError(`${command} does not take --${name}`);
    }
  }
  const envConfig = process.env.PARLEY_CONFIG === '' ? undefined : process.env.PARLEY_CONFIG;
  const configPath = values.config ?? envConfig ?? join('config', 'parley.yaml');
  switch (command) {
    case 'start':
      expectArgs(positionals, 1, 1, 'start takes no arguments');
      if (values.nodes !== undefined) {
        const { isWorker, runPrimary } = await import('../lib/cluster/workers.js');
        const count = Number(values.nodes);
        if (!Number.isInteger(count) || count < 1 || count > 64) {
          throw new UsageError(`--nodes must be a whole number from 1 to 64, not "${values.nodes}"`, 'e.g. --nodes 4, one per CPU core');
        }
        // Workers run this same command line: they start one node each.
        if (isWorker()) {
          await start(configPath);
          return undefined;
        }
        const config = await readConfig(configPath);
        // The primary holds the pid file: `parley reload` signals it, and it tells every node.
        const pidFile = await writePidFile(config);
        try {
          return await runPrimary(config, count, (line) => process.stderr.write(`${line}\n`));
        } finally {
          removePidFile(pidFile);
        }
      }
      await start(configPath);
      return undefined;
    case 'check':
      expectArgs(positionals, 1, 1, 'check takes no arguments');
      return check(configPath, values.dns);
    case 'user':
      return user(positionals.slice(1), values.password, configPath);
    case 'reload':
      expectArgs(positionals, 1, 1, 'reload takes no arguments');
      return reloadCommand(configPath);
    case 'admin':
      return adminCommand(positionals.slice(1), values.scope, configPath);
    case 'cert':
      return cert(positionals.slice(1), values.out, values.config ?? envConfig, configPath);
    case 'invite':
      return invite(positionals.slice(1), values, configPath);
    case 'export':
      expectArgs(positionals, 1, 1, 'export takes no arguments besides --host, --user and --no-archive');
      return exportCommand(values, configPath);
    case 'import':
      expectArgs(positionals, 2, 2, 'import takes one FILE');
      return importCommand(positionals[1]!, configPath);
    case 'migrate':
      expectArgs(positionals, 1, 1, 'migrate takes no arguments besides --from, --to and --force');
      return migrate(values.from, values.to, values.force === true);
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

function expectArgs(positionals: string[], min: number, max: number, message: string): void {
  if (positionals.length < min || positionals.length > max) throw new UsageError(message);
}

function version(): string {
  // dist/bin/parley.js and bin/parley.ts both sit below the package root.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
    dir = dirname(dir);
  }
  return 'unknown';
}

async function catalog(): Promise<ReadonlyArray<ModuleDescriptor>> {
  const { MODULE_CATALOG } = await import('../lib/modules/catalog.js');
  return MODULE_CATALOG;
}

async function readConfig(configPath: string): Promise<ParleyConfig> {
  return loadConfig(configPath, await catalog());
}

// --- start -------------------------------------------------------------------------------------

async function start(configPath: string): Promise<void> {
  const { isWorker, workerConfig } = await import('../lib/cluster/workers.js');
  const config = isWorker() ? workerConfig(await readConfig(configPath)) : await readConfig(configPath);
  const { startServer } = await import('../lib/server.js');
  const server = await startServer(config, { configPath });
  let pidFile: string | undefined;
  let stopping = false;
  const shutdown = (): void => {
    // A second Ctrl-C means "now": do not wait for a stop that hangs.
    if (stopping) process.exit(EXIT_RUNTIME);
    stopping = true;
    server.stop('system-shutdown').then(
      () => {
        if (pidFile !== undefined) removePidFile(pidFile);
        process.exit(0);
      },
      (err: unknown) => {
        report(err);
        process.exit(EXIT_RUNTIME);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  // SIGHUP (`parley reload`): re-read the config and certificates without dropping connections;
  // a config that does not validate is refused and the running one stays.
  process.on('SIGHUP', () => {
    server.reload().then(
      (r) => process.stderr.write(`parley: config and certificates reloaded${r.restartNeeded.length ? `; restart to apply ${r.restartNeeded.join(', ')}` : ''}\n`),
      (err: unknown) => {
        const lines = err instanceof ConfigError ? err.lines() : [oneLine(err)];
        for (const l of lines) process.stderr.write(`parley: reload refused, the running config stays: ${l}\n`);
      },
    );
  });
  // After the handlers: a SIGHUP sent once the pid file exists must not kill the process. A
  // node of `--nodes N` leaves the pid file to the primary, which forwards the signal.
  if (!isWorker()) pidFile = await writePidFile(config);
}

// --- reload ------------------------------------------------------------------------------------

function pidPath(config: ParleyConfig): string {
  return join(config.storageDir, 'parley.pid');
}

async function writePidFile(config: ParleyConfig): Promise<string> {
  const file = pidPath(config);
  await mkdir(dirname(file), { recursive: true });
  // Written whole, then renamed: `parley reload` never reads a half-written file.
  await writeFileAtomic(file, `${process.pid}\n`);
  return file;
}

function removePidFile(file: string): void {
  try {
    if (readFileSync(file, 'utf8').trim() === String(process.pid)) unlinkSync(file);
  } catch {
    // already gone
  }
}

/** Checks the config as a reload would, then sends SIGHUP to the running server. */
async function reloadCommand(configPath: string): Promise<number> {
  const config = await readConfig(configPath);
  const file = pidPath(config);
  let pid: number;
  try {
    pid = Number(readFileSync(file, 'utf8').trim());
  } catch {
    throw new AdminError('PARLEY_ERR_NOT_RUNNING', `no running server: ${file} does not exist`, 'start it with parley start');
  }
  if (!Number.isInteger(pid) || pid <= 0) throw new AdminError('PARLEY_ERR_NOT_RUNNING', `${file} does not hold a process id`, 'delete it and restart the server');
  try {
    process.kill(pid, 'SIGHUP');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new AdminError('PARLEY_ERR_NOT_RUNNING', `cannot signal process ${pid} from ${file} (${code ?? 'error'})`, code === 'ESRCH' ? 'the server is not running; delete the stale pid file' : 'run as the user the server runs as');
  }
  process.stdout.write(`asked the server (pid ${pid}) to reload; it logs what changed\n`);
  return 0;
}

// --- admin token -------------------------------------------------------------------------------

async function adminCommand(args: string[], scope: string | undefined, configPath: string): Promise<number> {
  if (args[0] !== 'token') throw new UsageError(args[0] === undefined ? 'admin needs a subcommand: token' : `unknown command "admin ${args[0]}"`, 'use parley admin token create|list|revoke');
  const sub = args[1];
  const subs = ['create', 'list', 'revoke'];
  if (sub === undefined || !subs.includes(sub)) {
    throw new UsageError(sub === undefined ? 'admin token needs create, list or revoke' : `unknown command "admin token ${sub}"`, didYouMeanHint(sub ?? '', subs) ?? 'use create, list or revoke');
  }
  if (scope !== undefined && sub !== 'create') throw new UsageError(`admin token ${sub} does not take --scope`);
  if (sub === 'list' ? args.length !== 2 : args.length !== 3) throw new UsageError(sub === 'list' ? 'admin token list takes no arguments' : `admin token ${sub} takes one NAME`);
  const { AdminTokens, parseScopes } = await import('../lib/admin/tokens.js');
  let scopes: ReturnType<typeof parseScopes> = [];
  try {
    if (sub === 'create') scopes = parseScopes(scope);
  } catch (err) {
    throw err instanceof AdminError ? new UsageError(err.message, err.hint) : err;
  }
  const config = await readConfig(configPath);
  const { openDatabase } = await import('../lib/storage/database.js');
  const storage = await openDatabase(config.storage);
  try {
    const tokens = new AdminTokens(storage);
    if (sub === 'create') {
      const secret = await tokens.create(args[2]!, scopes);
      process.stderr.write(`created token ${args[2]} with scopes ${scopes.join(',')}; it is shown once, keep it safe:\n`);
      process.stdout.write(`${secret}\n`);
      return 0;
    }
    if (sub === 'list') {
      for (const t of await tokens.list()) process.stdout.write(`${t.name}\t${t.scopes.join(',')}\t${t.createdAt}\n`);
      return 0;
    }
    if (!(await tokens.revoke(args[2]!))) throw new AdminError('PARLEY_ERR_NOT_FOUND', `there is no token named ${args[2]}`, 'list them with parley admin token list');
    process.stdout.write(`revoked token ${args[2]}\n`);
    return 0;
  } finally {
    await storage.close();
  }
}

// --- check -------------------------------------------------------------------------------------

type Status = 'ok' | 'warn' | 'FAIL';

async function check(configPath: string, dnsServer: string | undefined): Promise<number> {
  const config = await readConfig(configPath);
  const { resolveModules } = await import('../lib/config/load.js');
  const { checkDns } = await import('../lib/check/dns.js');
  const { riskySettings } = await import('../lib/check/settings.js');
  const { readCertificate, serviceCoverage } = await import('../lib/check/coverage.js');
  const { whoListens } = await import('../lib/check/ports.js');
  const perHost = resolveModules(config, await catalog());
  let failed = false;
  const line = (status: Status, what: string, detail: string): void => {
    process.stdout.write(`${status.padEnd(4)}  ${what}: ${detail}\n`);
    if (status === 'FAIL') failed = true;
  };
  const fail = (what: string, err: unknown): void => {
    failed = true;
    const code = err instanceof AdminError ? `${err.code} ` : '';
    line('FAIL', what, `${code}${oneLine(err)}`);
    process.stderr.write(`parley: ${oneLine(err)}\n`);
  };
  line('ok', 'config', `${resolve(configPath)} (${config.hosts.length} host${config.hosts.length === 1 ? '' : 's'}, ${config.listeners.length} listener${config.listeners.length === 1 ? '' : 's'})`);

  // Service domains (MUC, upload) of each host, as the modules name them.
  const servicesOf = (host: string): string[] => {
    const out: string[] = [];
    for (const m of perHost.get(host) ?? []) {
      const domain = (m.options as { domain?: string } | undefined)?.domain;
      if (m.name === 'muc') out.push(domain ?? `conference.${host}`);
      if (m.name === 'upload') out.push(domain ?? `upload.${host}`);
    }
    return out;
  };

  const loadedCerts: Array<{ file: string; x509: import('node:crypto').X509Certificate }> = [];
  for (const host of config.hosts) {
    const what = `certificate ${host.domain}`;
    try {
      const store = await CertificateStore.load(config.tls, [host.domain], { generate: false });
      for (const info of store.describe()) {
        line('ok', what, `${info.certFile}, valid until ${info.notAfter.toISOString().slice(0, 10)}${info.selfSigned ? ', self-signed' : `, issued by ${info.issuer.replace(/\n/g, ', ')}`}`);
        loadedCerts.push({ file: info.certFile, x509: await readCertificate(info.certFile) });
      }
      for (const w of store.check()) line('warn', what, `${w.code} ${w.message} (${w.hint})`);
    } catch (err) {
      if (err instanceof AdminError && err.code === 'PARLEY_ERR_CERT_MISSING' && config.tls.generate) {
        line('warn', what, `none yet; a self-signed one will be written to ${config.tls.certificates} at start (tls.generate)`);
      } else fail(what, err);
    }
  }
  if (loadedCerts.length > 0) {
    for (const host of config.hosts) for (const service of servicesOf(host.domain)) {
      const l = serviceCoverage(service, loadedCerts);
      line(l.status, l.what, l.detail);
    }
  }

  const kindOf = (type: string) =>
    type === 'c2s' ? 'xmpp-client' as const : type === 's2s' ? 'xmpp-server' as const : type === 'component' ? 'xmpp-component' as const : type === 'http' ? 'http' as const : 'tls' as const;
  for (const [i, listener] of config.listeners.entries()) {
    const what = `listener ${listener.type} ${listener.address}:${listener.port}`;
    if (listener.port === 0) {
      line('ok', what, 'ephemeral port');
      continue;
    }
    try {
      await probePort(listener.address, listener.port, i);
      line('ok', what, 'free');
    } catch (err) {
      // A running deployment holds its own ports: say so rather than fail.
      if (err instanceof AdminError && err.code === 'PARLEY_ERR_PORT_IN_USE' && (await whoListens(listener.address, listener.port, kindOf(listener.type))) === 'expected') {
        line('ok', what, `listening (a ${listener.type} server answers: this server is running?)`);
      } else fail(what, err);
    }
  }

  const dbWhat = config.storage.driver === 'sqlite' ? `database sqlite ${config.storage.path}` : 'database postgres';
  try {
    line('ok', dbWhat, await probeDatabase(config));
  } catch (err) {
    fail(dbWhat, err instanceof AdminError ? err : new AdminError('PARLEY_ERR_DATABASE', `cannot reach the database: ${(err as Error).message}`, 'check storage: in the config and that the database is running'));
  }

  if (config.cluster) {
    const { checkRedis } = await import('../lib/check/redis.js');
    const l = await checkRedis(config.cluster.redis, config.cluster.prefix);
    line(l.status, l.what, l.detail);
  }

  const resolver = new Resolver({ timeout: 2000, tries: 1 });
  if (dnsServer !== undefined) {
    try {
      resolver.setServers([dnsServer]);
    } catch (err) {
      throw new UsageError(`--dns ${dnsServer}: ${(err as Error).message}`, 'give an address like 127.0.0.1 or 127.0.0.1:5353');
    }
  }
  const federates = config.listeners.some((l) => l.type === 's2s' || l.type === 's2s-tls');
  for (const host of config.hosts) {
    // Names that cannot be in public DNS are only looked up in a DNS server named with --dns.
    if (dnsServer === undefined && isLocalName(host.domain)) continue;
    for (const l of await checkDns(resolver, { host: host.domain, services: servicesOf(host.domain), federates })) line(l.status, l.what, l.detail);
  }

  for (const l of riskySettings(config, perHost)) line(l.status, l.what, l.detail);

  process.stdout.write(failed ? 'Problems found.\n' : 'All checks passed.\n');
  return failed ? EXIT_RUNTIME : 0;
}

async function probePort(address: string, port: number, index: number): Promise<void> {
  const server = createServer();
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, address, port, index)));
    server.listen({ host: address, port, exclusive: true }, () => resolveListen());
  });
  await new Promise<void>((done) => server.close(() => done()));
}

function listenError(err: NodeJS.ErrnoException, address: string, port: number, index: number): Error {
  switch (err.code) {
    case 'EADDRINUSE':
      return new AdminError('PARLEY_ERR_PORT_IN_USE', `port ${port} on ${address} is in use`, `stop the other server or change listeners[${index}].port`);
    case 'EACCES':
      return new AdminError('PARLEY_ERR_PORT_DENIED', `no permission to listen on port ${port} on ${address}`, 'use a port above 1023 or grant CAP_NET_BIND_SERVICE');
    case 'EADDRNOTAVAIL':
      return new AdminError('PARLEY_ERR_ADDRESS_UNAVAILABLE', `${address} is not an address of this machine`, `change listeners[${index}].address`);
    default:
      return err;
  }
}

async function probeDatabase(config: ParleyConfig): Promise<string> {
  const storage = config.storage;
  if (storage.driver === 'sqlite' && storage.path !== ':memory:' && !existsSync(storage.path)) {
    // Do not create the database just to check it: check that it could be created.
    let dir = dirname(storage.path);
    while (!existsSync(dir) && dirname(dir) !== dir) dir = dirname(dir);
    try {
      await access(dir, fsConstants.W_OK);
    } catch {
      throw new AdminError('PARLEY_ERR_DATABASE', `cannot create ${storage.path}: ${dir} is not writable`, 'fix the permissions or change storage.path');
    }
    return 'not created yet; it will be at first start';
  }
  const { openDatabase } = await import('../lib/storage/database.js');
  const { sql } = await import('kysely');
  const database = await openDatabase(storage);
  try {
    await sql`select 1`.execute(database.db);
  } finally {
    await database.close();
  }
  return 'reachable';
}

function isLocalName(domain: string): boolean {
  return isIP(domain.replace(/^\[(.*)\]$/, '$1')) !== 0 || domain === 'localhost' || /\.(localhost|test|example|invalid|local)$/.test(domain);
}

// --- invite ------------------------------------------------------------------------------------

/** The host a command acts on: --host, or the only host of the config. */
function commandHost(config: ParleyConfig, host: string | undefined, command: string): string {
  const hosts = config.hosts.map((h) => h.domain);
  if (host === undefined) {
    if (hosts.length === 1) return hosts[0]!;
    throw new UsageError(`${command} needs --host: this server has ${hosts.length} hosts`, `use one of ${hosts.join(', ')}`);
  }
  const domain = prepDomainArg(host);
  if (!hosts.includes(domain)) {
    throw new AdminError('PARLEY_ERR_UNKNOWN_HOST', `${domain} is not a host of this server`, `use one of ${hosts.join(', ')}`);
  }
  return domain;
}

async function invite(args: string[], values: Args['values'], configPath: string): Promise<number> {
  const sub = args[0];
  if (sub !== 'create' && sub !== 'list') throw new UsageError('invite needs a subcommand: create or list');
  if (args.length !== 1) throw new UsageError(`invite ${sub} takes no arguments besides its options`);
  if (sub === 'list' && (values.multi !== undefined || values.expires !== undefined || values.contact !== undefined)) {
    throw new UsageError('invite list takes only --host');
  }
  const config = await readConfig(configPath);
  const host = commandHost(config, values.host, `invite ${sub}`);
  const { resolveModules } = await import('../lib/config/load.js');
  const enabled = resolveModules(config, await catalog()).get(host)?.find((m) => m.name === 'invites');
  if (enabled === undefined) {
    throw new AdminError('PARLEY_ERR_INVITES_OFF', `the invites module is not enabled on ${host}`, 'add `invites: {}` under modules: in the config');
  }
  const options = enabled.options as { lifetime: number; maxLifetime: number; maxUses: number; landingPage: boolean };
  let uses = 1;
  if (values.multi !== undefined) {
    uses = Number(values.multi);
    if (!Number.isInteger(uses) || uses < 1 || uses > options.maxUses) throw new UsageError(`--multi takes a whole number from 1 to ${options.maxUses} (modules.invites.maxUses)`);
  }
  let lifetimeMs = options.lifetime;
  if (values.expires !== undefined) {
    const { parseDuration } = await import('../lib/config/units.js');
    try {
      lifetimeMs = parseDuration(values.expires);
    } catch (err) {
      throw new UsageError(`--expires: ${(err as Error).message}`, 'use a duration like 12h, 7d or 30d');
    }
    if (lifetimeMs <= 0 || lifetimeMs > options.maxLifetime) throw new UsageError('--expires is beyond modules.invites.maxLifetime', 'ask for a shorter lifetime or raise maxLifetime');
  }
  const { bootCore } = await import('../lib/server.js');
  const { createLogger } = await import('../lib/log.js');
  const { createInviteOffline, listInvitesOffline } = await import('../modules/invites/offline.js');
  const core = await bootCore(config, createLogger({ level: 'warn', pretty: false }));
  try {
    const keyval = (store: string) => core.storage.keyval(store);
    if (sub === 'list') {
      for (const i of await listInvitesOffline(keyval, host)) {
        if (i.expires <= Date.now()) continue;
        process.stdout.write(`${i.token} ${i.kind}${i.inviter === undefined ? '' : ` of ${i.inviter}@${host}`} uses-left=${i.usesLeft} expires=${new Date(i.expires).toISOString()} by=${i.createdBy}\n`);
      }
      return 0;
    }
    let contactOf: string | undefined;
    if (values.contact !== undefined) {
      const jid = values.contact.includes('@') ? parseAccountJid(values.contact) : parseAccountJid(`${values.contact}@${host}`);
      if (jid.domain !== host || !(await core.accounts.exists(host, jid.local!))) throw noAccount(jid);
      contactOf = jid.local!;
    }
    const first = config.listeners.find((l) => l.type === 'https' || l.type === 'http');
    const baseUrl = !options.landingPage ? undefined : config.http.publicUrl ?? (first === undefined ? undefined : `${first.type}://${host}:${first.port}`);
    const created = await createInviteOffline(keyval, { host, uses, lifetimeMs, contactOf, baseUrl });
    process.stdout.write(`${created.landingUrl ?? created.uri}\n`);
    if (created.landingUrl !== undefined) process.stdout.write(`${created.uri}\n`);
    process.stderr.write(`parley: invite for ${uses} account${uses === 1 ? '' : 's'} on ${host}, valid until ${new Date(created.invite.expires).toISOString()}\n`);
    return 0;
  } finally {
    await core.close();
  }
}

// --- export / import (XEP-0227) -----------------------------------------------------------------

async function exportCommand(values: Args['values'], configPath: string): Promise<number> {
  const config = await readConfig(configPath);
  const hosts = values.host === undefined && values.user === undefined ? config.hosts.map((h) => h.domain) : [commandHost(config, values.host, 'export --user')];
  let user: string | undefined;
  if (values.user !== undefined) {
    const jid = values.user.includes('@') ? parseAccountJid(values.user) : parseAccountJid(`${values.user}@${hosts[0]}`);
    if (jid.domain !== hosts[0]) throw new UsageError(`--user ${values.user} is not on ${hosts[0]}`);
    user = jid.local!;
  }
  const { bootCore } = await import('../lib/server.js');
  const { createLogger } = await import('../lib/log.js');
  const { exportData } = await import('../lib/export/export.js');
  const core = await bootCore(config, createLogger({ level: 'warn', pretty: false }));
  try {
    if (user !== undefined && !(await core.accounts.exists(hosts[0]!, user))) throw noAccount(Jid.of(user, hosts[0]!));
    const out = process.stdout;
    const write = (chunk: string) => (out.write(chunk) ? undefined : new Promise<void>((done) => out.once('drain', () => done())));
    const { users } = await exportData(core.storage, { hosts, user, archive: values['no-archive'] !== true }, write);
    process.stderr.write(`parley: exported ${users} account${users === 1 ? '' : 's'}\n`);
    return 0;
  } finally {
    await core.close();
  }
}

async function importCommand(file: string, configPath: string): Promise<number> {
  const config = await readConfig(configPath);
  if (!existsSync(file)) throw new AdminError('PARLEY_ERR_NO_FILE', `${file} does not exist`, 'give the path of a XEP-0227 export');
  const { createReadStream } = await import('node:fs');
  const { bootCore } = await import('../lib/server.js');
  const { createLogger } = await import('../lib/log.js');
  const { importData } = await import('../lib/export/import.js');
  const { PieFormatError } = await import('../lib/export/reader.js');
  const core = await bootCore(config, createLogger({ level: 'warn', pretty: false }));
  try {
    let report;
    try {
      report = await importData(core.storage, core.accounts, createReadStream(file), { hosts: config.hosts.map((h) => h.domain) });
    } catch (err) {
      if (err instanceof PieFormatError) throw new AdminError('PARLEY_ERR_IMPORT_FORMAT', `${file}: ${err.message}`, 'accounts before this point were imported; fix the file and import it again');
      throw err;
    }
    for (const s of report.skipped) process.stderr.write(`parley: skipped ${s.jid}: ${s.reason}\n`);
    process.stdout.write(`imported ${report.imported.length} account${report.imported.length === 1 ? '' : 's'}, skipped ${report.skipped.length}\n`);
    return report.skipped.length === 0 ? 0 : EXIT_RUNTIME;
  } finally {
    await core.close();
  }
}

// --- user --------------------------------------------------------------------------------------

async function user(args: string[], password: string | undefined, configPath: string): Promise<number> {
  const sub = args[0];
  if (sub === undefined) throw new UsageError('user needs a subcommand: add, del, passwd or list');
  if (!USER_COMMANDS.includes(sub)) {
    throw new UsageError(`unknown command "user ${sub}"`, didYouMeanHint(sub, USER_COMMANDS) ?? 'use add, del, passwd or list');
  }
  if (password !== undefined && sub !== 'add' && sub !== 'passwd') throw new UsageError(`user ${sub} does not take --password`);
  if (sub === 'list') {
    if (args.length > 2) throw new UsageError('user list takes at most one DOMAIN');
    const domain = args[1] === undefined ? undefined : prepDomainArg(args[1]);
    return withOperations(configPath, async (ops) => {
      // A page at a time: the whole list is never held in memory.
      for (let after: string | undefined, first = true; first || after !== undefined; first = false) {
        const page = await ops.listUsers({ host: domain, after, limit: 500 });
        process.stdout.write(page.users.map((u) => `${u.jid}\n`).join(''));
        after = page.next;
      }
      return 0;
    });
  }
  if (args.length !== 2) throw new UsageError(`user ${sub} takes one JID, like alice@example.com`);
  const jid = parseAccountJid(args[1]!);
  return withOperations(configPath, async (ops, accounts, config) => {
    if (!config.hosts.some((h) => h.domain === jid.domain)) {
      throw new AdminError('PARLEY_ERR_UNKNOWN_HOST', `${jid.domain} is not a host of this server`, `add it to hosts: in the config, or use one of ${config.hosts.map((h) => h.domain).join(', ')}`);
    }
    const asCli = async (fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        if (err instanceof AdminError && err.code === 'PARLEY_ERR_NOT_FOUND') throw noAccount(jid);
        throw err;
      }
    };
    switch (sub) {
      case 'add': {
        if (await accounts.exists(jid.domain, jid.local!)) {
          throw new AdminError('PARLEY_ERR_ACCOUNT_EXISTS', `${jid} already exists`, 'use `parley user passwd` to change its password');
        }
        const pw = password ?? (await readPassword(`Password for ${jid}: `));
        await ops.createUser(jid.toString(), pw);
        process.stdout.write(`created ${jid}\n`);
        return 0;
      }
      case 'passwd': {
        if (!(await accounts.exists(jid.domain, jid.local!))) throw noAccount(jid);
        const pw = password ?? (await readPassword(`New password for ${jid}: `));
        await asCli(() => ops.resetPassword(jid.toString(), pw));
        process.stdout.write(`changed the password of ${jid}\n`);
        return 0;
      }
      default: {
        await asCli(() => ops.deleteUser(jid.toString()));
        process.stdout.write(`deleted ${jid}\n`);
        return 0;
      }
    }
  });
}

function noAccount(jid: Jid): AdminError {
  return new AdminError('PARLEY_ERR_NO_ACCOUNT', `there is no account ${jid}`, 'list accounts with `parley user list`');
}

function parseAccountJid(input: string): Jid {
  let jid: Jid;
  try {
    jid = Jid.parse(input);
  } catch (err) {
    throw new UsageError(`"${input}" is not a valid JID: ${(err as Error).message}`, 'write it as user@domain');
  }
  if (jid.local === undefined || jid.resource !== undefined) throw new UsageError(`"${input}" is not an account JID`, 'write it as user@domain');
  return jid;
}

function prepDomainArg(input: string): string {
  try {
    return prepDomain(input);
  } catch (err) {
    throw new UsageError(`"${input}" is not a valid domain: ${(err as Error).message}`);
  }
}

/** The admin operations (lib/admin/operations.ts) on the server's storage, without listeners. */
async function withOperations(
  configPath: string,
  fn: (ops: import('../lib/admin/operations.js').AdminOperations, accounts: AccountService, config: ParleyConfig) => Promise<number>,
): Promise<number> {
  const config = await readConfig(configPath);
  const { bootCore } = await import('../lib/server.js');
  const { createLogger } = await import('../lib/log.js');
  const { AdminOperations } = await import('../lib/admin/operations.js');
  // Modules are loaded (without listeners) so that deleting an account purges their data too.
  const core = await bootCore(config, createLogger({ level: 'warn', pretty: false }));
  try {
    const ops = new AdminOperations({ hosts: config.hosts.map((h) => h.domain), accounts: core.accounts, storage: core.storage, admins: [] });
    return await fn(ops, core.accounts, config);
  } finally {
    await core.close();
  }
}

/** Asks twice without echo on a terminal; otherwise reads the first line of stdin. */
async function readPassword(prompt: string): Promise<string> {
  let password: string;
  if (process.stdin.isTTY) {
    password = await promptHidden(prompt);
    const again = await promptHidden('Repeat it: ');
    if (again !== password) throw new UsageError('the passwords do not match', 'try again');
  } else {
    password = await readFirstLine();
  }
  if (password === '') throw new UsageError('the password is empty', 'pass --password, or type one when asked');
  return password;
}

function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  return new Promise((resolvePrompt, reject) => {
    let chars: string[] = [];
    const finish = (): void => {
      stdin.setRawMode(false);
      stdin.off('data', onData);
      stdin.pause();
      process.stderr.write('\n');
    };
    const onData = (data: string): void => {
      for (const ch of data) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          finish();
          resolvePrompt(chars.join(''));
          return;
        }
        if (ch === '\u0003') {
          finish();
          reject(new UsageError('cancelled', 'no change was made'));
          return;
        }
        if (ch === '\u007f' || ch === '\b') chars = chars.slice(0, -1);
        else if (ch === '\u0015') chars = []; // Ctrl-U
        else chars.push(ch);
      }
    };
    stdin.setEncoding('utf8');
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}

async function readFirstLine(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) {
    text += (chunk as Buffer).toString('utf8');
    if (text.includes('\n')) break;
  }
  return text.split('\n')[0]!.replace(/\r$/, '');
}

// --- cert --------------------------------------------------------------------------------------

async function cert(args: string[], out: string | undefined, explicitConfig: string | undefined, configPath: string): Promise<number> {
  if (args[0] !== 'generate') {
    throw new UsageError(args[0] === undefined ? 'cert needs a subcommand: generate' : `unknown command "cert ${args[0]}"`, didYouMeanHint(args[0] ?? '', ['generate']) ?? 'use parley cert generate DOMAIN...');
  }
  const domains = args.slice(1).map(prepDomainArg);
  if (domains.length === 0) throw new UsageError('cert generate needs at least one DOMAIN');
  let dir: string;
  if (out !== undefined) dir = resolve(out);
  else if (explicitConfig !== undefined || existsSync(configPath)) dir = (await readConfig(configPath)).tls.certificates;
  else throw new UsageError(`no --out DIR and no config at ${configPath}`, 'pass --out DIR or --config FILE');

  await mkdir(dir, { recursive: true });
  for (const domain of domains) {
    const certFile = join(dir, `${domain}.crt`);
    const keyFile = join(dir, `${domain}.key`);
    for (const file of [certFile, keyFile]) {
      if (existsSync(file)) throw new AdminError('PARLEY_ERR_CERT_EXISTS', `${file} already exists`, 'delete it first to replace it');
    }
    const pair = generateSelfSigned([domain]);
    await writeFile(keyFile, pair.key, { mode: 0o600, flag: 'wx' });
    await writeFile(certFile, pair.cert, { mode: 0o644, flag: 'wx' });
    process.stdout.write(`wrote ${certFile} and ${keyFile} (self-signed, for ${domain} and its conference, upload, pubsub and proxy subdomains)\n`);
  }
  return 0;
}

// --- migrate -----------------------------------------------------------------------------------

/** Copies an SQLite database into PostgreSQL (lib/storage/copy.ts does the copying). */
async function migrate(from: string | undefined, to: string | undefined, force: boolean): Promise<number> {
  if (from === undefined || to === undefined) {
    throw new UsageError('migrate needs --from sqlite:PATH and --to postgres://URL', 'e.g. parley migrate --from sqlite:data/parley.db --to postgres://parley@localhost/parley');
  }
  if (!from.startsWith('sqlite:')) throw new UsageError(`--from must be sqlite:PATH, got "${from}"`);
  if (!/^postgres(ql)?:\/\//.test(to)) throw new UsageError('--to must be a postgres:// URL', 'write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE');
  const path = resolve(from.slice('sqlite:'.length));
  if (from.slice('sqlite:'.length) === '' || !existsSync(path)) {
    throw new AdminError('PARLEY_ERR_COPY', `there is no SQLite database at ${path}`, 'give the path of storage.path in the config, as --from sqlite:PATH');
  }
  const { openDatabase, postgresTarget } = await import('../lib/storage/database.js');
  const { copyDatabase } = await import('../lib/storage/copy.js');
  const { ACCOUNT_MIGRATIONS } = await import('../lib/accounts/service.js');
  const { migrateModules } = await import('../lib/modules/loader.js');
  const { MODULES } = await import('../lib/modules/catalog.js');
  const target = postgresTarget(to);
  const where = `PostgreSQL ${target.host}:${target.port}/${target.database}`;

  const started = Date.now();
  const source = await openDatabase({ driver: 'sqlite', path });
  try {
    const dest = await openDatabase({ driver: 'postgres', url: to });
    try {
      // Both sides at this Parley's schema: the tables of core, accounts and every module exist
      // in the target, and the source has every step this version knows (as a start would do).
      for (const db of [source, dest]) {
        await db.migrate('accounts', ACCOUNT_MIGRATIONS);
        await migrateModules(db, MODULES);
      }
      process.stdout.write(`copying ${path} into ${where}\n`);
      const summary = await copyDatabase(source, dest, {
        force,
        onTable: (table, rows) => process.stdout.write(`  ${table.padEnd(24)} ${String(rows).padStart(10)} row${rows === 1 ? '' : 's'}\n`),
      });
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      const tables = summary.tables.length;
      if (summary.replaced > 0) process.stdout.write(`replaced ${summary.replaced} rows the target held (--force)\n`);
      process.stdout.write(`copied ${summary.rows} rows in ${tables} table${tables === 1 ? '' : 's'} in ${seconds} s; row counts verified.\n`);
      process.stdout.write('Next: set storage.driver: postgres and storage.url in the config, then start Parley.\n');
      return 0;
    } finally {
      await dest.close();
    }
  } finally {
    await source.close();
  }
}

// --- errors ------------------------------------------------------------------------------------

function oneLine(err: unknown): string {
  if (err instanceof AdminError) return err.oneLine();
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0]!;
}

/** Prints an error as `parley: …` lines on stderr and returns the exit code it deserves. */
function report(err: unknown): number {
  if (err instanceof ConfigError) {
    for (const l of err.lines()) process.stderr.write(`parley: ${l}\n`);
    return EXIT_CONFIG;
  }
  if (err instanceof UsageError) {
    process.stderr.write(`parley: ${err.oneLine()}\n`);
    return EXIT_USAGE;
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (!(err instanceof AdminError) && code === 'EADDRINUSE') {
    process.stderr.write(`parley: a listener port is in use (${(err as Error).message}; stop the other server or change listeners:)\n`);
    return EXIT_RUNTIME;
  }
  process.stderr.write(`parley: ${oneLine(err)}\n`);
  if (!(err instanceof AdminError) && typeof code !== 'string' && process.env.PARLEY_DEBUG !== undefined) {
    process.stderr.write(`${(err as Error).stack ?? ''}\n`);
  }
  return EXIT_RUNTIME;
}

function exit(code: number): void {
  // Let stdout drain (it may be a pipe), then exit even if a library left a handle open.
  process.stdout.write('', () => process.exit(code));
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) exit(code);
  },
  (err: unknown) => exit(report(err)),
);
