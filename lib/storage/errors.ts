// Errors raised by the storage layer. Each carries a stable code (ARCHITECTURE.md §10) so callers
// branch on `code`, never on message text.
import { AdminError } from '../config/errors.js';

export type StorageErrorCode =
  /** The database cannot be opened or used (path, permissions, driver). */
  | 'PARLEY_ERR_STORAGE'
  /** A schema migration failed; its owner's batch was rolled back. */
  | 'PARLEY_ERR_MIGRATION'
  /** An archive `after`/`before` id is not in the archive (XEP-0313 §4.2: item-not-found). */
  | 'PARLEY_ERR_ITEM_NOT_FOUND'
  /** `parley migrate` could not copy a database; the target was left as it was. */
  | 'PARLEY_ERR_COPY'
  /** `parley migrate` found data in the target and was not told to replace it (--force). */
  | 'PARLEY_ERR_TARGET_NOT_EMPTY';

/** An AdminError, so that the CLI (`parley start`, `parley check`) shows its code and message. */
export class StorageError extends AdminError {
  declare readonly code: StorageErrorCode;

  constructor(code: StorageErrorCode, message: string, options?: { cause?: unknown }) {
    // The hint is part of each message, in parentheses, as AdminError.oneLine() would put it.
    super(code, message, undefined, options);
    this.name = 'StorageError';
  }
}

/** The message of anything thrown, on one line. */
export function oneLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s+/g, ' ').trim();
}
