// XEP-0313 Message Archive Management for user archives: every conversation message an account
// sends or receives is stored once, in its own archive, under an unpredictable id that delivered
// messages carry as a XEP-0359 stanza-id. With XEP-0441 preferences, XEP-0334 storage hints,
// XEP-0424 retraction tombstones and a retention limit.
import { randomBytes, randomUUID } from 'node:crypto';
import { cloneElement, defineModule, Jid, KeyedLock, NS, parseXml, StanzaError, xml, z } from '../../lib/module-api.js';
import type { ArchiveItem, Element, IqHandler, IqStanza, MessageStanza } from '../../lib/module-api.js';
import roster from '../roster/index.js';
import { ArchiveQuery, peerMatcher } from './paging.js';
import { isStorable, retention, retractOf, stripOwnStanzaIds } from './policy.js';
import { decodePrefs, parsePrefs, prefsElement, shouldArchive, type Prefs } from './prefs.js';
import { PrefsCache } from './prefs-cache.js';
import { formatDateTime, NS_MAM_EXTENDED, parseMamQuery, queryForm } from './query.js';

export { NS_MAM_EXTENDED } from './query.js';

export interface MamApi {
  /**
   * The archive id under which the sender's own archive stored a message a local client sent
   * (during and after `message/outbound`); the carbons module puts it in sent copies.
   */
  outgoingId(message: Element): string | undefined;
  /** Deletes every item older than the retention period; returns how many messages went. */
  purgeExpired(now?: number): Promise<number>;
  /** Archived messages of an account (for admin tools and tests). */
  count(user: string): Promise<number>;
}

const STORE = 'mam';
const PREFS_KEY = 'prefs';
/** Results per page when the client does not say (XEP-0313 §4.3.1 leaves it to the server). */
const DEFAULT_PAGE = 20;
const PURGE_EVERY_MS = 60 * 60_000;
const FIRST_PURGE_MS = 60_000;
/**
 * A retraction looks for the message it names among this many newest messages of the
 * conversation; an older one stays as it is (the retraction is archived all the same). Finding
 * any message by id would take an index: a second write for every archived message.
 */
const RETRACT_WINDOW = 1000;
const RETRACT_PAGE = 100;
/**
 * Archive writes that may wait for the disk at once, across this host's accounts; beyond, a
 * message waits for its own write before it goes on (back-pressure instead of a growing queue).
 */
const MAX_IN_FLIGHT = 10_000;

function parseStored(value: string): Element | undefined {
  try {
    return parseXml(value);
  } catch {
    return undefined;
  }
}

function originId(el: Element): Element | undefined {
  return el.getChildElements().find((c) => c.name === 'origin-id' && c.attrs.xmlns === NS.sid);
}

const mam = defineModule({
  name: 'mam',
  xeps: [
    { xep: 313, version: '1.1.3', status: 'complete', note: 'user archives (groupchat messages are left to the rooms\' archives)' },
    { xep: 441, version: '0.2.0', status: 'complete' },
    { xep: 359, version: '0.7.0', status: 'complete' },
    { xep: 334, version: '1.0.0', status: 'partial', note: 'store, no-store, no-permanent-store (no-copy: carbons module)' },
    { xep: 424, version: '0.4.2', status: 'partial', note: 'retractions are archived and replace the original with a tombstone' },
  ],
  // XEP-0313 §7: on the archiving JIDs, the accounts' bare JIDs. XEP-0424 §2, §4.
  features: { account: [NS.mam, NS_MAM_EXTENDED, NS.sid, NS.retract, `${NS.retract}#tombstone`] },
  defaultEnabled: true,
  config: z.strictObject({
    /** Largest page a query gets, whatever <max/> it asks for (XEP-0313 §4.3.1). */
    maxPageSize: z.number().int().min(1).max(1000).default(100),
    /** How long messages stay in archives (`365d`, `8w`), or `never` to keep them forever. */
    retention: retention(),
  }),
  // default='roster' preferences ask the roster (XEP-0441 §2.1.1).
  optional: [roster],
  setup(ctx): MamApi {
    const store = ctx.archive(STORE);
    const prefsStore = ctx.keyval(STORE);
    const rosterApi = ctx.deps.has(roster) ? ctx.deps.get(roster) : undefined;
    const lock = new KeyedLock();
    const prefsCache = new PrefsCache();
    /** Appends not yet committed. */
    let inFlight = 0;
    /** Messages seen on message/outbound, with their id in the sender's archive (undefined: not archived). */
    const outbound = new WeakMap<Element, string | undefined>();

    const ourDomains = () => new Set([...ctx.server.hosts, ...ctx.services()]);
    const stripIds = (m: MessageStanza) => {
      if (m.el.getChild('stanza-id', NS.sid) === undefined) return;
      stripOwnStanzaIds(m.el, m.from, ourDomains(), new Set(ctx.services()));
    };

    async function prefsOf(user: Jid): Promise<Prefs> {
      const cached = prefsCache.get(user.local!);
      if (cached) return cached;
      const mark = prefsCache.mark();
      const prefs = decodePrefs(await prefsStore.get(ctx.host, user.local!, PREFS_KEY));
      prefsCache.fill(user.local!, prefs, mark);
      return prefs;
    }

    const inRoster = (user: Jid) => async (contact: Jid) =>
      rosterApi !== undefined && (await rosterApi.get(user, contact)) !== undefined;

    /**
     * The archived message a retraction from `sender` names: by its archive id (a stanza-id), or
     * by its message id or XEP-0359 origin-id (XEP-0424 0.4.2 and 0.4.0), the newest such in the
     * conversation. Only a message from the same bare JID (§5) in the same conversation qualifies.
     */
    async function retracted(account: string, peer: Jid, sender: Jid, target: string): Promise<{ item: ArchiveItem; original: Element } | undefined> {
      const qualifies = (item: ArchiveItem): Element | undefined => {
        if (item.with !== peer.toString()) return undefined;
        const el = parseStored(item.value);
        if (!el || !Jid.tryParse(el.attrs.from as string | undefined)?.bare().equals(sender)) return undefined;
        // A retraction is never retracted itself (it must stay, XEP-0424 §5), nor a tombstone again.
        if (retractOf(el) || el.getChild('retracted', NS.retract)) return undefined;
        return el;
      };
      const direct = (await store.query(ctx.host, account, { ids: [target], limit: 1 })).items[0];
      const byArchiveId = direct && qualifies(direct);
      if (direct && byArchiveId) return { item: direct, original: byArchiveId };
      let before: string | undefined;
      for (let read = 0; read < RETRACT_WINDOW;) {
        const page = await store.query(ctx.host, account, { with: peer.toString(), before, limit: RETRACT_PAGE, reverse: true });
        for (const item of page.items) {
          const el = qualifies(item);
          if (el && (el.attrs.id === target || originId(el)?.attrs.id === target)) return { item, original: el };
        }
        read += page.items.length;
        if (page.complete || page.items.length === 0) return undefined;
        before = page.items[page.items.length - 1]!.id;
      }
      return undefined;
    }

    /**
     * XEP-0424: replaces the retracted message's content with a tombstone, keeping its id, time
     * and peer (XEP-0313 §3.2). Only for a retraction from the original sender's bare JID (§5), in
     * the same conversation.
     */
    async function tombstone(user: Jid, peer: Jid, sender: Jid, retraction: Element, now: number): Promise<void> {
      const target = retractOf(retraction)?.attrs.id as string | undefined;
      if (!target) return;
      const account = user.local!;
      const found = await retracted(account, peer, sender, target);
      if (!found) return;
      const { item, original } = found;
      const origin = originId(original);
      const tomb = xml(
        'message',
        { from: original.attrs.from, to: original.attrs.to, type: original.attrs.type, id: original.attrs.id },
        xml('retracted', { xmlns: NS.retract, id: retraction.attrs.id as string | undefined, stamp: formatDateTime(now) }),
        origin ? cloneElement(origin) : null,
      );
      // In place, in one statement: id, time, peer and archive order stay (XEP-0313 §3.2).
      await store.replace(ctx.host, account, item.id, tomb.toString());
    }

    /** Whether a storable message goes into `user`'s archive (XEP-0441 §2.3); no promise when the answer is known. */
    function wanted(user: Jid, target: Jid): boolean | Promise<boolean> {
      const cached = prefsCache.get(user.local!);
      if (cached === undefined) return prefsOf(user).then((p) => shouldArchive(p, target, inRoster(user)));
      if (cached.default === 'always' && cached.never.length === 0) return true;
      return shouldArchive(cached, target, inRoster(user));
    }

    /**
     * Stores a message in `user`'s archive without waiting for the disk: the id is made here, so
     * the delivered message carries it at once, and the write joins the next group commit. The
     * session does not acknowledge the stanza (XEP-0198) before that commit (C2sStream waits for
     * `Database.durable()`), so what a client was told is handled survives a crash as before.
     */
    function append(user: Jid, peer: Jid, m: MessageStanza, now: number): { id: string; written: Promise<void> } {
      // XEP-0313 §3: unpredictable and never reused.
      const id = randomUUID();
      const item: ArchiveItem = { id, when: now, with: peer.toString(), value: m.el.toString() };
      const written = store.append(ctx.host, user.local!, item);
      inFlight++;
      written
        .catch((err: unknown) => ctx.log.error({ err, user: user.local, id }, 'archiving a message failed'))
        .finally(() => { inFlight--; });
      return { id, written };
    }

    /**
     * Archives a message in `user`'s archive when it belongs there; applies a retraction it
     * carries. `target` is the JID preferences are matched against (XEP-0441 §2.3). Returns the
     * archive id, or undefined when not stored.
     */
    async function record(user: Jid, peer: Jid, sender: Jid, m: MessageStanza, target: Jid): Promise<string | undefined> {
      const storable = isStorable(m);
      const retracts = (m.type === 'chat' || m.type === 'normal') && retractOf(m.el) !== undefined;
      if (!storable && !retracts) return undefined;
      const key = user.toString();
      // A retraction rewrites archived items in place: it, and whatever comes for the account
      // while it runs, go through the account's lock. A plain append needs none.
      if (!retracts && !lock.busy(key)) {
        let archive = wanted(user, target);
        if (typeof archive !== 'boolean') archive = await archive;
        if (!archive) return undefined;
        const { id, written } = append(user, peer, m, Date.now());
        // Bounded: past this many writes waiting for the disk, the sender waits for its own.
        if (inFlight > MAX_IN_FLIGHT) await written.catch(() => undefined);
        return id;
      }
      return lock.run(key, async () => {
        const now = Date.now();
        let id: string | undefined;
        if (storable && (await wanted(user, target))) {
          const appended = append(user, peer, m, now);
          id = appended.id;
          await appended.written;
        }
        // The user asked for the retraction even when their preferences keep it out of the archive.
        if (retracts) await tombstone(user, peer, sender, m.el, now);
        return id;
      });
    }

    // Outgoing: the sender's archive, with the recipient as peer (XEP-0313 §3). Before carbons,
    // whose sent copies carry the archive id.
    ctx.on('message/outbound', async ({ session, stanza }) => {
      const user = session.jid.bare();
      stripIds(stanza);
      const to = stanza.to ?? user;
      outbound.set(stanza.el, await record(user, to.bare(), user, stanza, to));
      return undefined;
    }, { before: ['carbons'] });

    // Incoming, whether or not a resource is online: the recipient's archive, and the delivered
    // message says where (XEP-0313 §3.5). After blocking: a refused message is not archived (§6.1).
    ctx.on('message/inbound', async ({ stanza }) => {
      const to = stanza.to;
      if (to === undefined || to.local === undefined || to.domain !== ctx.host) return undefined;
      const user = to.bare();
      stripIds(stanza);
      // A message to oneself went through message/outbound: stored once (XEP-0313 §6.1.1).
      const id = stanza.from.bare().equals(user) && outbound.has(stanza.el)
        ? outbound.get(stanza.el)
        : await record(user, stanza.from.bare(), stanza.from.bare(), stanza, stanza.from);
      if (id !== undefined) stanza.el.cnode(xml('stanza-id', { xmlns: NS.sid, by: user.toString(), id }));
      return undefined;
    }, { after: ['blocking'] });

    /** XEP-0313 §8.1: an archive is its account's alone. */
    function ownArchive(iq: IqStanza): Jid {
      const account = iq.to!.bare();
      if (!iq.from.bare().equals(account)) throw StanzaError.forbidden('only the account itself may use its archive');
      return account;
    }

    const query: IqHandler = async (iq, origin) => {
      const account = ownArchive(iq);
      const q = parseMamQuery(iq.payload!);
      const limit = Math.min(q.max ?? DEFAULT_PAGE, ctx.config.maxPageSize);
      const match = q.with?.resource !== undefined
        ? peerMatcher(q.with, (value) => {
          const el = parseStored(value);
          if (!el) return undefined;
          return { from: Jid.tryParse(el.attrs.from as string | undefined), to: Jid.tryParse(el.attrs.to as string | undefined) };
        })
        : undefined;
      const page = await new ArchiveQuery(store, ctx.host, account.local!).run(q, limit, match);

      // §4.2: each result is a message to the querying resource, before the IQ result.
      const results = q.flip ? [...page.items].reverse() : page.items;
      // Result message ids need only be unique: one random prefix a query, not a CSPRNG call a message.
      const idPrefix = randomBytes(6).toString('hex');
      let n = 0;
      for (const item of results) {
        const original = parseStored(item.value);
        if (original) original.attrs.xmlns = NS.client;
        else ctx.log.warn({ user: account.local, id: item.id }, 'archived message no longer parses; sent without it');
        const result = xml(
          'message',
          { to: iq.from.toString(), from: account.toString(), id: `${idPrefix}-${n++}` },
          xml(
            'result',
            { xmlns: NS.mam, queryid: q.queryId, id: item.id },
            xml('forwarded', { xmlns: NS.forward }, xml('delay', { xmlns: NS.delay, stamp: formatDateTime(item.when) }), original ?? null),
          ),
        );
        if (origin.session) origin.session.send(result);
        else await ctx.send(result);
      }

      // RSM first/last are the oldest and newest items of the page, however it was sent.
      const first = page.items[0];
      const last = page.items[page.items.length - 1];
      return xml(
        'fin',
        { xmlns: NS.mam, complete: page.complete ? 'true' : 'false' },
        xml(
          'set',
          { xmlns: NS.rsm },
          first ? xml('first', { index: page.index }, first.id) : null,
          last ? xml('last', {}, last.id) : null,
          page.count === undefined ? null : xml('count', {}, String(page.count)),
        ),
      );
    };
    ctx.iq.set({ ns: NS.mam, name: 'query', to: ['self', 'bare'] }, query);

    // §4.1.5: the form of supported fields.
    ctx.iq.get({ ns: NS.mam, name: 'query', to: ['self', 'bare'] }, (iq) => {
      ownArchive(iq);
      return xml('query', { xmlns: NS.mam }, queryForm());
    });

    // §5 (#extended): the first and last items of the archive.
    ctx.iq.get({ ns: NS.mam, name: 'metadata', to: ['self', 'bare'] }, async (iq) => {
      const user = ownArchive(iq).local!;
      const oldest = (await store.query(ctx.host, user, { limit: 1 })).items[0];
      const newest = (await store.query(ctx.host, user, { limit: 1, reverse: true })).items[0];
      if (!oldest || !newest) return xml('metadata', { xmlns: NS.mam });
      return xml(
        'metadata',
        { xmlns: NS.mam },
        xml('start', { id: oldest.id, timestamp: formatDateTime(oldest.when) }),
        xml('end', { id: newest.id, timestamp: formatDateTime(newest.when) }),
      );
    });

    // XEP-0441 §2.1: preferences.
    ctx.iq.get({ ns: NS.mam, name: 'prefs', to: ['self', 'bare'] }, async (iq) => prefsElement(await prefsOf(ownArchive(iq))));
    ctx.iq.set({ ns: NS.mam, name: 'prefs', to: ['self', 'bare'] }, async (iq) => {
      const user = ownArchive(iq);
      const prefs = parsePrefs(iq.payload!);
      // Unknown while the write runs: a message archived meanwhile reads what is stored.
      prefsCache.set(user.local!, undefined);
      try {
        await prefsStore.set(ctx.host, user.local!, PREFS_KEY, JSON.stringify(prefs));
        prefsCache.set(user.local!, prefs);
      } catch (err) {
        prefsCache.set(user.local!, undefined);
        throw err;
      }
      return prefsElement(prefs);
    });

    ctx.on('account/deleted', async ({ host, user }) => {
      if (host !== ctx.host) return;
      await store.deleteAccount(host, user);
      prefsCache.set(user, undefined);
      await prefsStore.deleteAccount(host, user);
      prefsCache.set(user, undefined);
    });

    // Retention (XEP-0313 §3.2: only the oldest messages go, so no holes): account by account,
    // each purge in the store's small batches.
    async function purgeExpired(now = Date.now()): Promise<number> {
      const retention = ctx.config.retention;
      if (retention === null) return 0;
      const cutoff = now - retention;
      let total = 0;
      for (const { user } of await ctx.accounts.list(ctx.host)) {
        total += await store.delete(ctx.host, user, { olderThan: cutoff });
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      return total;
    }
    let purging = false;
    const purgeInBackground = () => {
      if (purging) return;
      purging = true;
      purgeExpired()
        .then((n) => { if (n > 0) ctx.log.info({ messages: n }, 'purged expired archived messages'); })
        .catch((err: unknown) => ctx.log.error({ err }, 'archive purge failed'))
        .finally(() => { purging = false; });
    };
    if (ctx.config.retention !== null) {
      ctx.setTimeout(purgeInBackground, FIRST_PURGE_MS);
      ctx.setInterval(purgeInBackground, PURGE_EVERY_MS);
    }

    // The offline module's archived-session check (XEP-0313 §6.1.1's MAY) is not installed: it
    // deletes a session's offline messages unseen, and not every offline message is archived
    // (<no-permanent-store/>, preferences, content without a body or <store/>, retention).

    return {
      outgoingId: (el) => outbound.get(el),
      purgeExpired,
      count: (user) => store.count(ctx.host, Jid.of(user, ctx.host).local!),
    };
  },
});

export default mam;
