// Group commit for archive appends: every append made during one turn of the event loop goes
// into one transaction, so a burst of messages costs one fsync instead of one each, while each
// caller still resolves only once its row is durable (on SQLite, once WalSync synced the log).
//
// Callers that must not wait for the disk (the message archive, on the stanza's way to its
// recipient) let the append run and ask `durable()` later: it resolves once everything appended
// before the call is committed, which is when a stanza may be acknowledged (XEP-0198).
import type { Insertable, Kysely } from 'kysely';
import type BetterSqlite3 from 'better-sqlite3';
import type { CoreTables } from './tables.js';
import type { WalSync } from './wal-sync.js';

export type ArchiveRow = Insertable<CoreTables['archive']>;

interface Pending {
  row: ArchiveRow;
  resolve(): void;
  reject(err: unknown): void;
}

/** Rows per INSERT statement: well under SQLite's bound-parameter limit (7 columns a row). */
const ROWS_PER_STATEMENT = 500;

/**
 * Writes one batch in one transaction. On SQLite, straight through better-sqlite3 with one
 * statement prepared once: Kysely would build, compile and prepare the INSERT again for every
 * batch, and wrap each step in promises, which was most of the cost of an archived message.
 */
type BatchWriter = (rows: readonly ArchiveRow[]) => Promise<void> | undefined;

export class AppendBatcher {
  private pending: Pending[] = [];
  private scheduled = false;
  /** Settles when the batch being written or waiting for its turn is committed. */
  private tail: Promise<void> | undefined;
  private readonly fast: BatchWriter | undefined;

  constructor(private readonly db: Kysely<CoreTables>, sqlite?: BetterSqlite3.Database, private readonly walSync?: WalSync) {
    this.fast = sqlite === undefined ? undefined : sqliteWriter(sqlite, walSync);
  }

  append(row: ArchiveRow): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ row, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // Batches commit in order (archive order is insertion order): one waits for the one before.
        const previous = this.tail;
        const start = () => new Promise<void>((done) => setImmediate(() => void this.flush().finally(done)));
        const tail: Promise<void> = (previous ? previous.then(start) : start()).finally(() => {
          if (this.tail === tail) this.tail = undefined;
        });
        this.tail = tail;
      }
    });
  }

  /**
   * Resolves once every append made so far is committed (successfully or not); undefined when
   * nothing is waiting, so that the common case costs no promise.
   */
  durable(): Promise<void> | undefined {
    return this.tail;
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.scheduled = false;
    if (batch.length === 0) return;
    try {
      const rows = batch.map((p) => p.row);
      // Not inside a transaction that Kysely holds open across awaits: ours would nest in it.
      const fast = this.fast?.(rows);
      if (fast) await fast;
      else {
        if (batch.length === 1) await this.db.insertInto('archive').values(rows[0]!).execute();
        else {
          await this.db.transaction().execute(async (trx) => {
            for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
              await trx.insertInto('archive').values(rows.slice(i, i + ROWS_PER_STATEMENT)).execute();
            }
          });
        }
        await this.walSync?.sync();
      }
      for (const p of batch) p.resolve();
    } catch (err) {
      if (batch.length === 1) return batch[0]!.reject(err);
      // One bad row (a duplicate id, say) must not fail its neighbours: retry them one by one.
      for (const p of batch) await this.one(p);
    }
  }

  private async one(p: Pending): Promise<void> {
    try {
      await this.db.insertInto('archive').values(p.row).execute();
      await this.walSync?.sync();
      p.resolve();
    } catch (err) {
      p.reject(err);
    }
  }
}

/** The batch writer for SQLite, or undefined while a transaction is open on the connection. */
function sqliteWriter(sqlite: BetterSqlite3.Database, walSync: WalSync | undefined): BatchWriter {
  let insert: BetterSqlite3.Statement | undefined;
  let write: ((rows: readonly ArchiveRow[]) => void) | undefined;
  return (rows) => {
    if (sqlite.inTransaction) return undefined;
    // Prepared on first use: the table exists once the core migrations ran.
    insert ??= sqlite.prepare('insert into "archive" ("host", "user", "store", "id", "ts", "with_jid", "value") values (?, ?, ?, ?, ?, ?, ?)');
    const statement = insert;
    write ??= sqlite.transaction((batch: readonly ArchiveRow[]) => {
      for (const r of batch) statement.run(r.host, r.user, r.store, r.id, r.ts, r.with_jid ?? null, r.value);
    });
    write(rows);
    walSync?.wrote();
    return walSync?.sync() ?? Promise.resolve();
  };
}
