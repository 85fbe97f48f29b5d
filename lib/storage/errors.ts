// Errors raised by the storage layer. Each carries a stable code (ARCHITECTURE.md §10) so callers
// branch on `code`, never on message text.

export type StorageErrorCode =
  /** The database cannot be opened or used (path, permissions, driver). */
  | 'PARLEY_ERR_STORAGE'
  /** A schema migration failed; its owner's batch was rolled back. */
  | 'PARLEY_ERR_MIGRATION'
  /** An archive `after`/`before` id is not in the archive (XEP-0313 §4.2: item-not-found). */
  | 'PARLEY_ERR_ITEM_NOT_FOUND';

export class StorageError extends Error {
  constructor(
    readonly code: StorageErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StorageError';
  }
}

/** The message of anything thrown, on one line. */
export function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s+/g, ' ').trim();
}
