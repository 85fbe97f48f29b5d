// XEP-0049 Private XML Storage: an account keeps XML fragments, one per (element, namespace),
// that only it can read or write (XEP-0048 bookmarks, Gajim's roster notes, client settings).
import { cloneElement, defineModule, NS, StanzaError, xml, z } from '../../lib/module-api.js';
import type { Element } from '../../lib/module-api.js';
import type { PrivateStoredListener, PrivateXmlApi } from './api.js';
import { parseStored } from './stored.js';

export type { PrivateStored, PrivateStoredListener, PrivateXmlApi } from './api.js';

/**
 * Namespaces a fragment may not use: the stream's own content namespaces and this protocol's
 * (XEP-0049 §2.3 allows refusing reserved namespaces with not-acceptable).
 */
const RESERVED = new Set<string>([NS.client, NS.server, NS.privateXml]);

/** Storage key: Clark notation, `{namespace}name`. */
function keyOf(el: Element): string {
  return clark(el.attrs.xmlns as string, el.name);
}

function clark(ns: string, name: string): string {
  return `{${ns}}${name}`;
}

/** XEP-0049 §2.3: each fragment must be in a namespace of its own. */
function checkFragment(el: Element): void {
  const ns = el.attrs.xmlns as string | undefined;
  if (ns === undefined || ns === '') throw StanzaError.notAcceptable('each stored element needs a namespace of its own');
  if (RESERVED.has(ns)) throw StanzaError.notAcceptable(`the namespace ${ns} is reserved`);
}

function isEmpty(el: Element): boolean {
  return el.getChildElements().length === 0 && el.getText().trim() === '' && Object.keys(el.attrs).every((a) => a === 'xmlns');
}

export default defineModule({
  name: 'private',
  xeps: [{ xep: 49, version: '1.2', status: 'complete' }],
  features: { account: [NS.privateXml] },
  defaultEnabled: true,
  config: z.strictObject({
    /** Bytes of XML one account may keep, over all its fragments. */
    maxSize: z.number().int().min(1024).max(64 * 1024 * 1024).default(256 * 1024),
    /** Distinct (element, namespace) fragments per account. */
    maxItems: z.number().int().min(1).max(10_000).default(100),
  }),
  setup(ctx): PrivateXmlApi {
    const store = ctx.keyval('private');
    const listeners = new Map<string, Set<PrivateStoredListener>>();

    async function load(user: string, key: string): Promise<Element | undefined> {
      const raw = await store.get(ctx.host, user, key);
      if (raw === undefined) return undefined;
      const el = parseStored(raw);
      if (!el) ctx.log.warn({ user, key }, 'stored private XML no longer parses; treating it as absent');
      return el;
    }

    /** Stores fragments (already checked) within the account's limits; a StanzaError when over them. */
    async function storeWithinLimits(user: string, fragments: readonly Element[]): Promise<StanzaError | undefined> {
      // The account's usage after this set, bounded by maxItems reads of small documents.
      const updates = new Map(fragments.map((el) => [keyOf(el), isEmpty(el) ? undefined : el.toString()]));
      const keys = new Set(await store.keys(ctx.host, user));
      for (const [k, v] of updates) if (v === undefined) keys.delete(k); else keys.add(k);
      if (keys.size > ctx.config.maxItems) {
        return StanzaError.notAcceptable(`at most ${ctx.config.maxItems} different elements can be stored`);
      }
      let size = 0;
      for (const k of keys) {
        const v = updates.has(k) ? updates.get(k) : await store.get(ctx.host, user, k);
        size += Buffer.byteLength(v ?? '', 'utf8');
      }
      if (size > ctx.config.maxSize) return StanzaError.notAcceptable(`private storage is limited to ${ctx.config.maxSize} bytes`);

      for (const [k, v] of updates) {
        // An empty element stores nothing: a get returns it empty either way.
        if (v === undefined) await store.delete(ctx.host, user, k);
        else await store.set(ctx.host, user, k, v);
      }
      return undefined;
    }

    function tell(user: string, fragment: Element): void {
      for (const listener of listeners.get(keyOf(fragment)) ?? []) {
        // Listeners do their own work (conversions); a failure is theirs, not the client's set.
        Promise.resolve()
          .then(() => listener({ user, fragment: cloneElement(fragment) }))
          .catch((err: unknown) => ctx.log.error({ err, user, key: keyOf(fragment) }, 'private XML listener failed'));
      }
    }

    ctx.iq.get({ ns: NS.privateXml, name: 'query', to: ['self'] }, async (iq) => {
      const wanted = iq.payload!.getChildElements();
      // XEP-0049 §2.3: one namespace per get; a query without one is not-acceptable.
      if (wanted.length === 0) return StanzaError.notAcceptable('name the element to retrieve');
      if (wanted.length > 1) return StanzaError.badRequest('retrieve one element per request');
      const [el] = wanted;
      checkFragment(el);
      const stored = await load(iq.to!.local!, keyOf(el));
      // Nothing stored: the request's element comes back empty.
      return xml('query', { xmlns: NS.privateXml }, stored ?? xml(el.name, { xmlns: el.attrs.xmlns as string }));
    });

    ctx.iq.set({ ns: NS.privateXml, name: 'query', to: ['self'] }, async (iq) => {
      const user = iq.to!.local!;
      const fragments = iq.payload!.getChildElements();
      if (fragments.length === 0) return StanzaError.notAcceptable('include at least one element to store');
      for (const el of fragments) checkFragment(el);
      const refused = await storeWithinLimits(user, fragments);
      if (refused) return refused;
      for (const el of fragments) tell(user, el);
      return undefined;
    });

    // XEP-0049 §2.3: another user's private data is forbidden (to get and to set).
    const forbidden = () => StanzaError.forbidden('private XML belongs to its account alone');
    ctx.iq.get({ ns: NS.privateXml, name: 'query', to: ['bare'] }, forbidden);
    ctx.iq.set({ ns: NS.privateXml, name: 'query', to: ['bare'] }, forbidden);

    ctx.on('account/deleted', async ({ host, user }) => {
      if (host === ctx.host) await store.deleteAccount(host, user);
    });

    return {
      get: (user, name, ns) => load(user, clark(ns, name)),
      async set(user, fragment) {
        try {
          checkFragment(fragment);
        } catch (err) {
          return { stored: false, reason: (err as StanzaError).text ?? 'not-acceptable' };
        }
        const refused = await storeWithinLimits(user, [fragment]);
        return refused ? { stored: false, reason: refused.text ?? refused.condition } : { stored: true };
      },
      onStored(name, ns, listener) {
        const key = clark(ns, name);
        let set = listeners.get(key);
        if (!set) listeners.set(key, (set = new Set()));
        set.add(listener);
        return () => {
          set.delete(listener);
          if (set.size === 0) listeners.delete(key);
        };
      },
    };
  },
});
