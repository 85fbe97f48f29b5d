// The roster's tables: items, a per-account version counter, and a short changelog of recent
// versions so that a client's cached roster can be brought up to date with pushes (XEP-0237).
import { randomBytes } from 'node:crypto';
import { Jid } from '../../lib/module-api.js';
import type { Database, FastStatement, Migration } from '../../lib/module-api.js';
import { SUBSCRIPTIONS, type RosterItem, type Subscription } from './items.js';

/** How many recent versions each account keeps in its changelog. */
export const CHANGELOG_LENGTH = 100;

interface ItemRow {
  host: string;
  user: string;
  contact: string;
  name: string | null;
  subscription: string;
  ask: number;
  approved: number;
  groups: string;
}

interface VersionRow {
  ver: number | string;
  epoch: string;
}

export const rosterMigrations: readonly Migration[] = [
  {
    version: 1,
    async up(db) {
      await db.schema
        .createTable('roster_items')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('user', 'text', (c) => c.notNull())
        .addColumn('contact', 'text', (c) => c.notNull())
        .addColumn('name', 'text')
        .addColumn('subscription', 'text', (c) => c.notNull())
        .addColumn('ask', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('approved', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('groups', 'text', (c) => c.notNull().defaultTo('[]'))
        .addPrimaryKeyConstraint('roster_items_pk', ['host', 'user', 'contact'])
        .execute();
      await db.schema
        .createTable('roster_versions')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('user', 'text', (c) => c.notNull())
        .addColumn('ver', 'integer', (c) => c.notNull())
        // Random per account row: a cached version from a deleted and re-created account never matches.
        .addColumn('epoch', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('roster_versions_pk', ['host', 'user'])
        .execute();
      await db.schema
        .createTable('roster_changes')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('user', 'text', (c) => c.notNull())
        .addColumn('ver', 'integer', (c) => c.notNull())
        .addColumn('contact', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('roster_changes_pk', ['host', 'user', 'ver'])
        .execute();
    },
  },
];

/** The roster version an account is at; `n` 0 with no epoch when it never changed. */
export interface RosterVersion {
  n: number;
  epoch: string | undefined;
}

export function formatVersion(v: RosterVersion): string {
  return v.epoch === undefined ? '0' : `${v.epoch}-${v.n}`;
}

/** The sequence number a client's `ver` names, when it names a version of this roster's epoch. */
export function parseVersion(ver: string, current: RosterVersion): number | undefined {
  if (current.epoch === undefined) return ver === '0' ? 0 : undefined;
  const prefix = `${current.epoch}-`;
  if (!ver.startsWith(prefix)) return undefined;
  const digits = ver.slice(prefix.length);
  if (!/^\d{1,15}$/.test(digits)) return undefined;
  return Number(digits);
}

function toItem(row: ItemRow): RosterItem | undefined {
  const jid = Jid.tryParse(row.contact);
  if (!jid) return undefined;
  const subscription = (SUBSCRIPTIONS as readonly string[]).includes(row.subscription) ? (row.subscription as Subscription) : 'none';
  let groups: string[] = [];
  try {
    const parsed: unknown = JSON.parse(row.groups);
    if (Array.isArray(parsed)) groups = parsed.filter((g): g is string => typeof g === 'string');
  } catch {
    groups = [];
  }
  return {
    jid,
    name: row.name ?? undefined,
    subscription,
    ask: Number(row.ask) === 1,
    approved: Number(row.approved) === 1,
    groups,
  };
}

function toRow(host: string, user: string, item: RosterItem): ItemRow {
  return {
    host,
    user,
    contact: item.jid.toString(),
    name: item.name ?? null,
    subscription: item.subscription,
    ask: item.ask ? 1 : 0,
    approved: item.approved ? 1 : 0,
    groups: JSON.stringify(item.groups),
  };
}

export interface Mutation {
  before: RosterItem | undefined;
  after: RosterItem | undefined;
  /** The new version string when the item was written or deleted. */
  ver: string | undefined;
}

/**
 * What a mutation does with the current item: a new item to write, `null` to delete it,
 * `undefined` to leave it as is. It may throw (a StanzaError) to abort.
 */
export type Change = (current: RosterItem | undefined, count: () => Promise<number>) => Promise<RosterItem | null | undefined> | RosterItem | null | undefined;

export class RosterStore {
  /** Read at every login (presence broadcast and probes, and again at logout): prepared once. */
  private readonly itemsOf: FastStatement<ItemRow>;

  constructor(private readonly storage: Database) {
    this.itemsOf = storage.statement<ItemRow>(
      'select "host", "user", "contact", "name", "subscription", "ask", "approved", "groups" from "roster_items" where "host" = ? and "user" = ? order by "contact"',
    );
  }

  async items(host: string, user: string): Promise<RosterItem[]> {
    const rows = await this.itemsOf.all([host, user]);
    return rows.map(toItem).filter((i): i is RosterItem => i !== undefined);
  }

  async item(host: string, user: string, contact: string): Promise<RosterItem | undefined> {
    const row = (await this.storage.db
      .selectFrom('roster_items')
      .selectAll()
      .where('host', '=', host)
      .where('user', '=', user)
      .where('contact', '=', contact)
      .executeTakeFirst()) as ItemRow | undefined;
    return row && toItem(row);
  }

  async version(host: string, user: string): Promise<RosterVersion> {
    const row = (await this.storage.db
      .selectFrom('roster_versions')
      .select(['ver', 'epoch'])
      .where('host', '=', host)
      .where('user', '=', user)
      .executeTakeFirst()) as VersionRow | undefined;
    return row ? { n: Number(row.ver), epoch: row.epoch } : { n: 0, epoch: undefined };
  }

  /**
   * Reads, changes and writes one item in one transaction, bumping the account's version and
   * logging the change. On PostgreSQL the version row is locked first, which serialises every
   * change to the account across nodes.
   */
  async mutate(host: string, user: string, contact: string, change: Change): Promise<Mutation> {
    const pg = this.storage.dialect === 'postgres';
    return this.storage.db.transaction().execute(async (trx) => {
      const lockVersion = async () => (await trx
        .selectFrom('roster_versions')
        .select(['ver', 'epoch'])
        .where('host', '=', host)
        .where('user', '=', user)
        .$if(pg, (qb) => qb.forUpdate())
        .executeTakeFirst()) as VersionRow | undefined;
      let version = await lockVersion();
      let placeholder = false;
      if (!version && pg) {
        // The account's first change: there is no row to lock yet, and two nodes (or two pool
        // connections) would both insert one. A version-0 row is made (or waited for) and locked.
        await trx.insertInto('roster_versions').values({ host, user, ver: 0, epoch: randomBytes(4).toString('hex') })
          .onConflict((oc) => oc.columns(['host', 'user']).doNothing()).execute();
        version = await lockVersion();
        placeholder = version !== undefined && Number(version.ver) === 0;
      }
      const row = (await trx
        .selectFrom('roster_items')
        .selectAll()
        .where('host', '=', host)
        .where('user', '=', user)
        .where('contact', '=', contact)
        .executeTakeFirst()) as ItemRow | undefined;
      const before = row && toItem(row);
      const count = async () => {
        const r = (await trx
          .selectFrom('roster_items')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('host', '=', host)
          .where('user', '=', user)
          .executeTakeFirst()) as { n: number | string } | undefined;
        return Number(r?.n ?? 0);
      };
      const after = await change(before, count);
      if (after === undefined || (after === null && !row)) {
        // Nothing changed: the roster still never changed ("0"), as without the placeholder.
        if (placeholder) await trx.deleteFrom('roster_versions').where('host', '=', host).where('user', '=', user).where('ver', '=', 0).execute();
        return { before, after: before, ver: undefined };
      }

      if (after === null) {
        await trx.deleteFrom('roster_items').where('host', '=', host).where('user', '=', user).where('contact', '=', contact).execute();
      } else {
        const values = toRow(host, user, after);
        await trx
          .insertInto('roster_items')
          .values(values)
          .onConflict((oc) =>
            oc.columns(['host', 'user', 'contact']).doUpdateSet({
              name: values.name,
              subscription: values.subscription,
              ask: values.ask,
              approved: values.approved,
              groups: values.groups,
            }))
          .execute();
      }

      let n: number;
      let epoch: string;
      if (version) {
        n = Number(version.ver) + 1;
        epoch = version.epoch;
        await trx.updateTable('roster_versions').set({ ver: n }).where('host', '=', host).where('user', '=', user).execute();
      } else {
        n = 1;
        epoch = randomBytes(4).toString('hex');
        await trx.insertInto('roster_versions').values({ host, user, ver: n, epoch }).execute();
        version = { ver: n, epoch };
      }
      await trx.insertInto('roster_changes').values({ host, user, ver: n, contact }).execute();
      await trx
        .deleteFrom('roster_changes')
        .where('host', '=', host)
        .where('user', '=', user)
        .where('ver', '<=', n - CHANGELOG_LENGTH)
        .execute();
      return { before, after: after ?? undefined, ver: formatVersion({ n, epoch }) };
    });
  }

  /**
   * The contacts changed after version `since`, each once, ordered by their last change, with
   * that change's version; undefined when the changelog no longer reaches back that far.
   */
  async changesSince(host: string, user: string, since: number, current: RosterVersion): Promise<Array<{ contact: string; ver: string }> | undefined> {
    if (current.epoch === undefined || since > current.n || since < current.n - CHANGELOG_LENGTH) return undefined;
    const rows = (await this.storage.db
      .selectFrom('roster_changes')
      .select(['ver', 'contact'])
      .where('host', '=', host)
      .where('user', '=', user)
      .where('ver', '>', since)
      .orderBy('ver')
      .limit(CHANGELOG_LENGTH)
      .execute()) as Array<{ ver: number | string; contact: string }>;
    const last = new Map<string, number>();
    for (const r of rows) last.set(r.contact, Number(r.ver));
    const epoch = current.epoch;
    return [...last.entries()].sort((a, b) => a[1] - b[1]).map(([contact, n]) => ({ contact, ver: formatVersion({ n, epoch }) }));
  }

  async deleteAccount(host: string, user: string): Promise<void> {
    await this.storage.db.transaction().execute(async (trx) => {
      for (const table of ['roster_items', 'roster_versions', 'roster_changes']) {
        await trx.deleteFrom(table).where('host', '=', host).where('user', '=', user).execute();
      }
    });
  }
}
