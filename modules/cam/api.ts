// Client access management as functions: what has access to an account (clients holding FAST
// tokens, app passwords, bound sessions) and revoking one of them. The XEP-0494 IQs (index.ts)
// and the web self-service page (lib/admin/account-http.ts) both use these, so a revocation
// always deletes the credential, ends its sessions and writes the same audit event.
import { createHash } from 'node:crypto';
import { Jid } from '../../lib/module-api.js';
import type { SessionHandle, SessionView } from '../../lib/module-api.js';
import type { FastApi } from '../fast/index.js';
import type { SecurityApi } from '../security/api.js';

/** One client with access to the account (XEP-0494 §3's <client/>). */
export interface ClientEntry {
  id: string;
  type: 'session' | 'access';
  connected: boolean;
  auth: string[];
  software?: string;
  device?: string;
  firstSeen?: number;
  lastSeen?: number;
  /** False for a client holding only the account password: only a password change shuts it out. */
  revocable: boolean;
}

export type RevokeResult = 'revoked' | 'not-found' | 'password-reset-required';

export interface CamApi {
  list(user: string): Promise<ClientEntry[]>;
  /** Revokes the client `id` of `user`; `by` (a JID) goes into the audit event. */
  revoke(user: string, id: string, by: string): Promise<RevokeResult>;
}

export interface CamDeps {
  host: string;
  sessions: SessionView;
  fast: FastApi | undefined;
  security: SecurityApi | undefined;
}

/** Opaque, stable ids: the client's own id never leaves the server. */
const opaque = (prefix: string, value: string) => `${prefix}-${createHash('sha256').update(value).digest('base64url').slice(0, 16)}`;

type Entry = ClientEntry & { revoke?: (by: string) => Promise<void> };

export function camApi(d: CamDeps): CamApi {
  function endSessions(sessions: SessionHandle[]): void {
    for (const s of sessions) s.close('not-authorized', 'access revoked');
  }

  async function entries(user: string): Promise<Entry[]> {
    const sessions = d.sessions.of(Jid.of(user, d.host));
    const out: Entry[] = [];
    const covered = new Set<SessionHandle>();
    for (const t of (await d.fast?.clients(user)) ?? []) {
      const mine = sessions.filter((s) => s.client?.id === t.clientId && s.client.credential !== 'app-password');
      mine.forEach((s) => covered.add(s));
      const c = mine[0]?.client;
      out.push({
        id: opaque('f', t.clientId), type: mine.length ? 'session' : 'access', connected: mine.length > 0, auth: ['password', 'fast'],
        software: c?.software, device: c?.device, ...(mine.length ? { lastSeen: Date.now() } : {}), revocable: true,
        revoke: async (by) => {
          await d.fast!.revoke(user, t.clientId);
          endSessions(mine);
          await d.security?.audit(user, 'fast-token-revoked', { client: c?.software ?? t.clientId.slice(0, 8), by });
        },
      });
    }
    for (const a of (await d.security?.appPasswords(user)) ?? []) {
      const mine = sessions.filter((s) => s.client?.appPasswordId === a.id);
      mine.forEach((s) => covered.add(s));
      out.push({
        id: `a-${a.id}`, type: mine.length ? 'session' : 'access', connected: mine.length > 0, auth: ['password'], software: a.label,
        firstSeen: a.createdAt, lastSeen: mine.length ? Date.now() : a.lastUsedAt, revocable: true,
        revoke: async (by) => void (await d.security!.revokeAppPassword(user, a.id, by)),
      });
    }
    for (const s of sessions) {
      if (covered.has(s)) continue;
      out.push({
        id: opaque('s', s.client?.id ?? s.id), type: 'session', connected: true, auth: [s.client?.credential === 'token' ? 'fast' : 'password'],
        software: s.client?.software, device: s.client?.device, lastSeen: Date.now(), revocable: false,
      });
    }
    // One row per id (several sessions of one client instance).
    return [...new Map(out.map((e) => [e.id, e])).values()];
  }

  return {
    async list(user) {
      return (await entries(user)).map(({ revoke: _revoke, ...e }) => e);
    },
    async revoke(user, id, by) {
      const entry = (await entries(user)).find((e) => e.id === id);
      if (!entry) return 'not-found';
      if (!entry.revoke) return 'password-reset-required';
      await entry.revoke(by);
      return 'revoked';
    },
  };
}
