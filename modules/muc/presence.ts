// Presence to a room: entering (XEP-0045 §7.2, creating the room when it does not exist, §10.1),
// presence changes (§7.7), nick changes (§7.6), leaving (§7.14) and the multi-session nick
// (§7.2.8): one occupant per nick, held by one or more sessions of the same account.
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { Jid, NS, StanzaError, xml } from '../../lib/module-api.js';
import type { Element, PresenceStanza } from '../../lib/module-api.js';
import { isAdmin, isMember } from './affiliations.js';
import type { Occupant } from './occupants.js';
import { validNick } from './occupants.js';
import type { Room } from './room.js';
import { broadcastsRole } from './room-config.js';
import type { MucService } from './service.js';
import { MUC_NS, STATUS, stamp, statusElements, strippedPresence } from './stanzas.js';
import { sendHistory } from './history.js';

/** Admins and owners may enter a full room, up to this many extra occupants (XEP-0045 §7.2.9). */
const ADMIN_EXTRA = 10;

export async function onPresence(svc: MucService, name: string, room: Room | undefined, p: PresenceStanza): Promise<void> {
  const real = p.from;
  const to = p.to!;
  if (p.type === 'error') {
    if (room) await svc.ghost(room, real);
    return;
  }
  if (p.type === 'unavailable') {
    // §17.3 rule 5: unavailable presence from someone who is not in the room is ignored.
    const occupant = room?.bySession(real);
    if (room && occupant) await svc.leave(room, occupant, real, p.el, []);
    return;
  }
  // §17.3 rules 1-2: only available presence enters; probes and subscriptions do nothing here.
  if (p.type !== 'available') return;
  const roomJid = Jid.of(name, svc.domain);
  if (to.resource === undefined) {
    // §7.2.1: "If the user does not specify a room nickname ... the service MUST return a jid-malformed error".
    return svc.bounce(p, StanzaError.jidMalformed('send your presence to room@service/nick'), roomJid);
  }
  const nick = to.resource;
  const occupant = room?.bySession(real);
  if (room && occupant) {
    if (nick !== occupant.nick) return changeNick(svc, room, occupant, p, nick);
    // §7.2.1 / §17.3 rule 3: a join from a session already in the room asks for a full resynchronisation.
    const mucX = p.el.getChild('x', NS.muc);
    svc.addSession(room, occupant, real, strippedPresence(p.el));
    if (mucX) {
      await sendState(svc, room, occupant, real, mucX, p.id, false);
      await svc.broadcastPresence(room, occupant, { id: p.id }, real);
    } else {
      await svc.broadcastPresence(room, occupant, { id: p.id });
    }
    return;
  }
  const mucX = p.el.getChild('x', NS.muc);
  if (!mucX) {
    // §7.2.18: presence without <x/> from a non-occupant is a groupchat 1.0 join or a client that
    // lost track; the service answers with an explicit removal (110, 307, 333).
    await svc.send(
      xml(
        'presence',
        { from: to.toString(), to: real.toString(), type: 'unavailable', id: p.id },
        xml(
          'x',
          { xmlns: NS.mucUser },
          xml('item', { affiliation: room?.affiliationOf(real) ?? 'none', role: 'none' }, xml('reason', {}, 'You are not in the room.')),
          statusElements([STATUS.self, STATUS.kicked, STATUS.errorRemoved]),
        ),
      ),
    );
    return;
  }
  await enter(svc, name, room, p, nick, mucX);
}

/** §7.2: admission checks, in the order that reveals least to those who may not enter. */
function admissionError(room: Room, real: Jid, nick: string, mucX: Element): StanzaError | undefined {
  const affiliation = room.affiliationOf(real);
  // §7.2.10: a locked room does not exist yet for anyone but its owner.
  if (room.locked && affiliation !== 'owner') return StanzaError.itemNotFound('the room is locked until its owner configures it');
  if (affiliation === 'outcast') return StanzaError.forbidden('you are banned from this room'); // §7.2.7
  if (room.config.membersOnly && !isMember(affiliation)) return StanzaError.registrationRequired('this room is for members only'); // §7.2.6
  if (room.config.passwordProtected && !samePassword(mucX.getChildText('password') ?? '', room.config.password)) {
    return StanzaError.notAuthorized('this room needs a password'); // §7.2.5
  }
  const holder = room.byNick(nick);
  // §7.2.8: a nick in use or reserved by someone else conflicts; the same account shares it.
  if (holder && !holder.bare.equals(real.bare())) return StanzaError.conflict('that nick is in use in this room');
  const reserved = room.reservationOf(nick);
  if (reserved !== undefined && reserved !== real.bare().toString()) return StanzaError.conflict('that nick is reserved in this room');
  if (!holder) {
    const limit = room.config.maxUsers + (isAdmin(affiliation) ? ADMIN_EXTRA : 0);
    // §7.2.9: service-unavailable (of type wait, as the XEP's example shows).
    if (room.occupants.size >= limit) return new StanzaError('service-unavailable', { type: 'wait', text: 'the room is full' });
  }
  return undefined;
}

function samePassword(given: string, expected: string): boolean {
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

async function enter(svc: MucService, name: string, existing: Room | undefined, p: PresenceStanza, nick: string, mucX: Element): Promise<void> {
  const real = p.from;
  const roomJid = Jid.of(name, svc.domain);
  if (!validNick(nick)) return svc.bounce(p, StanzaError.jidMalformed('a nick cannot be empty or invisible'), roomJid);
  let room = existing;
  let created = false;
  if (!room) {
    // §10.1.1: restricted creation answers not-allowed.
    if (!svc.mayCreate(real) || !svc.ctx.access.allowed('create_room', { jid: real })) return svc.bounce(p, StanzaError.notAllowed('you may not create rooms on this service'), roomJid);
    room = await svc.createRoom(name, real);
    created = true;
  } else {
    const err = admissionError(room, real, nick, mucX);
    if (err) return svc.bounce(p, err, roomJid);
  }
  const occupant = room.byNick(nick) ?? svc.newOccupant(room, nick, real);
  svc.addSession(room, occupant, real, strippedPresence(p.el));
  // The others (and the occupant's other sessions) see it arrive...
  await svc.broadcastPresence(room, occupant, { id: p.id }, real);
  // ... and the newcomer gets the room: presences, itself, history, subject (§7.1).
  await sendState(svc, room, occupant, real, mucX, p.id, created);
}

/** §7.1, §7.2.2-7.2.15: what a session that enters (or resynchronises) receives, in order. */
async function sendState(svc: MucService, room: Room, occupant: Occupant, real: Jid, mucX: Element, id: string | undefined, created: boolean): Promise<void> {
  for (const other of [...room.occupants.values()]) {
    if (other === occupant || !broadcastsRole(room.config, other.role)) continue;
    await svc.send(svc.presenceOf(room, other, real, occupant.role, false));
  }
  const selfCodes: number[] = [];
  if (room.config.whois === 'anyone') selfCodes.push(STATUS.nonAnonymous); // §7.2.3
  if (room.config.logging) selfCodes.push(STATUS.loggingOn); // §7.2.12
  if (created) selfCodes.push(STATUS.created); // §10.1.1
  await svc.send(svc.presenceOf(room, occupant, real, occupant.role, true, { id, selfCodes }));
  if (!created) await sendHistory(svc, room, real, mucX.getChild('history'));
  await sendSubject(svc, room, real);
  // XEP-0486: the room's avatar hash, so the newcomer can fetch the room's vCard.
  if (room.avatarHash !== undefined) await svc.send(avatarPresence(room, real));
}

/** §7.2.15: the subject, with a delay stamp from the room; an empty one when none was set. */
export async function sendSubject(svc: MucService, room: Room, to: Jid): Promise<void> {
  const s = room.subject;
  const from = s?.nick !== undefined ? room.occupantJid(s.nick).toString() : room.jid.toString();
  await svc.send(
    xml(
      'message',
      { type: 'groupchat', from, to: to.toString(), id: randomUUID() },
      xml('subject', {}, s?.text ?? ''),
      s ? xml('delay', { xmlns: NS.delay, from: room.jid.toString(), stamp: stamp(s.at) }) : null,
    ),
  );
}

/** §7.6: a nick change, for every session of the occupant (they share the nick). */
async function changeNick(svc: MucService, room: Room, occupant: Occupant, p: PresenceStanza, nick: string): Promise<void> {
  if (!validNick(nick)) return svc.bounce(p, StanzaError.jidMalformed('a nick cannot be empty or invisible'), room.jid);
  const holder = room.byNick(nick);
  if (holder && holder !== occupant) return svc.bounce(p, StanzaError.conflict('that nick is in use in this room'), room.jid);
  const reserved = room.reservationOf(nick);
  if (reserved !== undefined && reserved !== occupant.bare.toString()) return svc.bounce(p, StanzaError.conflict('that nick is reserved in this room'), room.jid);
  const id = p.id ?? randomUUID();
  await svc.broadcastPresence(room, occupant, { type: 'unavailable', nick, codes: [STATUS.nickChanged], id });
  room.occupants.delete(occupant.key);
  occupant.nick = nick;
  svc.addSession(room, occupant, p.from, strippedPresence(p.el));
  await svc.broadcastPresence(room, occupant, { id });
}

/** XEP-0486: the room's own presence carrying its avatar hash, after the avatar changed. */
export async function announceAvatar(svc: MucService, room: Room): Promise<void> {
  for (const r of svc.recipients(room)) await svc.send(avatarPresence(room, r.jid));
}

function avatarPresence(room: Room, to: Jid): Element {
  return xml(
    'presence',
    { from: room.jid.toString(), to: to.toString(), id: randomUUID() },
    xml('x', { xmlns: MUC_NS.vcardUpdate }, room.avatarHash !== undefined ? xml('photo', {}, room.avatarHash) : xml('photo')),
  );
}
