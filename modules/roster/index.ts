// RFC 6121 §2 rosters, with XEP-0237 roster versioning. Subscription state lives in the items
// but changes only through presence (modules/presence), which uses the API returned here.
import { randomBytes } from 'node:crypto';
import { defineModule, KeyedLock, NS, StanzaError, xml, z } from '../../lib/module-api.js';
import type { Element, Jid, SessionHandle } from '../../lib/module-api.js';
import { emptyItem, itemElement, parseRosterSet, removalElement, sameItem, type RosterItem } from './items.js';
import { formatVersion, parseVersion, rosterMigrations, RosterStore } from './store.js';

export * from './items.js';

export interface RosterChange {
  before: RosterItem | undefined;
  after: RosterItem | undefined;
  changed: boolean;
}

/** Called after the user removed an item (RFC 6121 §2.5.2); the presence module cancels the subscriptions. */
export type RemovalHandler = (user: Jid, item: RosterItem) => Promise<void>;

export interface RosterApi {
  get(user: Jid, contact: Jid): Promise<RosterItem | undefined>;
  items(user: Jid): Promise<RosterItem[]>;
  /**
   * Runs `fn` holding the account's lock (re-entrant, per process): callers that read more
   * state than one item (presence reads its pending requests too) use it around `update`.
   */
  locked<T>(user: Jid, fn: () => Promise<T>): Promise<T>;
  /**
   * Atomically changes one item: `change` gets the current item and returns the new one, or
   * undefined to keep it. Creating an item beyond `maxItems` throws not-allowed. When the item
   * changed, the roster version moves on and every interested resource gets a push.
   */
  update(user: Jid, contact: Jid, change: (current: RosterItem | undefined) => RosterItem | undefined): Promise<RosterChange>;
  /** Sends a roster push (RFC 6121 §2.1.6) of an item, or of its removal, to the interested resources. */
  push(user: Jid, item: RosterItem | { removed: Jid }, ver: string, only?: SessionHandle): void;
  onRemoved(handler: RemovalHandler): void;
}

const limitsSchema = z.number().int().positive();

const roster = defineModule({
  name: 'roster',
  xeps: [{ xep: 237, version: '1.3', status: 'complete' }],
  defaultEnabled: true,
  config: z.strictObject({
    /** Items per roster; a roster set beyond it is refused with not-allowed. */
    maxItems: limitsSchema.default(1000),
    /** Bytes of an item's name (RFC 6121 §2.3.3: longer is not-acceptable). */
    maxNameLength: limitsSchema.default(1023),
    /** Bytes of a group name (RFC 6121 §2.3.3: longer is not-acceptable). */
    maxGroupNameLength: limitsSchema.default(1023),
  }),
  migrations: rosterMigrations,
  setup(ctx): RosterApi {
    const store = new RosterStore(ctx.storage);
    const lock = new KeyedLock();
    const removalHandlers: RemovalHandler[] = [];
    const key = (user: Jid) => user.bare().toString();
    const local = (user: Jid) => user.local ?? '';

    function pushElement(user: Jid, to: Jid, child: Element, ver: string): Element {
      // RFC 6121 §2.1.6: a push comes from the user's bare JID (clients ignore any other sender).
      return xml(
        'iq',
        { type: 'set', id: `push-${randomBytes(6).toString('hex')}`, from: user.bare().toString(), to: to.toString() },
        xml('query', { xmlns: NS.roster, ver }, child),
      );
    }

    function push(user: Jid, item: RosterItem | { removed: Jid }, ver: string, only?: SessionHandle): void {
      const targets = only ? [only] : ctx.sessions.of(user.bare()).filter((s) => s.interested);
      for (const s of targets) {
        const child = 'removed' in item ? removalElement(item.removed) : itemElement(item);
        s.send(pushElement(user, s.jid, child, ver));
      }
    }

    async function update(user: Jid, contact: Jid, change: (current: RosterItem | undefined) => RosterItem | undefined): Promise<RosterChange> {
      return lock.run(key(user), async () => {
        const m = await store.mutate(user.domain, local(user), contact.bare().toString(), async (current, count) => {
          const next = change(current);
          if (next === undefined || (current && sameItem(current, next))) return undefined;
          if (!current && (await count()) >= ctx.config.maxItems) {
            // RFC 6121 §2.3.3 leaves roster size to the server; not-allowed is what it names for refusals.
            throw StanzaError.notAllowed(`the roster is full (${ctx.config.maxItems} items)`);
          }
          return next;
        });
        if (m.ver === undefined) return { before: m.before, after: m.before, changed: false };
        push(user, m.after ?? { removed: contact.bare() }, m.ver);
        return { before: m.before, after: m.after, changed: true };
      });
    }

    async function remove(user: Jid, contact: Jid): Promise<RosterItem> {
      const removed = await lock.run(key(user), async () => {
        const m = await store.mutate(user.domain, local(user), contact.bare().toString(), (current) => {
          // RFC 6121 §2.5.3: removing an item that is not there.
          if (!current) throw StanzaError.itemNotFound('no such roster item');
          return null;
        });
        push(user, { removed: contact.bare() }, m.ver!);
        return m.before!;
      });
      // Outside the lock: the handlers route stanzas that may change other accounts.
      for (const h of removalHandlers) {
        try {
          await h(user.bare(), removed);
        } catch (err) {
          ctx.log.error({ err }, 'roster removal handler failed');
        }
      }
      return removed;
    }

    /** XEP-0237 interim pushes: each item changed since the client's version, after the empty result. */
    async function sendInterimPushes(session: SessionHandle, since: number): Promise<void> {
      const user = session.jid.bare();
      await lock.run(key(user), async () => {
        if (ctx.sessions.get(session.jid) !== session) return;
        const current = await store.version(user.domain, local(user));
        const changes = await store.changesSince(user.domain, local(user), since, current);
        if (!changes) {
          // The changelog moved on meanwhile: the client's cache cannot be patched; it must refetch.
          ctx.log.warn({ user: user.toString() }, 'roster changelog overtaken while sending interim pushes');
          return;
        }
        for (const c of changes) {
          const item = await store.item(user.domain, local(user), c.contact);
          if (item) push(user, item, c.ver, session);
          else session.send(pushElement(user, session.jid, xml('item', { jid: c.contact, subscription: 'remove' }), c.ver));
        }
      });
    }

    ctx.streamFeature({ stage: 'post-auth', build: () => xml('ver', { xmlns: NS.rosterVer }) });

    // RFC 6121 §2.2: roster get.
    ctx.iq.get({ ns: NS.roster, name: 'query', to: ['self'] }, async (iq, origin) => {
      const user = iq.from.bare();
      const session = origin.session;
      // RFC 6121 §2.1.6: a resource that asked for the roster is interested in pushes.
      session?.markInterested();
      const clientVer = iq.payload!.attrs.ver as string | undefined;
      const current = await store.version(user.domain, local(user));
      const ver = formatVersion(current);
      if (clientVer !== undefined && clientVer !== '') {
        // XEP-0237 §2.4: unchanged → an empty result.
        if (clientVer === ver) return undefined;
        const since = parseVersion(clientVer, current);
        if (since !== undefined && session) {
          const changes = await store.changesSince(user.domain, local(user), since, current);
          const items = await store.items(user.domain, local(user));
          // Pushes only when they cost less than the full roster.
          if (changes && changes.length < items.length) {
            // After the router has written the empty result (XEP-0237 §2.4 order).
            const push = () => {
              sendInterimPushes(session, since).catch((err: unknown) => ctx.log.error({ err }, 'roster interim pushes failed'));
            };
            if (origin.afterReply) origin.afterReply(push);
            else ctx.setTimeout(push, 0);
            return undefined;
          }
          return xml('query', { xmlns: NS.roster, ver }, items.map(itemElement));
        }
      }
      const items = await store.items(user.domain, local(user));
      return xml('query', { xmlns: NS.roster, ver }, items.map(itemElement));
    });

    // RFC 6121 §2.3 / §2.5: roster set (add, update, remove).
    ctx.iq.set({ ns: NS.roster, name: 'query', to: ['self'] }, async (iq) => {
      const user = iq.from.bare();
      const request = parseRosterSet(iq.payload!, ctx.config);
      if (request.jid.equals(user)) throw StanzaError.notAllowed('your own JID cannot be a roster item');
      if (request.kind === 'remove') {
        await remove(user, request.jid);
        return undefined;
      }
      await update(user, request.jid, (current) => ({
        ...(current ?? emptyItem(request.jid)),
        // RFC 6121 §2.1.2.5 / §2.1.2.2: subscription, ask and approved stay as the server has them.
        name: request.name,
        groups: request.groups,
      }));
      return undefined;
    });

    // RFC 6121 §2.3.3: only the account itself may read or change its roster.
    const forbidden = () => StanzaError.forbidden('a roster belongs to its account only');
    ctx.iq.get({ ns: NS.roster, name: 'query', to: ['bare'] }, forbidden);
    ctx.iq.set({ ns: NS.roster, name: 'query', to: ['bare'] }, forbidden);

    ctx.on('account/deleted', async ({ host, user }) => {
      if (host !== ctx.host) return;
      await store.deleteAccount(host, user);
    });

    return {
      get: (user, contact) => store.item(user.domain, local(user), contact.bare().toString()),
      items: (user) => store.items(user.domain, local(user)),
      locked: (user, fn) => lock.run(key(user), fn),
      update,
      push,
      onRemoved(handler) {
        removalHandlers.push(handler);
      },
    };
  },
});

export default roster;
