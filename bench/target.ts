// What every scenario gets: where the server listens, its accounts, and its process (for CPU
// and memory), plus a small error tally.
import type { Endpoint } from './xmpp-client.js';

export interface LoadTarget {
  endpoint: Endpoint;
  userPrefix: string;
  password: string;
  /** The root of the server's process tree, for RSS and CPU; undefined when unknown. */
  pid: number | undefined;
  /** The most CPU the server can use, % of one core (100 for one event loop). */
  capacityPct: number;
}

export function account(t: LoadTarget, i: number): { user: string; password: string } {
  return { user: `${t.userPrefix}${i}`, password: t.password };
}

/** Counts failures and keeps the first few distinct messages. */
export class Errors {
  count = 0;
  readonly samples: string[] = [];

  add(err: unknown): void {
    this.count++;
    const message = err instanceof Error ? err.message : String(err);
    if (this.samples.length < 3 && !this.samples.includes(message)) this.samples.push(message);
  }
}
