// XEP-0045 §10 through muc#owner: the configuration form (creating an instant or reserved room,
// §10.1; changing the configuration, §10.2, with its notices and effects) and destruction (§10.9).
import { Jid, NS, readForm, StanzaError, xml } from '../../lib/module-api.js';
import type { Element, IqStanza } from '../../lib/module-api.js';
import { isMember } from './affiliations.js';
import { setAffiliations, type AffiliationChange } from './admin.js';
import type { Room } from './room.js';
import { applyConfigForm, broadcastsRole, configForm, type RoomConfig } from './room-config.js';
import type { IqAnswer, MucService } from './service.js';
import { STATUS } from './stanzas.js';

export async function ownerGet(svc: MucService, room: Room, iq: IqStanza): Promise<IqAnswer> {
  if (room.affiliationOf(iq.from) !== 'owner') return StanzaError.forbidden('only owners configure the room'); // §10.2
  const admins = room.list('admin').map((e) => e.jid);
  const owners = room.list('owner').map((e) => e.jid);
  return xml('query', { xmlns: NS.mucOwner }, configForm(room.jid, room.config, admins, owners, svc.limits));
}

export async function ownerSet(svc: MucService, room: Room, iq: IqStanza): Promise<IqAnswer> {
  if (room.affiliationOf(iq.from) !== 'owner') return StanzaError.forbidden('only owners configure or destroy the room');
  const query = iq.payload!;
  const destroy = query.getChild('destroy');
  if (destroy) {
    await destroyRoom(svc, room, destroy);
    return undefined;
  }
  const form = readForm(query);
  if (!form) return StanzaError.badRequest('send a data form or <destroy/>');
  if (form.type === 'cancel') {
    // §10.1.3: cancelling the initial configuration destroys the room; later it changes nothing.
    if (room.locked) await destroyRoom(svc, room, xml('destroy'));
    return undefined;
  }
  if (form.type !== 'submit') return StanzaError.badRequest('submit the form (type submit) or cancel it');
  const change = applyConfigForm(form, room.config, svc.limits);
  await configure(svc, room, change.config, change.admins, change.owners, iq.from);
  return undefined;
}

/** Affiliation changes that turn the admin and owner lists of the form into the full lists. */
function listChanges(room: Room, admins: string[] | undefined, owners: string[] | undefined): AffiliationChange[] {
  const out = new Map<string, AffiliationChange>();
  if (owners !== undefined) {
    for (const e of room.list('owner')) if (!owners.includes(e.jid)) out.set(e.jid, { jid: e.jid, affiliation: admins?.includes(e.jid) ? 'admin' : 'none' });
    for (const jid of owners) if (room.affiliations.get(jid)?.affiliation !== 'owner') out.set(jid, { jid, affiliation: 'owner' });
  }
  if (admins !== undefined) {
    for (const e of room.list('admin')) if (!admins.includes(e.jid) && !out.has(e.jid)) out.set(e.jid, { jid: e.jid, affiliation: 'none' });
    for (const jid of admins) if (room.affiliations.get(jid)?.affiliation !== 'admin' && !owners?.includes(jid)) out.set(jid, { jid, affiliation: 'admin' });
  }
  return [...out.values()];
}

async function configure(svc: MucService, room: Room, next: RoomConfig, admins: string[] | undefined, owners: string[] | undefined, actor: Jid): Promise<void> {
  const before = room.config;
  const wasLocked = room.locked;
  const turnsOn = (flag: 'persistent' | 'public') => next[flag] && (!before[flag] || wasLocked);
  if ((turnsOn('persistent') && !svc.ctx.access.allowed('create_persistent_room', { jid: actor })) || (turnsOn('public') && !svc.ctx.access.allowed('create_public_room', { jid: actor }))) {
    throw StanzaError.forbidden('you may not make this room persistent or public');
  }
  room.config = next;
  room.locked = false;
  // Persistence follows the flag: a persistent room gets (or keeps) its rows, a room made
  // temporary loses them and goes when its last occupant leaves.
  if (next.persistent) await svc.store.saveAll(room);
  else if (before.persistent && !wasLocked) await svc.store.deleteRoom(room.name);
  const actorNick = room.bySession(actor)?.nick;
  await setAffiliations(svc, room, listChanges(room, admins, owners), actorNick);
  if (wasLocked) return; // §10.1: the initial configuration only unlocks the room.

  // §10.2: a room made members-only removes whoever is not a member (322).
  if (next.membersOnly && !before.membersOnly) {
    for (const o of [...room.occupants.values()]) {
      if (!isMember(room.affiliationOf(o.bare))) await svc.removeOccupant(room, o, { codes: [STATUS.membersOnlyRemoved], actor: actorNick });
    }
  }
  // Presence visibility follows muc#roomconfig_presencebroadcast; real JIDs follow whois.
  for (const o of [...room.occupants.values()]) {
    const was = broadcastsRole(before, o.role);
    const is = broadcastsRole(next, o.role);
    if (next.whois !== before.whois || (is && !was)) await svc.broadcastPresence(room, o);
    else if (was && !is) {
      for (const r of svc.recipients(room)) {
        if (r.occupant !== o) await svc.send(svc.presenceOf(room, o, r.jid, r.occupant.role, false, { type: 'unavailable', role: 'none' }));
      }
    }
  }
  await svc.notice(room, configChangeCodes(before, next));
}

/**
 * §10.2.1: privacy-related changes have their codes (170/171 logging, 172/173 anonymity); "any
 * other configuration change" is 104, also when it comes with a privacy-related one. The room
 * never shows unavailable members and has no fully-anonymous mode, so 102, 103 and 174 (dropped
 * from XEP-0045 with fully-anonymous rooms) never apply.
 */
export function configChangeCodes(before: RoomConfig, next: RoomConfig): number[] {
  const codes: number[] = [];
  if (next.logging !== before.logging) codes.push(next.logging ? STATUS.loggingOn : STATUS.loggingOff);
  if (next.whois !== before.whois) codes.push(next.whois === 'anyone' ? STATUS.nowNonAnonymous : STATUS.nowSemiAnonymous);
  const others = (Object.keys(next) as Array<keyof RoomConfig>).some((k) => k !== 'logging' && k !== 'whois' && JSON.stringify(next[k]) !== JSON.stringify(before[k]));
  if (others) codes.push(STATUS.configChanged);
  return codes;
}

/**
 * §10.9: every occupant gets one unavailable presence carrying <destroy/> (with the alternate venue,
 * its password and the reason when given), then the room and everything it kept are gone.
 */
export async function destroyRoom(svc: MucService, room: Room, request: Element): Promise<void> {
  const venue = Jid.tryParse(request.attrs.jid as string | undefined);
  const reason = request.getChildText('reason');
  const password = request.getChildText('password');
  const destroy = xml(
    'destroy',
    { jid: venue?.toString() },
    reason !== null ? xml('reason', {}, reason) : null,
    password !== null ? xml('password', {}, password) : null,
  );
  for (const o of [...room.occupants.values()]) {
    for (const s of [...o.sessions.values()]) {
      await svc.send(svc.presenceOf(room, o, s.jid, o.role, true, { type: 'unavailable', role: 'none', affiliation: 'none', destroy }));
      svc.dropSession(room, o, s.jid);
    }
  }
  room.occupants.clear();
  await svc.erase(room);
}
