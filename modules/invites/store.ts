// Invitations (XEP-0401 account invites, XEP-0379 contact invites): what is kept per token, and
// the links that carry it. Stored in the generic key-value store under the host (user ''), so the
// CLI can create them without a running server.
import { randomBytes } from 'node:crypto';
import { KeyedLock } from '../../lib/module-api.js';
import type { KeyValStore } from '../../lib/module-api.js';

export const INVITE_STORE = 'invites';
/** XEP-0379 / XEP-0401 `<preauth/>`. */
export const NS_PARS = 'urn:xmpp:pars:0';

export interface Invite {
  token: string;
  /** `account`: a new account on the host; `contact`: the inviter's contact, with an account when `register`. */
  kind: 'account' | 'contact';
  /** Localpart of the account whose contact the invitee becomes (contact invites). */
  inviter?: string;
  /** The invite may create accounts. */
  register: boolean;
  /** Milliseconds since the epoch. */
  created: number;
  expires: number;
  /** Accounts it may still create (or subscriptions it may still approve). */
  usesLeft: number;
  /** Who made it: `cli`, or a JID. */
  createdBy: string;
  /** Accounts created with it, newest last. */
  accounts: string[];
}

export interface NewInvite {
  kind: Invite['kind'];
  inviter?: string;
  register: boolean;
  lifetimeMs: number;
  uses: number;
  createdBy: string;
}

/** 144 bits from the CSPRNG, URL-safe: a token is the whole secret. */
function newToken(): string {
  return randomBytes(18).toString('base64url');
}

const USER = '';

export class InviteStore {
  private readonly lock = new KeyedLock();

  constructor(
    private readonly kv: KeyValStore,
    private readonly host: string,
  ) {}

  /** Runs `fn` holding the token's lock (re-entrant). */
  locked<T>(token: string, fn: () => Promise<T>): Promise<T> {
    return this.lock.run(token, fn);
  }

  async create(spec: NewInvite, now = Date.now()): Promise<Invite> {
    const invite: Invite = {
      token: newToken(),
      kind: spec.kind,
      ...(spec.inviter === undefined ? {} : { inviter: spec.inviter }),
      register: spec.register,
      created: now,
      expires: now + spec.lifetimeMs,
      usesLeft: spec.uses,
      createdBy: spec.createdBy,
      accounts: [],
    };
    await this.kv.set(this.host, USER, invite.token, JSON.stringify(invite));
    return invite;
  }

  /** The invite of a token, if it exists, has not expired and has uses left. */
  async valid(token: string, now = Date.now()): Promise<Invite | undefined> {
    const invite = await this.read(token);
    return invite && invite.expires > now && invite.usesLeft > 0 ? invite : undefined;
  }

  /** Spends one use of a valid invite; undefined when it is not (any more) valid. */
  async use(token: string, account: string | undefined, now = Date.now()): Promise<Invite | undefined> {
    return this.lock.run(token, async () => {
      const invite = await this.valid(token, now);
      if (!invite) return undefined;
      invite.usesLeft -= 1;
      if (account !== undefined) invite.accounts.push(account);
      if (invite.usesLeft === 0) await this.kv.delete(this.host, USER, token);
      else await this.kv.set(this.host, USER, token, JSON.stringify(invite));
      return invite;
    });
  }

  async list(): Promise<Invite[]> {
    const out: Invite[] = [];
    for (const key of await this.kv.keys(this.host, USER)) {
      const invite = await this.read(key);
      if (invite) out.push(invite);
    }
    return out.sort((a, b) => a.created - b.created);
  }

  async revoke(token: string): Promise<boolean> {
    const had = (await this.read(token)) !== undefined;
    await this.kv.delete(this.host, USER, token);
    return had;
  }

  /** Forgets expired invites; returns how many. */
  async prune(now = Date.now()): Promise<number> {
    let n = 0;
    for (const invite of await this.list()) {
      if (invite.expires <= now) {
        await this.kv.delete(this.host, USER, invite.token);
        n++;
      }
    }
    return n;
  }

  private async read(token: string): Promise<Invite | undefined> {
    // Tokens are base64url; anything else cannot name an invite (and never reaches the store).
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(token)) return undefined;
    const raw = await this.kv.get(this.host, USER, token);
    return raw === undefined ? undefined : (JSON.parse(raw) as Invite);
  }
}

/**
 * The XMPP URI of an invite: XEP-0401 §3 `xmpp:host?register;preauth=T` for an account,
 * XEP-0379 §3 `xmpp:user@host?roster;preauth=T` for a contact (`;ibr=y` when it also creates
 * an account, XEP-0401 §3).
 */
export function inviteUri(invite: Invite, host: string): string {
  const token = encodeURIComponent(invite.token);
  if (invite.kind === 'account') return `xmpp:${host}?register;preauth=${token}`;
  return `xmpp:${invite.inviter}@${host}?roster;preauth=${token}${invite.register ? ';ibr=y' : ''}`;
}

/** The landing page path of an invite on the HTTP listeners. */
export const INVITE_PATH = '/invite/';

export type Redeemed = { ok: true; invite: Invite } | { ok: false };

/**
 * Runs `create` for an account only while the invite is valid, then spends one use, all under the
 * token's lock, so that a single-use invite never creates two accounts.
 */
export async function redeemInvite(store: InviteStore, token: string, account: string, create: () => Promise<void>, now = Date.now()): Promise<Redeemed> {
  return store.locked(token, async () => {
    if (!(await store.valid(token, now))) return { ok: false };
    await create();
    const invite = await store.use(token, account, now);
    return invite ? { ok: true, invite } : { ok: false };
  });
}
