// Group commit for archive appends: every append made during one turn of the event loop goes
// into one transaction, so a burst of messages costs one fsync instead of one each, while each
// caller still resolves only once its row is durable (synchronous=FULL keeps its promise).
import type { Insertable, Kysely } from 'kysely';
import type { CoreTables } from './tables.js';

type ArchiveRow = Insertable<CoreTables['archive']>;

interface Pending {
  row: ArchiveRow;
  resolve(): void;
  reject(err: unknown): void;
}

/** Rows per INSERT statement: well under SQLite's bound-parameter limit (7 columns a row). */
const ROWS_PER_STATEMENT = 500;

export class AppendBatcher {
  private pending: Pending[] = [];
  private scheduled = false;

  constructor(private readonly db: Kysely<CoreTables>) {}

  append(row: ArchiveRow): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ row, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.scheduled = false;
    if (batch.length === 1) return this.one(batch[0]);
    try {
      await this.db.transaction().execute(async (trx) => {
        for (let i = 0; i < batch.length; i += ROWS_PER_STATEMENT) {
          await trx.insertInto('archive').values(batch.slice(i, i + ROWS_PER_STATEMENT).map((p) => p.row)).execute();
        }
      });
      for (const p of batch) p.resolve();
    } catch {
      // One bad row (a duplicate id, say) must not fail its neighbours: retry them one by one.
      for (const p of batch) await this.one(p);
    }
  }

  private async one(p: Pending): Promise<void> {
    try {
      await this.db.insertInto('archive').values(p.row).execute();
      p.resolve();
    } catch (err) {
      p.reject(err);
    }
  }
}
