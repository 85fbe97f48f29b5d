// Prosody under test: `prosody -F --config X` in the foreground with a throwaway config and data
// dir, never the system-wide config or a running instance. Accounts are made by in-band
// registration (loopback is on Prosody's registration allowlist, so it is not throttled).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  findExecutable,
  freePort,
  registerAccounts,
  removeDir,
  spawnServer,
  startFailure,
  startTracked,
  tempDir,
  type LaunchContext,
  type PreparedServer,
} from './server-common.js';
import { SCRAM_ITERATIONS } from './server-parley.js';

export function prosodyBinary(): string | undefined {
  return findExecutable(process.env.BENCH_PROSODY ?? 'prosody');
}

function prosodyVersion(): string {
  try {
    return readFileSync('/usr/lib/prosody/prosody.version', 'utf8').trim();
  } catch {
    return '';
  }
}

const lua = (s: string): string => JSON.stringify(s); // a JSON string is a valid Lua string

export async function prepareProsody(ctx: LaunchContext): Promise<PreparedServer> {
  const binary = prosodyBinary();
  if (binary === undefined) throw new Error('prosody is not installed (apt-get install prosody, or set BENCH_PROSODY)');
  const dir = tempDir('prosody');
  const data = join(dir, 'data');
  mkdirSync(data);
  mkdirSync(join(dir, 'certs'));
  let runs = 0;
  let registered = false;
  return {
    name: 'prosody',
    label: `Prosody ${prosodyVersion()}`.trim(),
    capacityPct: 100,
    notes: [
      `internal_hashed storage, epoll backend, open-files limit ${ctx.openFiles}, log level warn, no mod_limits`,
      `SCRAM-SHA-1 keys PBKDF2 ${SCRAM_ITERATIONS} iterations (default_iteration_count), stored`,
    ],
    async start() {
      const port = await freePort();
      const logFile = join(dir, `prosody-${++runs}.log`);
      const ssl = `{ certificate = ${lua(ctx.cert.certFile)}; key = ${lua(ctx.cert.keyFile)}; }`;
      const config = `-- Written by bench/server-prosody.ts for one benchmark run.
run_as_root = true
pidfile = ${lua(join(dir, 'prosody.pid'))}
data_path = ${lua(data)}
certificates = ${lua(join(dir, 'certs'))}
log = { warn = ${lua(logFile)} }
-- epoll: no select() ceiling of 1024 sockets; the open-files limit is raised with prlimit.
network_backend = "epoll"
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { ${ctx.tls === 'direct' ? '' : port} }
c2s_direct_tls_ports = { ${ctx.tls === 'direct' ? port : ''} }
s2s_ports = { }
-- The same small feature set on every server: no carbons, MAM, smacks or limits.
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "time"; "version"; "register"; "presence"; }
modules_disabled = { "s2s"; "offline"; }
c2s_require_encryption = true
allow_registration = true
authentication = "internal_hashed"
default_iteration_count = ${SCRAM_ITERATIONS}
storage = "internal"
ssl = ${ssl}

VirtualHost ${lua(ctx.domain)}
  ssl = ${ssl}

-- Group chat for the muc phase, on conference.<domain> as on the others; no history on join.
Component ${lua(`conference.${ctx.domain}`)} "muc"
  restrict_room_creation = false
  max_history_messages = 0
`;
      const configFile = join(dir, 'prosody.cfg.lua');
      writeFileSync(configFile, config);
      const child = spawnServer(binary, ['-F', '--config', configFile], { cwd: dir, logFile, openFiles: ctx.openFiles });
      const running = await startTracked(child, { port, timeoutMs: 30_000, dir });
      const endpoint = { host: '127.0.0.1', port, domain: ctx.domain, tls: ctx.tls };
      if (!registered) {
        try {
          await registerAccounts(endpoint, { ...ctx, say: (l) => ctx.say(`prosody: ${l}`) });
          registered = true;
        } catch (err) {
          await running.stop();
          throw startFailure(err, dir);
        }
      }
      return { endpoint, pid: running.pid, logFile, stop: running.stop, died: running.died };
    },
    async dispose() {
      removeDir(dir);
    },
  };
}
