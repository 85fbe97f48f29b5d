#!/usr/bin/env node
// The parley command line: start | check | user add/del/passwd/list | cert generate | migrate.
// Every failure is one line on stderr, `parley: <message> (<hint>)`, and a non-zero exit:
// 1 for usage, 2 for config, 3 for everything at run time.
import { constants as fsConstants, existsSync, readFileSync } from 'node:fs';
import { access, mkdir, writeFile } from 'node:fs/promises';
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
  check [--config FILE]                validate the config, then check certificates, ports,
                                       the database and DNS
  user add JID [--password P]          create an account (asks for the password)
  user del JID                         delete an account
  user passwd JID [--password P]       change an account's password
  user list [DOMAIN]                   list accounts, one JID a line
  cert generate DOMAIN... [--out DIR]  write a self-signed <domain>.crt/.key per domain
                                       (default DIR: tls.certificates of the config)
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
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

type OptionName = keyof typeof OPTIONS;

const COMMANDS: Record<string, readonly OptionName[]> = {
  start: ['config', 'nodes'],
  check: ['config'],
  user: ['config', 'password'],
  cert: ['config', 'out'],
  migrate: ['from', 'to', 'force'],
  help: [],
};
const USER_COMMANDS = ['add', 'del', 'passwd', 'list'];

interface Args {
  positionals: string[];
  values: { config?: string; nodes?: string; password?: string; out?: string; from?: string; to?: string; force?: boolean; help?: boolean; version?: boolean };
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
        return runPrimary(await readConfig(configPath), count, (line) => process.stderr.write(`${line}\n`));
      }
      await start(configPath);
      return undefined;
    case 'check':
      expectArgs(positionals, 1, 1, 'check takes no arguments');
      return check(configPath);
    case 'user':
      return user(positionals.slice(1), values.password, configPath);
    case 'cert':
      return cert(positionals.slice(1), values.out, values.config ?? envConfig, configPath);
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
  let stopping = false;
  const shutdown = (): void => {
    // A second Ctrl-C means "now": do not wait for a stop that hangs.
    if (stopping) process.exit(EXIT_RUNTIME);
    stopping = true;
    server.stop('system-shutdown').then(
      () => process.exit(0),
      (err: unknown) => {
        report(err);
        process.exit(EXIT_RUNTIME);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
  // SIGHUP: re-read certificates (after a renewal) without dropping connections.
  process.on('SIGHUP', () => {
    const reload = (server as { reloadCertificates?: () => Promise<void> }).reloadCertificates;
    reload?.call(server).then(
      () => process.stderr.write('parley: certificates reloaded\n'),
      (err: unknown) => process.stderr.write(`parley: certificate reload failed, keeping the old ones: ${oneLine(err)}\n`),
    );
  });
}

// --- check -------------------------------------------------------------------------------------

type Status = 'ok' | 'warn' | 'FAIL';

async function check(configPath: string): Promise<number> {
  const config = await readConfig(configPath);
  let failed = false;
  const line = (status: Status, what: string, detail: string): void => {
    process.stdout.write(`${status.padEnd(4)}  ${what}: ${detail}\n`);
  };
  const fail = (what: string, err: unknown): void => {
    failed = true;
    const code = err instanceof AdminError ? `${err.code} ` : '';
    line('FAIL', what, `${code}${oneLine(err)}`);
    process.stderr.write(`parley: ${oneLine(err)}\n`);
  };
  line('ok', 'config', `${resolve(configPath)} (${config.hosts.length} host${config.hosts.length === 1 ? '' : 's'}, ${config.listeners.length} listener${config.listeners.length === 1 ? '' : 's'})`);

  for (const host of config.hosts) {
    const what = `certificate ${host.domain}`;
    try {
      const store = await CertificateStore.load(config.tls, [host.domain], { generate: false });
      for (const info of store.describe()) {
        line('ok', what, `${info.certFile}, valid until ${info.notAfter.toISOString().slice(0, 10)}${info.selfSigned ? ', self-signed' : `, issued by ${info.issuer.replace(/\n/g, ', ')}`}`);
      }
      for (const w of store.check()) line('warn', what, `${w.code} ${w.message} (${w.hint})`);
    } catch (err) {
      if (err instanceof AdminError && err.code === 'PARLEY_ERR_CERT_MISSING' && config.tls.generate) {
        line('warn', what, `none yet; a self-signed one will be written to ${config.tls.certificates} at start (tls.generate)`);
      } else fail(what, err);
    }
  }

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
      fail(what, err);
    }
  }

  const dbWhat = config.storage.driver === 'sqlite' ? `database sqlite ${config.storage.path}` : 'database postgres';
  try {
    line('ok', dbWhat, await probeDatabase(config));
  } catch (err) {
    fail(dbWhat, err instanceof AdminError ? err : new AdminError('PARLEY_ERR_DATABASE', `cannot reach the database: ${(err as Error).message}`, 'check storage: in the config and that the database is running'));
  }

  for (const host of config.hosts) {
    const result = await probeDns(host.domain);
    if (result !== undefined) line(result.status, `dns ${host.domain}`, result.detail);
  }

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

/** RFC 6120 §3.2.1: clients look up _xmpp-client._tcp SRV records, then the domain itself. */
async function probeDns(domain: string): Promise<{ status: Status; detail: string } | undefined> {
  if (isLocalName(domain)) return undefined;
  const resolver = new Resolver({ timeout: 2000, tries: 1 });
  try {
    const srv = await resolver.resolveSrv(`_xmpp-client._tcp.${domain}`);
    return { status: 'ok', detail: `_xmpp-client._tcp → ${srv.map((r) => `${r.name}:${r.port}`).join(', ')}` };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTFOUND' && code !== 'ENODATA') return { status: 'warn', detail: `could not query DNS (${code ?? 'error'})` };
  }
  try {
    await resolver.resolve4(domain);
    return { status: 'ok', detail: 'no SRV records; clients will connect to the domain itself' };
  } catch {
    return {
      status: 'warn',
      detail: `no _xmpp-client._tcp SRV record and no address for ${domain} (clients cannot find this server: add SRV or A records)`,
    };
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
    return withAccounts(configPath, async (accounts) => {
      const list = await accounts.list(domain);
      const jids = list.map((a) => `${a.user}@${a.host}`).sort();
      process.stdout.write(jids.map((j) => `${j}\n`).join(''));
      return 0;
    });
  }
  if (args.length !== 2) throw new UsageError(`user ${sub} takes one JID, like alice@example.com`);
  const jid = parseAccountJid(args[1]!);
  return withAccounts(configPath, async (accounts, config) => {
    if (!config.hosts.some((h) => h.domain === jid.domain)) {
      throw new AdminError('PARLEY_ERR_UNKNOWN_HOST', `${jid.domain} is not a host of this server`, `add it to hosts: in the config, or use one of ${config.hosts.map((h) => h.domain).join(', ')}`);
    }
    const user = jid.local!;
    switch (sub) {
      case 'add': {
        if (await accounts.exists(jid.domain, user)) {
          throw new AdminError('PARLEY_ERR_ACCOUNT_EXISTS', `${jid} already exists`, 'use `parley user passwd` to change its password');
        }
        await accounts.create(jid.domain, user, password ?? (await readPassword(`Password for ${jid}: `)));
        process.stdout.write(`created ${jid}\n`);
        return 0;
      }
      case 'passwd': {
        if (!(await accounts.exists(jid.domain, user))) throw noAccount(jid);
        await accounts.setPassword(jid.domain, user, password ?? (await readPassword(`New password for ${jid}: `)));
        process.stdout.write(`changed the password of ${jid}\n`);
        return 0;
      }
      default: {
        if (!(await accounts.delete(jid.domain, user))) throw noAccount(jid);
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

async function withAccounts(configPath: string, fn: (accounts: AccountService, config: ParleyConfig) => Promise<number>): Promise<number> {
  const config = await readConfig(configPath);
  const { bootCore } = await import('../lib/server.js');
  const { createLogger } = await import('../lib/log.js');
  // Modules are loaded (without listeners) so that deleting an account purges their data too.
  const core = await bootCore(config, createLogger({ level: 'warn', pretty: false }));
  try {
    return await fn(core.accounts, config);
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
