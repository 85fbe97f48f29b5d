// XEP-0030 Service Discovery (with XEP-0128 extended info): disco#info and disco#items for the
// server and, on their behalf, for each account's bare JID. Features and identities come from the
// enabled modules' manifests; other modules add more (nodes, items, forms) through the API.
import { cloneElement, defineModule, NS, StanzaError, xml, z } from '../../lib/module-api.js';
import type { Element, IqStanza, ModuleManifest } from '../../lib/module-api.js';
import {
  ANY_NODE,
  type AnyNode,
  type DiscoApi,
  type DiscoInfo,
  type DiscoInfoContribution,
  type DiscoInfoIdentity,
  type DiscoInfoProvider,
  type DiscoItem,
  type DiscoItemsProvider,
  type DiscoQuery,
  type DiscoScope,
  type DiscoTarget,
} from './api.js';

export * from './api.js';

interface Registered<P> {
  target: DiscoTarget;
  node: string | AnyNode | undefined;
  provider: P;
}

/** Byte order of the UTF-8 forms ("i;octet"), so sorting matches XEP-0115 and every platform. */
export function octetCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function identityKey(i: DiscoInfoIdentity): string {
  return `${i.category}/${i.type}/${i.lang ?? ''}/${i.name ?? ''}`;
}

function manifestPart(manifests: readonly ModuleManifest[], target: DiscoTarget): DiscoInfoContribution {
  const key = target === 'host' ? 'host' : 'account';
  return {
    identities: manifests.flatMap((m) => m.identities?.[key] ?? []),
    features: manifests.flatMap((m) => m.features?.[key] ?? []),
  };
}

function merge(parts: readonly DiscoInfoContribution[]): DiscoInfo {
  const identities = new Map<string, DiscoInfoIdentity>();
  const features = new Set<string>();
  const forms: Element[] = [];
  for (const part of parts) {
    for (const i of part.identities ?? []) if (!identities.has(identityKey(i))) identities.set(identityKey(i), { ...i });
    for (const f of part.features ?? []) features.add(f);
    forms.push(...(part.forms ?? []));
  }
  return { identities: [...identities.values()], features: [...features].sort(octetCompare), forms };
}

export function infoElement(info: DiscoInfo, node: string | undefined): Element {
  return xml(
    'query',
    { xmlns: NS.discoInfo, node },
    info.identities.map((i) => xml('identity', { category: i.category, type: i.type, name: i.name, 'xml:lang': i.lang })),
    info.features.map((f) => xml('feature', { var: f })),
    // Clone: a provider may hand out the same form element to every answer.
    info.forms.map((f) => cloneElement(f)),
  );
}

export function itemsElement(items: readonly DiscoItem[], node: string | undefined): Element {
  return xml('query', { xmlns: NS.discoItems, node }, items.map((i) => xml('item', { jid: i.jid, node: i.node, name: i.name })));
}

export default defineModule({
  name: 'disco',
  xeps: [
    { xep: 30, version: '2.5rc3', status: 'complete' },
    { xep: 128, version: '1.0.1', status: 'complete' },
  ],
  features: { host: [NS.discoInfo, NS.discoItems], account: [NS.discoInfo, NS.discoItems] },
  defaultEnabled: true,
  config: z.strictObject({
    /** The name of the server's `server/im` identity, shown by clients' service browsers. */
    name: z.string().min(1).default('Parley'),
  }),
  setup(ctx): DiscoApi {
    const infoProviders: Registered<DiscoInfoProvider>[] = [];
    const itemsProviders: Registered<DiscoItemsProvider>[] = [];
    const listeners = new Set<() => void>();
    let pending = false;

    const changed = (): void => {
      if (pending || listeners.size === 0) return;
      pending = true;
      // Batched, and deferred so that listeners (caps) do not call a provider while the module that
      // added it is still in its setup.
      ctx.setTimeout(() => {
        pending = false;
        for (const l of [...listeners]) {
          try { l(); } catch (err) { ctx.log.error({ err }, 'disco change listener failed'); }
        }
      }, 0);
    };

    function add<P>(list: Registered<P>[], scope: DiscoScope, provider: P): () => void {
      const reg: Registered<P> = { target: scope.target, node: scope.node, provider };
      list.push(reg);
      changed();
      return () => {
        const i = list.indexOf(reg);
        if (i >= 0) {
          list.splice(i, 1);
          changed();
        }
      };
    }

    /** The providers for a query: those registered for exactly its node (or the root) and the any-node ones. */
    function select<P>(list: readonly Registered<P>[], q: DiscoQuery): { exact: P[]; any: P[] } {
      const forTarget = list.filter((r) => r.target === q.target);
      if (q.node === undefined) return { exact: forTarget.filter((r) => r.node === undefined).map((r) => r.provider), any: [] };
      return {
        exact: forTarget.filter((r) => r.node === q.node).map((r) => r.provider),
        any: forTarget.filter((r) => r.node === ANY_NODE).map((r) => r.provider),
      };
    }

    async function info(q: DiscoQuery): Promise<DiscoInfo | undefined> {
      const { exact, any } = select(infoProviders, q);
      const [fixed, dynamic] = await Promise.all([
        Promise.all(exact.map((p) => p(q))),
        Promise.all(any.map((p) => p(q))),
      ]);
      const found = dynamic.filter((c): c is DiscoInfoContribution => c !== undefined);
      if (q.node !== undefined) {
        if (exact.length === 0 && found.length === 0) return undefined;
        return merge([...fixed.filter((c): c is DiscoInfoContribution => c !== undefined), ...found]);
      }
      const base: DiscoInfoContribution = q.target === 'host'
        ? { identities: [{ category: 'server', type: 'im', name: ctx.config.name }], features: [NS.discoInfo, NS.discoItems] }
        // The server answers on the account's behalf, as the disco registry's account/registered.
        : { identities: [{ category: 'account', type: 'registered' }], features: [NS.discoInfo, NS.discoItems] };
      return merge([base, manifestPart(ctx.manifests(), q.target), ...fixed.filter((c): c is DiscoInfoContribution => c !== undefined)]);
    }

    async function items(q: DiscoQuery): Promise<DiscoItem[] | undefined> {
      const { exact, any } = select(itemsProviders, q);
      const [fixed, dynamic] = await Promise.all([
        Promise.all(exact.map((p) => p(q))),
        Promise.all(any.map((p) => p(q))),
      ]);
      const found = dynamic.filter((c): c is readonly DiscoItem[] => c !== undefined);
      if (q.node !== undefined && exact.length === 0 && found.length === 0) return undefined;
      const base: DiscoItem[] = q.node === undefined && q.target === 'host' ? ctx.services().map((jid) => ({ jid })) : [];
      // One entry per (jid, node): a provider describing a service (with a name) replaces the bare entry.
      const out = new Map<string, DiscoItem>();
      for (const item of [...base, ...fixed.flatMap((l) => l ?? []), ...found.flat()]) {
        out.set(`${item.jid}\u0000${item.node ?? ''}`, { ...item });
      }
      return [...out.values()];
    }

    function queryOf(iq: IqStanza, target: DiscoTarget): DiscoQuery {
      const raw = iq.payload!.attrs.node as string | undefined;
      return { target, jid: iq.to!.bare(), node: raw === '' ? undefined : raw, from: iq.from };
    }

    const answerInfo = (target: DiscoTarget) => async (iq: IqStanza) => {
      const q = queryOf(iq, target);
      const result = await info(q);
      if (!result) return StanzaError.itemNotFound();
      return infoElement(result, q.node);
    };
    const answerItems = (target: DiscoTarget) => async (iq: IqStanza) => {
      const q = queryOf(iq, target);
      const result = await items(q);
      if (!result) return StanzaError.itemNotFound();
      return itemsElement(result, q.node);
    };

    ctx.iq.get({ ns: NS.discoInfo, name: 'query', to: ['host'] }, answerInfo('host'));
    // `bare` reaches here only for existing accounts: the router answers service-unavailable otherwise.
    ctx.iq.get({ ns: NS.discoInfo, name: 'query', to: ['self', 'bare'] }, answerInfo('account'));
    ctx.iq.get({ ns: NS.discoItems, name: 'query', to: ['host'] }, answerItems('host'));
    ctx.iq.get({ ns: NS.discoItems, name: 'query', to: ['self', 'bare'] }, answerItems('account'));

    // A live reload may enable or disable modules whose features are only in their manifests.
    ctx.on('modules/reloaded', () => changed());

    return {
      addInfoProvider: (scope, provider) => add(infoProviders, scope, provider),
      addItemsProvider: (scope, provider) => add(itemsProviders, scope, provider),
      info,
      items,
      onChange(listener) {
        listeners.add(listener);
        return () => { listeners.delete(listener); };
      },
      changed,
    };
  },
});
