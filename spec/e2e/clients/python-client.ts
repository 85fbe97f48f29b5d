// Runs one of the python client drivers (spec/e2e/clients/*_driver.py) as a child process and
// reads its JSON-lines report: `{"event":"bound","jid":…}`, `{"event":"pong"}`,
// `{"event":"message","from":…,"body":…}`, `{"event":"error",…}`, `{"event":"done"}`.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The Debian packages (python3-slixmpp, python3-nbxmpp) live in the system python, not pyenv's. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

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

export interface DriverEvent {
  event: string;
  [field: string]: unknown;
}

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

export class PythonClient {
  readonly events: DriverEvent[] = [];
  /** The driver's stderr; with PARLEY_E2E_DEBUG=1 this holds the wire exchange. */
  stderr = '';
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;
  private exitCode: number | null | undefined;
  private readonly listeners = new Set<() => void>();

  constructor(script: URL | string, opts: DriverOptions) {
    const path = typeof script === 'string' ? script : fileURLToPath(script);
    const args = [
      path,
      '--host', opts.host,
      '--port', String(opts.port),
      '--jid', opts.jid,
      '--password', opts.password,
      '--mechanism', opts.mechanism,
      '--mode', opts.mode,
      '--timeout', String(opts.timeout ?? 15),
      ...(opts.resource ? ['--resource', opts.resource] : []),
      ...(process.env.PARLEY_E2E_DEBUG ? ['--debug'] : []),
      ...(opts.extra ?? []),
      ...(opts.actions ?? []),
    ];
    // -I would also drop the script's directory from sys.path; -s skips ~/.local, -E the
    // PYTHON* variables a pyenv shell sets.
    this.child = spawn(SYSTEM_PYTHON, ['-E', '-s', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let buffered = '';
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (!line) continue;
        try {
          this.events.push(JSON.parse(line) as DriverEvent);
        } catch {
          this.events.push({ event: 'unparsed', line });
        }
        this.notify();
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
      if (process.env.PARLEY_E2E_DEBUG) process.stderr.write(chunk);
    });
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code) => {
        this.exitCode = code;
        this.notify();
        resolve(code);
      });
      this.child.on('error', (err) => {
        this.stderr += String(err);
        this.exitCode = null;
        this.notify();
        resolve(null);
      });
    });
  }

  /**
   * The first event of this name, already received or to come. Rejects when the driver reports
   * an error first (unless `event` is 'error'), exits without it, or `timeoutMs` passes; the
   * message carries everything the driver said.
   */
  waitFor(event: string, timeoutMs = 15_000): Promise<DriverEvent> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = this.events.find((e) => e.event === event);
        if (hit) return finish(() => resolve(hit));
        const err = event !== 'error' && this.events.find((e) => e.event === 'error');
        if (err) return finish(() => reject(this.failure(`driver reported an error while waiting for '${event}'`)));
        if (this.exitCode !== undefined) return finish(() => reject(this.failure(`driver exited (${this.exitCode}) without '${event}'`)));
        return false;
      };
      const finish = (settle: () => void): true => {
        clearTimeout(timer);
        this.listeners.delete(listener);
        settle();
        return true;
      };
      const listener = (): void => void check();
      const timer = setTimeout(() => finish(() => reject(this.failure(`no '${event}' within ${timeoutMs} ms`))), timeoutMs);
      if (!check()) this.listeners.add(listener);
    });
  }

  /** Closes the driver's stdin (ends a `wait` action). */
  endInput(): void {
    this.child.stdin?.end();
  }

  /** Stops the driver (this child only) and waits for it to go. */
  async kill(): Promise<void> {
    if (this.exitCode === undefined) this.child.kill('SIGKILL');
    await this.exited;
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }

  private failure(what: string): Error {
    const events = this.events.map((e) => JSON.stringify(e)).join('\n  ');
    const tail = this.stderr.split('\n').slice(-25).join('\n  ');
    return new Error(`${what}\nevents:\n  ${events || '(none)'}\nstderr (tail):\n  ${tail || '(empty)'}`);
  }
}
