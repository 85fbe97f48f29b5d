// The tables of pubsub services: nodes, items, affiliations and subscriptions. One set of tables
// serves every PEP service (`service` = the account's bare JID) and the pubsub.<domain>
// services (`service` = that domain), with the virtual host in `host` (ARCHITECTURE.md §7).
// Every query is bounded by the primary key or an index.
import { parseXml } from '../../lib/module-api.js';
import type { Database, Element, Migration } from '../../lib/module-api.js';

export type Affiliation = 'owner' | 'publisher' | 'publish-only' | 'member' | 'none' | 'outcast';
export const AFFILIATIONS: readonly Affiliation[] = ['owner', 'publisher', 'publish-only', 'member', 'none', 'outcast'];

export interface StoredNode {
  node: string;
  /** JSON of the NodeConfig. */
  config: string;
  creator: string;
  created: number;
}

export interface StoredItem {
  id: string;
  /** Who published it (a full or bare JID). */
  publisher: string;
  payload: Element | undefined;
  /** Milliseconds since the epoch. */
  published: number;
  /** Publication order within the node. */
  seq: number;
}

export interface StoredSubscription {
  node: string;
  jid: string;
  subid: string;
  state: 'subscribed';
}

interface ItemRow {
  item_id: string;
  publisher: string;
  payload: string;
  published: number | string;
  seq: number | string;
}

export const pubsubMigrations: readonly Migration[] = [
  {
    version: 1,
    async up(db) {
      await db.schema
        .createTable('pubsub_nodes')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('service', 'text', (c) => c.notNull())
        .addColumn('node', 'text', (c) => c.notNull())
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('creator', 'text', (c) => c.notNull())
        .addColumn('created', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('pubsub_nodes_pk', ['host', 'service', 'node'])
        .execute();
      await db.schema
        .createTable('pubsub_items')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('service', 'text', (c) => c.notNull())
        .addColumn('node', 'text', (c) => c.notNull())
        .addColumn('item_id', 'text', (c) => c.notNull())
        .addColumn('publisher', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('published', 'bigint', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('pubsub_items_pk', ['host', 'service', 'node', 'item_id'])
        .execute();
      await db.schema.createIndex('pubsub_items_seq').on('pubsub_items').columns(['host', 'service', 'node', 'seq']).execute();
      await db.schema
        .createTable('pubsub_affiliations')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('service', 'text', (c) => c.notNull())
        .addColumn('node', 'text', (c) => c.notNull())
        .addColumn('jid', 'text', (c) => c.notNull())
        .addColumn('affiliation', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('pubsub_affiliations_pk', ['host', 'service', 'node', 'jid'])
        .execute();
      await db.schema.createIndex('pubsub_affiliations_jid').on('pubsub_affiliations').columns(['host', 'jid', 'service']).execute();
      await db.schema
        .createTable('pubsub_subscriptions')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('service', 'text', (c) => c.notNull())
        .addColumn('node', 'text', (c) => c.notNull())
        .addColumn('jid', 'text', (c) => c.notNull())
        // The subscriber's bare JID: subscriptions of an account's resources are found (and purged) by it.
        .addColumn('bare', 'text', (c) => c.notNull())
        .addColumn('subid', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('pubsub_subscriptions_pk', ['host', 'service', 'node', 'jid'])
        .execute();
      await db.schema.createIndex('pubsub_subscriptions_bare').on('pubsub_subscriptions').columns(['host', 'bare', 'service']).execute();
    },
  },
];

/** The payload as stored: serialised with its namespace on the root, so it reads back alone. */
export function serialisePayload(payload: Element): string {
  return payload.toString();
}

function parsePayload(text: string): Element | undefined {
  if (text === '') return undefined;
  try {
    return parseXml(text);
  } catch {
    return undefined;
  }
}

function toItem(row: ItemRow): StoredItem {
  return {
    id: row.item_id,
    publisher: row.publisher,
    payload: parsePayload(row.payload),
    published: Number(row.published),
    seq: Number(row.seq),
  };
}

export class PubsubStore {
  constructor(private readonly storage: Database, private readonly host: string) {}

  private get db() {
    return this.storage.db;
  }

  async node(service: string, node: string): Promise<StoredNode | undefined> {
    const row = (await this.db
      .selectFrom('pubsub_nodes')
      .select(['node', 'config', 'creator', 'created'])
      .where('host', '=', this.host)
      .where('service', '=', service)
      .where('node', '=', node)
      .executeTakeFirst()) as { node: string; config: string; creator: string; created: number | string } | undefined;
    return row && { ...row, created: Number(row.created) };
  }

  async nodes(service: string, limit: number): Promise<StoredNode[]> {
    const rows = (await this.db
      .selectFrom('pubsub_nodes')
      .select(['node', 'config', 'creator', 'created'])
      .where('host', '=', this.host)
      .where('service', '=', service)
      .orderBy('node')
      .limit(limit)
      .execute()) as Array<{ node: string; config: string; creator: string; created: number | string }>;
    return rows.map((r) => ({ ...r, created: Number(r.created) }));
  }

  async countNodes(service: string): Promise<number> {
    const r = (await this.db
      .selectFrom('pubsub_nodes')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('host', '=', this.host)
      .where('service', '=', service)
      .executeTakeFirst()) as { n: number | string } | undefined;
    return Number(r?.n ?? 0);
  }

  async createNode(service: string, node: string, config: string, creator: string): Promise<void> {
    await this.db
      .insertInto('pubsub_nodes')
      .values({ host: this.host, service, node, config, creator, created: Date.now() })
      .execute();
  }

  async updateConfig(service: string, node: string, config: string): Promise<void> {
    await this.db
      .updateTable('pubsub_nodes')
      .set({ config })
      .where('host', '=', this.host)
      .where('service', '=', service)
      .where('node', '=', node)
      .execute();
  }

  /** Removes a node with its items, affiliations and subscriptions. */
  async deleteNode(service: string, node: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      for (const table of ['pubsub_items', 'pubsub_affiliations', 'pubsub_subscriptions', 'pubsub_nodes']) {
        await trx.deleteFrom(table).where('host', '=', this.host).where('service', '=', service).where('node', '=', node).execute();
      }
    });
  }

  /**
   * Stores an item (a republished id replaces the old one and becomes the newest) and drops the
   * oldest beyond `keep`. Returns the ids dropped.
   */
  async putItem(service: string, node: string, item: { id: string; publisher: string; payload: string }, keep: number): Promise<string[]> {
    return this.db.transaction().execute(async (trx) => {
      const scope = () => trx.selectFrom('pubsub_items').where('host', '=', this.host).where('service', '=', service).where('node', '=', node);
      // PostgreSQL runs publishes to one node at once (other connections, other cluster nodes):
      // the node's row is locked so that max(seq)+1 is read and written by one at a time.
      if (this.storage.dialect === 'postgres') {
        await trx.selectFrom('pubsub_nodes').select('node').where('host', '=', this.host).where('service', '=', service).where('node', '=', node).forUpdate().execute();
      }
      const top = (await scope().select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst()) as { seq: number | string | null } | undefined;
      const seq = Number(top?.seq ?? 0) + 1;
      const published = Date.now();
      await trx
        .insertInto('pubsub_items')
        .values({ host: this.host, service, node, item_id: item.id, publisher: item.publisher, payload: item.payload, published, seq })
        .onConflict((oc) => oc.columns(['host', 'service', 'node', 'item_id']).doUpdateSet({ publisher: item.publisher, payload: item.payload, published, seq }))
        .execute();
      const count = (await scope().select((eb) => eb.fn.countAll().as('n')).executeTakeFirst()) as { n: number | string } | undefined;
      const excess = Number(count?.n ?? 0) - keep;
      if (excess <= 0) return [];
      const old = (await scope().select('item_id').orderBy('seq', 'asc').limit(excess).execute()) as Array<{ item_id: string }>;
      const ids = old.map((r) => r.item_id);
      if (ids.length > 0) {
        await trx
          .deleteFrom('pubsub_items')
          .where('host', '=', this.host)
          .where('service', '=', service)
          .where('node', '=', node)
          .where('item_id', 'in', ids)
          .execute();
      }
      return ids;
    });
  }

  /** The newest `limit` items, oldest first; or the items with these ids. */
  async items(service: string, node: string, q: { ids?: readonly string[]; limit: number }): Promise<StoredItem[]> {
    let query = this.db
      .selectFrom('pubsub_items')
      .select(['item_id', 'publisher', 'payload', 'published', 'seq'])
      .where('host', '=', this.host)
      .where('service', '=', service)
      .where('node', '=', node);
    if (q.ids) {
      if (q.ids.length === 0) return [];
      query = query.where('item_id', 'in', [...q.ids]);
    }
    const rows = (await query.orderBy('seq', 'desc').limit(q.limit).execute()) as ItemRow[];
    return rows.map(toItem).reverse();
  }

  async countItems(service: string, node: string): Promise<number> {
    const r = (await this.db
      .selectFrom('pubsub_items')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('host', '=', this.host)
      .where('service', '=', service)
      .where('node', '=', node)
      .executeTakeFirst()) as { n: number | string } | undefined;
    return Number(r?.n ?? 0);
  }

  /** Drops the oldest items beyond `keep` (after max_items went down). Returns the ids dropped. */
  async trim(service: string, node: string, keep: number): Promise<string[]> {
    const excess = (await this.countItems(service, node)) - keep;
    if (excess <= 0) return [];
    const old = (await this.db
      .selectFrom('pubsub_items')
      .select('item_id')
      .where('host', '=', this.host)
      .where('service', '=', service)
      .where('node', '=', node)
      .orderBy('seq', 'asc')
      .limit(excess)
      .execute()) as Array<{ item_id: string }>;
    return this.deleteItems(service, node, old.map((r) => r.item_id));
  }

  /** Deletes the items with these ids; returns those that existed. */
  async deleteItems(service: string, node: string, ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const scope = () => this.db.selectFrom('pubsub_items').where('host', '=', this.host).where('service', '=', service).where('node', '=', node);
    const found = ((await scope().select('item_id').where('item_id', 'in', [...ids]).execute()) as Array<{ item_id: string }>).map((r) => r.item_id);
    if (found.length === 0) return [];
    await this.db
      .deleteFrom('pubsub_items')
      .where('host', '=', this.host)
      .where('service', '=', service)
      .where('node', '=', node)
      .where('item_id', 'in', found)
      .execute();
    return found;
  }

  async purge(service: string, node: string): Promise<void> {
    await this.db.deleteFrom('pubsub_items').where('host', '=', this.host).where('service', '=', service).where('node', '=', node).execute();
  }

  // ---------------------------------------------------------------- affiliations

  async affiliations(service: string, node: string): Promise<Array<{ jid: string; affiliation: Affiliation }>> {
    const rows = (await this.db
      .selectFrom('pubsub_affiliations')
      .select(['jid', 'affiliation'])
      .where('host', '=', this.host)
      .where('service', '=', service)
      .where('node', '=', node)
      .orderBy('jid')
      .execute()) as Array<{ jid: string; affiliation: string }>;
    return rows.filter((r) => (AFFILIATIONS as readonly string[]).includes(r.affiliation)) as Array<{ jid: string; affiliation: Affiliation }>;
  }

  async affiliation(service: string, node: string, jid: string): Promise<Affiliation | undefined> {
    const row = (await this.db
      .selectFrom('pubsub_affiliations')
      .select('affiliation')
      .where('host', '=', this.host)
      .where('service', '=', service)
      .where('node', '=', node)
      .where('jid', '=', jid)
      .executeTakeFirst()) as { affiliation: string } | undefined;
    return row && (AFFILIATIONS as readonly string[]).includes(row.affiliation) ? (row.affiliation as Affiliation) : undefined;
  }

  /** Sets an affiliation; 'none' removes the row. */
  async setAffiliation(service: string, node: string, jid: string, affiliation: Affiliation): Promise<void> {
    if (affiliation === 'none') {
      await this.db
        .deleteFrom('pubsub_affiliations')
        .where('host', '=', this.host)
        .where('service', '=', service)
        .where('node', '=', node)
        .where('jid', '=', jid)
        .execute();
      return;
    }
    await this.db
      .insertInto('pubsub_affiliations')
      .values({ host: this.host, service, node, jid, affiliation })
      .onConflict((oc) => oc.columns(['host', 'service', 'node', 'jid']).doUpdateSet({ affiliation }))
      .execute();
  }

  /** An entity's affiliations over the nodes of a service. */
  async affiliationsOf(service: string, jid: string, limit: number): Promise<Array<{ node: string; affiliation: Affiliation }>> {
    const rows = (await this.db
      .selectFrom('pubsub_affiliations')
      .select(['node', 'affiliation'])
      .where('host', '=', this.host)
      .where('jid', '=', jid)
      .where('service', '=', service)
      .orderBy('node')
      .limit(limit)
      .execute()) as Array<{ node: string; affiliation: string }>;
    return rows.filter((r) => (AFFILIATIONS as readonly string[]).includes(r.affiliation)) as Array<{ node: string; affiliation: Affiliation }>;
  }

  // ---------------------------------------------------------------- subscriptions

  async subscriptions(service: string, node: string, limit: number): Promise<StoredSubscription[]> {
    return (await this.db
      .selectFrom('pubsub_subscriptions')
      .select(['node', 'jid', 'subid', 'state'])
      .where('host', '=', this.host)
      .where('service', '=', service)
      .where('node', '=', node)
      .orderBy('jid')
      .limit(limit)
      .execute()) as StoredSubscription[];
  }

  async subscription(service: string, node: string, jid: string): Promise<StoredSubscription | undefined> {
    return (await this.db
      .selectFrom('pubsub_subscriptions')
      .select(['node', 'jid', 'subid', 'state'])
      .where('host', '=', this.host)
      .where('service', '=', service)
      .where('node', '=', node)
      .where('jid', '=', jid)
      .executeTakeFirst()) as StoredSubscription | undefined;
  }

  async countSubscriptions(service: string, node: string): Promise<number> {
    const r = (await this.db
      .selectFrom('pubsub_subscriptions')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('host', '=', this.host)
      .where('service', '=', service)
      .where('node', '=', node)
      .executeTakeFirst()) as { n: number | string } | undefined;
    return Number(r?.n ?? 0);
  }

  async subscribe(service: string, node: string, jid: string, bare: string, subid: string): Promise<void> {
    await this.db
      .insertInto('pubsub_subscriptions')
      .values({ host: this.host, service, node, jid, bare, subid, state: 'subscribed' })
      .onConflict((oc) => oc.columns(['host', 'service', 'node', 'jid']).doNothing())
      .execute();
  }

  async unsubscribe(service: string, node: string, jid: string): Promise<void> {
    await this.db
      .deleteFrom('pubsub_subscriptions')
      .where('host', '=', this.host)
      .where('service', '=', service)
      .where('node', '=', node)
      .where('jid', '=', jid)
      .execute();
  }

  /** The subscriptions an account (any of its JIDs) holds on a service. */
  async subscriptionsOf(service: string, bare: string, limit: number): Promise<StoredSubscription[]> {
    return (await this.db
      .selectFrom('pubsub_subscriptions')
      .select(['node', 'jid', 'subid', 'state'])
      .where('host', '=', this.host)
      .where('bare', '=', bare)
      .where('service', '=', service)
      .orderBy('node')
      .limit(limit)
      .execute()) as StoredSubscription[];
  }

  // ---------------------------------------------------------------- accounts

  /** Everything of one service (an account's PEP). */
  async deleteService(service: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      for (const table of ['pubsub_items', 'pubsub_affiliations', 'pubsub_subscriptions', 'pubsub_nodes']) {
        await trx.deleteFrom(table).where('host', '=', this.host).where('service', '=', service).execute();
      }
    });
  }

  /**
   * The subscriptions and affiliations an account holds: on one service, or on every PEP service
   * of this host (those whose service is an account: `user@host`).
   */
  async deleteEntity(bare: string, scope: { service: string } | 'pep'): Promise<void> {
    for (const [table, column] of [['pubsub_subscriptions', 'bare'], ['pubsub_affiliations', 'jid']] as const) {
      let q = this.db.deleteFrom(table).where('host', '=', this.host).where(column, '=', bare);
      q = scope === 'pep' ? q.where('service', 'like', '%@%') : q.where('service', '=', scope.service);
      await q.execute();
    }
  }

  /** Nodes of a service whose only owner is `bare` (for the pubsub service on account deletion). */
  async nodesOwnedOnlyBy(service: string, bare: string, limit: number): Promise<string[]> {
    const mine = (await this.db
      .selectFrom('pubsub_affiliations')
      .select('node')
      .where('host', '=', this.host)
      .where('jid', '=', bare)
      .where('service', '=', service)
      .where('affiliation', '=', 'owner')
      .limit(limit)
      .execute()) as Array<{ node: string }>;
    const out: string[] = [];
    for (const { node } of mine) {
      const owners = (await this.affiliations(service, node)).filter((a) => a.affiliation === 'owner');
      if (owners.length === 1) out.push(node);
    }
    return out;
  }
}
