// Runs spec/e2e/clients/slixmpp_pep.py, an interactive slixmpp session with its pubsub, PEP,
// avatar and bookmark plugins: JSON commands go in on stdin, results and pubsub events come back
// as JSON lines.
import { fileURLToPath } from 'node:url';
import { baseArguments, CommandDriver } from './driver-process.js';

export type { DriverEvent } from './driver-process.js';

const DRIVER = fileURLToPath(new URL('../../../../spec/e2e/clients/slixmpp_pep.py', import.meta.url));

export class SlixPep extends CommandDriver {
  constructor(opts: { host: string; port: number; jid: string; password: string; resource?: string; timeout?: number }) {
    super(DRIVER, baseArguments({ ...opts, timeout: opts.timeout ?? 45 }));
  }

  /** Asks the driver to leave; kills it if it has not within 8 s. */
  async disconnect(): Promise<void> {
    if (this.done) return;
    this.write({ cmd: 'disconnect' });
    await Promise.race([this.exited, new Promise((r) => setTimeout(r, 8_000))]);
    await this.kill();
  }
}
