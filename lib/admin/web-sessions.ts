// Sessions of the web admin and of the account self-service pages (/account/): a user logs in
// with the password of their XMPP account and gets
// a random session id in an HttpOnly, SameSite=Strict cookie (Secure over https), and a CSRF
// token that the page sends back in a header on every state-changing request (the synchroniser
// token pattern, on top of SameSite). Sessions live in memory, bounded in number and idle time.
import { randomBytes, timingSafeEqual } from 'node:crypto';

export const SESSION_COOKIE = 'parley_admin';

export interface WebAdminSession {
  readonly id: string;
  /** The bare JID of the account that logged in. */
  readonly account: string;
  readonly csrf: string;
  /** The password's fingerprint at login: the session ends when the password changes. */
  readonly password: string | undefined;
  lastSeen: number;
}

export interface WebSessionLimits {
  idleMs: number;
  max: number;
  /**
   * Sessions one account may hold; its own oldest ends first, so that one account logging in
   * over and over cannot push everybody else's sessions out.
   */
  maxPerAccount?: number;
}

export class WebAdminSessions {
  // Insertion order is age order: the oldest goes first when full.
  private readonly sessions = new Map<string, WebAdminSession>();

  constructor(private readonly limits: WebSessionLimits, private readonly now: () => number = Date.now) {}

  create(account: string, password: string | undefined): WebAdminSession {
    this.sweep();
    if (this.limits.maxPerAccount !== undefined) {
      const own = [...this.sessions.values()].filter((s) => s.account === account);
      for (const s of own.slice(0, Math.max(0, own.length - this.limits.maxPerAccount + 1))) this.sessions.delete(s.id);
    }
    while (this.sessions.size >= this.limits.max) this.sessions.delete(this.sessions.keys().next().value!);
    const session = { id: randomBytes(32).toString('base64url'), account, csrf: randomBytes(32).toString('base64url'), password, lastSeen: this.now() };
    this.sessions.set(session.id, session);
    return session;
  }

  /** The live session of a cookie value; touching it keeps it alive. */
  get(id: string | undefined): WebAdminSession | undefined {
    if (id === undefined) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    if (this.now() - s.lastSeen > this.limits.idleMs) {
      this.sessions.delete(id);
      return undefined;
    }
    s.lastSeen = this.now();
    return s;
  }

  delete(id: string): void {
    this.sessions.delete(id);
  }

  /** Ends every session of one account. */
  deleteAccount(account: string): void {
    for (const [id, s] of this.sessions) if (s.account === account) this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const [id, s] of this.sessions) if (now - s.lastSeen > this.limits.idleMs) this.sessions.delete(id);
  }
}

/** Constant-time comparison of a presented CSRF token with the session's. */
export function csrfMatches(session: WebAdminSession, presented: string | undefined): boolean {
  if (presented === undefined) return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The value of one cookie in a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

export function sessionCookie(value: string, secure: boolean, maxAgeSeconds: number, name = SESSION_COOKIE, path = '/admin'): string {
  return `${name}=${value}; Path=${path}; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`;
}
