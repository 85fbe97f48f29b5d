// The MUC service on its domain: the registry of rooms (in memory, persistent ones loaded from
// their tables on demand), one lock per room so a room handles one stanza at a time, the
// dispatch of every stanza addressed to the service, and the broadcast helpers the handlers share.
import { randomUUID } from 'node:crypto';
import { cloneElement, freezeShared, Jid, KeyedLock, NS, StanzaError, xml } from '../../lib/module-api.js';
import type { Element, IqStanza, KeyValStore, ModuleContext, Stanza } from '../../lib/module-api.js';
import type { MucConfig } from './config.js';
import { defaultRole, isAdmin, type Affiliation, type Role } from './affiliations.js';
import { Occupant } from './occupants.js';
import { newRoomSecret } from './occupant-id.js';
import { isKeptRole, Room } from './room.js';
import { broadcastsRole, defaultConfig, parseStoredConfig, type ConfigLimits } from './room-config.js';
import { RoomStore } from './storage.js';
import { RoomArchive } from './archive.js';
import { avatarHashOf } from './vcard.js';
import { hatsElement } from './hats.js';
import { STATUS, errorReply, statusElements, strippedPresence } from './stanzas.js';
import { onPresence } from './presence.js';
import { onMessage } from './messages.js';
import { roomIq } from './room-iq.js';
import { serviceIq } from './disco.js';
import { occupantIq } from './iq-proxy.js';

export type IqAnswer = Element | undefined | StanzaError;

/** Copies of one group chat message routed at a time. */
const FANOUT_BATCH = 256;

/** What a presence about an occupant carries beyond its own presence. */
export interface PresenceOptions {
  type?: 'unavailable';
  /** Status codes for every recipient (110 is added for the occupant's own sessions). */
  codes?: readonly number[];
  /** Codes only the occupant's own sessions get (e.g. 201, 100, 170 on entering). */
  selfCodes?: readonly number[];
  /** Overrides of the <item/>. */
  role?: Role;
  affiliation?: Affiliation;
  /** The new nick (status 303). */
  nick?: string;
  actor?: string;
  reason?: string;
  /** A <destroy/> element (room destruction). */
  destroy?: Element;
  /** The presence to show instead of the occupant's current one (e.g. its unavailable presence). */
  base?: Element;
  id?: string;
}

export class MucService {
  readonly domain: string;
  readonly limits: ConfigLimits;
  readonly store: RoomStore;
  readonly archive: RoomArchive;
  readonly vcards: KeyValStore;
  private readonly rooms = new Map<string, Room>();
  private readonly locks = new KeyedLock();
  /** Real full JID → names of the rooms it is in (for session/closed). */
  private readonly sessionRooms = new Map<string, Set<string>>();

  constructor(readonly ctx: ModuleContext<MucConfig>, domain: string) {
    this.domain = domain;
    const c = ctx.config;
    this.limits = { maxUsers: c.maxUsers, historyLength: Math.min(c.historyLength, c.maxHistoryLength), maxHistoryLength: c.maxHistoryLength };
    this.store = new RoomStore(ctx.storage, domain);
    this.archive = new RoomArchive(ctx.archive('muc'), domain, (err, room, id) => {
      // The message went out; only its archived copy is missing.
      ctx.log.error({ err, room, id }, 'muc: archiving a groupchat message failed');
    });
    this.vcards = ctx.keyval('muc-vcard');
  }

  get config(): MucConfig {
    return this.ctx.config;
  }

  // ------------------------------------------------------------------ sending

  async send(el: Element): Promise<void> {
    try {
      await this.ctx.send(el);
    } catch (err) {
      this.ctx.log.warn({ err }, 'muc: sending failed');
    }
  }

  /** Answers a stanza with an error from its addressee, unless it is an error itself. */
  async bounce(stanza: Stanza, err: StanzaError, by?: Jid): Promise<void> {
    if (stanza.type === 'error') return;
    const e = by === undefined ? err : new StanzaError(err.condition, { type: err.type, text: err.text, appCondition: err.appCondition, by: by.toString() });
    await this.send(errorReply(stanza.el, e, stanza.to?.toString() ?? this.domain));
  }

  /** Every (occupant, session JID) in the room. */
  *recipients(room: Room): Generator<{ occupant: Occupant; jid: Jid }> {
    for (const occupant of [...room.occupants.values()]) {
      for (const s of [...occupant.sessions.values()]) yield { occupant, jid: s.jid };
    }
  }

  /** The presence of `occupant` as `recipient` (an occupant, or a session of the occupant itself) sees it. */
  presenceOf(room: Room, occupant: Occupant, to: Jid, viewerRole: Role, self: boolean, o: PresenceOptions = {}): Element {
    const primary = occupant.sessions.size > 0 ? occupant.primary() : undefined;
    const base = o.base ?? primary?.presence ?? xml('presence');
    const out = xml('presence', { from: room.occupantJid(occupant.nick).toString(), to: to.toString(), type: o.type, id: o.id ?? randomUUID() });
    for (const child of base.getChildElements()) out.cnode(cloneElement(child));
    const affiliation = o.affiliation ?? room.affiliationOf(occupant.bare);
    const realJid = primary?.jid ?? occupant.bare;
    const item = xml(
      'item',
      {
        affiliation,
        role: o.role ?? occupant.role,
        // XEP-0045 §7.2.3-7.2.4 and §17.3 rule 10: the full JID, to those allowed to see it.
        jid: self || room.showsJidsTo(viewerRole) ? realJid.toString() : undefined,
        nick: o.nick,
      },
      o.actor !== undefined ? xml('actor', { nick: o.actor }) : null,
      o.reason !== undefined ? xml('reason', {}, o.reason) : null,
    );
    const codes = [...(o.codes ?? []), ...(self ? [STATUS.self, ...(o.selfCodes ?? [])] : [])];
    out.cnode(xml('x', { xmlns: NS.mucUser }, item, statusElements(codes), o.destroy ? cloneElement(o.destroy) : null));
    // XEP-0421 §4: every presence from the room carries the occupant id.
    out.cnode(xml('occupant-id', { xmlns: NS.occupantId, id: occupant.occupantId }));
    const hats = o.type === 'unavailable' ? undefined : hatsElement(this, room, occupant.bare);
    if (hats) out.cnode(hats);
    return out;
  }

  /**
   * Sends the occupant's presence to every session in the room that may see it: its own sessions
   * always (with 110), others only when its role's presence is broadcast (muc#roomconfig_presencebroadcast).
   */
  async broadcastPresence(room: Room, occupant: Occupant, o: PresenceOptions = {}, skip?: Jid): Promise<void> {
    const visible = broadcastsRole(room.config, o.role ?? occupant.role) || (o.type === 'unavailable' && broadcastsRole(room.config, occupant.role));
    const id = o.id ?? randomUUID();
    for (const r of this.recipients(room)) {
      if (skip?.equals(r.jid)) continue;
      const self = r.occupant === occupant;
      if (!self && !visible) continue;
      await this.send(this.presenceOf(room, occupant, r.jid, r.occupant.role, self, { ...o, id }));
    }
  }

  /**
   * Sends a copy of a message to every session in the room. The copies share the message's child
   * elements, frozen so that nothing on the way changes one in place (filters that strip one take
   * it out of their copy's own list) and so that their text is made once for all copies: the work
   * per recipient is an envelope and its `to`. They are routed side by side, a bounded number at
   * a time: each session gets one copy, so their order does not matter, and the room's lock is
   * held until all are through, so messages keep theirs.
   */
  async broadcastMessage(room: Room, message: Element): Promise<void> {
    const children = message.children;
    for (const child of children) if (typeof child !== 'string') freezeShared(child);
    const attrs = message.attrs;
    let batch: Element[] = [];
    for (const occupant of [...room.occupants.values()]) {
      for (const s of occupant.sessions.values()) {
        const copy = xml('message', attrs);
        copy.attrs.to = s.jid.toString();
        copy.children = children.slice();
        batch.push(copy);
        if (batch.length === FANOUT_BATCH) {
          await this.ctx.sendEach(batch, this.sendFailed);
          batch = [];
        }
      }
    }
    if (batch.length > 0) await this.ctx.sendEach(batch, this.sendFailed);
  }

  private readonly sendFailed = (err: unknown): void => {
    this.ctx.log.warn({ err }, 'muc: sending failed');
  };

  /** XEP-0045 §10.2.1: a status-code notice from the room to every occupant. */
  async notice(room: Room, codes: readonly number[]): Promise<void> {
    if (codes.length === 0) return;
    await this.broadcastMessage(room, xml('message', { type: 'groupchat', from: room.jid.toString(), id: randomUUID() }, xml('x', { xmlns: NS.mucUser }, statusElements(codes))));
  }

  // ------------------------------------------------------------------ occupants

  addSession(room: Room, occupant: Occupant, jid: Jid, presence: Element): void {
    occupant.setSession(jid, presence);
    room.occupants.set(occupant.key, occupant);
    const key = jid.toString();
    let set = this.sessionRooms.get(key);
    if (!set) this.sessionRooms.set(key, (set = new Set()));
    set.add(room.name);
  }

  /** Forgets one session of an occupant; the occupant goes when it has no session left. */
  dropSession(room: Room, occupant: Occupant, jid: Jid): void {
    occupant.sessions.delete(jid.toString());
    if (occupant.sessions.size === 0 && room.occupants.get(occupant.key) === occupant) room.occupants.delete(occupant.key);
    const set = this.sessionRooms.get(jid.toString());
    // The same real JID may still be in this room under another nick.
    if (set && room.bySession(jid) === undefined) {
      set.delete(room.name);
      if (set.size === 0) this.sessionRooms.delete(jid.toString());
    }
  }

  newOccupant(room: Room, nick: string, real: Jid): Occupant {
    return new Occupant(nick, real.bare(), room.roleOnEntering(real), room.occupantIdOf(real), this.config.messageRate.burst);
  }

  /**
   * XEP-0045 §5.1: a moderator gave or took voice; the room keeps it for the user's next visits
   * (in its tables when persistent). Moderator status and kicks are for this visit only.
   */
  async keepRole(room: Room, bare: Jid, role: Role): Promise<void> {
    if (!isKeptRole(role)) return;
    const jid = bare.bare().toString();
    const affiliation = room.affiliationOf(bare);
    if (isAdmin(affiliation)) return;
    const stored = room.config.persistent && !room.locked;
    if (role === defaultRole(affiliation, room.config.moderated)) {
      if (!room.roles.delete(jid)) return;
      if (stored) await this.store.deleteRole(room.name, jid);
      return;
    }
    room.roles.set(jid, role);
    if (stored) await this.store.putRole(room.name, jid, role);
  }

  /** An affiliation change decides the role afresh: a kept one goes. */
  async forgetRole(room: Room, jid: string): Promise<void> {
    if (!room.roles.delete(jid)) return;
    if (room.config.persistent && !room.locked) await this.store.deleteRole(room.name, jid);
  }

  /**
   * Removes an occupant with all its sessions (kick 307, ban 301, affiliation change 321,
   * members-only 322, destruction, errors 333): each of its sessions learns why, then the others.
   */
  async removeOccupant(room: Room, occupant: Occupant, o: PresenceOptions): Promise<void> {
    const sessions = [...occupant.sessions.values()];
    const id = randomUUID();
    const wasVisible = broadcastsRole(room.config, occupant.role);
    for (const s of sessions) {
      await this.send(this.presenceOf(room, occupant, s.jid, occupant.role, true, { ...o, type: 'unavailable', role: 'none', id }));
    }
    // The others are told while its sessions are still known, so the item names its full JID.
    if (wasVisible) {
      for (const r of this.recipients(room)) {
        if (r.occupant === occupant) continue;
        await this.send(this.presenceOf(room, occupant, r.jid, r.occupant.role, false, { ...o, type: 'unavailable', role: 'none', id, selfCodes: [] }));
      }
    }
    for (const s of sessions) this.dropSession(room, occupant, s.jid);
  }

  /** Changes an occupant's role and tells the room (presence with the new role). */
  async setRole(room: Room, occupant: Occupant, role: Role, o: PresenceOptions = {}): Promise<void> {
    const before = broadcastsRole(room.config, occupant.role);
    occupant.role = role;
    const after = broadcastsRole(room.config, role);
    if (before && !after) {
      // Now hidden from the others: they see it leave; its own sessions see the new role.
      for (const r of this.recipients(room)) {
        const self = r.occupant === occupant;
        await this.send(this.presenceOf(room, occupant, r.jid, r.occupant.role, self, self ? o : { ...o, type: 'unavailable', role: 'none' }));
      }
      return;
    }
    await this.broadcastPresence(room, occupant, o);
  }

  // ------------------------------------------------------------------ rooms

  /** May this real JID create rooms (`restrictRoomCreation`)? */
  mayCreate(real: Jid): boolean {
    switch (this.config.restrictRoomCreation) {
      case 'anyone':
        return true;
      case 'local':
        return this.ctx.server.hosts.includes(real.domain);
      case 'admins':
        return this.ctx.server.admins.some((a) => a.bare().equals(real.bare()));
    }
  }

  /** The room, from memory or its tables; undefined when it does not exist. Call under the room's lock. */
  async room(name: string): Promise<Room | undefined> {
    const live = this.rooms.get(name);
    if (live) return live;
    const stored = await this.store.load(name);
    if (!stored) return undefined;
    const room = new Room(Jid.of(name, this.domain), parseStoredConfig(stored.config, this.limits), stored.secret, this.ctx.server.admins);
    room.config.persistent = true;
    room.subject = stored.subject;
    for (const e of stored.affiliations) room.affiliations.set(e.jid, e);
    for (const [jid, role] of stored.roles) room.roles.set(jid, role);
    for (const [jid, uri] of stored.hats) {
      let worn = room.hats.get(jid);
      if (!worn) room.hats.set(jid, (worn = new Set()));
      worn.add(uri);
    }
    room.avatarHash = await avatarHashOf(this, name);
    this.rooms.set(name, room);
    return room;
  }

  /**
   * A new, locked room owned by its creator (XEP-0045 §10.1.1). It starts empty: what a temporary
   * room of the same name left when the server stopped (its archive, its vCard) is gone first.
   */
  async createRoom(name: string, creator: Jid): Promise<Room> {
    await this.archive.deleteRoom(name);
    await this.vcards.delete(this.domain, name, 'vcard');
    const room = new Room(Jid.of(name, this.domain), defaultConfig(this.limits), newRoomSecret(), this.ctx.server.admins);
    room.locked = true;
    room.affiliations.set(creator.bare().toString(), { jid: creator.bare().toString(), affiliation: 'owner' });
    this.rooms.set(name, room);
    return room;
  }

  /** Rooms held in memory (every room with occupants is). */
  live(): Room[] {
    return [...this.rooms.values()];
  }

  /** Runs `fn` with the room's lock held. */
  withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.run(`room:${name}`, fn);
  }

  /**
   * After a room's occupants changed: a temporary room (or a locked one) with nobody left is
   * destroyed (XEP-0045 §7.14), an empty persistent room leaves memory (its tables keep it).
   */
  async settle(room: Room): Promise<void> {
    if (room.destroyed || room.occupants.size > 0) return;
    if (room.disposable) await this.erase(room);
    else this.rooms.delete(room.name);
  }

  private async settleByName(name: string): Promise<void> {
    const room = this.rooms.get(name);
    if (room !== undefined) await this.settle(room);
  }

  /** Deletes everything about a room: tables, archive, vCard. */
  async erase(room: Room): Promise<void> {
    room.destroyed = true;
    this.rooms.delete(room.name);
    await this.store.deleteRoom(room.name);
    await this.archive.deleteRoom(room.name);
    await this.vcards.delete(this.domain, room.name, 'vcard');
  }

  /** Saves what changed in a persistent room's row. */
  async saveRoom(room: Room): Promise<void> {
    if (room.config.persistent && !room.locked) await this.store.saveRoom(room);
  }

  // ------------------------------------------------------------------ dispatch

  async handle(stanza: Stanza): Promise<void> {
    const to = stanza.to!;
    try {
      if (to.local === undefined) {
        if (stanza.kind === 'iq') await this.answer(stanza, () => serviceIq(this, stanza));
        else if (stanza.kind === 'message' && stanza.type !== 'error' && stanza.type !== 'groupchat') await this.bounce(stanza, StanzaError.serviceUnavailable());
        return;
      }
      const name = to.local;
      if (stanza.kind === 'iq' && to.resource !== undefined) {
        await occupantIq(this, name, stanza);
        return;
      }
      await this.withLock(name, async () => {
        const room = await this.room(name);
        try {
          switch (stanza.kind) {
            case 'presence':
              return await onPresence(this, name, room, stanza);
            case 'message':
              return await onMessage(this, room, stanza);
            case 'iq':
              return await this.answer(stanza, () => roomIq(this, room, stanza));
          }
        } finally {
          await this.settleByName(name);
        }
      });
    } catch (err) {
      if (err instanceof StanzaError) return this.bounce(stanza, err);
      this.ctx.log.error({ err, id: stanza.id, to: to.toString() }, 'muc: handling a stanza failed');
      await this.bounce(stanza, StanzaError.internalServerError());
    }
  }

  /** Runs an IQ handler and sends its answer (RFC 6120 §8.2.3); results and errors are not answered. */
  async answer(iq: IqStanza, handler: () => Promise<IqAnswer>): Promise<void> {
    if (iq.type !== 'get' && iq.type !== 'set') return;
    let result: IqAnswer;
    try {
      result = await handler();
    } catch (err) {
      if (!(err instanceof StanzaError)) this.ctx.log.error({ err, id: iq.id, ns: iq.payload?.attrs.xmlns }, 'muc: iq handler failed');
      result = err instanceof StanzaError ? err : StanzaError.internalServerError();
    }
    if (result instanceof StanzaError) return this.bounce(iq, result);
    await this.send(xml('iq', { type: 'result', id: iq.id, from: iq.to!.toString(), to: iq.from.toString() }, result ?? null));
  }

  /** A local session ended: it leaves every room it was in (RFC 6121 §4.5.2 on the server's side). */
  async sessionClosed(real: Jid): Promise<void> {
    const names = [...(this.sessionRooms.get(real.toString()) ?? [])];
    for (const name of names) {
      await this.withLock(name, async () => {
        const room = this.rooms.get(name);
        const occupant = room?.bySession(real);
        if (!room || !occupant) return;
        // The session is gone: only the others are told.
        await this.leave(room, occupant, real, undefined, []);
        await this.settle(room);
      });
    }
  }

  /**
   * One session leaves (XEP-0045 §7.14): it gets its unavailable self-presence (unless it is gone),
   * and the room sees the occupant leave, or, when another of its sessions remains, its new presence.
   */
  async leave(room: Room, occupant: Occupant, real: Jid, unavailable: Element | undefined, codes: readonly number[]): Promise<void> {
    const id = (unavailable?.attrs.id as string | undefined) ?? randomUUID();
    const base = unavailable === undefined ? xml('presence') : strippedPresence(unavailable);
    if (unavailable !== undefined && occupant.has(real)) {
      await this.send(this.presenceOf(room, occupant, real, occupant.role, true, { type: 'unavailable', role: 'none', base, codes, id }));
    }
    if (occupant.sessions.size > 1 || !occupant.has(real)) {
      this.dropSession(room, occupant, real);
      await this.broadcastPresence(room, occupant, { id });
      return;
    }
    if (broadcastsRole(room.config, occupant.role)) {
      for (const r of this.recipients(room)) {
        if (r.occupant === occupant) continue;
        await this.send(this.presenceOf(room, occupant, r.jid, r.occupant.role, false, { type: 'unavailable', role: 'none', base, codes, id }));
      }
    }
    this.dropSession(room, occupant, real);
  }

  /** XEP-0045 §18.1.2 "ghosts": a delivery error from an occupant's session removes that session (333). */
  async ghost(room: Room, real: Jid): Promise<void> {
    const occupant = room.bySession(real);
    if (occupant) await this.leave(room, occupant, real, undefined, [STATUS.errorRemoved]);
  }

  /** XEP-0045 §11.2 (332): tells every occupant the service is going away. */
  async shutdown(): Promise<void> {
    for (const room of this.live()) {
      await this.withLock(room.name, async () => {
        for (const occupant of [...room.occupants.values()]) {
          for (const s of [...occupant.sessions.values()]) {
            await this.send(this.presenceOf(room, occupant, s.jid, occupant.role, true, { type: 'unavailable', role: 'none', codes: [STATUS.shutdown] }));
          }
        }
      });
    }
    // Messages already sent out are in the archive before the database closes.
    await this.archive.flush();
  }

  /** A real JID may act as a moderator: an occupant with that role, or an admin or owner (outside too). */
  actingRole(room: Room, real: Jid): Role {
    const occupant = room.bySession(real);
    if (isAdmin(room.affiliationOf(real))) return 'moderator';
    return occupant?.role ?? 'none';
  }
}
