// The account contract used by SASL, the CLI and modules (registration, admin).
export type ScramHash = 'SHA-1' | 'SHA-256' | 'SHA-512';
export const SCRAM_HASHES: readonly ScramHash[] = ['SHA-1', 'SHA-256', 'SHA-512'];

/** RFC 5802 §3: what the server keeps instead of the password. */
export interface ScramCredential {
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

export interface CredentialLookup {
  /**
   * The SCRAM credential of an account for one hash. For an unknown user, or one whose only
   * secret is a bcrypt hash, it returns a deterministic fake credential with `real: false`, so
   * the exchange runs identically and fails only at the proof (no user enumeration).
   * `disabled`, when given, is what `isDisabled` would answer, read with the credential (one
   * query per login instead of two); the negotiator then does not ask again after the proof.
   */
  scram(host: string, user: string, hash: ScramHash): Promise<{ credential: ScramCredential; real: boolean; disabled?: boolean }>;
  /** PLAIN: checks a password against the SCRAM keys or an imported bcrypt hash (upgraded on success). */
  verifyPassword(host: string, user: string, password: string): Promise<boolean>;
  /** A disabled account keeps its data but cannot log in (SASL `account-disabled`). */
  isDisabled?(host: string, user: string): Promise<boolean>;
}

export interface AccountService extends CredentialLookup {
  create(host: string, user: string, password: string): Promise<void>;
  /** Imports an account whose secret is a bcrypt hash (from another application's user table). */
  importBcrypt(host: string, user: string, bcryptHash: string): Promise<void>;
  setPassword(host: string, user: string, password: string): Promise<void>;
  /** Deletes the account; returns false when it did not exist. Fires the deleted listeners. */
  delete(host: string, user: string): Promise<boolean>;
  exists(host: string, user: string): Promise<boolean>;
  /** Disables or re-enables an account; returns false when it does not exist. */
  setDisabled(host: string, user: string, disabled: boolean, reason?: string): Promise<boolean>;
  isDisabled(host: string, user: string): Promise<boolean>;
  list(host?: string): Promise<Array<{ host: string; user: string }>>;
  onDeleted(listener: (host: string, user: string) => Promise<void> | void): void;
}

export class AccountError extends Error {
  constructor(
    readonly code: 'PARLEY_ERR_ACCOUNT_EXISTS' | 'PARLEY_ERR_NO_ACCOUNT' | 'PARLEY_ERR_BAD_USERNAME' | 'PARLEY_ERR_BAD_PASSWORD',
    message: string,
  ) {
    super(message);
    this.name = 'AccountError';
  }
}
