// XEP-0045 §5: roles (per occupant, for a visit) and affiliations (per bare JID, long-lived),
// their ranks, the default role of each affiliation, and who may change whose role or affiliation.
import { StanzaError } from '../../lib/module-api.js';

export const AFFILIATIONS = ['owner', 'admin', 'member', 'none', 'outcast'] as const;
export type Affiliation = (typeof AFFILIATIONS)[number];
/** The affiliations a room stores ("none" is the absence of one, XEP-0045 §5.2). */
export type StoredAffiliation = Exclude<Affiliation, 'none'>;

export const ROLES = ['moderator', 'participant', 'visitor', 'none'] as const;
export type Role = (typeof ROLES)[number];

const AFFILIATION_RANK: Record<Affiliation, number> = { outcast: 0, none: 1, member: 2, admin: 3, owner: 4 };
const ROLE_RANK: Record<Role, number> = { none: 0, visitor: 1, participant: 2, moderator: 3 };

export function isAffiliation(value: string | undefined): value is Affiliation {
  return value !== undefined && (AFFILIATIONS as readonly string[]).includes(value);
}

export function isRole(value: string | undefined): value is Role {
  return value !== undefined && (ROLES as readonly string[]).includes(value);
}

export function affiliationRank(a: Affiliation): number {
  return AFFILIATION_RANK[a];
}

export function roleRank(r: Role): number {
  return ROLE_RANK[r];
}

/** admin or owner. */
export function isAdmin(a: Affiliation): boolean {
  return AFFILIATION_RANK[a] >= AFFILIATION_RANK.admin;
}

/** member, admin or owner. */
export function isMember(a: Affiliation): boolean {
  return AFFILIATION_RANK[a] >= AFFILIATION_RANK.member;
}

/** XEP-0045 §5.1.2: the role an occupant gets on entering, from its affiliation and the room type. */
export function defaultRole(affiliation: Affiliation, moderated: boolean): Role {
  switch (affiliation) {
    case 'owner':
    case 'admin':
      return 'moderator';
    case 'member':
      return 'participant';
    case 'none':
      return moderated ? 'visitor' : 'participant';
    case 'outcast':
      return 'none';
  }
}

/**
 * XEP-0045 §5.1.3, §8.2-8.5, §9.6-9.7: may an occupant with `actor` affiliation and role set the
 * role of an occupant with `target` affiliation and role to `next`? Returns the error to answer,
 * or undefined when allowed.
 */
export function roleChangeError(
  actor: { affiliation: Affiliation; role: Role },
  target: { affiliation: Affiliation; role: Role },
  next: Role,
): StanzaError | undefined {
  if (actor.role !== 'moderator') return StanzaError.forbidden('only moderators can change roles');
  // Granting or revoking moderator status is the privilege of admins and owners (§9.6, §9.7).
  if ((next === 'moderator' || target.role === 'moderator') && !isAdmin(actor.affiliation)) {
    return new StanzaError('not-allowed', { text: 'only admins and owners can grant or revoke moderator status' });
  }
  // §8.2: "a user cannot be kicked by a moderator with a lower affiliation"; §8.4: voice cannot be
  // revoked from someone at or above the moderator's affiliation, nor from any admin or owner.
  if (next === 'moderator' || next === target.role) return undefined;
  if (isAdmin(target.affiliation)) {
    // §8.4, §9.7: voice and moderator status are never taken from admins and owners; only an
    // owner may kick one.
    if (next !== 'none') return new StanzaError('not-allowed', { text: 'admins and owners are always moderators' });
    if (actor.affiliation !== 'owner') return new StanzaError('not-allowed', { text: 'only owners can kick admins and owners' });
  }
  if (next === 'none' && affiliationRank(target.affiliation) > affiliationRank(actor.affiliation)) {
    return new StanzaError('not-allowed', { text: 'that occupant has a higher affiliation than yours' });
  }
  if (next === 'visitor' && affiliationRank(target.affiliation) >= affiliationRank(actor.affiliation)) {
    return new StanzaError('not-allowed', { text: 'you cannot revoke voice from someone of your affiliation or above' });
  }
  return undefined;
}

/**
 * XEP-0045 §5.2.2, §9.1-9.5, §10.3-10.8: may a user with `actor` affiliation change the affiliation
 * of a user from `current` to `next`? `self` when the actor changes its own affiliation.
 */
export function affiliationChangeError(actor: Affiliation, current: Affiliation, next: Affiliation, self: boolean): StanzaError | undefined {
  if (!isAdmin(actor)) return StanzaError.forbidden('only admins and owners can change affiliations');
  // §9.1: "If an admin or owner attempts to ban himself, the service MUST deny the request" with conflict.
  if (self && next === 'outcast') return StanzaError.conflict('you cannot ban yourself');
  if (actor === 'admin') {
    // Only owners edit the admin and owner lists (§10.3-10.8) ...
    if (next === 'admin' || next === 'owner') return StanzaError.forbidden('only owners can grant admin or owner status');
    // ... and an admin cannot ban, or otherwise demote, an admin or an owner (§9.1).
    if (isAdmin(current)) return new StanzaError('not-allowed', { text: 'only owners can change the affiliation of admins and owners' });
  }
  return undefined;
}
