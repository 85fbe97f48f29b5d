// The module's options (ARCHITECTURE.md §9): safe defaults for a public server.
import { duration, size, z } from '../../lib/module-api.js';

export const mucConfigSchema = z.strictObject({
  /** The service's domain; `conference.<host>` when unset. */
  domain: z.string().min(1).optional(),
  /** The service's name in disco (XEP-0045 §6.1). */
  name: z.string().min(1).default('Chatrooms'),
  /** Who may create rooms: users of this server's hosts, the server's admins, or anyone. */
  restrictRoomCreation: z.enum(['local', 'admins', 'anyone']).default('local'),
  /** Occupants per room: the default and the highest muc#roomconfig_maxusers. */
  maxUsers: z.number().int().min(1).max(100_000).default(200),
  /** Messages of discussion history sent on entering a new room (its muc#maxhistoryfetch). */
  historyLength: z.number().int().min(0).max(1000).default(20),
  /** The most history a room may be configured to send, or a client ask for. */
  maxHistoryLength: z.number().int().min(0).max(1000).default(100),
  /** Archived room messages older than this are deleted; 0 keeps them forever. */
  archiveRetention: duration().prefault('365d'),
  /** Messages (to the room or private) one occupant may send per second, and the burst allowed. */
  messageRate: z
    .strictObject({
      perSecond: z.number().positive().default(2),
      burst: z.number().int().min(1).default(20),
    })
    .prefault({}),
  /**
   * XEP-0317: the hats admins and owners may give in any room (a URI each, with a title to show).
   * None: the rooms offer no hats.
   */
  hats: z
    .array(z.strictObject({ uri: z.string().url().max(1024), title: z.string().min(1).max(100) }))
    .max(100)
    .refine((hats) => new Set(hats.map((h) => h.uri)).size === hats.length, 'each hat needs its own uri')
    .default([]),
  /** Largest room vCard (avatar included). */
  vcardMaxSize: size().prefault('64 KiB'),
});

export type MucConfig = z.output<typeof mucConfigSchema>;
