// XEP-0313 on the room's bare JID (§3.3.2, §6.1.2): queries with RSM paging, the query form,
// and the archive metadata (§5).
import { randomUUID } from 'node:crypto';
import { cloneElement, Jid, NS, StanzaError, xml } from '../../lib/module-api.js';
import type { Element, IqStanza } from '../../lib/module-api.js';
import { isAdmin, isMember } from './affiliations.js';
import { withoutRealJid, type ArchivedMessage } from './archive.js';
// One parser and one pager for every archive: the account archive's (modules/mam).
import { parseMamQuery, queryForm } from '../mam/query.js';
import type { Room } from './room.js';
import type { IqAnswer, MucService } from './service.js';
import { MUC_NS, stamp } from './stanzas.js';

/** Results per page when the client does not say, and the most it may ask for. */
export const MAM_DEFAULT_PAGE = 50;
export const MAM_MAX_PAGE = 250;

/**
 * XEP-0313 §6.1.2: only those who may enter the room may read its archive: no outcasts, members
 * only in a members-only room; a password-protected room's archive is for its occupants (and
 * admins). A room that does not log has no archive to offer.
 */
export function archiveAccessError(room: Room, real: Jid): StanzaError | undefined {
  if (!room.config.logging) return StanzaError.featureNotImplemented('this room does not archive its discussion');
  const affiliation = room.affiliationOf(real);
  if (affiliation === 'outcast') return StanzaError.forbidden('you are banned from this room');
  if (room.config.membersOnly && !isMember(affiliation)) return StanzaError.forbidden('the archive of a members-only room is for its members');
  if (room.config.passwordProtected && !room.bySession(real) && !isAdmin(affiliation)) {
    return StanzaError.forbidden('the archive of a password-protected room is for its occupants');
  }
  return undefined;
}

/** The archived message as a query result forwards it: no `to`, the real JID only for those who may see it. */
function forwardable(m: ArchivedMessage, seesJids: boolean): Element {
  const out = seesJids ? cloneElement(m.message) : withoutRealJid(m.message);
  out.attrs.xmlns = NS.client;
  delete out.attrs.to;
  return out;
}

export async function mamQuery(svc: MucService, room: Room, iq: IqStanza): Promise<IqAnswer> {
  const denied = archiveAccessError(room, iq.from);
  if (denied) return denied;
  const q = parseMamQuery(iq.payload!);
  const seesJids = room.showsJidsTo(svc.actingRole(room, iq.from));
  // §4.1.1: in a MUC archive `with` is the publisher: an occupant JID (resolved to whoever holds
  // or reserved that nick) or, for those allowed to know it, a real JID (the archive keeps bare ones).
  let withJid: Jid | undefined;
  let nobody = false;
  if (q.with !== undefined) {
    if (q.with.bare().equals(room.jid)) {
      if (q.with.resource !== undefined) {
        const bare = room.byNick(q.with.resource)?.bare.toString() ?? room.reservationOf(q.with.resource);
        withJid = Jid.tryParse(bare);
        nobody = withJid === undefined;
      }
    } else {
      if (!seesJids) return StanzaError.forbidden('the real JIDs of this room are not yours to know');
      withJid = q.with.bare();
    }
  }
  const limit = Math.min(q.max ?? MAM_DEFAULT_PAGE, MAM_MAX_PAGE);
  const r = nobody
    ? { messages: [], complete: true, count: 0, index: undefined }
    : await svc.archive.page(room.name, { ...q, with: withJid }, limit);
  const order = q.flip ? [...r.messages].reverse() : r.messages;
  for (const m of order) {
    await svc.send(
      xml(
        'message',
        { from: room.jid.toString(), to: iq.from.toString(), id: randomUUID() },
        xml(
          'result',
          { xmlns: NS.mam, queryid: q.queryId, id: m.id },
          xml('forwarded', { xmlns: NS.forward }, xml('delay', { xmlns: NS.delay, stamp: stamp(m.when) }), forwardable(m, seesJids)),
        ),
      ),
    );
  }
  const first = r.messages[0];
  const last = r.messages[r.messages.length - 1];
  return xml(
    'fin',
    { xmlns: NS.mam, complete: r.complete ? 'true' : undefined },
    xml(
      'set',
      { xmlns: NS.rsm },
      first ? xml('first', { index: r.index === undefined ? undefined : String(r.index) }, first.id) : null,
      last ? xml('last', {}, last.id) : null,
      r.count !== undefined ? xml('count', {}, String(r.count)) : null,
    ),
  );
}

/** §4.1.5: the fields a query may use. */
export function mamFormAnswer(svc: MucService, room: Room, iq: IqStanza): IqAnswer {
  const denied = archiveAccessError(room, iq.from);
  if (denied) return denied;
  return xml('query', { xmlns: NS.mam }, queryForm());
}

/** §5: the first and last archived messages. */
export async function mamMetadata(svc: MucService, room: Room, iq: IqStanza): Promise<IqAnswer> {
  const denied = archiveAccessError(room, iq.from);
  if (denied) return denied;
  const first = (await svc.archive.query(room.name, { limit: 1 })).page.items[0];
  const last = (await svc.archive.query(room.name, { limit: 1, reverse: true })).page.items[0];
  return xml(
    'metadata',
    { xmlns: NS.mam },
    first ? xml('start', { id: first.id, timestamp: stamp(first.when) }) : null,
    last ? xml('end', { id: last.id, timestamp: stamp(last.when) }) : null,
  );
}

export const MAM_FEATURES = [NS.mam, MUC_NS.mamExtended] as const;
