// Shared by the carbons and mam specs: a presence stand-in (initial presence with a priority makes
// a session available, as the presence module would, without broadcasts) and stanza helpers.
import { defineModule, NS, xml, z } from '../../../lib/module-api.js';
import type { Element } from '../../../lib/module-api.js';
import type { TestClient } from '../../helpers/harness.js';

export const presenceStub = defineModule({
  name: 'presence-stub',
  config: z.strictObject({}),
  setup(ctx) {
    ctx.on('presence/outbound', async ({ session, stanza }) => {
      if (stanza.to) return undefined;
      if (stanza.type === 'unavailable') {
        session.setPresence(undefined);
        return 'claimed';
      }
      if (stanza.type !== 'available') return undefined;
      const initial = !session.available;
      session.setPresence(stanza.el);
      if (initial) await ctx.notify('presence/initial', { session });
      return 'claimed';
    });
  },
});

/** Sends available presence with a priority. */
export function available(client: TestClient, priority = 0): Promise<void> {
  return client.sendPresence({}, xml('priority', {}, String(priority)));
}

/** `<iq type='set'>` to the client's own account (no `to`), resolving with the reply. */
export function setSelf(client: TestClient, payload: Element): Promise<Element> {
  return client.iq(xml('iq', { type: 'set' }, payload));
}

export function getSelf(client: TestClient, payload: Element): Promise<Element> {
  return client.iq(xml('iq', { type: 'get' }, payload));
}

export async function enableCarbons(client: TestClient): Promise<void> {
  const reply = await setSelf(client, xml('enable', { xmlns: NS.carbons }));
  if (reply.attrs.type !== 'result') throw new Error(`enabling carbons failed: ${reply.toString()}`);
}

/** The `<sent/>` or `<received/>` of a carbon copy, if the stanza is one. */
export function carbonKind(stanza: Element): 'sent' | 'received' | undefined {
  if (stanza.name !== 'message') return undefined;
  if (stanza.getChild('sent', NS.carbons)) return 'sent';
  if (stanza.getChild('received', NS.carbons)) return 'received';
  return undefined;
}

export const isCarbon = (stanza: Element): boolean => carbonKind(stanza) !== undefined;

/** The message inside a carbon copy. */
export function forwardedMessage(carbon: Element): Element | undefined {
  const wrapper = carbon.getChild('sent', NS.carbons) ?? carbon.getChild('received', NS.carbons);
  return wrapper?.getChild('forwarded', NS.forward)?.getChild('message');
}

/** The carbon copies a client received, as the ids of the messages they carry. */
export function carbonIds(client: TestClient): Array<string | undefined> {
  return client.received.filter(isCarbon).map((c) => forwardedMessage(c)?.attrs.id as string | undefined);
}

/** Messages (not carbons) a client received, by id. */
export function messageIds(client: TestClient): Array<string | undefined> {
  return client.received.filter((s) => s.name === 'message' && !isCarbon(s)).map((s) => s.attrs.id as string | undefined);
}
