// XEP-0160 Best Practices for Handling Offline Messages, with XEP-0203 Delayed Delivery stamps:
// a chat or normal message that no resource can take (RFC 6121 §8.5.2.1.1) is kept in the
// account's `offline` archive and handed, in order and once, to the next resource that sends
// available presence with a non-negative priority.
import { randomUUID } from 'node:crypto';
import { cloneElement, defineModule, Jid, KeyedLock, NS, StanzaError, xml, z } from '../../lib/module-api.js';
import type { Element, MessageStanza, SessionHandle } from '../../lib/module-api.js';
import { parseStored } from './stored.js';

/** XEP-0160 §4: the disco feature of a server that stores offline messages. */
export const NS_MSGOFFLINE = 'msgoffline';
const NS_CHATSTATES = 'http://jabber.org/protocol/chatstates';

/** Items per page when delivering: bounds memory and the time one query holds the event loop. */
const PAGE = 100;

/**
 * Decides whether a session syncs from the message archive (XEP-0313) and so needs no offline
 * push. Set by the archive module through the API; see `skipWhenArchived`.
 */
export type ArchivedCheck = (session: SessionHandle) => boolean | Promise<boolean>;

export interface OfflineApi {
  /** Installs the archive module's check (one at a time); returns a function that removes it. */
  setArchivedCheck(check: ArchivedCheck): () => void;
  /** Stored messages of an account (for admin tools and tests). */
  count(user: string): Promise<number>;
}

/** XEP-0203 / XEP-0082: UTC with milliseconds, so clients can order messages stored in one second. */
function stamp(ms: number): string {
  return new Date(ms).toISOString();
}

/** Children that carry nothing worth keeping once the moment has passed (XEP-0160 §3, XEP-0334). */
function isTransient(child: Element): boolean {
  const ns = child.attrs.xmlns as string | undefined;
  if (ns === NS_CHATSTATES || ns === NS.hints || ns === NS.sid || ns === NS.delay) return true;
  return (ns === undefined || ns === NS.client) && child.name === 'thread';
}

/**
 * What to do with a message nobody can take now:
 * - `store`: it carries content;
 * - `drop`: only chat states and such (XEP-0160 §3: chat-state-only messages SHOULD NOT be stored;
 *   bouncing a typing notification would only make the sender's client show an error);
 * - `refuse`: the sender asked for no storage (XEP-0334 §4 `<no-store/>`): the core bounces it
 *   with service-unavailable (RFC 6121 §8.5.2.1.1).
 */
export function offlineVerdict(m: MessageStanza): 'store' | 'drop' | 'refuse' | 'skip' {
  // XEP-0160 §3: headline and groupchat are not stored; errors never are here.
  if (m.type !== 'normal' && m.type !== 'chat') return 'skip';
  const children = m.el.getChildElements();
  const hint = (name: string) => children.some((c) => c.name === name && c.attrs.xmlns === NS.hints);
  const content = children.some((c) => !isTransient(c));
  // XEP-0334 §4: <store/> asks for storage even of a message without the usual content.
  if (!content && !hint('store')) return 'drop';
  if (hint('no-store')) return 'refuse';
  // <no-permanent-store/> still allows temporary storage "if the recipient is offline at the time
  // of sending" (XEP-0334 §3), which is what offline storage is.
  return 'store';
}

/** The error reply to a message (RFC 6120 §8.3.1): its payload plus the error. */
function errorReply(m: MessageStanza, err: StanzaError): Element {
  const reply = xml('message', { type: 'error', id: m.id, from: m.to?.toString(), to: m.from.toString() });
  for (const child of m.el.getChildElements()) if (child.name !== 'error') reply.cnode(cloneElement(child));
  reply.cnode(err.toElement());
  return reply;
}

export default defineModule({
  name: 'offline',
  xeps: [
    { xep: 160, version: '1.0.1', status: 'complete' },
    { xep: 203, version: '2.0', status: 'complete' },
  ],
  features: { host: [NS_MSGOFFLINE] },
  defaultEnabled: true,
  config: z.strictObject({
    /** Messages kept per account; beyond it new ones are refused with resource-constraint. */
    maxMessages: z.number().int().min(1).max(100_000).default(1000),
    /**
     * When the archive module says a session syncs from the archive (XEP-0313), its offline
     * messages are deleted instead of pushed. Without an archive module nothing is skipped.
     */
    skipWhenArchived: z.boolean().default(true),
  }),
  setup(ctx): OfflineApi {
    const store = ctx.archive('offline');
    const lock = new KeyedLock();
    let archived: ArchivedCheck | undefined;

    ctx.on('message/undeliverable', async ({ stanza }) => {
      const to = stanza.to ?? stanza.from.bare();
      if (to.local === undefined || to.domain !== ctx.host) return;
      const verdict = offlineVerdict(stanza);
      if (verdict === 'skip' || verdict === 'refuse') return;
      if (verdict === 'drop') return 'claimed';
      const user = to.local;
      if ((await store.count(ctx.host, user)) >= ctx.config.maxMessages) {
        // XEP-0160 §2 suggests service-unavailable for a full queue; resource-constraint (as
        // ejabberd sends) tells the sender why, and that trying later may work.
        const err = StanzaError.resourceConstraint('the recipient\'s offline message queue is full');
        await ctx.send(errorReply({ ...stanza, to }, err));
        return 'claimed';
      }
      const now = Date.now();
      const copy = cloneElement(stanza.el);
      // XEP-0203 §5: a delay claiming to come from this server was forged by the sender.
      for (const d of copy.getChildren('delay', NS.delay)) if (d.attrs.from === ctx.host) copy.remove(d);
      copy.cnode(xml('delay', { xmlns: NS.delay, from: ctx.host, stamp: stamp(now) }, 'Offline Storage'));
      await store.append(ctx.host, user, { id: randomUUID(), when: now, with: stanza.from.bare().toString(), value: copy.toString() });
      return 'claimed';
    });

    /** Still bound: a session that closed mid-delivery keeps the rest stored. */
    const bound = (session: SessionHandle) => ctx.sessions.get(session.jid) === session;

    async function deliver(session: SessionHandle): Promise<void> {
      const user = session.jid.local!;
      const skip = ctx.config.skipWhenArchived && archived !== undefined && (await archived(session));
      // XEP-0160: each message goes to one resource, once; two sessions becoming available at the
      // same moment take turns on this account's queue.
      await lock.run(user, async () => {
        for (;;) {
          if (!bound(session)) return;
          const page = await store.query(ctx.host, user, { limit: PAGE });
          if (page.items.length === 0) return;
          if (!skip) {
            for (const item of page.items) {
              const el = parseStored(item.value);
              if (el) session.send(el);
              else ctx.log.warn({ user, id: item.id }, 'dropped an offline message that no longer parses');
            }
          }
          await store.delete(ctx.host, user, { ids: page.items.map((i) => i.id) });
          if (page.complete) return;
        }
      });
    }

    ctx.on('presence/initial', async ({ session }) => {
      // XEP-0160 §2 / RFC 6121 §8.5.2.1.1: only a resource with non-negative priority gets them.
      if (session.host !== ctx.host || session.jid.local === undefined || session.priority < 0) return;
      await deliver(session);
    });

    ctx.on('account/deleted', async ({ host, user }) => {
      if (host === ctx.host) await store.deleteAccount(host, user);
    });

    return {
      setArchivedCheck(check) {
        if (archived !== undefined) throw new Error('offline: an archived-session check is already installed');
        archived = check;
        return () => { if (archived === check) archived = undefined; };
      },
      count: (user) => store.count(ctx.host, Jid.of(user, ctx.host).local!),
    };
  },
});
