// The module's tables: persistent rooms (configuration, subject, XEP-0421 secret), their
// affiliations with reserved nicks, and the voice kept across visits (XEP-0045 §5.1). `host` is the service domain (conference.example.com), so one
// database serves every virtual host's service. Every query is a primary-key lookup or range.
import type { Database, Kysely, Migration } from '../../lib/module-api.js';
import { isAffiliation, type StoredAffiliation } from './affiliations.js';
import { nickKey } from './occupants.js';
import { isKeptRole, type AffiliationEntry, type KeptRole, type Room, type Subject } from './room.js';

interface RoomRow {
  host: string;
  name: string;
  config: string;
  subject: string | null;
  subject_nick: string | null;
  subject_at: number | string | null;
  secret: string;
  public: number;
  created_at: number | string;
  updated_at: number | string;
}

interface AffiliationRow {
  host: string;
  room: string;
  jid: string;
  affiliation: string;
  nick: string | null;
  nick_key: string | null;
  reason: string | null;
  updated_at: number | string;
}

interface RoleRow {
  host: string;
  room: string;
  jid: string;
  role: string;
  updated_at: number | string;
}

interface HatRow {
  host: string;
  room: string;
  jid: string;
  uri: string;
}

interface MucTables {
  muc_rooms: RoomRow;
  muc_affiliations: AffiliationRow;
  muc_roles: RoleRow;
  muc_hats: HatRow;
}

export const mucMigrations: readonly Migration[] = [
  {
    version: 1,
    async up(db) {
      await db.schema
        .createTable('muc_rooms')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('subject', 'text')
        .addColumn('subject_nick', 'text')
        .addColumn('subject_at', 'bigint')
        .addColumn('secret', 'text', (c) => c.notNull())
        .addColumn('public', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('muc_rooms_pk', ['host', 'name'])
        .execute();
      // The directory of public rooms (disco#items on the service), paged by name.
      await db.schema.createIndex('muc_rooms_public_idx').on('muc_rooms').columns(['host', 'public', 'name']).execute();
      await db.schema
        .createTable('muc_affiliations')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('room', 'text', (c) => c.notNull())
        .addColumn('jid', 'text', (c) => c.notNull())
        .addColumn('affiliation', 'text', (c) => c.notNull())
        .addColumn('nick', 'text')
        .addColumn('nick_key', 'text')
        .addColumn('reason', 'text')
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('muc_affiliations_pk', ['host', 'room', 'jid'])
        .execute();
      // One reservation per nick and room (NULLs are distinct in SQLite and PostgreSQL).
      await db.schema.createIndex('muc_affiliations_nick_idx').unique().on('muc_affiliations').columns(['host', 'room', 'nick_key']).execute();
      // Account deletion purges a JID's affiliations in every room.
      await db.schema.createIndex('muc_affiliations_jid_idx').on('muc_affiliations').column('jid').execute();
    },
  },
  {
    version: 2,
    async up(db) {
      await db.schema
        .createTable('muc_roles')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('room', 'text', (c) => c.notNull())
        .addColumn('jid', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('muc_roles_pk', ['host', 'room', 'jid'])
        .execute();
      // Account deletion purges a JID's kept roles in every room.
      await db.schema.createIndex('muc_roles_jid_idx').on('muc_roles').column('jid').execute();
      // XEP-0317: the hats each bare JID wears in a room.
      await db.schema
        .createTable('muc_hats')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('room', 'text', (c) => c.notNull())
        .addColumn('jid', 'text', (c) => c.notNull())
        .addColumn('uri', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('muc_hats_pk', ['host', 'room', 'jid', 'uri'])
        .execute();
      await db.schema.createIndex('muc_hats_jid_idx').on('muc_hats').column('jid').execute();
    },
  },
];

export interface StoredRoom {
  config: string;
  subject: Subject | undefined;
  secret: string;
  affiliations: AffiliationEntry[];
  roles: Array<[string, KeptRole]>;
  /** (bare JID, hat URI) pairs. */
  hats: Array<[string, string]>;
}

export class RoomStore {
  private readonly db: Kysely<MucTables>;

  constructor(storage: Database, private readonly host: string) {
    this.db = storage.db as Kysely<MucTables>;
  }

  async load(name: string): Promise<StoredRoom | undefined> {
    const row = await this.db.selectFrom('muc_rooms').selectAll().where('host', '=', this.host).where('name', '=', name).executeTakeFirst();
    if (!row) return undefined;
    const rows = await this.db.selectFrom('muc_affiliations').selectAll().where('host', '=', this.host).where('room', '=', name).execute();
    const affiliations: AffiliationEntry[] = [];
    for (const r of rows) {
      if (!isAffiliation(r.affiliation) || r.affiliation === 'none') continue;
      affiliations.push({ jid: r.jid, affiliation: r.affiliation, nick: r.nick ?? undefined, reason: r.reason ?? undefined });
    }
    const roleRows = await this.db.selectFrom('muc_roles').select(['jid', 'role']).where('host', '=', this.host).where('room', '=', name).execute();
    const roles: Array<[string, KeptRole]> = [];
    for (const r of roleRows) if (isKeptRole(r.role)) roles.push([r.jid, r.role]);
    const hatRows = await this.db.selectFrom('muc_hats').select(['jid', 'uri']).where('host', '=', this.host).where('room', '=', name).execute();
    return {
      roles,
      hats: hatRows.map((r): [string, string] => [r.jid, r.uri]),
      config: row.config,
      secret: row.secret,
      subject: row.subject === null ? undefined : { text: row.subject, nick: row.subject_nick ?? undefined, at: Number(row.subject_at ?? 0) },
      affiliations,
    };
  }

  async exists(name: string): Promise<boolean> {
    const row = await this.db.selectFrom('muc_rooms').select('name').where('host', '=', this.host).where('name', '=', name).executeTakeFirst();
    return row !== undefined;
  }

  /** Writes the room row (configuration, subject, secret). */
  async saveRoom(room: Room): Promise<void> {
    const now = Date.now();
    const values = {
      config: JSON.stringify(room.config),
      subject: room.subject?.text ?? null,
      subject_nick: room.subject?.nick ?? null,
      subject_at: room.subject?.at ?? null,
      public: room.config.public ? 1 : 0,
      updated_at: now,
    };
    await this.db
      .insertInto('muc_rooms')
      .values({ host: this.host, name: room.name, secret: room.secret, created_at: now, ...values })
      .onConflict((oc) => oc.columns(['host', 'name']).doUpdateSet(values))
      .execute();
  }

  /** Writes the room row and every affiliation (a temporary room becoming persistent). */
  async saveAll(room: Room): Promise<void> {
    await this.saveRoom(room);
    for (const e of room.affiliations.values()) await this.putAffiliation(room.name, e);
    for (const [jid, role] of room.roles) await this.putRole(room.name, jid, role);
    for (const [jid, uris] of room.hats) for (const uri of uris) await this.putHat(room.name, jid, uri);
  }

  async deleteRoom(name: string): Promise<void> {
    await this.db.deleteFrom('muc_roles').where('host', '=', this.host).where('room', '=', name).execute();
    await this.db.deleteFrom('muc_hats').where('host', '=', this.host).where('room', '=', name).execute();
    await this.db.deleteFrom('muc_affiliations').where('host', '=', this.host).where('room', '=', name).execute();
    await this.db.deleteFrom('muc_rooms').where('host', '=', this.host).where('name', '=', name).execute();
  }

  async putAffiliation(room: string, e: AffiliationEntry): Promise<void> {
    const values = {
      affiliation: e.affiliation as StoredAffiliation,
      nick: e.nick ?? null,
      nick_key: e.nick === undefined ? null : nickKey(e.nick),
      reason: e.reason ?? null,
      updated_at: Date.now(),
    };
    await this.db
      .insertInto('muc_affiliations')
      .values({ host: this.host, room, jid: e.jid, ...values })
      .onConflict((oc) => oc.columns(['host', 'room', 'jid']).doUpdateSet(values))
      .execute();
  }

  async deleteAffiliation(room: string, jid: string): Promise<void> {
    await this.db.deleteFrom('muc_affiliations').where('host', '=', this.host).where('room', '=', room).where('jid', '=', jid).execute();
  }

  async putRole(room: string, jid: string, role: KeptRole): Promise<void> {
    const values = { role, updated_at: Date.now() };
    await this.db
      .insertInto('muc_roles')
      .values({ host: this.host, room, jid, ...values })
      .onConflict((oc) => oc.columns(['host', 'room', 'jid']).doUpdateSet(values))
      .execute();
  }

  async deleteRole(room: string, jid: string): Promise<void> {
    await this.db.deleteFrom('muc_roles').where('host', '=', this.host).where('room', '=', room).where('jid', '=', jid).execute();
  }

  async putHat(room: string, jid: string, uri: string): Promise<void> {
    await this.db
      .insertInto('muc_hats')
      .values({ host: this.host, room, jid, uri })
      .onConflict((oc) => oc.columns(['host', 'room', 'jid', 'uri']).doNothing())
      .execute();
  }

  async deleteHat(room: string, jid: string, uri: string): Promise<void> {
    await this.db.deleteFrom('muc_hats').where('host', '=', this.host).where('room', '=', room).where('jid', '=', jid).where('uri', '=', uri).execute();
  }

  /** Public rooms by name, after `after` (exclusive), at most `limit`. */
  async publicRooms(after: string | undefined, limit: number): Promise<Array<{ name: string; config: string }>> {
    let q = this.db.selectFrom('muc_rooms').select(['name', 'config']).where('host', '=', this.host).where('public', '=', 1);
    if (after !== undefined) q = q.where('name', '>', after);
    return q.orderBy('name').limit(limit).execute();
  }

  async countPublic(): Promise<number> {
    const row = await this.db
      .selectFrom('muc_rooms')
      .select((eb) => eb.fn.countAll<number | string | bigint>().as('n'))
      .where('host', '=', this.host)
      .where('public', '=', 1)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  /** Room names in order, a page at a time (for retention sweeps). */
  async names(after: string | undefined, limit: number): Promise<string[]> {
    let q = this.db.selectFrom('muc_rooms').select('name').where('host', '=', this.host);
    if (after !== undefined) q = q.where('name', '>', after);
    return (await q.orderBy('name').limit(limit).execute()).map((r) => r.name);
  }

  /** The rooms where a JID holds an affiliation, then removes them all (account deletion). */
  async purgeJid(jid: string): Promise<string[]> {
    const rows = await this.db.selectFrom('muc_affiliations').select('room').where('jid', '=', jid).where('host', '=', this.host).execute();
    await this.db.deleteFrom('muc_affiliations').where('jid', '=', jid).where('host', '=', this.host).execute();
    await this.db.deleteFrom('muc_roles').where('jid', '=', jid).where('host', '=', this.host).execute();
    await this.db.deleteFrom('muc_hats').where('jid', '=', jid).where('host', '=', this.host).execute();
    return rows.map((r) => r.room);
  }
}
