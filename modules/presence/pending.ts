// Inbound subscription requests not yet answered: the "Pending In" half of a subscription state
// (RFC 6121 §3.1.3), kept durably with the complete request stanza, which is delivered again at
// each of the user's logins until the user approves or denies it.
import { limitedStatements, xml } from '../../lib/module-api.js';
import type { Database, Element, FastStatement, Migration, XmlAttrs } from '../../lib/module-api.js';

/** Beyond this serialised size, only the request itself is kept, not its extensions. */
export const MAX_STORED_REQUEST = 8 * 1024;

interface PendingRow {
  contact: string;
  stanza: string;
  created_at: number | string;
}

export const presenceMigrations: readonly Migration[] = [
  {
    version: 1,
    async up(db) {
      await db.schema
        .createTable('presence_pending')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('user', 'text', (c) => c.notNull())
        .addColumn('contact', 'text', (c) => c.notNull())
        .addColumn('stanza', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('presence_pending_pk', ['host', 'user', 'contact'])
        .execute();
    },
  },
  {
    version: 2,
    async up(db) {
      // Every login lists the user's requests oldest first (`list`). Without an index in that
      // order SQLite sorts through a temporary b-tree, whose page cache (about 85 KiB) is
      // allocated, filled and freed on each login: freed memory that stays resident and then
      // backs the buffers of the connections opened next.
      await db.schema.createIndex('presence_pending_age_idx').on('presence_pending').columns(['host', 'user', 'created_at', 'contact']).execute();
    },
  },
];

// Stored as JSON of the element tree: the module API has builders, not a parser, and this keeps
// the round trip exact.
type Node = string | { n: string; a: Record<string, string>; c: Node[] };

function toNode(el: Element): Node {
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(el.attrs as Record<string, unknown>)) {
    if (typeof v === 'string') attrs[k] = v;
    else if (typeof v === 'number') attrs[k] = String(v);
  }
  return { n: el.name, a: attrs, c: (el.children as Array<Element | string>).map((c) => (typeof c === 'string' ? c : toNode(c))) };
}

function fromNode(node: Node): Element | string {
  if (typeof node === 'string') return node;
  return xml(node.n, node.a as XmlAttrs, ...node.c.map(fromNode));
}

function isNode(v: unknown): v is Node {
  if (typeof v === 'string') return true;
  if (typeof v !== 'object' || v === null) return false;
  const o = v as { n?: unknown; a?: unknown; c?: unknown };
  return typeof o.n === 'string' && typeof o.a === 'object' && o.a !== null && Array.isArray(o.c) && o.c.every(isNode);
}

export function serialise(el: Element): string {
  const full = JSON.stringify(toNode(el));
  if (full.length <= MAX_STORED_REQUEST) return full;
  return JSON.stringify({ ...(toNode(el) as Exclude<Node, string>), c: [] });
}

export function deserialise(text: string): Element | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    if (!isNode(parsed) || typeof parsed === 'string') return undefined;
    const el = fromNode(parsed);
    return typeof el === 'string' ? undefined : el;
  } catch {
    return undefined;
  }
}

export class PendingStore {
  /** Read at every login (RFC 6121 §3.1.3: unanswered requests again): prepared once per limit. */
  private readonly listOf: (limit: number) => FastStatement<PendingRow>;

  constructor(private readonly storage: Database) {
    this.listOf = limitedStatements<PendingRow>(
      (text) => storage.statement(text),
      PENDING_LIST_SQL,
    );
  }

  async has(host: string, user: string, contact: string): Promise<boolean> {
    const row = await this.storage.db
      .selectFrom('presence_pending')
      .select('contact')
      .where('host', '=', host)
      .where('user', '=', user)
      .where('contact', '=', contact)
      .executeTakeFirst();
    return row !== undefined;
  }

  async count(host: string, user: string): Promise<number> {
    const r = (await this.storage.db
      .selectFrom('presence_pending')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('host', '=', host)
      .where('user', '=', user)
      .executeTakeFirst()) as { n: number | string } | undefined;
    return Number(r?.n ?? 0);
  }

  async put(host: string, user: string, contact: string, request: Element): Promise<void> {
    await this.storage.db
      .insertInto('presence_pending')
      .values({ host, user, contact, stanza: serialise(request), created_at: Date.now() })
      .onConflict((oc) => oc.columns(['host', 'user', 'contact']).doNothing())
      .execute();
  }

  async delete(host: string, user: string, contact: string): Promise<void> {
    await this.storage.db
      .deleteFrom('presence_pending')
      .where('host', '=', host)
      .where('user', '=', user)
      .where('contact', '=', contact)
      .execute();
  }

  /** The stored requests, oldest first (bounded by the per-user cap). */
  async list(host: string, user: string, limit: number): Promise<Array<{ contact: string; stanza: Element | undefined }>> {
    const rows = await this.listOf(limit).all([host, user]);
    return rows.map((r) => ({ contact: r.contact, stanza: deserialise(r.stanza) }));
  }

  async deleteAccount(host: string, user: string): Promise<void> {
    await this.storage.db.deleteFrom('presence_pending').where('host', '=', host).where('user', '=', user).execute();
  }
}

/** The read every login makes: in the order of presence_pending_age_idx, so SQLite sorts nothing. */
export const PENDING_LIST_SQL = (n: number): string =>
  `select "contact", "stanza", "created_at" from "presence_pending" where "host" = ? and "user" = ? order by "created_at", "contact" limit ${n}`;
