// Bookmarks, kept as one list whatever protocol a client speaks: XEP-0402 (PEP native
// bookmarks, the list itself), XEP-0048 over PEP (XEP-0223 `storage:bookmarks` node, one item)
// and XEP-0048 over XEP-0049 private XML. A change through any of them reaches the others, with
// notifications for PEP subscribers (XEP-0402 §5.3 `#compat` and `#compat-pep`; XEP-0411).
//
// Private XML belongs to modules/private: this module reads and writes the storage:bookmarks
// fragment through that module's API and hears from it of the sets clients make.
import { defineModule, Jid, KeyedLock, z } from '../../lib/module-api.js';
import type { Element } from '../../lib/module-api.js';
import disco from '../disco/index.js';
import pep, { type PubsubItem } from '../pep/index.js';
import privateXml from '../private/index.js';
import { bookmarksOfStorage, canonical, NS_BOOKMARKS, NS_LEGACY, storageOf, urlsOf, type Bookmark } from './convert.js';

export * from './convert.js';

export const NS_BOOKMARKS_COMPAT = `${NS_BOOKMARKS}#compat`;
export const NS_BOOKMARKS_COMPAT_PEP = `${NS_BOOKMARKS}#compat-pep`;
export const NS_BOOKMARKS_CONVERSION = 'urn:xmpp:bookmarks-conversion:0';

const SOURCE = 'bookmarks';
/** Accounts remembered as converted (XEP-0411 §4), the oldest forgotten first. */
export const CHECKED_ACCOUNTS = 100_000;

export default defineModule({
  name: 'bookmarks',
  xeps: [
    { xep: 402, version: '1.2.0', status: 'complete' },
    { xep: 48, version: '1.2', status: 'complete', note: 'over PEP (XEP-0223) and private XML (XEP-0049), kept in step with XEP-0402' },
    { xep: 411, version: '0.2.0', status: 'complete' },
  ],
  defaultEnabled: true,
  requires: [pep, disco],
  optional: [privateXml],
  config: z.strictObject({}),
  setup(ctx) {
    const pepApi = ctx.deps.get(pep);
    const privateApi = ctx.deps.has(privateXml) ? ctx.deps.get(privateXml) : undefined;
    const withPrivate = privateApi !== undefined;
    const lock = new KeyedLock();

    // XEP-0402 §3 and XEP-0223: private nodes, whatever the publishing client forgot to ask for.
    pepApi.setNodeDefaults(NS_BOOKMARKS, { accessModel: 'whitelist', maxItems: 'max', sendLastPublishedItem: 'never', persistItems: true });
    pepApi.setNodeDefaults(NS_LEGACY, { accessModel: 'whitelist', persistItems: true });

    ctx.onStop(ctx.deps.get(disco).addInfoProvider({ target: 'account' }, () => ({
      features: withPrivate ? [NS_BOOKMARKS_COMPAT, NS_BOOKMARKS_COMPAT_PEP, NS_BOOKMARKS_CONVERSION] : [NS_BOOKMARKS_COMPAT_PEP],
    })));

    const run = (owner: Jid, fn: () => Promise<void>) =>
      lock.run(owner.toString(), fn).catch((err: unknown) => ctx.log.error({ err, owner: owner.toString() }, 'bookmarks conversion failed'));

    // ------------------------------------------------------------------ the three copies

    function toBookmark(item: PubsubItem): Bookmark | undefined {
      const c = item.payload;
      if (!c || c.name !== 'conference' || c.attrs.xmlns !== NS_BOOKMARKS) return undefined;
      const jid = Jid.tryParse(item.id);
      return jid && jid.resource === undefined ? { jid: jid.toString(), conference: c } : undefined;
    }

    async function modern(owner: Jid): Promise<Bookmark[]> {
      return (await pepApi.items(owner, NS_BOOKMARKS)).map(toBookmark).filter((b): b is Bookmark => b !== undefined);
    }

    async function legacyPep(owner: Jid): Promise<Element | undefined> {
      const [item] = await pepApi.items(owner, NS_LEGACY, { max: 1 });
      const p = item?.payload;
      return p && p.name === 'storage' && p.attrs.xmlns === NS_LEGACY ? p : undefined;
    }

    async function legacyPrivate(owner: Jid): Promise<Element | undefined> {
      return privateApi?.get(owner.local!, 'storage', NS_LEGACY);
    }

    async function writePrivate(owner: Jid, storage: Element): Promise<void> {
      if (!privateApi) return;
      const saved = await privateApi.set(owner.local!, storage);
      if (!saved.stored) ctx.log.info({ owner: owner.toString(), reason: saved.reason }, 'bookmarks left out of private XML');
    }

    async function writeLegacyPep(owner: Jid, storage: Element): Promise<void> {
      if (canonical(await legacyPep(owner)) === canonical(storage)) return;
      // XEP-0048 §3.3 / XEP-0223: one item, private.
      await pepApi.publish(owner, NS_LEGACY, { id: 'current', payload: storage }, { source: SOURCE });
    }

    /** XEP-0402 changed: the XEP-0048 copies follow (keeping their URL bookmarks). */
    async function fromModern(owner: Jid): Promise<void> {
      const list = await modern(owner);
      const pepCopy = await legacyPep(owner);
      const privateCopy = await legacyPrivate(owner);
      await writeLegacyPep(owner, storageOf(list, urlsOf(pepCopy ?? privateCopy)));
      await writePrivate(owner, storageOf(list, urlsOf(privateCopy ?? pepCopy)));
    }

    /**
     * A XEP-0048 list was stored through PEP or private XML: XEP-0402 items follow, changed ones
     * only (XEP-0402 §5.3.2: no notifications for unchanged items), then the other legacy copy.
     */
    async function fromLegacy(owner: Jid, storage: Element, origin: 'pep' | 'private'): Promise<void> {
      const wanted = bookmarksOfStorage(storage);
      const current = new Map((await modern(owner)).map((b) => [b.jid, b]));
      for (const b of wanted) {
        const had = current.get(b.jid);
        current.delete(b.jid);
        if (had && canonical(had.conference) === canonical(b.conference)) continue;
        await pepApi.publish(owner, NS_BOOKMARKS, { id: b.jid, payload: b.conference }, { source: SOURCE });
      }
      if (current.size > 0) await pepApi.retract(owner, NS_BOOKMARKS, [...current.keys()], { notify: true, source: SOURCE });
      if (origin === 'private') await writeLegacyPep(owner, storage);
      else await writePrivate(owner, storage);
    }

    // ------------------------------------------------------------------ PEP events

    pepApi.on(NS_BOOKMARKS, {
      published: (e) => { if (e.source !== SOURCE) return run(e.svc, () => fromModern(e.svc)); },
      retracted: (e) => { if (e.source !== SOURCE) return run(e.svc, () => fromModern(e.svc)); },
      purged: (e) => { if (e.source !== SOURCE) return run(e.svc, () => fromModern(e.svc)); },
      deleted: (e) => { if (e.source !== SOURCE) return run(e.svc, () => fromModern(e.svc)); },
    });
    pepApi.on(NS_LEGACY, {
      published: (e) => {
        const p = e.item.payload;
        if (e.source === SOURCE || !p || p.name !== 'storage' || p.attrs.xmlns !== NS_LEGACY) return;
        return run(e.svc, () => fromLegacy(e.svc, p, 'pep'));
      },
    });

    // ------------------------------------------------------------------ private XML (XEP-0049)

    if (privateApi) {
      // Registered with the private module, so undone by hand when this module stops (live reload).
      ctx.onStop(privateApi.onStored('storage', NS_LEGACY, ({ user, fragment }) => {
        const owner = Jid.of(user, ctx.host);
        return run(owner, () => fromLegacy(owner, fragment, 'private'));
      }));
    }

    // XEP-0411 §4: bookmarks kept only by the older protocols become XEP-0402 items before a
    // client looks, so PEP-only clients see them. Once per account while this module runs: from
    // then on every legacy write reaches the handlers above (on whichever node takes it), so
    // later logins would find nothing to convert; three reads a login saved. What arrives behind
    // the module's back (an import into a running server) is converted at the next start.
    const checked = new Set<string>();
    ctx.on('session/bound', ({ session }) => {
      const owner = session.jid.bare();
      const key = owner.toString();
      if (checked.has(key)) return;
      void run(owner, async () => {
        if (checked.has(key)) return;
        if (!(await pepApi.node(owner, NS_BOOKMARKS))) {
          const old = (await legacyPep(owner)) ?? (await legacyPrivate(owner));
          if (old && old.getChildren('conference').length > 0) await fromLegacy(owner, old, (await legacyPep(owner)) ? 'pep' : 'private');
        }
        checked.add(key);
        if (checked.size > CHECKED_ACCOUNTS) checked.delete(checked.values().next().value!);
      });
    });
    ctx.on('account/deleted', ({ host, user }) => {
      if (host === ctx.host) checked.delete(Jid.of(user, host).toString());
    });

    // The PEP nodes go with the account (modules/pep); the private copy with modules/private.
  },
});
