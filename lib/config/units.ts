// Human forms for durations and sizes in the config file (ARCHITECTURE §9): admins write `30s`
// and `10 MiB`, the rest of the server sees milliseconds and bytes.

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

// Decimal (SI) and binary (IEC) prefixes; `1MB` is 10^6 bytes, `1 MiB` is 2^20.
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

const DURATION_RE = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/;
const SIZE_RE = /^(\d+(?:\.\d+)?)\s*([a-z]+)?$/i;

export class UnitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnitError';
  }
}

/**
 * Parses a duration: a non-negative number of milliseconds, or a string of one number and one
 * unit (`250ms`, `30s`, `5m`, `2h`, `7d`, `1w`). Returns milliseconds (rounded to an integer).
 */
export function parseDuration(input: unknown): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new UnitError('a duration must be a non-negative number of milliseconds');
    return Math.round(input);
  }
  if (typeof input !== 'string') throw new UnitError(`expected a duration like "30s" or "5m", got ${describe(input)}`);
  const m = DURATION_RE.exec(input.trim());
  if (!m) {
    if (/^\d+(\.\d+)?$/.test(input.trim())) {
      throw new UnitError(`"${input}" has no unit: write "${input.trim()}ms" or "${input.trim()}s"`);
    }
    throw new UnitError(`"${input}" is not a duration: use a number and one of ms, s, m, h, d, w (e.g. "30s")`);
  }
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2]!]!);
}

/**
 * Parses a size: a non-negative number of bytes, or a string like `256 KiB`, `10 MiB`, `1MB`,
 * `512 B`. Units are case-insensitive; KB/MB/GB are powers of 1000, KiB/MiB/GiB powers of 1024.
 */
export function parseSize(input: unknown): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new UnitError('a size must be a non-negative number of bytes');
    return Math.floor(input);
  }
  if (typeof input !== 'string') throw new UnitError(`expected a size like "256 KiB" or "10 MiB", got ${describe(input)}`);
  const m = SIZE_RE.exec(input.trim());
  const factor = m ? (m[2] === undefined ? 1 : SIZE_UNITS[m[2].toLowerCase()]) : undefined;
  if (!m || factor === undefined) {
    throw new UnitError(`"${input}" is not a size: use a number and one of B, KB, MB, GB, KiB, MiB, GiB (e.g. "256 KiB")`);
  }
  return Math.floor(Number(m[1]) * factor);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'a mapping' : typeof value;
}
