// IQs to an occupant JID. XEP-0410: a self-ping is answered by the room (the self-ping optimisation of §3.3):
// result when the sender is that occupant, not-acceptable when not joined. Other IQs between
// occupants go through the room (XEP-0045 §17.4 rule 3) without revealing either real JID;
// vcard-temp goes to the occupant's account, which holds the vCard.
import { randomUUID } from 'node:crypto';
import { cloneElement, NS, StanzaError, xml } from '../../lib/module-api.js';
import type { IqStanza, Jid } from '../../lib/module-api.js';
import type { MucService } from './service.js';

/** How long a forwarded IQ may take. */
const FORWARD_TIMEOUT_MS = 30_000;

type Plan = { reply: 'pong' } | { error: StanzaError } | { to: Jid; from: Jid };

export async function occupantIq(svc: MucService, name: string, iq: IqStanza): Promise<void> {
  // Replies to the IQs forwarded below reach their waiter in the router before coming here.
  if (iq.type !== 'get' && iq.type !== 'set') return;
  const payload = iq.payload!;
  const ns = payload.attrs.xmlns as string | undefined;
  const nick = iq.to!.resource!;
  const plan = await svc.withLock(name, async (): Promise<Plan> => {
    const room = await svc.room(name);
    try {
      const sender = room?.bySession(iq.from);
      if (!room || !sender) {
        // XEP-0045 §6.6: disco from a non-occupant is bad-request; XEP-0410 §3.2: not-acceptable otherwise.
        if (ns === NS.discoInfo || ns === NS.discoItems) return { error: StanzaError.badRequest('you are not in this room') };
        return { error: StanzaError.notAcceptable('you are not in this room') };
      }
      const target = room.byNick(nick);
      if (iq.type === 'get' && payload.name === 'ping' && ns === NS.ping && target === sender) return { reply: 'pong' };
      if (!target) return { error: StanzaError.itemNotFound('nobody has that nick in this room') };
      const from = room.occupantJid(sender.nick);
      if (iq.type === 'get' && payload.name === 'vCard' && ns === NS.vcard) return { to: target.bare, from };
      return { to: target.primary().jid, from };
    } finally {
      if (room) await svc.settle(room);
    }
  });
  const by = iq.to!.bare();
  if ('error' in plan) return svc.bounce(iq, plan.error, by);
  if ('reply' in plan) {
    await svc.send(xml('iq', { type: 'result', id: iq.id, from: iq.to!.toString(), to: iq.from.toString() }));
    return;
  }
  let reply;
  try {
    reply = await svc.ctx.request(xml('iq', { type: iq.type, id: randomUUID(), from: plan.from.toString(), to: plan.to.toString() }, cloneElement(payload)), FORWARD_TIMEOUT_MS);
  } catch (err) {
    return svc.bounce(iq, err instanceof StanzaError ? err : StanzaError.remoteServerTimeout(), by);
  }
  if (reply.attrs.type === 'result') {
    await svc.send(xml('iq', { type: 'result', id: iq.id, from: iq.to!.toString(), to: iq.from.toString() }, reply.getChildElements().map((c) => cloneElement(c))));
    return;
  }
  await svc.bounce(iq, StanzaError.fromElement(reply) ?? StanzaError.undefinedCondition(), by);
}
