// XEP-0045 §8-§10 through muc#admin: role lists and changes (kick, voice, moderator) and
// affiliation lists and changes (ban, member, admin, owner), with their effects on occupants.
import { Jid, NS, StanzaError, xml } from '../../lib/module-api.js';
import type { Element, IqStanza } from '../../lib/module-api.js';
import {
  affiliationChangeError,
  defaultRole,
  isAdmin,
  isAffiliation,
  isMember,
  isRole,
  roleChangeError,
  type Affiliation,
  type Role,
} from './affiliations.js';
import { validNick, type Occupant } from './occupants.js';
import type { Room } from './room.js';
import type { IqAnswer, MucService } from './service.js';
import { STATUS, statusElements } from './stanzas.js';

export interface AffiliationChange {
  /** A bare JID, or a domain. */
  jid: string;
  affiliation: Affiliation;
  /** A nick to reserve; '' removes the reservation; undefined keeps it. */
  nick?: string;
  reason?: string;
}

/** Who may read which list (§8.5, §9.5, §10.5). */
function listError(svc: MucService, room: Room, real: Jid, affiliation: Affiliation): StanzaError | undefined {
  const mine = room.affiliationOf(real);
  const occupant = room.bySession(real);
  const nonAnonymous = room.config.whois === 'anyone';
  switch (affiliation) {
    case 'outcast':
      return isAdmin(mine) ? undefined : StanzaError.forbidden('only admins and owners see the ban list');
    case 'member': {
      // §7.11 / muc#roomconfig_getmemberlist; §9.5: members of a non-anonymous room may read it too.
      const byRole = occupant !== undefined && (room.config.getMemberList as readonly string[]).includes(occupant.role);
      return isAdmin(mine) || byRole || (nonAnonymous && isMember(mine)) ? undefined : StanzaError.forbidden('you may not see the member list');
    }
    default:
      // §10.5, §10.8: owners; in non-anonymous rooms others who belong to the room too.
      return mine === 'owner' || (nonAnonymous && (isMember(mine) || occupant !== undefined)) ? undefined : StanzaError.forbidden('only owners see this list');
  }
}

export async function adminGet(svc: MucService, room: Room, iq: IqStanza): Promise<IqAnswer> {
  const items = iq.payload!.getChildren('item');
  if (items.length !== 1) return StanzaError.badRequest('ask for one list: one <item/> with a role or an affiliation');
  const role = items[0].attrs.role as string | undefined;
  const affiliation = items[0].attrs.affiliation as string | undefined;
  if ((role === undefined) === (affiliation === undefined)) return StanzaError.badRequest('an <item/> names a role or an affiliation');
  if (role !== undefined) {
    if (!isRole(role) || role === 'none') return StanzaError.badRequest(`${role} is not a role list`);
    if (svc.actingRole(room, iq.from) !== 'moderator') return StanzaError.forbidden('only moderators see role lists');
    const list = [...room.occupants.values()].filter((o) => o.role === role);
    return xml(
      'query',
      { xmlns: NS.mucAdmin },
      list.map((o) => xml('item', { affiliation: room.affiliationOf(o.bare), jid: o.primary().jid.toString(), nick: o.nick, role: o.role })),
    );
  }
  if (!isAffiliation(affiliation) || affiliation === 'none') return StanzaError.badRequest(`${affiliation} is not an affiliation list`);
  const denied = listError(svc, room, iq.from, affiliation);
  if (denied) return denied;
  return xml(
    'query',
    { xmlns: NS.mucAdmin },
    room.list(affiliation).map((e) =>
      xml('item', { affiliation: e.affiliation, jid: e.jid, nick: affiliation === 'outcast' ? undefined : e.nick }, e.reason !== undefined ? xml('reason', {}, e.reason) : null),
    ),
  );
}

interface RoleChange {
  target: Occupant;
  role: Role;
  reason?: string;
}

export async function adminSet(svc: MucService, room: Room, iq: IqStanza): Promise<IqAnswer> {
  const items = iq.payload!.getChildren('item');
  if (items.length === 0) return StanzaError.badRequest('no <item/> to change');
  const actor = { affiliation: room.affiliationOf(iq.from), role: svc.actingRole(room, iq.from) };
  const actorNick = room.bySession(iq.from)?.nick;
  const roles: RoleChange[] = [];
  const affiliations: AffiliationChange[] = [];
  const owners = new Set(room.list('owner').map((e) => e.jid));
  // §9.2: every item is checked before any is applied; one refusal refuses them all.
  for (const item of items) {
    const role = item.attrs.role as string | undefined;
    const affiliation = item.attrs.affiliation as string | undefined;
    const reason = item.getChildText('reason') ?? undefined;
    // §17.4 rule 4: role or affiliation, never both.
    if ((role === undefined) === (affiliation === undefined)) return StanzaError.badRequest('an <item/> changes a role or an affiliation, not both');
    if (role !== undefined) {
      if (!isRole(role)) return StanzaError.badRequest(`${role} is not a role`);
      const nick = item.attrs.nick as string | undefined;
      if (nick === undefined) return StanzaError.badRequest('a role change names the occupant by nick');
      const target = room.byNick(nick);
      if (!target) return StanzaError.itemNotFound(`nobody has the nick ${nick}`);
      const err = roleChangeError(actor, { affiliation: room.affiliationOf(target.bare), role: target.role }, role);
      if (err) return err;
      roles.push({ target, role, reason });
      continue;
    }
    if (!isAffiliation(affiliation)) return StanzaError.badRequest(`${affiliation} is not an affiliation`);
    let jid: string | undefined;
    const rawJid = item.attrs.jid as string | undefined;
    if (rawJid !== undefined) {
      const parsed = Jid.tryParse(rawJid);
      if (!parsed) return StanzaError.jidMalformed(`${rawJid} is not a JID`);
      // §10.3: affiliations belong to bare JIDs (or, for bans, domains).
      jid = parsed.bare().toString();
    } else if (item.attrs.nick !== undefined) {
      jid = room.byNick(item.attrs.nick as string)?.bare.toString();
      if (jid === undefined) return StanzaError.itemNotFound(`nobody has the nick ${item.attrs.nick as string}`);
    } else {
      return StanzaError.badRequest('an affiliation change names a jid');
    }
    const current = room.affiliations.get(jid)?.affiliation ?? 'none';
    const err = affiliationChangeError(actor.affiliation, current, affiliation, jid === iq.from.bare().toString());
    if (err) return err;
    if (affiliation === 'owner') owners.add(jid);
    else owners.delete(jid);
    // §10.4: "A service MUST NOT allow an owner to revoke his or her own owner status if there are no other owners".
    if (owners.size === 0) return StanzaError.conflict('a room needs at least one owner');
    let nick = item.attrs.nick as string | undefined;
    if (rawJid === undefined) nick = undefined;
    if (nick !== undefined && nick !== '') {
      if (!validNick(nick)) return StanzaError.jidMalformed('a nick cannot be empty or invisible');
      const holder = room.reservationOf(nick);
      if (holder !== undefined && holder !== jid) return StanzaError.conflict(`the nick ${nick} is reserved by someone else`);
    }
    affiliations.push({ jid, affiliation, nick, reason });
  }
  for (const c of roles) {
    if (!room.occupants.has(c.target.key)) continue;
    if (c.role === 'none') await svc.removeOccupant(room, c.target, { codes: [STATUS.kicked], actor: actorNick, reason: c.reason }); // §8.2
    else {
      await svc.setRole(room, c.target, c.role, { reason: c.reason, actor: actorNick });
      await svc.keepRole(room, c.target.bare, c.role);
    }
  }
  await setAffiliations(svc, room, affiliations, actorNick);
  return undefined;
}

/**
 * Applies affiliation changes: stores them (persistent rooms), then acts on the occupants they
 * concern: banned ones are removed (301), non-members of a members-only room too (321), the others'
 * roles follow their new affiliation and the room sees it; someone away is told with 101.
 */
export async function setAffiliations(svc: MucService, room: Room, changes: readonly AffiliationChange[], actorNick?: string): Promise<void> {
  for (const c of changes) {
    const before = room.affiliations.get(c.jid);
    if (c.affiliation === 'none') {
      room.affiliations.delete(c.jid);
      if (room.config.persistent && !room.locked) await svc.store.deleteAffiliation(room.name, c.jid);
    } else {
      const nick = c.affiliation === 'outcast' ? undefined : c.nick === undefined ? before?.nick : c.nick === '' ? undefined : c.nick;
      const entry = { jid: c.jid, affiliation: c.affiliation, nick, reason: c.reason };
      room.affiliations.set(c.jid, entry);
      if (room.config.persistent && !room.locked) await svc.store.putAffiliation(room.name, entry);
    }
    if ((before?.affiliation ?? 'none') === c.affiliation) continue;
    // §5.1: the new affiliation decides the role afresh.
    if (c.jid.includes('@')) await svc.forgetRole(room, c.jid);
    const concerned = [...room.occupants.values()].filter((o) => (c.jid.includes('@') ? o.bare.toString() === c.jid : o.bare.domain === c.jid && !room.affiliations.has(o.bare.toString())));
    for (const o of concerned) await affiliationChanged(svc, room, o, before?.affiliation ?? 'none', c.reason, actorNick);
    if (concerned.length === 0 && c.jid.includes('@')) await svc.send(absentNotice(room, c.jid, c.affiliation));
  }
}

async function affiliationChanged(svc: MucService, room: Room, o: Occupant, before: Affiliation, reason: string | undefined, actorNick: string | undefined): Promise<void> {
  const now = room.affiliationOf(o.bare);
  if (now === 'outcast') return svc.removeOccupant(room, o, { codes: [STATUS.banned], actor: actorNick, reason }); // §9.1
  if (room.config.membersOnly && !isMember(now)) return svc.removeOccupant(room, o, { codes: [STATUS.affiliationRemoved], actor: actorNick, reason }); // §9.4
  let role = o.role;
  if (isAdmin(now)) role = 'moderator';
  else if (isAdmin(before)) role = defaultRole(now, room.config.moderated);
  else if (now === 'member' && role === 'visitor') role = 'participant';
  await svc.setRole(room, o, role, { reason });
}

/** §18.1 item 2: "a MUC service MAY send an out-of-room message if a user's affiliation changes while not in the room" (101). */
function absentNotice(room: Room, jid: string, affiliation: Affiliation): Element {
  return xml(
    'message',
    { from: room.jid.toString(), to: jid },
    xml('x', { xmlns: NS.mucUser }, xml('item', { affiliation, jid }), statusElements([STATUS.affiliationChangedAway])),
  );
}
