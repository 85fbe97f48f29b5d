// Parley under test for the mam and muc phases: the same child process, config and accounts as
// bench/server-parley.ts, with the MUC message rate limit raised like the other limits, plus, BEFORE the server starts, a one-to-one MAM archive of `messages`
// items for one account written straight into the SQLite `archive` table in large transactions
// (one prepared INSERT, 100,000 rows a transaction: a million rows in seconds, where a million
// archived messages over the wire would take minutes). The server opens the file afterwards and
// serves it as if it had archived every one.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import { openDatabase } from '../lib/storage/database.js';
import { openAccounts } from '../lib/accounts/service.js';
import { pool } from './pool.js';
import { SCRAM_ITERATIONS } from './server-parley.js';
import {
  freePort,
  removeDir,
  spawnServer,
  startFailure,
  stopChild,
  tempDir,
  trackForCleanup,
  waitForPort,
  type LaunchContext,
  type ServerUnderTest,
} from './server-common.js';

/** The shape of the prefilled archive, shared with the query load (bench/mam.ts). */
export interface ArchiveShape {
  /** The account whose archive is filled: userPrefix + this index. */
  owner: number;
  messages: number;
  /** Conversation partners: userPrefix + 1 .. userPrefix + peers; item i is with peer (i % peers) + 1. */
  peers: number;
  /** Milliseconds between consecutive items; the newest is a minute old. */
  spacingMs: number;
}

export const ARCHIVE_SHAPE: ArchiveShape = { owner: 0, messages: 1_000_000, peers: 10, spacingMs: 20 };

/** The archive id of item i: fixed, so the load generator can name any item without a lookup. */
export const archiveId = (i: number): string => `bench-${i.toString(36).padStart(5, '0')}`;

export interface FillReport {
  messages: number;
  seconds: number;
  dbBytes: number;
}

/** Writes the archive into the (already migrated) SQLite file `dbFile`. */
export function fillArchive(dbFile: string, ctx: Pick<LaunchContext, 'domain' | 'userPrefix'>, shape: ArchiveShape): Omit<FillReport, 'dbBytes'> {
  const started = Date.now();
  const db = new BetterSqlite3(dbFile);
  try {
    const owner = `${ctx.userPrefix}${shape.owner}`;
    const me = `${owner}@${ctx.domain}`;
    const peers = Array.from({ length: shape.peers }, (_, k) => `${ctx.userPrefix}${k + 1}@${ctx.domain}`);
    const newest = Date.now() - 60_000;
    const oldest = newest - (shape.messages - 1) * shape.spacingMs;
    const insert = db.prepare('INSERT INTO archive (host, user, store, id, ts, with_jid, value) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const batch = db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) {
        const peer = peers[i % shape.peers]!;
        // Half the conversation each way, as the MAM module stores it: the message as routed.
        const [from_, to_] = i % 2 === 0 ? [`${peer}/phone`, me] : [`${me}/desk`, peer];
        const value =
          `<message xmlns="jabber:client" from="${from_}" to="${to_}" type="chat" id="m${i}">` +
          `<body>archived message number ${i}, a sentence of ordinary length for a chat line.</body></message>`;
        insert.run(ctx.domain, owner, 'mam', archiveId(i), oldest + i * shape.spacingMs, peer, value);
      }
    });
    const step = 100_000;
    for (let i = 0; i < shape.messages; i += step) batch(i, Math.min(shape.messages, i + step));
    db.pragma('optimize');
  } finally {
    db.close();
  }
  return { messages: shape.messages, seconds: (Date.now() - started) / 1000 };
}

export async function launchParleyWithArchive(ctx: LaunchContext, shape: ArchiveShape = ARCHIVE_SHAPE): Promise<ServerUnderTest & { fill: FillReport }> {
  const cli = fileURLToPath(new URL('../bin/parley.js', import.meta.url));
  if (!existsSync(cli)) throw new Error(`${cli} is missing; build first (npx tsc -p .)`);
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string };

  const dir = tempDir('parley');
  const port = await freePort();
  const dbFile = join(dir, 'parley.db');
  const config = {
    hosts: [ctx.domain],
    listeners: [{ type: ctx.tls === 'direct' ? 'c2s-tls' : 'c2s', port, address: '127.0.0.1' }],
    tls: { certificates: dir, hosts: { [ctx.domain]: { cert: ctx.cert.certFile, key: ctx.cert.keyFile } } },
    storage: { driver: 'sqlite', path: dbFile },
    auth: { scramIterations: SCRAM_ITERATIONS },
    limits: { connectionsPerIp: 1_000_000, stanzasPerSecond: 1_000_000, bytesPerSecond: '1 GiB' },
    // The MUC per-occupant message rate (2/s, burst 20 by default) is policy too: out of the way.
    modules: { muc: { messageRate: { perSecond: 1_000_000, burst: 1_000_000 } } },
    log: { level: 'warn', pretty: false },
  };
  const configFile = join(dir, 'parley.yaml');
  writeFileSync(configFile, `# Written by bench/server-parley-archive.ts; JSON is YAML.\n${JSON.stringify(config, null, 2)}\n`);

  const started = Date.now();
  const database = await openDatabase({ driver: 'sqlite', path: dbFile });
  try {
    const accounts = await openAccounts(database, { scramIterations: SCRAM_ITERATIONS });
    await pool(ctx.accounts, 8, (i) => accounts.create(ctx.domain, `${ctx.userPrefix}${i}`, ctx.password));
  } finally {
    await database.close();
  }
  ctx.say(`created ${ctx.accounts} accounts in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const filled = shape.messages > 0 ? fillArchive(dbFile, ctx, shape) : { messages: 0, seconds: 0 };
  const fill: FillReport = { ...filled, dbBytes: readFileSize(dbFile) };
  if (shape.messages > 0) ctx.say(`filled the archive of ${ctx.userPrefix}${shape.owner} with ${shape.messages.toLocaleString('en-US')} messages in ${fill.seconds.toFixed(1)} s (${(fill.dbBytes / 2 ** 20).toFixed(0)} MiB)`);

  const child = spawnServer(process.execPath, [cli, 'start', '--config', configFile], { cwd: dir, logFile: join(dir, 'parley.log') });
  const halt = async (): Promise<void> => {
    untrack();
    await stopChild(child);
  };
  const stop = async (): Promise<void> => {
    await halt();
    removeDir(dir);
  };
  const untrack = trackForCleanup(stop);
  try {
    await waitForPort('127.0.0.1', port, child, 60_000);
  } catch (err) {
    await halt();
    throw startFailure(err, dir);
  }
  return {
    name: 'parley',
    label: `Parley ${pkg.version}`,
    endpoint: { host: '127.0.0.1', port, domain: ctx.domain, tls: ctx.tls },
    pid: child.process.pid,
    notes: [
      `node ${process.versions.node}, SQLite, log level warn, rate limits raised out of the way`,
      `SCRAM keys PBKDF2 ${SCRAM_ITERATIONS} iterations; PLAIN is checked against the SHA-256 keys`,
      'MUC message rate limit raised out of the way',
      ...(shape.messages > 0
        ? [`archive of ${ctx.userPrefix}${shape.owner} prefilled with ${shape.messages.toLocaleString('en-US')} messages (${fill.seconds.toFixed(1)} s, ${(fill.dbBytes / 2 ** 20).toFixed(0)} MiB database)`]
        : []),
    ],
    logFile: child.logFile,
    stop,
    fill,
  };
}

function readFileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}
