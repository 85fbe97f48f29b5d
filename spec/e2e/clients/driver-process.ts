// A python e2e driver as a child process of the system python: its JSON-lines report on stdout
// becomes `events` (in arrival order), its stderr is kept for failure messages, and JSON
// commands go in on stdin. The wrappers (python-client.ts, slixmpp-im.ts, slixmpp-pep.ts) add
// what their driver's protocol means on top.
import { spawn, type ChildProcess } from 'node:child_process';

/** The Debian packages (python3-slixmpp, python3-nbxmpp) live in the system python, not pyenv's. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

export interface DriverEvent {
  event: string;
  [field: string]: unknown;
}

export type EventPredicate = (e: DriverEvent) => boolean;

export interface WaitOptions {
  /** Look only at events from this index on (see `mark()`); 0 by default. */
  after?: number;
  timeoutMs?: number;
  /** What is awaited, for the failure message. */
  what?: string;
  /** Whether an `error` event from the driver ends the wait (true by default). */
  failOnError?: boolean;
}

export class DriverProcess {
  readonly events: DriverEvent[] = [];
  /** The driver's stderr; with PARLEY_E2E_DEBUG=1 this holds the wire exchange. */
  stderr = '';
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;
  private exitCode: number | null | undefined;
  private readonly listeners = new Set<() => void>();

  /** Runs `script` with `options` (plus `--debug` when PARLEY_E2E_DEBUG is set), then `positionals`. */
  constructor(script: string, options: readonly string[], positionals: readonly string[] = []) {
    const argv = [script, ...options, ...(process.env.PARLEY_E2E_DEBUG ? ['--debug'] : []), ...positionals];
    // -I would also drop the script's directory from sys.path (the drivers import common.py
    // from there); -s skips ~/.local, -E the PYTHON* variables a pyenv shell sets.
    this.child = spawn(SYSTEM_PYTHON, ['-E', '-s', ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
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
    // A driver that already left must not turn a late write into an unhandled EPIPE.
    this.child.stdin!.on('error', () => undefined);
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

  /** Whether the process has ended. */
  get done(): boolean {
    return this.exitCode !== undefined;
  }

  /** How many events have arrived: pass it as `after` to look only at later ones. */
  mark(): number {
    return this.events.length;
  }

  /** One JSON command on the driver's stdin. */
  write(command: Record<string, unknown>): void {
    this.child.stdin!.write(`${JSON.stringify(command)}\n`);
  }

  /** Closes the driver's stdin. */
  endInput(): void {
    this.child.stdin?.end();
  }

  /**
   * The first event (from index `after`) matching `pred`, already received or to come. Rejects,
   * with everything the driver said, when the driver reports an error or exits first, or
   * `timeoutMs` passes.
   */
  waitUntil(pred: EventPredicate, opts: WaitOptions = {}): Promise<DriverEvent> {
    const after = opts.after ?? 0;
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const what = opts.what ?? pred.toString();
    const failOnError = opts.failOnError ?? true;
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = this.events.slice(after).find(pred);
        if (hit) return finish(() => resolve(hit));
        if (failOnError && this.events.slice(after).some((e) => e.event === 'error')) {
          return finish(() => reject(this.failure(`driver reported an error while waiting for ${what}`)));
        }
        if (this.exitCode !== undefined) return finish(() => reject(this.failure(`driver exited (${this.exitCode}) while waiting for ${what}`)));
        return false;
      };
      const finish = (settle: () => void): true => {
        clearTimeout(timer);
        this.listeners.delete(listener);
        settle();
        return true;
      };
      const listener = (): void => void check();
      const timer = setTimeout(() => finish(() => reject(this.failure(`nothing within ${timeoutMs} ms for ${what}`))), timeoutMs);
      if (!check()) this.listeners.add(listener);
    });
  }

  /** Stops the driver (this child only) and waits for it to go. */
  async kill(): Promise<void> {
    if (this.exitCode === undefined) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** Everything the driver said, for a failure message. */
  failure(what: string): Error {
    const events = this.events.map((e) => JSON.stringify(e).slice(0, 600)).join('\n  ');
    const tail = this.stderr.split('\n').slice(-25).join('\n  ');
    return new Error(`${what}\nevents:\n  ${events || '(none)'}\nstderr (tail):\n  ${tail || '(empty)'}`);
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }
}

/**
 * A driver speaking the command protocol of slixmpp_im.py / slixmpp_pep.py: `{"event":"bound"}`
 * once logged in, then `{"cmd":…,"tag":…}` lines answered by `{"event":"result","tag":…}`.
 */
export class CommandDriver extends DriverProcess {
  private tags = 0;

  /** See `waitUntil`. */
  waitFor(pred: EventPredicate, opts: WaitOptions = {}): Promise<DriverEvent> {
    return this.waitUntil(pred, opts);
  }

  /** The bound full JID, once logged in. */
  async bound(timeoutMs = 15_000): Promise<string> {
    return String((await this.waitFor((e) => e.event === 'bound', { timeoutMs, what: 'bound' })).jid);
  }

  /** The events of one kind (and matching `pred`) from index `after` on. */
  since(after: number, event?: string, pred: EventPredicate = () => true): DriverEvent[] {
    return this.events.slice(after).filter((e) => (event === undefined || e.event === event) && pred(e));
  }

  /** Sends a command and waits for its result event. */
  async cmd(command: Record<string, unknown>, timeoutMs = 12_000): Promise<DriverEvent> {
    const tag = `t${++this.tags}`;
    const after = this.mark();
    this.write({ ...command, tag });
    return this.waitFor((e) => e.event === 'result' && e.tag === tag, { after, timeoutMs, what: `result of ${JSON.stringify(command).slice(0, 200)}` });
  }
}

/** The options every driver takes (common.py `base_arguments`). */
export function baseArguments(opts: { host: string; port: number; jid: string; password: string; resource?: string; timeout: number }): string[] {
  return [
    '--host', opts.host,
    '--port', String(opts.port),
    '--jid', opts.jid,
    '--password', opts.password,
    '--timeout', String(opts.timeout),
    ...(opts.resource ? ['--resource', opts.resource] : []),
  ];
}
