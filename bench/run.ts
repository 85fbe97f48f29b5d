// `npm run bench`: Parley, Prosody and ejabberd side by side on this machine, in one run, over
// real TLS sockets (ARCHITECTURE §12). Every figure printed is measured in this run.
import { cpus, loadavg, totalmem, release } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OptionsError, parseOptions, USAGE, type BenchOptions, type TargetName } from './options.js';
import { measureIdle, measureLogins, measureMessages, probe, type LoadTarget } from './load.js';
import { openFilesLimit } from './proc.js';
import { formatDetails, formatExtraTable, formatTable, writeJson, type ServerResult } from './report.js';
import { measureMam } from './mam.js';
import { measureMuc } from './muc.js';
import { ARCHIVE_SHAPE, launchParleyWithArchive, type ArchiveShape } from './server-parley-archive.js';
import { removeDir, sleep, stopAll, tempDir, writeCertificate, type LaunchContext, type ServerUnderTest } from './server-common.js';
import { launchEjabberd, ejabberdctlBinary } from './server-ejabberd.js';
import { launchParley } from './server-parley.js';
import { launchProsody, prosodyBinary } from './server-prosody.js';

const LAUNCHERS: Record<TargetName, (ctx: LaunchContext) => Promise<ServerUnderTest>> = {
  parley: launchParley,
  prosody: launchProsody,
  ejabberd: launchEjabberd,
};

const say = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Which servers to start, in order: 'all' means Parley plus whichever others are installed. */
function resolveTargets(opts: BenchOptions): Array<{ name: TargetName; missing?: string }> {
  const installed: Record<TargetName, boolean> = { parley: true, prosody: prosodyBinary() !== undefined, ejabberd: ejabberdctlBinary() !== undefined };
  const wanted: TargetName[] = opts.targets === 'all' ? ['parley', 'prosody', 'ejabberd'] : opts.targets;
  return wanted.map((name) =>
    installed[name] ? { name } : { name, missing: `${name} is not installed (no binary found; set BENCH_${name === 'prosody' ? 'PROSODY' : 'EJABBERDCTL'} to its path)` },
  );
}

/** The prefilled archive a launch made (launchParleyWithArchive), for the mam phase. */
interface WithArchive {
  fill?: { seconds: number; messages: number };
}

const archiveShape = (opts: BenchOptions): ArchiveShape => ({ ...ARCHIVE_SHAPE, messages: opts.mamMessages });

async function benchmark(server: ServerUnderTest & WithArchive, opts: BenchOptions, accounts: number): Promise<ServerResult> {
  const result: ServerResult = { name: server.name, label: server.label, notes: server.notes };
  const target: LoadTarget = { endpoint: server.endpoint, userPrefix: opts.userPrefix, password: opts.password, pid: server.pid };
  result.tls = await probe(target);
  const serverLimit = server.pid === undefined ? undefined : openFilesLimit(server.pid);
  const needed = (opts.phases.includes('idle') ? opts.connections : 0) + 2 * opts.pairs + opts.concurrency + 64;
  if (serverLimit !== undefined && serverLimit < needed) {
    const warning = `warning: the server's open-files limit is ${serverLimit}, below the ${needed} this run needs; expect refused connections`;
    say(`  ${warning}`);
    result.notes = [...result.notes, warning];
  }
  const phase = async <T>(name: string, run: () => Promise<T>): Promise<T | { error: string }> => {
    say(`  ${name}...`);
    try {
      const r = await run();
      await sleep(500); // let the server finish closing sessions before the next phase
      return r;
    } catch (err) {
      say(`  ${name} failed: ${message(err)}`);
      return { error: message(err) };
    }
  };
  if (opts.phases.includes('idle')) {
    const pid = server.pid;
    result.idle =
      pid === undefined
        ? { error: 'the server process id is unknown (pass --pid)' }
        : await phase('idle', () => measureIdle({ ...target, pid }, { connections: opts.connections }));
  }
  if (opts.phases.includes('logins')) {
    result.logins = await phase('logins', () => measureLogins(target, { seconds: opts.duration, concurrency: opts.concurrency, accounts }));
  }
  if (opts.phases.includes('messages')) {
    const warmupSeconds = Math.min(2, opts.duration / 5);
    result.messages = await phase('messages', () => measureMessages(target, { seconds: opts.duration, warmupSeconds, pairs: opts.pairs, window: opts.window }));
  }
  if (opts.phases.includes('mam')) {
    // Only Parley's archive can be filled before start (straight into its SQLite file).
    if (server.fill === undefined || server.fill.messages === 0) result.notes = [...result.notes, 'mam: not measured (the archive is prefilled for Parley only)'];
    else {
      const fillSeconds = server.fill.seconds;
      result.mam = await phase('mam', () =>
        measureMam(target, archiveShape(opts), { seconds: opts.duration, clients: opts.mamClients, pageSize: opts.mamPage, fillSeconds }),
      );
    }
  }
  if (opts.phases.includes('muc')) {
    const warmupSeconds = Math.min(2, opts.duration / 5);
    result.muc = await phase('muc', () =>
      measureMuc(target, { seconds: opts.duration, warmupSeconds, occupants: opts.mucOccupants, senders: opts.mucSenders, window: opts.mucWindow }),
    );
  }
  return result;
}

async function main(): Promise<number> {
  let opts: BenchOptions | 'help';
  try {
    opts = parseOptions(process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`bench: ${message(err)}\n${err instanceof OptionsError ? '' : '\n'}${USAGE}`);
    return 1;
  }
  if (opts === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  const began = Date.now();
  const loadAtStart = loadavg();
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const outFile = opts.out === '.bench/latest.json' ? resolve(root, opts.out) : resolve(opts.out);

  // Accounts prefix0.. serve every phase: idle sessions, message pairs, login workers.
  const accounts = Math.max(
    opts.phases.includes('idle') ? opts.connections : 1,
    opts.phases.includes('messages') ? opts.pairs * 2 : 1,
    opts.phases.includes('logins') ? opts.concurrency : 1,
    opts.phases.includes('muc') ? opts.mucOccupants : 1,
    opts.phases.includes('mam') ? ARCHIVE_SHAPE.peers + 1 : 1,
    1,
  );
  const sockets = (opts.phases.includes('idle') ? opts.connections : 0) + opts.pairs * 2 + opts.concurrency + (opts.phases.includes('muc') ? opts.mucOccupants : 0) + 100;
  const limit = openFilesLimit();
  if (limit !== undefined && sockets > limit) {
    say(`warning: this run needs about ${sockets} open files but the limit is ${limit}; raise it (ulimit -n ${sockets * 2}) or lower --connections`);
  }

  const results: ServerResult[] = [];
  let servers: Array<{ name: string; launch: () => Promise<ServerUnderTest>; missing?: string }>;
  let certDir: string | undefined;
  if (opts.external) {
    const ext = opts.external;
    const o = opts;
    servers = [
      {
        name: 'external',
        launch: async () => {
          const endpoint = { host: ext.host, port: ext.port, domain: o.domain, tls: o.tls };
          if (ext.register) {
            const { registerAccounts } = await import('./server-common.js');
            await registerAccounts(endpoint, { userPrefix: o.userPrefix, password: o.password, accounts, say });
          }
          return {
            name: 'external',
            label: `${ext.host}:${ext.port}`,
            endpoint,
            pid: ext.pid,
            notes: [`an already running server; accounts ${o.userPrefix}0..${o.userPrefix}${accounts - 1}`],
            logFile: undefined,
            stop: async () => undefined,
          };
        },
      },
    ];
  } else {
    certDir = tempDir('cert');
    const cert = writeCertificate(certDir, opts.domain);
    const ctx: LaunchContext = { domain: opts.domain, tls: opts.tls, userPrefix: opts.userPrefix, password: opts.password, accounts, cert, say: (l) => say(`  ${l}`) };
    // The mam phase needs Parley's archive filled before it starts, the muc phase its MUC rate limit off.
    const shape = opts.phases.includes('mam') ? archiveShape(opts) : opts.phases.includes('muc') ? { ...archiveShape(opts), messages: 0 } : undefined;
    servers = resolveTargets(opts).map(({ name, missing }) => ({
      name,
      missing,
      launch: () => (name === 'parley' && shape !== undefined ? launchParleyWithArchive(ctx, shape) : LAUNCHERS[name](ctx)),
    }));
  }

  const cpu = cpus();
  const loads = [
    opts.phases.includes('idle') ? `idle ${opts.connections} sessions` : undefined,
    opts.phases.includes('logins') ? `logins ${opts.duration} s x ${opts.concurrency} workers` : undefined,
    opts.phases.includes('messages') ? `messages ${opts.duration} s x ${opts.pairs} pairs x ${opts.window} in flight` : undefined,
    opts.phases.includes('mam')
      ? `mam ${opts.duration} s of random ${opts.mamPage}-item pages (before/after, with or without a with filter) by ${opts.mamClients} sessions on a ${opts.mamMessages}-message archive (Parley only)`
      : undefined,
    opts.phases.includes('muc')
      ? `muc ${opts.duration} s of groupchat in one ${opts.mucOccupants}-occupant room, ${opts.mucSenders} senders x ${opts.mucWindow} in flight`
      : undefined,
  ].filter((x) => x !== undefined);
  process.stdout.write(
    `machine: ${cpu.length} x ${cpu[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Linux ${release()}, node ${process.versions.node}, ` +
      `load average ${loadAtStart.map((x) => x.toFixed(2)).join(' ')}\n` +
      `method: ${opts.tls === 'direct' ? 'direct TLS' : 'STARTTLS'} on loopback, SASL PLAIN over TLS for every server, a full TLS handshake per login (no resumption);\n` +
      `        ${loads.join(', ')};\n` +
      `        the load generator shares this machine with the server under test\n`,
  );

  for (const s of servers) {
    if (s.missing !== undefined) {
      say(`${s.name}: skipped: ${s.missing}`);
      results.push({ name: s.name, label: s.name, error: s.missing, notes: [] });
      continue;
    }
    say(`${s.name}: starting`);
    let server: ServerUnderTest & WithArchive;
    try {
      server = await s.launch();
    } catch (err) {
      say(`${s.name}: could not start: ${message(err)}`);
      results.push({ name: s.name, label: s.name, error: `could not start: ${message(err)}`, notes: [] });
      continue;
    }
    say(`${server.label}: listening on ${server.endpoint.host}:${server.endpoint.port}${server.pid ? `, pid ${server.pid}` : ''}`);
    try {
      results.push(await benchmark(server, opts, accounts));
    } catch (err) {
      say(`${server.label}: failed: ${message(err)}`);
      results.push({ name: server.name, label: server.label, error: message(err), notes: server.notes });
    } finally {
      await server.stop();
    }
  }
  if (certDir !== undefined) removeDir(certDir);

  const seconds = (Date.now() - began) / 1000;
  const extra = formatExtraTable(results);
  process.stdout.write(`\n${formatTable(results)}\n\n${extra === '' ? '' : `${extra}\n\n`}${formatDetails(results)}\n\ntotal run time ${seconds.toFixed(1)} s\n`);
  writeJson(outFile, {
    startedAt: new Date(began).toISOString(),
    runSeconds: seconds,
    machine: {
      cpus: cpu.length,
      cpuModel: cpu[0]?.model.trim(),
      memoryBytes: totalmem(),
      kernel: release(),
      node: process.versions.node,
      loadAverageAtStart: loadAtStart,
      loadAverageAtEnd: loadavg(),
    },
    method: {
      tls: opts.tls,
      sasl: 'PLAIN over TLS, for every server',
      tlsResumption: false,
      loopback: true,
      sharedMachine: 'the load generator runs on the same machine as the server',
    },
    options: { ...opts, external: opts.external ?? null, password: undefined },
    servers: results,
  });
  say(`results written to ${outFile}`);
  const anyFailed = results.some((r) => r.error !== undefined || [r.idle, r.logins, r.messages, r.mam, r.muc].some((x) => x !== undefined && 'error' in x));
  return anyFailed ? 3 : 0;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    say(`\n${sig}: stopping the servers`);
    void stopAll().finally(() => process.exit(130));
  });
}

main().then(
  async (code) => {
    await stopAll();
    process.exit(code);
  },
  async (err: unknown) => {
    say(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    await stopAll();
    process.exit(3);
  },
);
