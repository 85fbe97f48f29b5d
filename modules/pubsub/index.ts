// XEP-0060 Publish-Subscribe as a service of its own at pubsub.<domain>: nodes that local
// accounts create and own, subscriptions by anyone the access model lets in (open by default),
// owner management of configuration, affiliations and subscriptions, and node discovery. The
// engine, tables and forms are PEP's (modules/pep), which must be enabled for its tables.
//
// Not implemented (and not advertised): collection nodes (XEP-0248), the authorize access model
// and pending subscriptions, subscription options and leased subscriptions, multiple
// subscriptions per JID, instant nodes, presence-based delivery, item expiry, notify_config,
// notification of subscription changes, SHIM headers, RSM over items, redirects on delete.
import { cloneElement, defineModule, Jid, size, StanzaError, xml, z } from '../../lib/module-api.js';
import type { Element, IqStanza, Stanza } from '../../lib/module-api.js';
import roster, { hasFrom } from '../roster/index.js';
import pep, {
  COMMON_FEATURES,
  deleteEl,
  DISCO_INFO,
  DISCO_ITEMS,
  eventMessage,
  feature,
  itemElement,
  metaDataForm,
  PUBSUB,
  PUBSUB_OWNER,
  PubsubEngine,
  PubsubStore,
  purgeEl,
  retractEl,
  xmlItems,
  type Behaviour,
  type NodeConfig,
  type Notifier,
  type PubsubNode,
  type StoredSubscription,
} from '../pep/index.js';

const MAX_LISTED = 10_000;

export const SERVICE_FEATURES: readonly string[] = [DISCO_INFO, DISCO_ITEMS, PUBSUB, ...COMMON_FEATURES.map(feature), feature('auto-create'), feature('publisher-affiliation'), feature('publish-only-affiliation')];

export interface PubsubServiceApi {
  /** The service's domain (pubsub.<host> unless configured). */
  readonly domain: string;
}

export default defineModule({
  name: 'pubsub',
  xeps: [{
    xep: 60,
    version: '1.26.0',
    status: 'partial',
    note: 'no collections, authorize access model, pending or leased subscriptions, subscription options, multi-subscribe, instant nodes, item expiry, presence-based delivery',
  }],
  requires: [pep],
  optional: [roster],
  config: z.strictObject({
    /** The service's domain; `pubsub.<host>` by default. */
    domain: z.string().refine((v) => Jid.tryParse(v)?.isDomain === true, 'must be a domain name, e.g. pubsub.example.com').optional(),
    /** The name in the service's disco identity. */
    name: z.string().min(1).default('Publish-Subscribe'),
    /** Nodes on the whole service. */
    maxNodes: z.number().int().min(1).max(1_000_000).default(10_000),
    /** The highest pubsub#max_items (what "max" means). */
    maxItems: z.number().int().min(1).max(100_000).default(1000),
    /** Bytes of one item's payload. */
    maxItemSize: size().prefault('256 KiB'),
  }),
  setup(ctx): PubsubServiceApi {
    const domain = ctx.config.domain ?? `pubsub.${ctx.host}`;
    const svcJid = Jid.parse(domain);
    const store = new PubsubStore(ctx.storage, ctx.host);
    const rosterApi = ctx.deps.has(roster) ? ctx.deps.get(roster) : undefined;
    const isAdmin = (who: Jid) => ctx.server.admins.some((a) => a.bare().equals(who.bare()));
    const localOwners = (owners: readonly Jid[]) => owners.filter((o) => o.domain === ctx.host && o.local !== undefined);

    const defaults: NodeConfig = {
      title: '',
      description: '',
      type: '',
      accessModel: 'open',
      rosterGroupsAllowed: [],
      publishModel: 'publishers',
      maxItems: 10,
      persistItems: true,
      deliverNotifications: true,
      deliverPayloads: true,
      notifyRetract: true,
      notifyDelete: true,
      sendLastPublishedItem: 'on_sub',
      notificationType: 'headline',
    };

    async function send(el: Element): Promise<void> {
      try {
        await ctx.send(el);
      } catch (err) {
        ctx.log.warn({ err, to: el.attrs.to }, 'pubsub notification failed');
      }
    }

    /** XEP-0060 §7.1.2: every subscriber the access model still lets in. */
    async function notifySubscribers(node: PubsubNode, child: Element, subscribers?: readonly StoredSubscription[]): Promise<void> {
      if (!node.config.deliverNotifications) return;
      const subs = subscribers ?? (await store.subscriptions(domain, node.name, MAX_LISTED));
      for (const s of subs) {
        const jid = Jid.tryParse(s.jid);
        if (!jid) continue;
        if (subscribers === undefined && !(await engine.mayAccess(svcJid, node, jid))) continue;
        await send(eventMessage(domain, jid.toString(), node.config, cloneElement(child)));
      }
    }

    const notifier: Notifier = {
      published: (e) => notifySubscribers(e.node, xmlItems(e.node.name, [itemElement(e.item, e.node.config.deliverPayloads)])),
      retracted: async (e) => {
        if (e.notify) await notifySubscribers(e.node, xmlItems(e.node.name, e.ids.map(retractEl)));
      },
      purged: (e) => notifySubscribers(e.node, purgeEl(e.node.name)),
      deleted: async (e) => {
        if (e.node.config.notifyDelete) await notifySubscribers(e.node, deleteEl(e.node.name), e.subscribers);
      },
      async subscribed(e) {
        if (e.node.config.sendLastPublishedItem === 'never' || !e.node.config.deliverNotifications) return;
        const last = await engine.lastItem(e.svc, e.node);
        if (last) await send(eventMessage(domain, e.jid.toString(), e.node.config, xmlItems(e.node.name, [itemElement(last, e.node.config.deliverPayloads)]), last.published));
      },
    };

    const behaviour: Behaviour = {
      kind: 'service',
      defaults: () => ({ ...defaults }),
      limits: { maxNodes: ctx.config.maxNodes, maxItems: ctx.config.maxItems, maxItemBytes: ctx.config.maxItemSize, publishModels: ['publishers', 'subscribers', 'open'] },
      // The server's admins own every node.
      impliedAffiliation: (_svc, who) => (isAdmin(who) ? 'owner' : undefined),
      assignable: ['owner', 'publisher', 'publish-only', 'member', 'none', 'outcast'],
      // Accounts of this host (and admins) create nodes.
      mayCreate: (_svc, who) => isAdmin(who) || (who.domain === ctx.host && who.local !== undefined),
      async rosterRelation(_svc, owners, who) {
        let subscribed = false;
        const groups = new Set<string>();
        for (const o of localOwners(owners)) {
          const item = await rosterApi?.get(o, who.bare());
          if (!item) continue;
          if (hasFrom(item.subscription)) subscribed = true;
          for (const g of item.groups) groups.add(g);
        }
        return { subscribed, groups: [...groups] };
      },
      async rosterGroups(_svc, owners) {
        const groups = new Set<string>();
        for (const o of localOwners(owners)) for (const i of (await rosterApi?.items(o)) ?? []) for (const g of i.groups) groups.add(g);
        return [...groups].sort();
      },
      notifier,
    };
    const engine = new PubsubEngine(store, behaviour);

    // ------------------------------------------------------------------ disco (XEP-0060 §5)

    async function discoInfo(iq: IqStanza): Promise<Element> {
      const node = iq.payload!.attrs.node as string | undefined;
      if (node === undefined || node === '') {
        return xml('query', { xmlns: DISCO_INFO },
          xml('identity', { category: 'pubsub', type: 'service', name: ctx.config.name }),
          [...SERVICE_FEATURES].sort().map((f) => xml('feature', { var: f })));
      }
      const n = await engine.node(svcJid, node);
      if (!n || !(await engine.mayAccess(svcJid, n, iq.from))) throw StanzaError.itemNotFound(`no node ${node}`);
      const owners = (await engine.owners(svcJid, n)).map((o) => o.toString());
      return xml('query', { xmlns: DISCO_INFO, node },
        xml('identity', { category: 'pubsub', type: 'leaf', name: n.config.title || undefined }),
        xml('feature', { var: PUBSUB }),
        metaDataForm(n.config, owners));
    }

    async function discoItems(iq: IqStanza): Promise<Element> {
      const node = iq.payload!.attrs.node as string | undefined;
      if (node === undefined || node === '') {
        const visible = [];
        for (const n of await engine.nodes(svcJid)) if (await engine.mayAccess(svcJid, n, iq.from)) visible.push(n);
        return xml('query', { xmlns: DISCO_ITEMS }, visible.map((n) => xml('item', { jid: domain, node: n.name, name: n.config.title || undefined })));
      }
      // §5.5: the items of a node, by id.
      const n = await engine.node(svcJid, node);
      if (!n) throw StanzaError.itemNotFound(`no node ${node}`);
      const err = await engine.accessError(svcJid, n, iq.from);
      if (err) throw err;
      const found = await engine.items(svcJid, n);
      return xml('query', { xmlns: DISCO_ITEMS, node }, found.map((i) => xml('item', { jid: domain, name: i.id })));
    }

    // ------------------------------------------------------------------ stanzas to the service

    function reply(iq: IqStanza, payload: Element | undefined): Element {
      return xml('iq', { type: 'result', id: iq.id, from: domain, to: iq.from.toString() }, payload ?? null);
    }

    function errorReply(stanza: Stanza, err: StanzaError): Element {
      const out = xml(stanza.el.name, { type: 'error', id: stanza.id, from: stanza.to?.toString() ?? domain, to: stanza.from.toString() });
      for (const child of stanza.el.getChildElements()) if (child.name !== 'error') out.cnode(cloneElement(child));
      out.cnode(err.toElement());
      return out;
    }

    async function answer(iq: IqStanza): Promise<Element | undefined> {
      const p = iq.payload!;
      const ns = p.attrs.xmlns as string | undefined;
      // Nodes live at the service's domain, not at JIDs below it.
      if (iq.to?.local !== undefined || iq.to?.resource !== undefined) throw StanzaError.serviceUnavailable();
      if (ns === PUBSUB && p.name === 'pubsub') return engine.handle(svcJid, iq);
      if (ns === PUBSUB_OWNER && p.name === 'pubsub') return engine.handleOwner(svcJid, iq);
      if (iq.type === 'get' && ns === DISCO_INFO && p.name === 'query') return discoInfo(iq);
      if (iq.type === 'get' && ns === DISCO_ITEMS && p.name === 'query') return discoItems(iq);
      throw StanzaError.serviceUnavailable();
    }

    ctx.service(domain, async (stanza) => {
      if (stanza.kind !== 'iq') {
        // Messages and presence to the service mean nothing here (RFC 6120 §8.4 for messages).
        if (stanza.kind === 'message' && stanza.type !== 'error') await send(errorReply(stanza, StanzaError.serviceUnavailable()));
        return;
      }
      if (stanza.type === 'result' || stanza.type === 'error') return;
      let out: Element;
      try {
        out = reply(stanza, await answer(stanza));
      } catch (err) {
        if (!(err instanceof StanzaError)) {
          ctx.log.error({ err, id: stanza.id }, 'pubsub request failed');
          out = errorReply(stanza, StanzaError.internalServerError());
        } else out = errorReply(stanza, err);
      }
      await send(out);
    });

    // ------------------------------------------------------------------ accounts

    ctx.on('account/deleted', async ({ host, user }) => {
      if (host !== ctx.host) return;
      const bare = Jid.of(user, host);
      for (const name of await store.nodesOwnedOnlyBy(domain, bare.toString(), MAX_LISTED)) {
        const node = await engine.node(svcJid, name);
        if (node) await engine.delete(svcJid, node);
      }
      await store.deleteEntity(bare.toString(), { service: domain });
    }, { before: [pep] });

    return { domain };
  },
});
