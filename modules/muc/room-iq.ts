// IQs to a room's bare JID, by payload: disco, muc#admin, muc#owner, registration, the archive,
// moderation, the room's vCard, ping. The room handles them itself; none is reflected (XEP-0045 §17.4).
import { NS, StanzaError } from '../../lib/module-api.js';
import type { IqStanza } from '../../lib/module-api.js';
import { adminGet, adminSet } from './admin.js';
import { roomInfo, roomItems } from './disco.js';
import { mamFormAnswer, mamMetadata, mamQuery } from './mam.js';
import { moderate } from './moderation.js';
import { hatCommand } from './hats.js';
import { ownerGet, ownerSet } from './owner.js';
import { registerGet, registerSet } from './register.js';
import type { Room } from './room.js';
import type { IqAnswer, MucService } from './service.js';
import { MUC_NS } from './stanzas.js';
import { vcardGet, vcardSet } from './vcard.js';

export async function roomIq(svc: MucService, room: Room | undefined, iq: IqStanza): Promise<IqAnswer> {
  // §7.10, §6.4: a room that does not exist, or is locked for all but its owner, is not found.
  if (!room || (room.locked && room.affiliationOf(iq.from) !== 'owner')) return StanzaError.itemNotFound('no such room');
  const p = iq.payload!;
  const ns = p.attrs.xmlns as string | undefined;
  const is = (name: string, xmlns: string) => p.name === name && ns === xmlns;
  if (iq.type === 'get') {
    if (is('query', NS.discoInfo)) return roomInfo(svc, room, iq);
    if (is('query', NS.discoItems)) return roomItems(svc, room, iq);
    if (is('query', NS.mucAdmin)) return adminGet(svc, room, iq);
    if (is('query', NS.mucOwner)) return ownerGet(svc, room, iq);
    if (is('query', NS.register)) return registerGet(svc, room, iq);
    if (is('query', NS.mam)) return mamFormAnswer(svc, room, iq);
    if (is('metadata', NS.mam)) return mamMetadata(svc, room, iq);
    if (is('vCard', NS.vcard)) return vcardGet(svc, room);
    if (is('ping', NS.ping)) return undefined;
  } else {
    if (is('query', NS.mucAdmin)) return adminSet(svc, room, iq);
    if (is('query', NS.mucOwner)) return ownerSet(svc, room, iq);
    if (is('query', NS.register)) return registerSet(svc, room, iq);
    if (is('query', NS.mam)) return mamQuery(svc, room, iq);
    if (is('vCard', NS.vcard)) return vcardSet(svc, room, iq);
    if (is('moderate', MUC_NS.moderate) || is('apply-to', MUC_NS.fasten)) return moderate(svc, room, iq);
    if (is('command', NS.commands)) return hatCommand(svc, room, iq);
  }
  return StanzaError.serviceUnavailable();
}
