// Accounts: creation, verification and deletion, with passwords kept only as SCRAM keys
// (RFC 5802 §3, ARCHITECTURE §6) or, for imported accounts, a bcrypt hash until first login.
import { createHmac, randomBytes } from 'node:crypto';
import bcrypt from 'bcrypt';
import type { Kysely } from 'kysely';
import { prepDomain, prepLocal } from '../jid/jid.js';
import type { Database, Migration } from '../storage/types.js';
import {
  deriveScramCredential,
  hashLength,
  normalizePassword,
  passwordMatches,
  saltedPassword,
} from './scram-keys.js';
import { AccountError, SCRAM_HASHES, type AccountService, type ScramCredential, type ScramHash } from './types.js';

export interface AccountsOptions {
  /** PBKDF2 iterations for new SCRAM keys; RFC 7677 §4 asks for at least 4096. */
  scramIterations?: number;
  /**
   * Secret from which fake SCRAM salts for unknown users are derived. Defaults to one generated
   * once and kept in the database, so the salt shown for a name is stable across restarts
   * (a changing salt would tell an attacker the name does not exist).
   */
  secret?: Buffer;
}

export const DEFAULT_SCRAM_ITERATIONS = 4096;
const SALT_BYTES = 16;
const SECRET_NAME = 'fake-credential-secret';
// A bcrypt hash in modular crypt format: $2a$/$2b$/$2y$, two-digit cost, 22 salt + 31 hash chars.
const BCRYPT_HASH = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;

interface AccountsTable {
  host: string;
  user: string;
  created_at: number;
  bcrypt: string | null;
}

interface AccountScramTable {
  host: string;
  user: string;
  hash: string;
  /** base64 */
  salt: string;
  iterations: number;
  /** base64 */
  stored_key: string;
  /** base64 */
  server_key: string;
}

interface AccountSecretsTable {
  name: string;
  /** base64 */
  value: string;
}

interface AccountDisabledTable {
  host: string;
  user: string;
  since: number;
  reason: string | null;
}

interface AccountTables {
  account_disabled: AccountDisabledTable;
  accounts: AccountsTable;
  account_scram: AccountScramTable;
  account_secrets: AccountSecretsTable;
}

export const ACCOUNT_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    async up(db) {
      await db.schema
        .createTable('accounts')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('user', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('bcrypt', 'text')
        .addPrimaryKeyConstraint('accounts_pk', ['host', 'user'])
        .execute();
      await db.schema
        .createTable('account_scram')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('user', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addColumn('salt', 'text', (c) => c.notNull())
        .addColumn('iterations', 'integer', (c) => c.notNull())
        .addColumn('stored_key', 'text', (c) => c.notNull())
        .addColumn('server_key', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('account_scram_pk', ['host', 'user', 'hash'])
        .execute();
      await db.schema
        .createTable('account_secrets')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
  },
  {
    version: 2,
    async up(db) {
      await db.schema
        .createTable('account_disabled')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('user', 'text', (c) => c.notNull())
        .addColumn('since', 'bigint', (c) => c.notNull())
        .addColumn('reason', 'text')
        .addPrimaryKeyConstraint('account_disabled_pk', ['host', 'user'])
        .execute();
    },
  },
];

function prepUser(user: string): string {
  try {
    return prepLocal(user);
  } catch (err) {
    throw new AccountError('PARLEY_ERR_BAD_USERNAME', `invalid username "${user}": ${(err as Error).message}`);
  }
}

function prepHost(host: string): string {
  try {
    return prepDomain(host);
  } catch (err) {
    throw new AccountError('PARLEY_ERR_BAD_USERNAME', `invalid host "${host}": ${(err as Error).message}`);
  }
}

function tryPrep(host: string, user: string): { host: string; user: string } | undefined {
  try {
    return { host: prepDomain(host), user: prepLocal(user) };
  } catch {
    return undefined;
  }
}

function checkPassword(password: string): void {
  if (password.length === 0) throw new AccountError('PARLEY_ERR_BAD_PASSWORD', 'the password is empty');
  try {
    normalizePassword(password);
  } catch {
    throw new AccountError('PARLEY_ERR_BAD_PASSWORD', 'the password contains characters SASLprep (RFC 4013) prohibits');
  }
}

function toCredential(row: Pick<AccountScramTable, 'salt' | 'iterations' | 'stored_key' | 'server_key'>): ScramCredential {
  return {
    salt: Buffer.from(row.salt, 'base64'),
    iterations: Number(row.iterations),
    storedKey: Buffer.from(row.stored_key, 'base64'),
    serverKey: Buffer.from(row.server_key, 'base64'),
  };
}

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  // better-sqlite3: SQLITE_CONSTRAINT_PRIMARYKEY; pg: 23505 unique_violation.
  return (
    e !== undefined &&
    ((typeof e.code === 'string' && (e.code.startsWith('SQLITE_CONSTRAINT') || e.code === '23505')) ||
      (typeof e.message === 'string' && /UNIQUE constraint failed/.test(e.message)))
  );
}

type ScramRow = Pick<AccountScramTable, 'salt' | 'iterations' | 'stored_key' | 'server_key'> & { disabled: number | null };

/** The statements every login runs, prepared once (lib/storage/fast-statement.ts). */
function loginStatements(database: Database) {
  return {
    // The credential and whether the account is disabled, in one read.
    scram: database.statement<ScramRow>(
      'select s."salt", s."iterations", s."stored_key", s."server_key", ' +
        '(select 1 from "account_disabled" d where d."host" = s."host" and d."user" = s."user") as "disabled" ' +
        'from "account_scram" s where s."host" = ? and s."user" = ? and s."hash" = ?',
    ),
    exists: database.statement<{ user: string }>('select "user" from "accounts" where "host" = ? and "user" = ?'),
    disabled: database.statement<{ user: string }>('select "user" from "account_disabled" where "host" = ? and "user" = ?'),
  };
}

class SqlAccountService implements AccountService {
  private readonly listeners: Array<(host: string, user: string) => Promise<void> | void> = [];

  constructor(
    private readonly db: Kysely<AccountTables>,
    private readonly iterations: number,
    private readonly secret: Buffer,
    private readonly statements: ReturnType<typeof loginStatements>,
  ) {}

  // --- credential lookup ------------------------------------------------------------------

  async scram(host: string, user: string, hash: ScramHash): Promise<{ credential: ScramCredential; real: boolean; disabled?: boolean }> {
    const id = tryPrep(host, user);
    if (id !== undefined) {
      const row = await this.statements.scram.first([id.host, id.user, hash]);
      if (row !== undefined) return { credential: toCredential(row), real: true, disabled: row.disabled !== null };
    }
    return { credential: this.fakeCredential(id?.host ?? host, id?.user ?? user, hash), real: false };
  }

  async verifyPassword(host: string, user: string, password: string): Promise<boolean> {
    const id = tryPrep(host, user);
    if (id !== undefined && password.length > 0) {
      const rows = await this.db
        .selectFrom('account_scram')
        .select(['hash', 'salt', 'iterations', 'stored_key', 'server_key'])
        .where('host', '=', id.host)
        .where('user', '=', id.user)
        .execute();
      const row = rows.find((r) => r.hash === 'SHA-256') ?? rows[0];
      if (row !== undefined) return passwordMatches(row.hash as ScramHash, toCredential(row), password);

      const account = await this.db
        .selectFrom('accounts')
        .select(['bcrypt'])
        .where('host', '=', id.host)
        .where('user', '=', id.user)
        .executeTakeFirst();
      if (account?.bcrypt != null) {
        const stored = account.bcrypt;
        if (!(await bcrypt.compare(password, stored))) return false;
        await this.upgradeFromBcrypt(id.host, id.user, password, stored);
        return true;
      }
    }
    // Unknown user (or unusable input): do the same PBKDF2 work as a real check, so the
    // response time does not say whether the account exists.
    const fake = this.fakeCredential(id?.host ?? host, id?.user ?? user, 'SHA-256');
    await saltedPassword('SHA-256', password.length > 0 ? password : 'x', fake.salt, fake.iterations).catch(() => undefined);
    return false;
  }

  // --- administration ---------------------------------------------------------------------

  async create(host: string, user: string, password: string): Promise<void> {
    const h = prepHost(host);
    const u = prepUser(user);
    checkPassword(password);
    const rows = await this.scramRows(h, u, password);
    await this.insertAccount(h, u, null, rows);
  }

  async importBcrypt(host: string, user: string, bcryptHash: string): Promise<void> {
    const h = prepHost(host);
    const u = prepUser(user);
    if (!BCRYPT_HASH.test(bcryptHash)) {
      throw new AccountError('PARLEY_ERR_BAD_PASSWORD', 'not a bcrypt hash ($2a$, $2b$ or $2y$ modular crypt format)');
    }
    await this.insertAccount(h, u, bcryptHash, []);
  }

  async setPassword(host: string, user: string, password: string): Promise<void> {
    const h = prepHost(host);
    const u = prepUser(user);
    checkPassword(password);
    const rows = await this.scramRows(h, u, password);
    await this.db.transaction().execute(async (trx) => {
      const updated = await trx
        .updateTable('accounts')
        .set({ bcrypt: null })
        .where('host', '=', h)
        .where('user', '=', u)
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) === 0) {
        throw new AccountError('PARLEY_ERR_NO_ACCOUNT', `no account ${u}@${h}`);
      }
      await trx.deleteFrom('account_scram').where('host', '=', h).where('user', '=', u).execute();
      await trx.insertInto('account_scram').values(rows).execute();
    });
  }

  async delete(host: string, user: string): Promise<boolean> {
    const id = tryPrep(host, user);
    if (id === undefined) return false;
    const removed = await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('account_scram').where('host', '=', id.host).where('user', '=', id.user).execute();
      await trx.deleteFrom('account_disabled').where('host', '=', id.host).where('user', '=', id.user).execute();
      const res = await trx.deleteFrom('accounts').where('host', '=', id.host).where('user', '=', id.user).executeTakeFirst();
      return Number(res.numDeletedRows) > 0;
    });
    if (!removed) return false;
    // Every listener runs even if one fails, so one module's bug does not leave the others'
    // data behind; the first error is then reported.
    let failure: unknown;
    for (const listener of this.listeners) {
      try {
        await listener(id.host, id.user);
      } catch (err) {
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
    return true;
  }

  async exists(host: string, user: string): Promise<boolean> {
    const id = tryPrep(host, user);
    if (id === undefined) return false;
    return (await this.statements.exists.first([id.host, id.user])) !== undefined;
  }

  async setDisabled(host: string, user: string, disabled: boolean, reason?: string): Promise<boolean> {
    const id = tryPrep(host, user);
    if (id === undefined || !(await this.exists(id.host, id.user))) return false;
    if (disabled) {
      await this.db
        .insertInto('account_disabled')
        .values({ host: id.host, user: id.user, since: Date.now(), reason: reason ?? null })
        .onConflict((oc) => oc.columns(['host', 'user']).doUpdateSet({ reason: reason ?? null }))
        .execute();
    } else {
      await this.db.deleteFrom('account_disabled').where('host', '=', id.host).where('user', '=', id.user).execute();
    }
    return true;
  }

  async isDisabled(host: string, user: string): Promise<boolean> {
    const id = tryPrep(host, user);
    if (id === undefined) return false;
    return (await this.statements.disabled.first([id.host, id.user])) !== undefined;
  }

  async list(host?: string): Promise<Array<{ host: string; user: string }>> {
    let q = this.db.selectFrom('accounts').select(['host', 'user']);
    if (host !== undefined) q = q.where('host', '=', prepHost(host));
    const rows = await q.orderBy('host').orderBy('user').execute();
    return rows.map((r) => ({ host: r.host, user: r.user }));
  }

  onDeleted(listener: (host: string, user: string) => Promise<void> | void): void {
    this.listeners.push(listener);
  }

  // --- internals --------------------------------------------------------------------------

  /**
   * A credential that looks like a real one: a salt stable for the name (derived from the
   * server secret), the configured iterations, and keys nobody knows.
   */
  private fakeCredential(host: string, user: string, hash: ScramHash): ScramCredential {
    const salt = createHmac('sha256', this.secret).update(`${host}\u0000${user}\u0000${hash}`).digest().subarray(0, SALT_BYTES);
    return {
      salt: Buffer.from(salt),
      iterations: this.iterations,
      storedKey: randomBytes(hashLength(hash)),
      serverKey: randomBytes(hashLength(hash)),
    };
  }

  private async scramRows(host: string, user: string, password: string): Promise<AccountScramTable[]> {
    return Promise.all(
      SCRAM_HASHES.map(async (hash) => {
        const c = await deriveScramCredential(hash, password, randomBytes(SALT_BYTES), this.iterations);
        return {
          host,
          user,
          hash,
          salt: c.salt.toString('base64'),
          iterations: c.iterations,
          stored_key: c.storedKey.toString('base64'),
          server_key: c.serverKey.toString('base64'),
        };
      }),
    );
  }

  private async insertAccount(host: string, user: string, bcryptHash: string | null, rows: AccountScramTable[]): Promise<void> {
    const exists = () => new AccountError('PARLEY_ERR_ACCOUNT_EXISTS', `the account ${user}@${host} already exists`);
    try {
      await this.db.transaction().execute(async (trx) => {
        const found = await trx
          .selectFrom('accounts')
          .select(['user'])
          .where('host', '=', host)
          .where('user', '=', user)
          .executeTakeFirst();
        if (found !== undefined) throw exists();
        await trx.insertInto('accounts').values({ host, user, created_at: Date.now(), bcrypt: bcryptHash }).execute();
        // Rows of a previous account of that name cannot remain (delete removes them in the
        // same transaction), but clear them anyway so a stale key can never authenticate.
        await trx.deleteFrom('account_scram').where('host', '=', host).where('user', '=', user).execute();
        if (rows.length > 0) await trx.insertInto('account_scram').values(rows).execute();
      });
    } catch (err) {
      if (err instanceof AccountError) throw err;
      if (isUniqueViolation(err)) throw exists();
      throw err;
    }
  }

  /** First successful bcrypt login: store SCRAM keys and forget the bcrypt hash. */
  private async upgradeFromBcrypt(host: string, user: string, password: string, verifiedHash: string): Promise<void> {
    let rows: AccountScramTable[];
    try {
      rows = await this.scramRows(host, user, password);
    } catch {
      return; // a password SASLprep rejects cannot become SCRAM keys; keep bcrypt
    }
    await this.db.transaction().execute(async (trx) => {
      // Only if the account still has the hash we verified: a concurrent setPassword or
      // delete wins over the upgrade.
      const res = await trx
        .updateTable('accounts')
        .set({ bcrypt: null })
        .where('host', '=', host)
        .where('user', '=', user)
        .where('bcrypt', '=', verifiedHash)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return;
      await trx.deleteFrom('account_scram').where('host', '=', host).where('user', '=', user).execute();
      await trx.insertInto('account_scram').values(rows).execute();
    });
  }
}

async function loadSecret(db: Kysely<AccountTables>): Promise<Buffer> {
  const read = async () =>
    (await db.selectFrom('account_secrets').select(['value']).where('name', '=', SECRET_NAME).executeTakeFirst())?.value;
  const existing = await read();
  if (existing !== undefined) return Buffer.from(existing, 'base64');
  // Two nodes may start at once: the first insert wins, everyone reads the winner.
  await db
    .insertInto('account_secrets')
    .values({ name: SECRET_NAME, value: randomBytes(32).toString('base64') })
    .onConflict((oc) => oc.column('name').doNothing())
    .execute();
  const stored = await read();
  if (stored === undefined) throw new Error('accounts: could not store the fake-credential secret');
  return Buffer.from(stored, 'base64');
}

export async function openAccounts(database: Database, options: AccountsOptions = {}): Promise<AccountService> {
  const iterations = options.scramIterations ?? DEFAULT_SCRAM_ITERATIONS;
  if (!Number.isInteger(iterations) || iterations < 4096 || iterations > 10_000_000) {
    throw new RangeError(`scramIterations must be an integer from 4096 to 10000000 (RFC 7677 §4), got ${iterations}`);
  }
  if (options.secret !== undefined && options.secret.length < 16) {
    throw new RangeError('the accounts secret must be at least 16 bytes');
  }
  await database.migrate('accounts', ACCOUNT_MIGRATIONS);
  const db: Kysely<AccountTables> = database.db;
  const secret = options.secret ?? (await loadSecret(db));
  return new SqlAccountService(db, iterations, secret, loginStatements(database));
}
