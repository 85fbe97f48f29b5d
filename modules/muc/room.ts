// A room's state in memory: configuration, affiliations with reserved nicks, occupants and the
// subject. Persistent rooms mirror it in their tables (storage.ts); temporary ones live only here.
import type { Jid } from '../../lib/module-api.js';
import { defaultRole, isAdmin, type Affiliation, type Role, type StoredAffiliation } from './affiliations.js';
import { nickKey, type Occupant } from './occupants.js';
import { occupantId } from './occupant-id.js';
import type { RoomConfig } from './room-config.js';

export interface AffiliationEntry {
  /** A bare JID, or a domain (a domain ban covers every JID of it, XEP-0045 §9.2). */
  jid: string;
  affiliation: StoredAffiliation;
  /** The nick reserved for this JID in the room (registration, XEP-0045 §7.10). */
  nick?: string;
  reason?: string;
}

/** The roles a room keeps across visits. */
export type KeptRole = Extract<Role, 'participant' | 'visitor'>;

export function isKeptRole(role: string): role is KeptRole {
  return role === 'participant' || role === 'visitor';
}

export interface Subject {
  text: string;
  /** The nick of whoever set it, for the `from` of the subject message. */
  nick?: string;
  at: number;
}

export class Room {
  /** By nick key (occupants.ts `nickKey`). */
  readonly occupants = new Map<string, Occupant>();
  /** By bare JID or domain. */
  readonly affiliations = new Map<string, AffiliationEntry>();
  /**
   * XEP-0045 §5.1: voice a moderator gave or took (participant or visitor, by bare JID), kept
   * across visits and applied on entering while the room is moderated. Only roles that differ from
   * what the affiliation gives are here; an affiliation change forgets them.
   */
  readonly roles = new Map<string, KeptRole>();
  /** XEP-0317: the hats (URIs) each bare JID wears in this room. */
  readonly hats = new Map<string, Set<string>>();
  /** XEP-0045 §10.1.1: a new room is locked until its owner configures it. */
  locked = false;
  destroyed = false;
  subject: Subject | undefined;
  /** XEP-0486: SHA-1 of the room's avatar, when it has one. */
  avatarHash: string | undefined;

  constructor(
    readonly jid: Jid,
    public config: RoomConfig,
    /** The XEP-0421 secret. */
    readonly secret: string,
    /** Service admins, who own every room. */
    private readonly serviceAdmins: readonly Jid[],
  ) {}

  get name(): string {
    return this.jid.local!;
  }

  occupantJid(nick: string): Jid {
    return this.jid.withResource(nick);
  }

  occupantIdOf(bare: Jid): string {
    return occupantId(this.secret, bare.bare().toString());
  }

  /** XEP-0045 §9.2: the exact bare JID first, then its domain. */
  entryOf(real: Jid): AffiliationEntry | undefined {
    return this.affiliations.get(real.bare().toString()) ?? this.affiliations.get(real.domain);
  }

  affiliationOf(real: Jid): Affiliation {
    const bare = real.bare();
    if (this.serviceAdmins.some((a) => a.bare().equals(bare))) return 'owner';
    return this.entryOf(real)?.affiliation ?? 'none';
  }

  /** The role a user gets on entering: what its affiliation gives, or in a moderated room the voice kept for it. */
  roleOnEntering(real: Jid): Role {
    const affiliation = this.affiliationOf(real);
    const role = defaultRole(affiliation, this.config.moderated);
    if (!this.config.moderated || isAdmin(affiliation) || affiliation === 'outcast') return role;
    return this.roles.get(real.bare().toString()) ?? role;
  }

  /** The bare JID that reserved this nick, if any. */
  reservationOf(nick: string): string | undefined {
    const key = nickKey(nick);
    for (const e of this.affiliations.values()) if (e.nick !== undefined && nickKey(e.nick) === key) return e.jid;
    return undefined;
  }

  list(affiliation: StoredAffiliation): AffiliationEntry[] {
    return [...this.affiliations.values()].filter((e) => e.affiliation === affiliation).sort((a, b) => (a.jid < b.jid ? -1 : a.jid > b.jid ? 1 : 0));
  }

  byNick(nick: string): Occupant | undefined {
    return this.occupants.get(nickKey(nick));
  }

  /** The occupant one of whose sessions is this real full JID. */
  bySession(real: Jid): Occupant | undefined {
    for (const o of this.occupants.values()) if (o.has(real)) return o;
    return undefined;
  }

  /** Every occupant held by this real bare JID (one per nick it uses). */
  byBare(bare: Jid): Occupant[] {
    const b = bare.bare();
    return [...this.occupants.values()].filter((o) => o.bare.equals(b));
  }

  /** Whether an occupant (or a non-occupant, role none) may see real JIDs (XEP-0045 §7.2.3-7.2.4). */
  showsJidsTo(role: Role): boolean {
    return this.config.whois === 'anyone' || role === 'moderator';
  }

  /** An empty temporary room, or a locked room its creator left, goes away. */
  get disposable(): boolean {
    return this.occupants.size === 0 && (!this.config.persistent || this.locked);
  }
}
