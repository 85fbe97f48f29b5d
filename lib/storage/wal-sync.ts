// Durability for SQLite without blocking the event loop. With synchronous=FULL every commit
// waits for fsync of the write-ahead log: 4.5 ms of a stopped event loop per commit on the
// benchmark machine, which capped logins (one write each at logout) and archived messages. The
// connection runs synchronous=NORMAL instead (a commit only writes to the WAL; SQLite stays
// consistent and a crash of the process loses nothing, the data being in the OS) and this
// class does what FULL adds, fdatasync of the WAL after the commits, in libuv's thread pool.
// Syncs are coalesced: one covers every commit made before it started (the commits of one turn
// of the event loop share one).
//
// What waits for it: archive appends resolve after it (AppendBatcher), and `Database.durable()`,
// which a client stream awaits before it acknowledges a stanza (XEP-0198), covers every write
// made so far. So what a client was told is handled survives a power cut, as with FULL.
import { open, type FileHandle } from 'node:fs/promises';

export class WalSync {
  private opening: Promise<FileHandle> | undefined;
  /** A write happened since the last sync started. */
  private dirty = false;
  /** The sync started last: once it is done, every commit before it is on disk. */
  private latest: Promise<void> | undefined;
  private closed = false;
  private scheduled = false;

  /** `walPath` is the database file's name with `-wal`; undefined for an in-memory database. */
  constructor(private readonly walPath: string | undefined) {}

  /** A commit happened: the next sync must cover it. */
  wrote(): void {
    if (this.walPath === undefined) return;
    this.dirty = true;
    // Every commit reaches the disk soon, whether or not anyone waits for it (as with FULL); the
    // commits of this turn of the event loop share the sync.
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        if (this.dirty) this.sync().catch(() => undefined);
      });
    }
  }

  /**
   * Resolves once every commit reported so far is on disk; undefined when there is nothing to
   * wait for. Rejects when the disk refused (as a FULL commit would have failed).
   */
  durable(): Promise<void> | undefined {
    if (this.dirty) return this.sync();
    return this.latest;
  }

  /**
   * Syncs now. A sync already under way may have started before the last commit, so this one
   * does not wait for it: two fdatasyncs in flight finish about together, where one after the
   * other would double the wait of a caller that needs its own write on disk.
   */
  sync(): Promise<void> {
    if (this.walPath === undefined || this.closed) return Promise.resolve();
    if (!this.dirty && this.latest !== undefined) return this.latest;
    this.dirty = false;
    const run: Promise<void> = this.run().finally(() => {
      if (this.latest === run) this.latest = undefined;
    });
    this.latest = run;
    return run;
  }

  private handle(): Promise<FileHandle> {
    this.opening ??= open(this.walPath!, 'r');
    return this.opening;
  }

  private async run(): Promise<void> {
    const opening = this.handle();
    try {
      await (await opening).datasync();
    } catch (err) {
      // Opened again next time (a failed open, or a file that went away).
      if (this.opening === opening) this.opening = undefined;
      void opening.then((file) => file.close()).catch(() => undefined);
      // No WAL file: nothing was ever written through it, so nothing waits for the disk.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
  }

  /** Waits for the last sync and lets the file go. */
  async close(): Promise<void> {
    if (this.dirty) await this.sync().catch(() => undefined);
    await this.latest?.catch(() => undefined);
    this.closed = true;
    const opening = this.opening;
    this.opening = undefined;
    const file = await opening?.catch(() => undefined);
    await file?.close();
  }
}
