// XEP-0030 for the service (XEP-0045 §6.1-6.3: identity, features, the directory of public rooms
// with XEP-0059 paging) and for each room (§6.4-6.5, §7.12: features by room type, the
// muc#roominfo form, the reserved nick at x-roomuser-item).
import { NS, StanzaError, xml } from '../../lib/module-api.js';
import { commandItems, NS_HATS } from './hats.js';
import type { Element, IqStanza } from '../../lib/module-api.js';
import { isMember } from './affiliations.js';
import { MAM_FEATURES } from './mam.js';
import type { Room } from './room.js';
import { parseStoredConfig, roomInfoForm, typeFeatures } from './room-config.js';
import type { IqAnswer, MucService } from './service.js';
import { MUC_NS } from './stanzas.js';

/** Rooms per disco#items page when the client does not page, and the most per page. */
const ITEMS_PAGE = 100;

const COMMON = [NS.discoInfo, NS.discoItems, NS.muc, MUC_NS.stableId, NS.occupantId];

function info(identity: { name: string }, features: readonly string[], forms: readonly Element[] = [], node?: string): Element {
  return xml(
    'query',
    { xmlns: NS.discoInfo, node },
    xml('identity', { category: 'conference', type: 'text', name: identity.name }),
    [...new Set(features)].sort().map((f) => xml('feature', { var: f })),
    [...forms],
  );
}

/** IQs to the service's own domain. */
export async function serviceIq(svc: MucService, iq: IqStanza): Promise<IqAnswer> {
  const p = iq.payload!;
  const ns = p.attrs.xmlns as string | undefined;
  if (iq.type === 'get' && p.name === 'query' && ns === NS.discoInfo) {
    if (p.attrs.node) return StanzaError.itemNotFound('no such node');
    // XEP-0421 §4: occupant ids are on in every room, so the service says so too.
    return info({ name: svc.config.name }, [...COMMON, NS.ping]);
  }
  if (iq.type === 'get' && p.name === 'query' && ns === NS.discoItems) {
    if (p.attrs.node) return StanzaError.itemNotFound('no such node');
    return publicRooms(svc, p);
  }
  if (iq.type === 'get' && p.name === 'ping' && ns === NS.ping) return undefined;
  return StanzaError.serviceUnavailable();
}

/** XEP-0059 §2.1-2.2: the page size and cursor of a disco#items request; bad-request when malformed. */
function parseRsm(query: Element): { max?: number; after?: string; before?: boolean } {
  const set = query.getChild('set', NS.rsm);
  if (!set) return {};
  const max = set.getChildText('max');
  if (max !== null && !/^\d{1,9}$/.test(max.trim())) throw StanzaError.badRequest('RSM <max/> must be a whole number');
  if (set.getChild('index')) throw StanzaError.featureNotImplemented('page with <after/>');
  return { max: max === null ? undefined : Number(max.trim()), after: set.getChildText('after') ?? undefined, before: set.getChild('before') !== undefined };
}

/** §6.3: the public rooms (temporary ones in memory, persistent ones from their table), by JID, paged. */
async function publicRooms(svc: MucService, query: Element): Promise<IqAnswer> {
  const rsm = parseRsm(query);
  const max = Math.min(rsm.max ?? ITEMS_PAGE, ITEMS_PAGE);
  const after = rsm.after === undefined ? undefined : rsm.after.split('@')[0];
  if (rsm.before) return StanzaError.featureNotImplemented('page the directory forwards, with <after/>');
  const rooms = new Map<string, string>();
  for (const room of svc.live()) {
    if (room.config.public && !room.locked && !room.destroyed && (after === undefined || room.name > after)) rooms.set(room.name, room.config.name);
  }
  for (const row of await svc.store.publicRooms(after, max + 1)) {
    if (!rooms.has(row.name)) rooms.set(row.name, parseStoredConfig(row.config, svc.limits).name);
  }
  const names = [...rooms.keys()].sort();
  const page = names.slice(0, max);
  const items = page.map((name) => xml('item', { jid: `${name}@${svc.domain}`, name: rooms.get(name) || undefined }));
  const paged = query.getChild('set', NS.rsm) !== undefined || names.length > max;
  const set = paged
    ? xml(
        'set',
        { xmlns: NS.rsm },
        page.length > 0 ? xml('first', {}, `${page[0]}@${svc.domain}`) : null,
        page.length > 0 ? xml('last', {}, `${page[page.length - 1]}@${svc.domain}`) : null,
        xml('count', {}, String(Math.max(await svc.store.countPublic(), names.length))),
      )
    : null;
  return xml('query', { xmlns: NS.discoItems }, items, set);
}

/** §6.4: the room's identity, features and muc#roominfo form; §7.12 and §18.1.1 nodes. */
export function roomInfo(svc: MucService, room: Room, iq: IqStanza): IqAnswer {
  const node = iq.payload!.attrs.node as string | undefined;
  const name = room.config.name || room.name;
  if (node === 'x-roomuser-item') {
    const entry = room.entryOf(iq.from);
    const nick = isMember(room.affiliationOf(iq.from)) ? entry?.nick : undefined;
    return xml('query', { xmlns: NS.discoInfo, node }, nick !== undefined ? xml('identity', { category: 'conference', type: 'text', name: nick }) : null);
  }
  // §18.1.1: the service discards no namespace, so it has no traffic node.
  if (node === MUC_NS.traffic) return StanzaError.featureNotImplemented('this room passes every namespace through');
  if (node) return StanzaError.itemNotFound('no such node');
  const features = [
    ...COMMON,
    ...typeFeatures(room.config),
    MUC_NS.selfPing,
    MUC_NS.request,
    NS.vcard,
    NS.sid,
    NS.ping,
    // XEP-0425: both versions of moderation; XEP-0424 retractions pass through.
    MUC_NS.moderate,
    MUC_NS.moderate0,
    // XEP-0317, with its XEP-0050 commands.
    NS_HATS,
    NS.commands,
    ...(room.config.logging ? MAM_FEATURES : []),
    ...(room.config.membersOnly ? [] : [NS.register]),
  ];
  const form = roomInfoForm(room.config, { occupants: room.occupants.size, subject: room.subject?.text ?? '', avatarHash: room.avatarHash });
  return info({ name }, features, [form]);
}

/** §6.5: occupants are listed to occupants only (the XEP advises keeping them private). */
export function roomItems(svc: MucService, room: Room, iq: IqStanza): IqAnswer {
  const node = iq.payload!.attrs.node as string | undefined;
  // XEP-0050 §2.2: the room's commands (XEP-0317 hats).
  if (node === NS.commands) return xml('query', { xmlns: NS.discoItems, node }, commandItems(room, iq.from));
  if (node) return StanzaError.itemNotFound('no such node');
  const inRoom = room.bySession(iq.from) !== undefined;
  return xml('query', { xmlns: NS.discoItems }, inRoom ? [...room.occupants.values()].map((o) => xml('item', { jid: room.occupantJid(o.nick).toString() })) : null);
}
