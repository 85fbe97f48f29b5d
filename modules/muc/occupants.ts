// An occupant: one nick in one room, held by one real bare JID through one or more of its
// sessions (multi-session nicks, XEP-0045 §7.2.8), with one role for the visit.
import type { Element, Jid } from '../../lib/module-api.js';
import type { Role } from './affiliations.js';

/**
 * The key nicks are compared by: two nicks that differ only in case or compatibility forms would
 * look the same to people, so they conflict (XEP-0045 §7.2.8 leaves folding to the service).
 */
export function nickKey(nick: string): string {
  return nick.normalize('NFKC').toLowerCase();
}

/** XEP-0045 §17.1: a nick must not be empty or invisible. */
export function validNick(nick: string | undefined): nick is string {
  return nick !== undefined && nick.trim() !== '' && !/^[\s\u200b-\u200f\u2060\ufeff]+$/u.test(nick);
}

export interface OccupantSession {
  jid: Jid;
  /** The last presence this session sent to the room, MUC extensions removed. */
  presence: Element;
}

export class Occupant {
  /** Real full JID → session, in the order they last sent presence (the last is the primary). */
  readonly sessions = new Map<string, OccupantSession>();
  /** Message rate-limit bucket (tokens, last refill). */
  tokens: number;
  refilled = Date.now();

  constructor(
    public nick: string,
    /** The real bare JID. */
    readonly bare: Jid,
    public role: Role,
    /** XEP-0421 occupant id of `bare` in this room. */
    readonly occupantId: string,
    burst: number,
  ) {
    this.tokens = burst;
  }

  get key(): string {
    return nickKey(this.nick);
  }

  /** Adds or updates a session; it becomes the primary one. */
  setSession(jid: Jid, presence: Element): void {
    this.sessions.delete(jid.toString());
    this.sessions.set(jid.toString(), { jid, presence });
  }

  /** The session whose presence stands for the occupant: the one that last sent presence. */
  primary(): OccupantSession {
    let last: OccupantSession | undefined;
    for (const s of this.sessions.values()) last = s;
    if (!last) throw new Error(`occupant ${this.nick} has no session`);
    return last;
  }

  has(jid: Jid): boolean {
    return this.sessions.has(jid.toString());
  }

  /** Takes one token from the bucket; false when the occupant sends faster than allowed. */
  take(perSecond: number, burst: number, now = Date.now()): boolean {
    this.tokens = Math.min(burst, this.tokens + ((now - this.refilled) / 1000) * perSecond);
    this.refilled = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
