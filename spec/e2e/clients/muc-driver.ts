// Runs one of the interactive MUC drivers (spec/e2e/clients/slixmpp_muc.py, nbxmpp_muc.py): JSON
// commands go in on stdin, every stanza the server sends comes back as a JSON event, in order.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SYSTEM_PYTHON, type DriverEvent } from './python-client.js';

export type { DriverEvent } from './python-client.js';

export const SLIXMPP_MUC = fileURLToPath(new URL('../../../../spec/e2e/clients/slixmpp_muc.py', import.meta.url));
export const NBXMPP_MUC = fileURLToPath(new URL('../../../../spec/e2e/clients/nbxmpp_muc.py', import.meta.url));

export interface MucDriverOptions {
  script: string;
  host: string;
  port: number;
  /** Bare JID. */
  jid: string;
  password: string;
  resource?: string;
  /** Seconds after which the driver gives up by itself. */
  timeout?: number;
}

type Predicate = (e: DriverEvent) => boolean;

export class MucDriver {
  readonly events: DriverEvent[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;
  private exitCode: number | null | undefined;
  private readonly listeners = new Set<() => void>();
  private tags = 0;

  constructor(opts: MucDriverOptions) {
    const args = [
      opts.script,
      '--host', opts.host,
      '--port', String(opts.port),
      '--jid', opts.jid,
      '--password', opts.password,
      '--timeout', String(opts.timeout ?? 60),
      ...(opts.resource ? ['--resource', opts.resource] : []),
      ...(process.env.PARLEY_E2E_DEBUG ? ['--debug'] : []),
    ];
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
          // COMPAT(slixmpp 1.8.3): join_muc_wait prints each history message's delay to stdout.
          this.events.push({ event: 'unparsed', line });
        }
        this.notify();
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk;
      if (process.env.PARLEY_E2E_DEBUG) process.stderr.write(chunk);
    });
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

  /** The bound full JID, once logged in. */
  async bound(timeoutMs = 15_000): Promise<string> {
    return String((await this.waitFor((e) => e.event === 'bound', { timeoutMs, what: 'bound' })).jid);
  }

  /** How many events have arrived: pass it as `after` to look only at later ones. */
  mark(): number {
    return this.events.length;
  }

  /** The events of one kind (and matching `pred`) from index `after` on. */
  since(after: number, event?: string, pred: Predicate = () => true): DriverEvent[] {
    return this.events.slice(after).filter((e) => (event === undefined || e.event === event) && pred(e));
  }

  /** Sends a command and waits for its result event. */
  async cmd(command: Record<string, unknown>, timeoutMs = 15_000): Promise<DriverEvent> {
    const tag = `t${++this.tags}`;
    const after = this.mark();
    this.child.stdin!.write(`${JSON.stringify({ ...command, tag })}\n`);
    return this.waitFor((e) => e.event === 'result' && e.tag === tag, { after, timeoutMs, what: `result of ${JSON.stringify(command).slice(0, 200)}` });
  }

  /**
   * The first event (from index `after`, 0 by default) matching `pred`, already received or to
   * come. Rejects, with everything the driver said, when the driver reports an error or exits
   * first, or `timeoutMs` passes.
   */
  waitFor(pred: Predicate, opts: { after?: number; timeoutMs?: number; what?: string } = {}): Promise<DriverEvent> {
    const after = opts.after ?? 0;
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const what = opts.what ?? pred.toString();
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = this.events.slice(after).find(pred);
        if (hit) return finish(() => resolve(hit));
        const err = this.events.slice(after).find((e) => e.event === 'error');
        if (err) return finish(() => reject(this.failure(`driver reported an error while waiting for ${what}`)));
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

  /** Closes the stream and waits for the driver to exit. */
  async disconnect(): Promise<void> {
    if (this.exitCode !== undefined) return;
    this.child.stdin!.write(`${JSON.stringify({ cmd: 'disconnect' })}\n`);
    const done = await Promise.race([this.exited, new Promise((r) => setTimeout(() => r('late'), 8_000))]);
    if (done === 'late') await this.kill();
  }

  /** Stops the driver (this child only) and waits for it to go. */
  async kill(): Promise<void> {
    if (this.exitCode === undefined) this.child.kill('SIGKILL');
    await this.exited;
  }

  failure(what: string): Error {
    const events = this.events.map((e) => JSON.stringify(e).slice(0, 600)).join('\n  ');
    const tail = this.stderr.split('\n').slice(-25).join('\n  ');
    return new Error(`${what}\nevents:\n  ${events || '(none)'}\nstderr (tail):\n  ${tail || '(empty)'}`);
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }
}
