// Messages to a room: to everyone (XEP-0045 §7.4), the subject (§8.1), private messages between
// occupants (§7.5), mediated invitations and declines (§7.8.2), voice requests (§7.13, §8.6).
import { randomUUID } from 'node:crypto';
import { buildForm, cloneElement, Jid, NS, readForm, StanzaError, xml } from '../../lib/module-api.js';
import type { Element, MessageStanza } from '../../lib/module-api.js';
import { isAdmin, isMember, roleRank } from './affiliations.js';
import { archivable, newArchiveId } from './archive.js';
import type { Occupant } from './occupants.js';
import type { Room } from './room.js';
import type { MucService } from './service.js';
import { isServiceOwned, MUC_NS } from './stanzas.js';
import { setAffiliations } from './admin.js';

/** RFC 6120 §8.3.3 conditions that mean the recipient is gone (XEP-0045 §18.1.2 "ghosts"). */
const DELIVERY_ERRORS = new Set(['gone', 'item-not-found', 'recipient-unavailable', 'redirect', 'remote-server-not-found', 'remote-server-timeout', 'service-unavailable']);

export async function onMessage(svc: MucService, room: Room | undefined, m: MessageStanza): Promise<void> {
  if (m.type === 'error') {
    const condition = StanzaError.fromElement(m.el)?.condition;
    if (room && condition !== undefined && DELIVERY_ERRORS.has(condition)) await svc.ghost(room, m.from);
    return;
  }
  const to = m.to!;
  const occupant = room?.bySession(m.from);
  // §17.2 rule 3: a room that does not exist (or is still locked) has not-found.
  if (!room || (room.locked && !occupant)) return svc.bounce(m, StanzaError.itemNotFound('no such room'), to.bare());
  if (to.resource !== undefined) return privateMessage(svc, room, occupant, m, to.resource);
  if (m.type === 'groupchat') return groupchat(svc, room, occupant, m);
  if (m.type === 'headline') return;
  const x = m.el.getChild('x', NS.mucUser);
  if (x?.getChild('invite')) return invite(svc, room, occupant, m, x);
  if (x?.getChild('decline')) return decline(svc, room, m, x);
  const form = readForm(m.el);
  if (form?.formType === MUC_NS.request) return voiceRequest(svc, room, occupant, m);
  // §17.2 rule 1: other messages to the room are refused (without a body, e.g. chat states, dropped).
  if (m.el.getChild('body')) return svc.bounce(m, StanzaError.badRequest('send messages to everyone with type groupchat'), room.jid);
}

/** The copy of a client's message the room sends out: its own children, minus what only the room may say. */
function reflect(room: Room, sender: Occupant, m: MessageStanza, type: string): Element {
  const out = xml('message', { type, from: room.occupantJid(sender.nick).toString(), id: m.id ?? randomUUID(), 'xml:lang': m.el.attrs['xml:lang'] as string | undefined });
  for (const child of m.el.getChildElements()) if (!isServiceOwned(child, room.jid.toString())) out.cnode(cloneElement(child));
  return out;
}

function rateLimited(svc: MucService, sender: Occupant): StanzaError | undefined {
  const { perSecond, burst } = svc.config.messageRate;
  if (sender.take(perSecond, burst)) return undefined;
  return new StanzaError('policy-violation', { type: 'wait', text: 'you are sending messages too fast; wait a moment' });
}

async function groupchat(svc: MucService, room: Room, sender: Occupant | undefined, m: MessageStanza): Promise<void> {
  // §7.4: "If the sender is not an occupant of the room, the service SHOULD return a not-acceptable error".
  if (!sender) return svc.bounce(m, StanzaError.notAcceptable('you are not in this room'), room.jid);
  const body = m.el.getChild('body');
  const subject = m.el.getChild('subject');
  if (subject && !body && !m.el.getChild('thread')) return changeSubject(svc, room, sender, m, subject.getText());
  // §7.4: a visitor (no voice) gets forbidden.
  if (roleRank(sender.role) < roleRank('participant')) return svc.bounce(m, StanzaError.forbidden('you have no voice in this room'), room.jid);
  const limited = rateLimited(svc, sender);
  if (limited) return svc.bounce(m, limited, room.jid);
  const out = reflect(room, sender, m, 'groupchat');
  out.cnode(xml('occupant-id', { xmlns: NS.occupantId, id: sender.occupantId }));
  await archiveAndBroadcast(svc, room, out, sender.bare);
}

/**
 * Archives a groupchat message when it carries content (XEP-0313 §6.1.2) and stamps its UID on
 * the copies as the room's stanza-id (XEP-0359 §3), then sends it to every session. The copies go
 * out while the row is being written: the archive makes every later read wait for it.
 */
export async function archiveAndBroadcast(svc: MucService, room: Room, out: Element, sender: Jid | undefined): Promise<void> {
  if (archivable(out)) archive(svc, room, out, sender);
  await svc.broadcastMessage(room, out);
}

function archive(svc: MucService, room: Room, out: Element, sender: Jid | undefined): void {
  const id = newArchiveId();
  // A room that does not log keeps only what it sends as history on entering.
  svc.archive.write(room.name, id, out, sender, room.config.logging ? undefined : room.config.maxHistoryFetch);
  out.cnode(xml('stanza-id', { xmlns: NS.sid, id, by: room.jid.toString() }));
}

/** §8.1: moderators, and participants when muc#roomconfig_changesubject allows it. */
async function changeSubject(svc: MucService, room: Room, sender: Occupant, m: MessageStanza, text: string): Promise<void> {
  const allowed = sender.role === 'moderator' || (room.config.changeSubject && sender.role === 'participant');
  if (!allowed) return svc.bounce(m, StanzaError.forbidden('you may not change the subject of this room'), room.jid);
  room.subject = { text, nick: sender.nick, at: Date.now() };
  await svc.saveRoom(room);
  const out = reflect(room, sender, m, 'groupchat');
  out.cnode(xml('occupant-id', { xmlns: NS.occupantId, id: sender.occupantId }));
  // XEP-0313 "MUC Archives": subject changes SHOULD be stored like messages with a body, so they are
  // found through MAM and stamped with the room's stanza-id (never sent as history: the
  // current subject follows the history on entering). A room that does not log keeps no record.
  if (room.config.logging) archive(svc, room, out, sender.bare);
  await svc.broadcastMessage(room, out);
}

/** §7.5: a private message to one occupant, delivered to every session of its nick. */
async function privateMessage(svc: MucService, room: Room, sender: Occupant | undefined, m: MessageStanza, nick: string): Promise<void> {
  if (m.type === 'groupchat') return svc.bounce(m, StanzaError.badRequest('private messages are not of type groupchat'), room.jid);
  if (!sender) return svc.bounce(m, StanzaError.notAcceptable('you are not in this room'), room.jid);
  const target = room.byNick(nick);
  if (!target) return svc.bounce(m, StanzaError.itemNotFound('nobody has that nick in this room'), room.jid);
  const policy = room.config.allowPm;
  const allowed =
    policy === 'anyone' || (policy === 'participants' && roleRank(sender.role) >= roleRank('participant')) || (policy === 'moderators' && sender.role === 'moderator');
  if (!allowed) return svc.bounce(m, StanzaError.forbidden('private messages are not allowed here'), room.jid);
  const limited = rateLimited(svc, sender);
  if (limited) return svc.bounce(m, limited, room.jid);
  const out = reflect(room, sender, m, m.type);
  // §7.5: the room adds <x xmlns='…muc#user'/> so carbons (XEP-0280) know it as a private message.
  out.cnode(xml('x', { xmlns: NS.mucUser }));
  out.cnode(xml('occupant-id', { xmlns: NS.occupantId, id: sender.occupantId }));
  for (const s of [...target.sessions.values()]) {
    const copy = cloneElement(out);
    copy.attrs.to = s.jid.toString();
    await svc.send(copy);
  }
}

/**
 * §7.8.2: the room passes invitations on from itself, with the password. In a members-only room
 * only admins invite, or members when muc#roomconfig_allowinvites says so; the invitee joins the
 * member list (§9.5).
 */
async function invite(svc: MucService, room: Room, sender: Occupant | undefined, m: MessageStanza, x: Element): Promise<void> {
  const affiliation = room.affiliationOf(m.from);
  if (!sender && !isAdmin(affiliation)) return svc.bounce(m, StanzaError.notAcceptable('you are not in this room'), room.jid);
  if (room.config.membersOnly && !isAdmin(affiliation) && !(room.config.allowInvites && isMember(affiliation))) {
    return svc.bounce(m, StanzaError.forbidden('only admins may invite to this room'), room.jid);
  }
  // The room sends invitations in its own name: they count against the sender's rate.
  const limited = sender && rateLimited(svc, sender);
  if (limited) return svc.bounce(m, limited, room.jid);
  const invitees: Array<{ jid: Jid; reason: string | null }> = [];
  for (const inv of x.getChildren('invite')) {
    const jid = Jid.tryParse(inv.attrs.to as string | undefined);
    if (!jid) return svc.bounce(m, StanzaError.jidMalformed('an invitation needs a valid to'), room.jid);
    // §7.8.2: "If the inviter supplies a non-existent JID, the room SHOULD return an item-not-found error" (known for local accounts).
    if (svc.ctx.server.hosts.includes(jid.domain) && (jid.local === undefined || !(await svc.ctx.accounts.exists(jid.domain, jid.local)))) {
      return svc.bounce(m, StanzaError.itemNotFound(`${jid.bare().toString()} has no account here`), room.jid);
    }
    invitees.push({ jid, reason: inv.getChildText('reason') });
  }
  if (room.config.membersOnly) {
    const added = invitees.filter((i) => room.affiliationOf(i.jid) === 'none').map((i) => ({ jid: i.jid.bare().toString(), affiliation: 'member' as const }));
    if (added.length > 0) await setAffiliations(svc, room, added, sender?.nick);
  }
  for (const i of invitees) {
    await svc.send(
      xml(
        'message',
        { from: room.jid.toString(), to: i.jid.toString(), id: m.id ?? randomUUID() },
        xml(
          'x',
          { xmlns: NS.mucUser },
          xml('invite', { from: m.from.bare().toString() }, i.reason !== null ? xml('reason', {}, i.reason) : null),
          room.config.passwordProtected ? xml('password', {}, room.config.password) : null,
        ),
        xml('body', {}, `${m.from.bare().toString()} invites you to the room ${room.jid.toString()}${i.reason ? `: ${i.reason}` : ''}`),
      ),
    );
  }
}

/** §7.8.2: a declined invitation goes back to the inviter, from the room. */
async function decline(svc: MucService, room: Room, m: MessageStanza, x: Element): Promise<void> {
  const d = x.getChild('decline')!;
  const inviter = Jid.tryParse(d.attrs.to as string | undefined);
  if (!inviter) return svc.bounce(m, StanzaError.jidMalformed('a decline needs a valid to'), room.jid);
  const reason = d.getChildText('reason');
  await svc.send(
    xml(
      'message',
      { from: room.jid.toString(), to: inviter.toString(), id: m.id ?? randomUUID() },
      xml('x', { xmlns: NS.mucUser }, xml('decline', { from: m.from.bare().toString() }, reason !== null ? xml('reason', {}, reason) : null)),
    ),
  );
}

/**
 * §7.13: a visitor asks for voice: the moderators get an approval form. §8.6: a moderator who
 * submits it with muc#request_allow grants voice.
 */
async function voiceRequest(svc: MucService, room: Room, sender: Occupant | undefined, m: MessageStanza): Promise<void> {
  const form = readForm(m.el)!;
  if (!sender) return svc.bounce(m, StanzaError.notAcceptable('you are not in this room'), room.jid);
  if (sender.role === 'moderator' && form.fields.has('muc#request_allow')) {
    if (form.bool('muc#request_allow') !== true) return;
    const nick = form.value('muc#roomnick');
    const target = nick === undefined ? undefined : room.byNick(nick);
    if (target && target.role === 'visitor') {
      await svc.setRole(room, target, 'participant', { actor: sender.nick });
      await svc.keepRole(room, target.bare, 'participant');
    }
    return;
  }
  if (sender.role !== 'visitor' || form.value('muc#role') !== 'participant') return;
  const limited = rateLimited(svc, sender);
  if (limited) return svc.bounce(m, limited, room.jid);
  const approval = buildForm(
    'form',
    [
      { var: 'muc#role', type: 'list-single', label: 'Requested role', values: ['participant'], options: [{ value: 'participant' }] },
      { var: 'muc#jid', type: 'jid-single', label: 'User ID', values: [sender.primary().jid.toString()] },
      { var: 'muc#roomnick', type: 'text-single', label: 'Room nickname', values: [sender.nick] },
      { var: 'muc#request_allow', type: 'boolean', label: 'Grant voice to this person?', values: ['false'] },
    ],
    { formType: MUC_NS.request, title: 'Voice request', instructions: `To grant voice to ${sender.nick}, check the box and submit the form.` },
  );
  for (const r of svc.recipients(room)) {
    if (r.occupant.role !== 'moderator') continue;
    await svc.send(xml('message', { from: room.jid.toString(), to: r.jid.toString(), id: randomUUID() }, cloneElement(approval)));
  }
}
