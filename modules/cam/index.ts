// XEP-0494 Client Access Management: a user lists what has access to their account (clients
// holding FAST tokens, app passwords, bound sessions with the user agent they gave at SASL2) and
// revokes any of them. Revocation deletes the credential from the shared store, so no node
// accepts it again, and ends that client's sessions on every node (RemoteSession.close goes over Redis).
import { createHash } from 'node:crypto';
import { defineModule, Jid, StanzaError, xml, z } from '../../lib/module-api.js';
import type { Element, SessionHandle } from '../../lib/module-api.js';
import fast from '../fast/index.js';
import security from '../security/index.js';

export const CAM_NS = 'urn:xmpp:cam:0';

/** Opaque, stable ids: the client's own id never leaves the server. */
const opaque = (prefix: string, value: string) => `${prefix}-${createHash('sha256').update(value).digest('base64url').slice(0, 16)}`;

interface Entry {
  id: string;
  type: 'session' | 'access';
  connected: boolean;
  auth: string[];
  software?: string;
  device?: string;
  firstSeen?: number;
  lastSeen?: number;
  revoke?: () => Promise<void>;
}

export default defineModule({
  name: 'cam',
  xeps: [{ xep: 494, version: '0.1.0', status: 'partial', note: 'FAST tokens, app passwords and sessions; revoking a password login asks for a password reset' }],
  features: { account: [CAM_NS] },
  defaultEnabled: true,
  optional: [fast, security],
  config: z.strictObject({}),
  setup(ctx) {
    const fastApi = ctx.deps.has(fast) ? ctx.deps.get(fast) : undefined;
    const securityApi = ctx.deps.has(security) ? ctx.deps.get(security) : undefined;

    function endSessions(sessions: SessionHandle[]): void {
      for (const s of sessions) s.close('not-authorized', 'access revoked');
    }

    async function entries(user: string): Promise<Entry[]> {
      const sessions = ctx.sessions.of(Jid.of(user, ctx.host));
      const out: Entry[] = [];
      const covered = new Set<SessionHandle>();
      for (const t of (await fastApi?.clients(user)) ?? []) {
        const mine = sessions.filter((s) => s.client?.id === t.clientId && s.client.credential !== 'app-password');
        mine.forEach((s) => covered.add(s));
        const c = mine[0]?.client;
        out.push({
          id: opaque('f', t.clientId), type: mine.length ? 'session' : 'access', connected: mine.length > 0, auth: ['password', 'fast'],
          software: c?.software, device: c?.device, ...(mine.length ? { lastSeen: Date.now() } : {}),
          revoke: async () => {
            await fastApi!.revoke(user, t.clientId);
            endSessions(mine);
            await securityApi?.audit(user, 'fast-token-revoked', { client: c?.software ?? t.clientId.slice(0, 8) });
          },
        });
      }
      for (const a of (await securityApi?.appPasswords(user)) ?? []) {
        const mine = sessions.filter((s) => s.client?.appPasswordId === a.id);
        mine.forEach((s) => covered.add(s));
        out.push({
          id: `a-${a.id}`, type: mine.length ? 'session' : 'access', connected: mine.length > 0, auth: ['password'], software: a.label,
          firstSeen: a.createdAt, lastSeen: mine.length ? Date.now() : a.lastUsedAt,
          revoke: async () => void (await securityApi!.revokeAppPassword(user, a.id, `${user}@${ctx.host}`)),
        });
      }
      for (const s of sessions) {
        if (covered.has(s)) continue;
        out.push({ id: opaque('s', s.client?.id ?? s.id), type: 'session', connected: true, auth: [s.client?.credential === 'token' ? 'fast' : 'password'], software: s.client?.software, device: s.client?.device, lastSeen: Date.now() });
      }
      // One row per id (several sessions of one client instance).
      return [...new Map(out.map((e) => [e.id, e])).values()];
    }

    const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
    function render(e: Entry): Element {
      return xml(
        'client',
        { id: e.id, type: e.type, connected: String(e.connected) },
        e.firstSeen !== undefined ? xml('first-seen', {}, iso(e.firstSeen)) : null,
        e.lastSeen !== undefined ? xml('last-seen', {}, iso(e.lastSeen)) : null,
        xml('auth', {}, ...e.auth.map((a) => xml(a))),
        xml('permission', { status: 'unrestricted' }),
        e.software || e.device ? xml('user-agent', {}, e.software ? xml('software', {}, e.software) : null, e.device ? xml('device', {}, e.device) : null) : null,
      );
    }

    ctx.iq.get({ ns: CAM_NS, name: 'list', to: ['self'] }, async (iq) => {
      const list = await entries(iq.from.local!);
      return xml('clients', { xmlns: CAM_NS }, ...list.map(render));
    });

    ctx.iq.set({ ns: CAM_NS, name: 'revoke', to: ['self'] }, async (iq) => {
      const id = iq.payload!.attrs.id;
      if (typeof id !== 'string' || id === '') throw StanzaError.badRequest('id is required');
      const entry = (await entries(iq.from.local!)).find((e) => e.id === id);
      if (!entry) throw StanzaError.itemNotFound('no such client');
      // A client that holds only the account password can be shut out only by changing it.
      if (!entry.revoke) throw new StanzaError('service-unavailable', { appCondition: xml('password-reset-required', { xmlns: CAM_NS }) });
      await entry.revoke();
      return undefined;
    });
  },
});
