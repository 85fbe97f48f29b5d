// XEP-0045 Multi-User Chat on conference.<host>, with the room archive (XEP-0313 on room JIDs,
// XEP-0359 stanza ids), occupant ids (XEP-0421), self-ping (XEP-0410), moderation (XEP-0425) and
// room avatars (vcard-temp, XEP-0486 hashes). Every stanza to the service's domain comes here
// (ctx.service); the module answers for the service and each room itself.
import { defineModule, Jid } from '../../lib/module-api.js';
import disco from '../disco/index.js';
import { mucConfigSchema } from './config.js';
import type { Affiliation, Role } from './affiliations.js';
import type { RoomConfig } from './room-config.js';
import { mucMigrations } from './storage.js';
import { MucService } from './service.js';

export type { MucConfig } from './config.js';

/** A read-only view of a room in memory, for admin tools and specs. */
export interface RoomSnapshot {
  jid: string;
  locked: boolean;
  config: RoomConfig;
  subject: string | undefined;
  occupants: Array<{ nick: string; jid: string; role: Role; affiliation: Affiliation; sessions: string[]; occupantId: string }>;
  affiliations: Array<{ jid: string; affiliation: Affiliation; nick?: string }>;
}

export interface MucApi {
  /** The service's domain (conference.<host> unless configured). */
  readonly domain: string;
  /** A room held in memory (every room with occupants, and recently used ones). */
  room(name: string): RoomSnapshot | undefined;
  /** Whether a room exists (in memory or stored). */
  exists(name: string): Promise<boolean>;
  /** XEP-0045 §11.2: tells every occupant the service is shutting down (status 332). */
  shutdown(): Promise<void>;
  /** Deletes archived messages past `archiveRetention` now (it also runs hourly). */
  expireArchives(now?: number): Promise<number>;
}

const HOUR = 3_600_000;
const NAMES_PAGE = 200;

export default defineModule({
  name: 'muc',
  xeps: [
    { xep: 45, version: '1.35.5', status: 'complete', note: 'registration is approved automatically; voice is kept across visits (XEP-0045 §5.1)' },
    { xep: 249, version: '1.2', status: 'complete', note: 'direct invitations pass through private messages unchanged' },
    { xep: 313, version: '1.1.3', status: 'partial', note: 'room archives (the account archive is the mam module)' },
    { xep: 317, version: '0.2', status: 'complete', note: 'the hats offered are the service’s (muc.hats)' },
    { xep: 359, version: '0.7.0', status: 'complete', note: 'stanza-id by the room on archived groupchat messages' },
    { xep: 410, version: '1.1.0', status: 'complete', note: 'with the self-ping optimisation' },
    { xep: 421, version: '1.0.1', status: 'complete' },
    { xep: 425, version: '0.3.0', status: 'complete', note: 'also message-moderate:0 (0.2) for older clients' },
    { xep: 486, version: '0.1.0', status: 'partial', note: 'room vCards and avatar hashes' },
  ],
  defaultEnabled: true,
  optional: [disco],
  migrations: mucMigrations,
  config: mucConfigSchema,
  setup(ctx): MucApi {
    const domain = Jid.parse(ctx.config.domain ?? `conference.${ctx.host}`).domain;
    const svc = new MucService(ctx, domain);
    ctx.service(domain, (stanza) => svc.handle(stanza));
    // The host's disco#items lists the service; this gives it its name (XEP-0045 §6.1).
    if (ctx.deps.has(disco)) ctx.deps.get(disco).addItemsProvider({ target: 'host' }, () => [{ jid: domain, name: ctx.config.name }]);

    // A session that ends without leaving leaves every room it was in.
    ctx.on('session/closed', ({ session }) => svc.sessionClosed(session.jid));
    // XEP-0045 §7.2.8 / status 332: occupants learn the service is going down, not that they left.
    ctx.on('server/stopping', () => svc.shutdown());

    // ARCHITECTURE §7: a deleted account's affiliations and reserved nicks go.
    ctx.on('account/deleted', async ({ host, user }) => {
      const jid = `${user}@${host}`;
      await svc.store.purgeJid(jid);
      for (const room of svc.live()) {
        await svc.withLock(room.name, async () => {
          room.affiliations.delete(jid);
          room.roles.delete(jid);
          room.hats.delete(jid);
        });
      }
    });

    async function expireArchives(now = Date.now()): Promise<number> {
      const retention = ctx.config.archiveRetention;
      if (retention <= 0) return 0;
      const before = now - retention;
      let removed = 0;
      const seen = new Set<string>();
      for (const room of svc.live()) {
        seen.add(room.name);
        removed += await svc.archive.expire(room.name, before);
      }
      for (let after: string | undefined, names: string[]; (names = await svc.store.names(after, NAMES_PAGE)).length > 0; after = names[names.length - 1]) {
        for (const name of names) if (!seen.has(name)) removed += await svc.archive.expire(name, before);
      }
      return removed;
    }
    ctx.setInterval(() => {
      expireArchives().catch((err: unknown) => ctx.log.error({ err }, 'muc: archive retention sweep failed'));
    }, HOUR);

    return {
      domain,
      room(name) {
        const room = svc.live().find((r) => r.name === name);
        if (!room) return undefined;
        return {
          jid: room.jid.toString(),
          locked: room.locked,
          config: { ...room.config },
          subject: room.subject?.text,
          occupants: [...room.occupants.values()].map((o) => ({
            nick: o.nick,
            jid: o.bare.toString(),
            role: o.role,
            affiliation: room.affiliationOf(o.bare),
            sessions: [...o.sessions.keys()],
            occupantId: o.occupantId,
          })),
          affiliations: [...room.affiliations.values()].map((e) => ({ jid: e.jid, affiliation: e.affiliation, nick: e.nick })),
        };
      },
      async exists(name) {
        return svc.live().some((r) => r.name === name) || (await svc.store.exists(name));
      },
      shutdown: () => svc.shutdown(),
      expireArchives,
    };
  },
});
