// ejabberd under test: `ejabberdctl foreground` with its own config dir, spool (Mnesia), logs and
// Erlang node name, all in a temp dir, so the system instance and its config are never touched.
// As root, ejabberdctl runs the node as the `ejabberd` user, so the temp dir is handed to it.
import { chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { findDescendant } from './proc.js';
import {
  findExecutable,
  freePort,
  registerAccounts,
  removeDir,
  sleep,
  spawnServer,
  startFailure,
  startTracked,
  tempDir,
  type LaunchContext,
  type PreparedServer,
} from './server-common.js';
import { SCRAM_ITERATIONS } from './server-parley.js';

export function ejabberdctlBinary(): string | undefined {
  return findExecutable(process.env.BENCH_EJABBERDCTL ?? 'ejabberdctl');
}

function ejabberdVersion(): string {
  for (const dir of ['/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/usr/lib']) {
    try {
      const m = readdirSync(dir).map((n) => /^ejabberd-(\d[\w.]*)$/.exec(n)).find((x) => x !== null);
      if (m) return m[1]!;
    } catch {
      // not this layout
    }
  }
  return '';
}

/** uid, gid and home of a system user, from /etc/passwd. */
function systemUser(name: string): { uid: number; gid: number; home: string } | undefined {
  try {
    const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith(`${name}:`));
    if (!line) return undefined;
    const f = line.split(':');
    return { uid: Number(f[2]), gid: Number(f[3]), home: f[5]! };
  } catch {
    return undefined;
  }
}

function chownTree(path: string, uid: number, gid: number): void {
  chownSync(path, uid, gid);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, entry.name);
    if (entry.isDirectory()) chownTree(p, uid, gid);
    else chownSync(p, uid, gid);
  }
}

export async function prepareEjabberd(ctx: LaunchContext): Promise<PreparedServer> {
  const ctl = ejabberdctlBinary();
  if (ctl === undefined) throw new Error('ejabberd is not installed (apt-get install ejabberd, or set BENCH_EJABBERDCTL)');
  const dir = tempDir('ejabberd');
  const spool = join(dir, 'spool');
  const logs = join(dir, 'logs');
  mkdirSync(spool);
  mkdirSync(logs);
  const certFile = join(dir, 'server.pem');
  copyFileSync(ctx.cert.combinedFile, certFile);
  if (existsSync('/etc/ejabberd/inetrc')) copyFileSync('/etc/ejabberd/inetrc', join(dir, 'inetrc'));
  // One node name for every start: Mnesia's schema (and so the accounts) belongs to it.
  const node = `parleybench${process.pid}@localhost`;
  writeFileSync(
    join(dir, 'ejabberdctl.cfg'),
    `# Written by bench/server-ejabberd.ts.\nERLANG_NODE=${node}\nINET_DIST_INTERFACE=127.0.0.1\nEJABBERD_PID_PATH=${join(dir, 'ejabberd.pid')}\n` +
      `ERL_MAX_PORTS=${Math.max(65536, ctx.openFiles)}\nERL_PROCESSES=1000000\n`,
  );
  const user = process.getuid?.() === 0 ? systemUser('ejabberd') : undefined;
  if (process.getuid?.() === 0 && user === undefined) throw new Error('running as root but there is no ejabberd user for ejabberdctl to switch to');
  const notes: string[] = [];
  const setpriv = user === undefined ? undefined : findExecutable('setpriv');
  if (user !== undefined && setpriv === undefined) notes.push('setpriv not found: ejabberdctl switched user with su, which may have lowered its open-files limit');

  let runs = 0;
  let registered = false;
  return {
    name: 'ejabberd',
    label: `ejabberd ${ejabberdVersion()}`.trim(),
    capacityPct: 100 * cpus().length,
    notes: [
      `Erlang node ${node}, Mnesia, open-files limit ${ctx.openFiles}, log level warning, no shapers, listen backlog 1024 (default 5)`,
      `SCRAM-SHA-1 keys PBKDF2 ${SCRAM_ITERATIONS} iterations (auth_password_format: scram), stored`,
      ...notes,
    ],
    async start() {
      const port = await freePort();
      // Shapers and max_user_sessions are left out, so nothing is rate limited (as on the others).
      // The listen backlog defaults to 5, which drops SYNs under many concurrent logins (the
      // retransmits cost seconds); 1024 is in line with Node's 511 and Prosody's 128.
      const config = `# Written by bench/server-ejabberd.ts for one benchmark run.
hosts:
  - ${JSON.stringify(ctx.domain)}
loglevel: warning
log_rotate_count: 0
certfiles:
  - ${JSON.stringify(certFile)}
listen:
  -
    port: ${port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    backlog: 1024
${ctx.tls === 'direct' ? '    tls: true' : '    starttls_required: true'}
auth_method: [internal]
auth_password_format: scram
auth_scram_hash: sha
registration_timeout: infinity
acl:
  local:
    user_regexp: ""
access_rules:
  register:
    allow: all
  local:
    allow: local
modules:
  mod_disco: {}
  mod_ping: {}
  mod_roster: {}
  mod_time: {}
  mod_version: {}
  mod_register:
    access: register
  # Group chat for the muc phase, on conference.<domain> as on the others; no message interval.
  mod_muc:
    host: "conference.@HOST@"
    access_create: all
    max_users: 1000
    max_user_conferences: 1000
    min_message_interval: 0
    history_size: 0
`;
      writeFileSync(join(dir, 'ejabberd.yml'), config);
      const logFile = join(dir, `foreground-${++runs}.log`);
      writeFileSync(logFile, '');
      const args = ['--config-dir', dir, '--ctl-config', join(dir, 'ejabberdctl.cfg'), '--config', join(dir, 'ejabberd.yml'), '--spool', spool, '--logs', logs, 'foreground'];
      let command = ctl;
      let env: NodeJS.ProcessEnv | undefined;
      if (user !== undefined) {
        // ejabberdctl run by root switches to the ejabberd user with su, whose PAM session resets
        // the open-files limit to init's (often 1024): the node then stops accepting at ~1000
        // connections. setpriv switches user without PAM, so ejabberd keeps the limit prlimit
        // set; ejabberdctl, already running as ejabberd, then starts the node directly.
        chownTree(dir, user.uid, user.gid);
        if (setpriv !== undefined) {
          command = setpriv;
          args.unshift(`--reuid=${user.uid}`, `--regid=${user.gid}`, '--init-groups', ctl);
          env = { ...process.env, HOME: user.home, USER: 'ejabberd', LOGNAME: 'ejabberd' };
        }
      }
      const child = spawnServer(command, args, { cwd: dir, logFile, env, openFiles: ctx.openFiles });
      const running = await startTracked(child, {
        port,
        timeoutMs: 60_000,
        dir,
        graceMs: 15_000,
        // SIGTERM to beam.smp is a clean init:stop(); the group signal catches the wrappers.
        signalAlso: async () => {
          for (let i = 0; i < 50; i++) {
            const beam = findDescendant(child.process.pid!, 'beam.smp');
            if (beam !== undefined) return beam;
            await sleep(100);
          }
          return undefined;
        },
      });
      const endpoint = { host: '127.0.0.1', port, domain: ctx.domain, tls: ctx.tls };
      if (!registered) {
        try {
          await registerAccounts(endpoint, { ...ctx, say: (l) => ctx.say(`ejabberd: ${l}`) });
          registered = true;
        } catch (err) {
          await running.stop();
          throw startFailure(err, dir);
        }
      }
      return { endpoint, pid: running.pid, logFile: join(logs, 'ejabberd.log'), stop: running.stop, died: running.died };
    },
    async dispose() {
      removeDir(dir);
    },
  };
}
