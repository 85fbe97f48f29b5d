// Bearer tokens of the HTTP admin API. `parley admin token create` makes one: a random secret
// shown once, stored only as its SHA-256 in the database (the key-value store `admin_tokens`),
// so the running server sees new tokens at once and a copy of the database reveals none. The
// secret has 256 random bits, so a plain hash is enough (no password KDF): guessing is hopeless.
import { createHash, randomBytes } from 'node:crypto';
import { AdminError } from '../config/errors.js';
import type { Database, KeyValStore } from '../storage/types.js';

export const TOKEN_SCOPES = [
  'users:read',
  'users:write',
  'sessions:read',
  'sessions:write',
  'rooms:read',
  'rooms:write',
  'reports:read',
  'reports:write',
  'stats:read',
  'server:reload',
] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];

const PREFIX = 'parley_';
const STORE = 'admin_tokens';
// The key-value store is per account; tokens belong to the server.
const OWNER = { host: '', user: '' } as const;

export interface TokenInfo {
  name: string;
  scopes: TokenScope[];
  createdAt: string;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function parseScopes(text: string | undefined): TokenScope[] {
  if (text === undefined || text === '' || text === '*' || text === 'all') return [...TOKEN_SCOPES];
  const out: TokenScope[] = [];
  for (const raw of text.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    if (!(TOKEN_SCOPES as readonly string[]).includes(raw)) {
      throw new AdminError('PARLEY_ERR_USAGE', `unknown scope "${raw}"`, `use some of ${TOKEN_SCOPES.join(', ')}`);
    }
    if (!out.includes(raw as TokenScope)) out.push(raw as TokenScope);
  }
  return out;
}

export class AdminTokens {
  private readonly store: KeyValStore;

  constructor(storage: Database) {
    this.store = storage.keyval(STORE);
  }

  /** Creates a token; returns its secret, which is not stored and cannot be shown again. */
  async create(name: string, scopes: readonly TokenScope[]): Promise<string> {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) {
      throw new AdminError('PARLEY_ERR_USAGE', `"${name}" is not a token name`, 'use 1-64 letters, digits, . _ or -');
    }
    if ((await this.list()).some((t) => t.name === name)) {
      throw new AdminError('PARLEY_ERR_TOKEN_EXISTS', `a token named ${name} exists`, 'revoke it first, or choose another name');
    }
    const secret = PREFIX + randomBytes(32).toString('base64url');
    const info: TokenInfo = { name, scopes: [...scopes], createdAt: new Date().toISOString() };
    await this.store.set(OWNER.host, OWNER.user, hashToken(secret), JSON.stringify(info));
    return secret;
  }

  /** The token's name and scopes; undefined for an unknown token. */
  async verify(secret: string): Promise<TokenInfo | undefined> {
    if (!secret.startsWith(PREFIX) || secret.length > 128) return undefined;
    const raw = await this.store.get(OWNER.host, OWNER.user, hashToken(secret));
    return raw === undefined ? undefined : (JSON.parse(raw) as TokenInfo);
  }

  async list(): Promise<TokenInfo[]> {
    const out: TokenInfo[] = [];
    for (const key of await this.store.keys(OWNER.host, OWNER.user)) {
      const raw = await this.store.get(OWNER.host, OWNER.user, key);
      if (raw !== undefined) out.push(JSON.parse(raw) as TokenInfo);
    }
    return out.sort((a, b) => a.name.localeCompare(b.name));
  }

  /** False when there is no token of that name. */
  async revoke(name: string): Promise<boolean> {
    for (const key of await this.store.keys(OWNER.host, OWNER.user)) {
      const raw = await this.store.get(OWNER.host, OWNER.user, key);
      if (raw !== undefined && (JSON.parse(raw) as TokenInfo).name === name) {
        await this.store.delete(OWNER.host, OWNER.user, key);
        return true;
      }
    }
    return false;
  }
}
