// A node's inbound stanzas: a Redis stream per node. Other nodes append (XADD, on their command
// connection, so in the order they send); this node reads with one blocking XREAD on a dedicated
// connection and hands each entry, in order, to its handler. How far it got (the cursor) is saved
// so that a node cleaning up after this one knows what was never handled.
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import type { ClusterKeys } from './keys.js';

/** One inbox entry: `k` is its kind (s: to a session, r: route, c: close a session). */
export interface InboxEntry {
  k: string;
  /** The sending node. */
  n: string;
  /** The session id and full JID, for `s` and `c`. */
  s?: string;
  j?: string;
  /** The stanza, serialised. */
  x?: string;
  /** Stream error condition and text, for `c`. */
  c?: string;
  t?: string;
}

/** Stanzas queued for Redis and not yet written; beyond this, new ones are refused (and logged). */
const MAX_IN_FLIGHT = 50_000;
/** After a crash, at most the entries of this last interval are handled twice (never lost). */
const CURSOR_INTERVAL_MS = 100;

type XreadReply = [string, [string, string[]][]][] | null;

export class Inbox {
  private inFlight = 0;
  private reading: Promise<void> | undefined;
  private stopping = false;
  private handled: string | undefined;
  private cursorTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly cmd: Redis,
    private readonly blocker: Redis,
    private readonly keys: ClusterKeys,
    private readonly node: string,
    private readonly maxLength: number,
    private readonly log: Logger,
  ) {}

  /** Appends an entry to another node's inbox. */
  async append(node: string, entry: InboxEntry): Promise<void> {
    if (this.inFlight >= MAX_IN_FLIGHT) {
      this.log.warn({ to: node }, 'too many stanzas waiting for Redis; one dropped');
      return;
    }
    const fields: string[] = [];
    for (const [name, value] of Object.entries(entry)) if (value !== undefined) fields.push(name, value as string);
    this.inFlight++;
    try {
      await this.cmd.xadd(this.keys.inbox(node), 'MAXLEN', '~', String(this.maxLength), '*', ...fields);
    } catch (err) {
      this.log.warn({ err, to: node }, 'sending a stanza to another node failed');
    } finally {
      this.inFlight--;
    }
  }

  /** Starts reading this node's inbox from its beginning. */
  start(handle: (entry: InboxEntry) => Promise<void>): void {
    this.reading = this.read(handle);
  }

  /** Stops reading, with the cursor saved where reading stopped. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.blocker.disconnect();
    await this.reading;
    if (this.cursorTimer) clearTimeout(this.cursorTimer);
    if (this.handled !== undefined) await this.cmd.set(this.keys.cursor(this.node), this.handled).catch(() => undefined);
  }

  private async read(handle: (entry: InboxEntry) => Promise<void>): Promise<void> {
    const key = this.keys.inbox(this.node);
    let last = '0-0';
    while (!this.stopping) {
      let res: XreadReply;
      try {
        res = (await this.blocker.xread('COUNT', 500, 'BLOCK', 1000, 'STREAMS', key, last)) as XreadReply;
      } catch (err) {
        if (this.stopping) return;
        this.log.warn({ err }, 'reading the cluster inbox failed; retrying');
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (!res) continue;
      for (const [, entries] of res) {
        for (const [id, fields] of entries) {
          last = id;
          try {
            await handle(fieldsOf(fields));
          } catch (err) {
            this.log.warn({ err }, 'a stanza from another node failed');
          }
        }
      }
      this.saveCursor(last);
    }
  }

  private saveCursor(id: string): void {
    this.handled = id;
    if (this.cursorTimer) return;
    this.cursorTimer = setTimeout(() => {
      this.cursorTimer = undefined;
      if (this.handled !== undefined) this.cmd.set(this.keys.cursor(this.node), this.handled).catch(() => undefined);
    }, CURSOR_INTERVAL_MS);
    this.cursorTimer.unref();
  }
}

/** The entries of a (dead) node's inbox after the last one it handled, in order. */
export async function* unhandled(cmd: Redis, keys: ClusterKeys, node: string): AsyncGenerator<InboxEntry> {
  let after = (await cmd.get(keys.cursor(node))) ?? '0-0';
  for (;;) {
    const batch = await cmd.xrange(keys.inbox(node), `(${after}`, '+', 'COUNT', 500);
    if (batch.length === 0) return;
    for (const [id, fields] of batch) {
      after = id;
      yield fieldsOf(fields);
    }
  }
}

function fieldsOf(fields: string[]): InboxEntry {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) out[fields[i]!] = fields[i + 1]!;
  return out as unknown as InboxEntry;
}
