// Errors an admin sees (ARCHITECTURE §10): a stable code, a one-line message and a hint that
// says what to do about it.

/** Codes of admin-facing failures. Stable: documentation and scripts match on them. */
export type AdminErrorCode =
  | 'PARLEY_ERR_CONFIG'
  | 'PARLEY_ERR_PORT_IN_USE'
  | 'PARLEY_ERR_PORT_DENIED'
  | 'PARLEY_ERR_ADDRESS_UNAVAILABLE'
  | 'PARLEY_ERR_CERT_MISSING'
  | 'PARLEY_ERR_CERT_INVALID'
  | 'PARLEY_ERR_CERT_EXPIRED'
  | 'PARLEY_ERR_CERT_KEY_MISMATCH'
  | 'PARLEY_ERR_CERT_EXISTS'
  | 'PARLEY_ERR_DATABASE'
  | 'PARLEY_ERR_UNKNOWN_HOST'
  | 'PARLEY_ERR_USAGE'
  // Other parts of the server add their own codes without editing this list.
  | (string & {});

export class AdminError extends Error {
  readonly code: AdminErrorCode;
  readonly hint: string | undefined;

  constructor(code: AdminErrorCode, message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AdminError';
    this.code = code;
    this.hint = hint;
  }

  /** `message (hint)`: what the CLI prints after `parley: `. */
  oneLine(): string {
    return this.hint === undefined ? this.message : `${this.message} (${this.hint})`;
  }
}

export interface ConfigIssue {
  /** Dotted path into the config, arrays as `[i]`: `listeners[0].port`, `modules.mam.default`. */
  path: string;
  message: string;
  hint?: string;
  /** 1-based position in the YAML file, when known. */
  line?: number;
  col?: number;
}

/** Formats one issue as `path: message (hint)`. */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.path === '' ? '' : `${issue.path}: `;
  return `${where}${issue.message}${issue.hint === undefined ? '' : ` (${issue.hint})`}`;
}

/** Every problem in a config file, reported at once. */
export class ConfigError extends AdminError {
  override readonly code = 'PARLEY_ERR_CONFIG' as const;
  readonly issues: ConfigIssue[];
  /** The config file, when the config came from one. */
  readonly file: string | undefined;

  constructor(issues: ConfigIssue[], file?: string) {
    super('PARLEY_ERR_CONFIG', issues.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
    this.issues = issues;
    this.file = file;
  }

  /** One line per issue, prefixed with `file:line:col: ` when the position is known. */
  lines(): string[] {
    return this.issues.map((issue) => {
      if (this.file === undefined) return formatIssue(issue);
      const pos = issue.line === undefined ? '' : `:${issue.line}${issue.col === undefined ? '' : `:${issue.col}`}`;
      return `${this.file}${pos}: ${formatIssue(issue)}`;
    });
  }
}
