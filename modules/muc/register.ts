// XEP-0045 §7.10 (with XEP-0077): registering with a room makes one a member with a reserved nick;
// §7.12: the reserved nick is discoverable at the x-roomuser-item node.
import { buildForm, NS, readForm, StanzaError, xml } from '../../lib/module-api.js';
import type { IqStanza } from '../../lib/module-api.js';
import { isMember } from './affiliations.js';
import { setAffiliations } from './admin.js';
import { validNick } from './occupants.js';
import type { Room } from './room.js';
import type { IqAnswer, MucService } from './service.js';
import { MUC_NS } from './stanzas.js';

/** Registration is open to anyone but outcasts in an open room; a members-only room's members are chosen by its admins. */
function registrationError(room: Room, affiliation: string): StanzaError | undefined {
  if (affiliation === 'outcast') return StanzaError.notAllowed('you are banned from this room');
  if (room.config.membersOnly && affiliation === 'none') return StanzaError.notAllowed('the admins of this members-only room choose its members');
  return undefined;
}

export function registerGet(svc: MucService, room: Room, iq: IqStanza): IqAnswer {
  const affiliation = room.affiliationOf(iq.from);
  const entry = room.entryOf(iq.from);
  // XEP-0077 §3.1 / §7.10: already registered: <registered/> and the nick.
  if (isMember(affiliation) && entry?.nick !== undefined) {
    return xml('query', { xmlns: NS.register }, xml('registered'), xml('username', {}, entry.nick));
  }
  const denied = registrationError(room, affiliation);
  if (denied) return denied;
  return xml(
    'query',
    { xmlns: NS.register },
    xml('instructions', {}, 'Choose the nick to reserve in this room.'),
    buildForm('form', [{ var: 'muc#register_roomnick', type: 'text-single', label: 'Nickname', required: true }], {
      formType: MUC_NS.register,
      title: `Registration with ${room.jid.toString()}`,
    }),
  );
}

export async function registerSet(svc: MucService, room: Room, iq: IqStanza): Promise<IqAnswer> {
  const query = iq.payload!;
  const bare = iq.from.bare().toString();
  const affiliation = room.affiliationOf(iq.from);
  // XEP-0077 §3.2: <remove/> cancels the registration.
  if (query.getChild('remove')) {
    const entry = room.affiliations.get(bare);
    if (!entry) return StanzaError.itemNotFound('you are not registered with this room');
    if (entry.affiliation === 'member') await setAffiliations(svc, room, [{ jid: bare, affiliation: 'none' }]);
    else if (entry.nick !== undefined) await setAffiliations(svc, room, [{ jid: bare, affiliation: entry.affiliation, nick: '' }]);
    return undefined;
  }
  const denied = registrationError(room, affiliation);
  if (denied) return denied;
  const form = readForm(query);
  // §7.10: "If the user did not include a valid data form, the room MUST return a bad-request error".
  if (!form || form.type !== 'submit' || (form.formType !== undefined && form.formType !== MUC_NS.register)) {
    return StanzaError.badRequest(`submit the ${MUC_NS.register} form`);
  }
  const nick = form.value('muc#register_roomnick');
  if (!validNick(nick)) return StanzaError.badRequest('muc#register_roomnick must be a nick');
  const reservedBy = room.reservationOf(nick);
  const holder = room.byNick(nick);
  if ((reservedBy !== undefined && reservedBy !== bare) || (holder !== undefined && holder.bare.toString() !== bare)) {
    return StanzaError.conflict('that nick is reserved or in use');
  }
  await setAffiliations(svc, room, [{ jid: bare, affiliation: isMember(affiliation) ? room.entryOf(iq.from)?.affiliation ?? 'member' : 'member', nick }]);
  return undefined;
}
