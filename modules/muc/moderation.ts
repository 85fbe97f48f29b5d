// XEP-0425 message moderation: a moderator retracts an archived groupchat message for everyone.
// Both wire forms are understood and announced: 1.x (<moderate xmlns='urn:xmpp:message-moderate:1'>
// with an XEP-0424 retract:1) and 0.x (XEP-0422 <apply-to> with moderate:0 and retract:0), which
// nbxmpp (Gajim) and slixmpp still send. The archived message becomes a tombstone (§5).
import { randomUUID } from 'node:crypto';
import { cloneElement, NS, StanzaError, xml } from '../../lib/module-api.js';
import type { Element, IqStanza } from '../../lib/module-api.js';
import { archiveAndBroadcast } from './messages.js';
import type { Room } from './room.js';
import type { IqAnswer, MucService } from './service.js';
import { MUC_NS, stamp } from './stanzas.js';

interface Request {
  id: string;
  reason: string | null;
}

/** Reads either form of the request; undefined when it asks for something other than a retraction. */
function parseRequest(payload: Element): Request | StanzaError {
  if (payload.name === 'moderate' && payload.attrs.xmlns === MUC_NS.moderate) {
    const id = payload.attrs.id as string | undefined;
    if (!id) return StanzaError.badRequest('<moderate/> needs the stanza-id of the message');
    if (!payload.getChild('retract', NS.retract)) return StanzaError.featureNotImplemented('only retraction is supported');
    return { id, reason: payload.getChildText('reason') };
  }
  const id = payload.attrs.id as string | undefined;
  const moderate = payload.getChild('moderate', MUC_NS.moderate0);
  if (!id || !moderate) return StanzaError.badRequest('<apply-to/> needs an id and a <moderate/>');
  if (!moderate.getChild('retract', MUC_NS.retract0)) return StanzaError.featureNotImplemented('only retraction is supported');
  return { id, reason: moderate.getChildText('reason') };
}

export async function moderate(svc: MucService, room: Room, iq: IqStanza): Promise<IqAnswer> {
  const req = parseRequest(iq.payload!);
  if (req instanceof StanzaError) return req;
  const moderator = room.bySession(iq.from);
  // §3: moderators only (the XEP's example answers forbidden).
  if (!moderator || moderator.role !== 'moderator') return StanzaError.forbidden('only moderators can retract the messages of others');
  const original = await svc.archive.get(room.name, req.id);
  if (!original) return StanzaError.itemNotFound('no archived message has that stanza-id');
  const now = Date.now();
  const by = room.occupantJid(moderator.nick).toString();
  const reason = () => (req.reason !== null ? xml('reason', {}, req.reason) : null);
  const moderatorId = () => xml('occupant-id', { xmlns: NS.occupantId, id: moderator.occupantId });

  // §4: the tombstone keeps the envelope, the author's occupant id and real-JID item, and says who
  // moderated; body and every other payload are gone.
  if (!original.message.getChild('retracted', NS.retract)) {
    const tombstone = xml('message', original.message.attrs);
    for (const child of original.message.getChildElements()) {
      if (child.attrs.xmlns === NS.occupantId || child.attrs.xmlns === NS.mucUser) tombstone.cnode(cloneElement(child));
    }
    tombstone.cnode(xml('retracted', { xmlns: NS.retract, stamp: stamp(now) }, xml('moderated', { xmlns: MUC_NS.moderate, by }, moderatorId()), reason()));
    tombstone.cnode(
      xml('apply-to', { xmlns: MUC_NS.fasten, id: req.id }, xml('moderated', { xmlns: MUC_NS.moderate0, by }, xml('retracted', { xmlns: MUC_NS.retract0, stamp: stamp(now) }), reason())),
    );
    await svc.archive.replace(room.name, req.id, tombstone);
  }

  // §3.1: everyone (the moderator too) learns of it from the room itself, in both forms; the
  // announcement is archived so clients catching up through MAM apply it too.
  const announcement = xml(
    'message',
    { type: 'groupchat', from: room.jid.toString(), id: randomUUID() },
    xml('retract', { xmlns: NS.retract, id: req.id }, xml('moderated', { xmlns: MUC_NS.moderate, by }, moderatorId()), reason()),
    xml('apply-to', { xmlns: MUC_NS.fasten, id: req.id }, xml('moderated', { xmlns: MUC_NS.moderate0, by }, xml('retract', { xmlns: MUC_NS.retract0 }), reason())),
  );
  await archiveAndBroadcast(svc, room, announcement, undefined);
  return undefined;
}
