// Runs spec/e2e/clients/slixmpp_im.py, an interactive slixmpp session: JSON commands go in on
// stdin, and every stanza the server sends comes back as a JSON event, in arrival order.
import { fileURLToPath } from 'node:url';
import { baseArguments, CommandDriver } from './driver-process.js';

export type { DriverEvent } from './driver-process.js';

const DRIVER = fileURLToPath(new URL('../../../../spec/e2e/clients/slixmpp_im.py', import.meta.url));

export interface SlixImOptions {
  host: string;
  port: number;
  /** Bare JID. */
  jid: string;
  password: string;
  resource?: string;
  /** Seconds after which the driver gives up by itself. */
  timeout?: number;
}

/** The stanza error a driver event reports. */
export interface WireError {
  type: string | null;
  condition: string | null;
  text: string | null;
  app: Array<{ name: string; ns: string | null }>;
}

export class SlixIm extends CommandDriver {
  constructor(opts: SlixImOptions) {
    super(DRIVER, baseArguments({ ...opts, timeout: opts.timeout ?? 45 }));
  }

  /** Sends unavailable presence (with `status`, if given), closes the stream and waits for the exit. */
  async disconnect(status?: string): Promise<void> {
    if (!this.done) {
      this.write(status === undefined ? { cmd: 'disconnect' } : { cmd: 'disconnect', status });
      const done = await Promise.race([this.exited, new Promise((r) => setTimeout(() => r('late'), 8_000))]);
      if (done === 'late') throw this.failure('the driver did not leave within 8 s of disconnect');
    }
  }
}
