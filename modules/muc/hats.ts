// XEP-0317 Hats (0.2): labels such as "Teacher" or "Presenter" that admins and owners put on a
// user in a room through XEP-0050 commands on the room JID (don, doff), shown to everyone in the
// wearer's presence. The hats a room offers are the service's (`muc.hats` in the configuration);
// who wears which is kept per bare JID, with the room's tables for a persistent room.
import { randomUUID } from 'node:crypto';
import { buildForm, Jid, NS, readForm, StanzaError, xml } from '../../lib/module-api.js';
import type { Element, IqStanza } from '../../lib/module-api.js';
import { isAdmin } from './affiliations.js';
import type { Room } from './room.js';
import type { IqAnswer, MucService } from './service.js';

export const NS_HATS = 'urn:xmpp:hats:0';
const FORM_TYPE = 'urn:xmpp:hats:commands';
const DON = 'urn:xmpp:hats:commands:don';
const DOFF = 'urn:xmpp:hats:commands:doff';

export interface Hat {
  uri: string;
  title: string;
}

/** §3.1: the <hats/> of a presence from the room; undefined when the user wears none. */
export function hatsElement(svc: MucService, room: Room, bare: Jid): Element | undefined {
  const worn = room.hats.get(bare.bare().toString());
  if (worn === undefined || worn.size === 0) return undefined;
  const hats = svc.config.hats.filter((h) => worn.has(h.uri));
  if (hats.length === 0) return undefined;
  return xml('hats', { xmlns: NS_HATS }, hats.map((h) => xml('hat', { uri: h.uri, title: h.title })));
}

/** XEP-0050 §2.2: the commands of the room, for those who may run them. */
export function commandItems(room: Room, real: Jid): Element[] {
  if (!isAdmin(room.affiliationOf(real))) return [];
  const jid = room.jid.toString();
  return [xml('item', { jid, node: DON, name: 'Give a hat' }), xml('item', { jid, node: DOFF, name: 'Take a hat off' })];
}

function badAction(): StanzaError {
  return new StanzaError('bad-request', { text: 'this command runs with execute, complete or cancel', appCondition: xml('bad-action', { xmlns: NS.commands }) });
}

function badPayload(text: string): StanzaError {
  return new StanzaError('bad-request', { text, appCondition: xml('bad-payload', { xmlns: NS.commands }) });
}

/** §3.2-3.3: don and doff, in one or two steps (the form, then its submission). */
export async function hatCommand(svc: MucService, room: Room, iq: IqStanza): Promise<IqAnswer> {
  const command = iq.payload!;
  const node = command.attrs.node as string | undefined;
  if (node !== DON && node !== DOFF) return StanzaError.itemNotFound('this room has no such command');
  if (!isAdmin(room.affiliationOf(iq.from))) return StanzaError.forbidden('only admins and owners give or take hats');
  const sessionid = (command.attrs.sessionid as string | undefined) ?? randomUUID();
  const reply = (status: string, ...children: Element[]) => xml('command', { xmlns: NS.commands, node, sessionid, status }, ...children);
  const action = (command.attrs.action as string | undefined) ?? 'execute';
  if (action === 'cancel') return reply('canceled');
  if (action !== 'execute' && action !== 'complete') return badAction();
  const form = readForm(command);
  if (form === undefined || form.type !== 'submit') {
    const fields = [
      { var: 'accountjid', type: 'jid-single' as const, label: 'User Address', required: true },
      { var: 'hat', type: 'list-single' as const, label: 'The hat', required: true, options: svc.config.hats.map((h) => ({ value: h.uri, label: h.title })) },
    ];
    const title = node === DON ? 'Assigning a Hat' : 'Removing a Hat';
    return reply('executing', xml('actions', { execute: 'complete' }, xml('complete')), buildForm('form', fields, { formType: FORM_TYPE, title, instructions: `Fill out this form to ${node === DON ? 'assign' : 'remove'} a hat.` }));
  }
  if (form.formType !== undefined && form.formType !== FORM_TYPE) return badPayload(`the form must be of type ${FORM_TYPE}`);
  const user = Jid.tryParse(form.value('accountjid'));
  if (!user) return badPayload('accountjid must be a JID');
  const hat = svc.config.hats.find((h) => h.uri === form.value('hat'));
  if (!hat) return badPayload('hat must be one of the hats this service offers');
  const bare = user.bare().toString();
  let worn = room.hats.get(bare);
  if (node === DON) {
    if (!worn) room.hats.set(bare, (worn = new Set()));
    if (worn.has(hat.uri)) return reply('completed');
    worn.add(hat.uri);
    if (room.config.persistent && !room.locked) await svc.store.putHat(room.name, bare, hat.uri);
  } else {
    if (!worn?.delete(hat.uri)) return reply('completed');
    if (worn.size === 0) room.hats.delete(bare);
    if (room.config.persistent && !room.locked) await svc.store.deleteHat(room.name, bare, hat.uri);
  }
  // §3.1: the room sees the wearer's presence with its hats now.
  for (const o of room.byBare(user)) await svc.broadcastPresence(room, o);
  return reply('completed');
}
