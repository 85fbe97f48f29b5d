// Runs one of the python client drivers (spec/e2e/clients/*_driver.py, slixmpp_sm.py) as a child
// process and reads its JSON-lines report: `{"event":"bound","jid":…}`, `{"event":"pong"}`,
// `{"event":"message","from":…,"body":…}`, `{"event":"error",…}`, `{"event":"done"}`.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { baseArguments, DriverProcess, SYSTEM_PYTHON, type DriverEvent } from './driver-process.js';

export { SYSTEM_PYTHON } from './driver-process.js';
export type { DriverEvent } from './driver-process.js';

export const INSTALL_HINT = 'apt-get install python3-slixmpp python3-nbxmpp';

/** Whether the system python can import these modules (checked once per set). */
export function pythonHas(...modules: string[]): boolean {
  const key = modules.join(',');
  let ok = importable.get(key);
  if (ok === undefined) {
    const r = spawnSync(SYSTEM_PYTHON, ['-E', '-s', '-c', modules.map((m) => `import ${m}`).join('; ')], { stdio: 'ignore', timeout: 10_000, cwd: '/' });
    ok = r.status === 0;
    importable.set(key, ok);
  }
  return ok;
}
const importable = new Map<string, boolean>();

export interface DriverOptions {
  host: string;
  port: number;
  /** Bare JID. */
  jid: string;
  password: string;
  mechanism: string;
  mode: 'starttls' | 'direct';
  resource?: string;
  /** Actions, in order: 'ping', 'send', TO, BODY, 'recv', 'wait'. */
  actions?: string[];
  /** Extra driver flags, e.g. ['--tls-max', '1.2']. */
  extra?: string[];
  /** Seconds after which the driver gives up by itself. */
  timeout?: number;
}

export class PythonClient extends DriverProcess {
  constructor(script: URL | string, opts: DriverOptions) {
    super(
      typeof script === 'string' ? script : fileURLToPath(script),
      [
        ...baseArguments({ ...opts, timeout: opts.timeout ?? 15 }),
        '--mechanism', opts.mechanism,
        '--mode', opts.mode,
        ...(opts.extra ?? []),
      ],
      opts.actions ?? [],
    );
  }

  /**
   * The first event of this name, already received or to come. Rejects when the driver reports
   * an error first (unless `event` is 'error'), exits without it, or `timeoutMs` passes; the
   * message carries everything the driver said.
   */
  waitFor(event: string, timeoutMs = 15_000): Promise<DriverEvent> {
    return this.waitUntil((e) => e.event === event, { timeoutMs, what: `'${event}'`, failOnError: event !== 'error' });
  }
}
