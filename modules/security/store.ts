// What the security module keeps in the database, shared by every node of a cluster: TOTP
// secrets with the last time step used (replay refusal), recovery codes and app passwords
// (hashed), and each account's recent security events.
import { createHash, randomBytes } from 'node:crypto';
import type { Database, FastStatement } from '../../lib/module-api.js';

export const securityMigrations = [
  {
    version: 1,
    async up(db: Database['db']) {
      await db.schema
        .createTable('security_totp')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('username', 'text', (c) => c.notNull())
        .addColumn('secret', 'text', (c) => c.notNull())
        .addColumn('last_step', 'bigint', (c) => c.notNull())
        .addColumn('enabled_at', 'bigint', (c) => c.notNull())
        .addColumn('failures', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('failed_since', 'bigint', (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('security_totp_pk', ['host', 'username'])
        .execute();
      await db.schema
        .createTable('security_recovery')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('username', 'text', (c) => c.notNull())
        .addColumn('code_hash', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('security_recovery_pk', ['host', 'username', 'code_hash'])
        .execute();
      await db.schema
        .createTable('security_app_password')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('username', 'text', (c) => c.notNull())
        .addColumn('id', 'text', (c) => c.notNull())
        .addColumn('label', 'text', (c) => c.notNull())
        .addColumn('password_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('last_used_at', 'bigint')
        .addPrimaryKeyConstraint('security_app_password_pk', ['host', 'username', 'id'])
        .execute();
      await db.schema.createIndex('security_app_password_hash').on('security_app_password').columns(['host', 'username', 'password_hash']).execute();
      await db.schema
        .createTable('security_event')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('username', 'text', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('detail', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('security_event_user').on('security_event').columns(['host', 'username', 'at']).execute();
    },
  },
];

/** App passwords and recovery codes are random and long, so a plain SHA-256 is enough to store them. */
export function secretHash(secret: string): string {
  return createHash('sha256').update(secret.replace(/[\s-]/g, '').toLowerCase()).digest('base64');
}

export interface AppPassword {
  id: string;
  label: string;
  createdAt: number;
  lastUsedAt: number | undefined;
}

export interface SecurityEvent {
  at: number;
  kind: string;
  detail: Record<string, unknown>;
}

interface TotpRow {
  secret: string;
  last_step: number | string;
  failures: number | string;
  failed_since: number | string;
}

export class SecurityStore {
  private readonly db: Database['db'];
  /** Read at every password login (the login policy asks whether a second factor is on). */
  private readonly totpOf: FastStatement<TotpRow>;
  /** An event at every login; written with the other writes of the moment, off the login's path. */
  private readonly insertEvent: FastStatement<never>;
  /** Keeps the newest `maxEvents` of an account: deletes from the one just older than them on. */
  private readonly trimEvents: FastStatement<never>;

  constructor(
    storage: Database,
    private readonly host: string,
    private readonly maxEvents: number,
  ) {
    this.db = storage.db;
    this.totpOf = storage.statement<TotpRow>('select "secret", "last_step", "failures", "failed_since" from "security_totp" where "host" = ? and "username" = ?');
    this.insertEvent = storage.statement('insert into "security_event" ("host", "username", "at", "kind", "detail") values (?, ?, ?, ?, ?)');
    // The offset written in (a whole number from the config): SQLite plans a statement again at
    // every run when its LIMIT or OFFSET is a parameter.
    this.trimEvents = storage.statement(
      'delete from "security_event" where "host" = ? and "username" = ? and "at" <= ' +
        `(select "at" from "security_event" where "host" = ? and "username" = ? order by "at" desc limit 1 offset ${Math.trunc(maxEvents)})`,
    );
  }

  async totp(user: string): Promise<{ secret: string; lastStep: number; failures: number; failedSince: number } | undefined> {
    const row = await this.totpOf.first([this.host, user]);
    return row ? { secret: String(row.secret), lastStep: Number(row.last_step), failures: Number(row.failures), failedSince: Number(row.failed_since) } : undefined;
  }

  async totpEnabledAmong(users: readonly string[]): Promise<Set<string>> {
    if (users.length === 0) return new Set();
    const rows = await this.db.selectFrom('security_totp').select('username').where('host', '=', this.host).where('username', 'in', [...users]).execute();
    return new Set(rows.map((r) => String(r.username)));
  }

  /**
   * Counts a wrong code in the database, so that every node sees the same count: a new window
   * starts when the last one is over. Returns the count within the current window.
   */
  async codeFailed(user: string, windowMs: number, now = Date.now()): Promise<number> {
    const where = this.db.updateTable('security_totp').where('host', '=', this.host).where('username', '=', user);
    await where.set({ failures: 0, failed_since: now }).where('failed_since', '<', now - windowMs).execute();
    await this.db.updateTable('security_totp').set((eb) => ({ failures: eb('failures', '+', 1) })).where('host', '=', this.host).where('username', '=', user).execute();
    return (await this.totp(user))?.failures ?? 0;
  }

  async codeSucceeded(user: string): Promise<void> {
    await this.db.updateTable('security_totp').set({ failures: 0, failed_since: 0 }).where('host', '=', this.host).where('username', '=', user).execute();
  }

  /** Turns TOTP on with a fresh set of recovery codes (replacing any older ones); returns the codes. */
  async enableTotp(user: string, secret: string, step: number, recoveryCount: number): Promise<string[]> {
    const codes = Array.from({ length: recoveryCount }, () => randomBytes(6).toString('hex').replace(/(.{4})(.{4})(.{4})/, '$1-$2-$3'));
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('security_totp').where('host', '=', this.host).where('username', '=', user).execute();
      await trx.insertInto('security_totp').values({ host: this.host, username: user, secret, last_step: step, enabled_at: Date.now(), failures: 0, failed_since: 0 }).execute();
      await trx.deleteFrom('security_recovery').where('host', '=', this.host).where('username', '=', user).execute();
      for (const code of codes) await trx.insertInto('security_recovery').values({ host: this.host, username: user, code_hash: secretHash(code) }).execute();
    });
    return codes;
  }

  async disableTotp(user: string): Promise<void> {
    await this.db.deleteFrom('security_totp').where('host', '=', this.host).where('username', '=', user).execute();
    await this.db.deleteFrom('security_recovery').where('host', '=', this.host).where('username', '=', user).execute();
  }

  /**
   * Records `step` as used if it is later than the last one used. Atomic in the database, so two
   * nodes given the same code at once accept it only once (RFC 6238 §5.2: a code is one-time).
   */
  async useStep(user: string, step: number): Promise<boolean> {
    const r = await this.db.updateTable('security_totp').set({ last_step: step }).where('host', '=', this.host).where('username', '=', user).where('last_step', '<', step).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  /** Consumes a recovery code; true when it was one of the account's unused codes. */
  async useRecoveryCode(user: string, code: string): Promise<boolean> {
    const r = await this.db.deleteFrom('security_recovery').where('host', '=', this.host).where('username', '=', user).where('code_hash', '=', secretHash(code)).executeTakeFirst();
    return Number(r.numDeletedRows) === 1;
  }

  async recoveryCodesLeft(user: string): Promise<number> {
    const row = await this.db.selectFrom('security_recovery').select((eb) => eb.fn.countAll().as('n')).where('host', '=', this.host).where('username', '=', user).executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /** Creates an app password; the clear text is returned once and never stored. */
  async createAppPassword(user: string, label: string): Promise<{ id: string; password: string }> {
    const id = randomBytes(6).toString('base64url');
    // 120 random bits as lowercase hex in groups of six: easy to type into an old client.
    const password = randomBytes(15).toString('hex').replace(/(.{6})(?=.)/g, '$1-');
    await this.db.insertInto('security_app_password').values({ host: this.host, username: user, id, label, password_hash: secretHash(password), created_at: Date.now(), last_used_at: null }).execute();
    return { id, password };
  }

  async verifyAppPassword(user: string, password: string): Promise<string | undefined> {
    const row = await this.db.selectFrom('security_app_password').select('id').where('host', '=', this.host).where('username', '=', user).where('password_hash', '=', secretHash(password)).executeTakeFirst();
    if (!row) return undefined;
    await this.db.updateTable('security_app_password').set({ last_used_at: Date.now() }).where('host', '=', this.host).where('username', '=', user).where('id', '=', row.id).execute();
    return String(row.id);
  }

  async appPasswords(user: string): Promise<AppPassword[]> {
    const rows = await this.db.selectFrom('security_app_password').select(['id', 'label', 'created_at', 'last_used_at']).where('host', '=', this.host).where('username', '=', user).orderBy('created_at').execute();
    return rows.map((r) => ({ id: String(r.id), label: String(r.label), createdAt: Number(r.created_at), lastUsedAt: r.last_used_at == null ? undefined : Number(r.last_used_at) }));
  }

  async revokeAppPassword(user: string, id: string): Promise<boolean> {
    const r = await this.db.deleteFrom('security_app_password').where('host', '=', this.host).where('username', '=', user).where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) === 1;
  }

  /** Appends an event, keeping only the account's newest `maxEvents`. */
  async addEvent(user: string, kind: string, detail: Record<string, unknown>): Promise<void> {
    const insert = this.insertEvent.batched([this.host, user, Date.now(), kind, JSON.stringify(detail)]);
    const trim = this.trimEvents.batched([this.host, user, this.host, user]);
    await Promise.all([insert, trim]);
  }

  async events(user: string, limit: number): Promise<SecurityEvent[]> {
    const rows = await this.db.selectFrom('security_event').select(['at', 'kind', 'detail']).where('host', '=', this.host).where('username', '=', user).orderBy('at', 'desc').limit(limit).execute();
    return rows.map((r) => ({ at: Number(r.at), kind: String(r.kind), detail: JSON.parse(String(r.detail)) as Record<string, unknown> }));
  }

  async deleteAccount(user: string): Promise<void> {
    for (const table of ['security_totp', 'security_recovery', 'security_app_password', 'security_event']) {
      await this.db.deleteFrom(table).where('host', '=', this.host).where('username', '=', user).execute();
    }
  }
}
