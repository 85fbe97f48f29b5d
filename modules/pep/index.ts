// XEP-0163 Personal Eventing Protocol: every account is a XEP-0060 service at its bare JID, with
// auto-create, publish-options, the presence/open/roster/whitelist access models, XEP-0223
// persistent private storage, and notifications filtered by the XEP-0115 capabilities of the
// contacts (and own resources) that are online: "+notify" features, learnt once per verified
// `ver`. The XEP-0060 engine (modules/pep/engine.ts) is shared with the pubsub.<domain> service.
import { cloneElement, defineModule, Jid, size, z } from '../../lib/module-api.js';
import type { Element, SessionHandle } from '../../lib/module-api.js';
import disco, { ANY_NODE } from '../disco/index.js';
import presence from '../presence/index.js';
import roster, { hasFrom, type RosterItem } from '../roster/index.js';
import blocking from '../blocking/index.js';
import { capsOf, CapsResolver, notifyNodes, type CapsAnnouncement } from './caps.js';
import { metaDataForm, type NodeConfig } from './config.js';
import {
  deleteEl,
  eventMessage,
  itemElement,
  purgeEl,
  retractEl,
  xmlItems,
  PubsubEngine,
  type Behaviour,
  type Notifier,
  type PubsubItem,
  type PubsubNode,
  type PublishedEvent,
  type RetractedEvent,
} from './engine.js';
import { COMMON_FEATURES, feature, PUBSUB, PUBSUB_OWNER } from './ns.js';
import { PubsubStore, pubsubMigrations, type Affiliation, type StoredSubscription } from './store.js';

export * from './engine.js';
export * from './config.js';
export { PubsubStore, pubsubMigrations } from './store.js';
export type { Affiliation, StoredSubscription } from './store.js';
export { capsCache, capsOf, CapsResolver, notifyNodes } from './caps.js';
export * from './ns.js';

/** What a module that builds on PEP (bookmarks, avatars) hears about a node. */
export interface PepListener {
  published?(e: PublishedEvent): void | Promise<void>;
  retracted?(e: RetractedEvent): void | Promise<void>;
  purged?(e: { svc: Jid; node: PubsubNode; source?: string }): void | Promise<void>;
  deleted?(e: { svc: Jid; node: PubsubNode; source?: string }): void | Promise<void>;
}

export interface PepApi {
  node(owner: Jid, node: string): Promise<PubsubNode | undefined>;
  /** The newest items of a node (oldest first); empty when the node does not exist. */
  items(owner: Jid, node: string, q?: { ids?: readonly string[]; max?: number }): Promise<PubsubItem[]>;
  /**
   * Publishes on the account's behalf (conversions), with notifications, creating the node with
   * its defaults plus `config` when it does not exist. `source` comes back in the events.
   */
  publish(owner: Jid, node: string, item: { id?: string; payload: Element }, opts?: { config?: Partial<NodeConfig>; source?: string }): Promise<PubsubItem>;
  /** Retracts items with notifications (per `notify`, else the node's notify_retract); returns those that existed. */
  retract(owner: Jid, node: string, ids: readonly string[], opts?: { notify?: boolean; source?: string }): Promise<string[]>;
  deleteNode(owner: Jid, node: string, source?: string): Promise<void>;
  /** Changes the defaults of nodes with this name, for nodes created from now on (e.g. private storage nodes). */
  setNodeDefaults(node: string, config: Partial<NodeConfig>): void;
  /** Listens to one node's events on every account of this host. */
  on(node: string, listener: PepListener): void;
}

/** XEP-0163 §7 and what this implementation adds; advertised on every account. */
export const PEP_FEATURES: readonly string[] = [
  PUBSUB,
  ...COMMON_FEATURES.map(feature),
  feature('auto-create'),
  feature('auto-subscribe'),
  feature('filtered-notifications'),
  feature('last-published'),
  feature('presence-subscribe'),
];

const MAX_LISTED = 10_000;

const pep = defineModule({
  name: 'pep',
  xeps: [
    { xep: 163, version: '1.2.2', status: 'complete' },
    { xep: 223, version: '1.1.1', status: 'complete' },
    { xep: 60, version: '1.26.0', status: 'partial', note: 'see modules/pubsub for the list of what is not implemented' },
  ],
  // XEP-0163 §6.1 on the account; XEP-0223 §5 has clients ask the server itself too.
  features: { account: PEP_FEATURES, host: PEP_FEATURES },
  identities: { account: [{ category: 'pubsub', type: 'pep' }], host: [{ category: 'pubsub', type: 'pep' }] },
  defaultEnabled: true,
  requires: [disco, roster, presence],
  // Blocking's presence gate goes first, so that PEP never learns of a blocked contact.
  optional: [blocking],
  migrations: pubsubMigrations,
  config: z.strictObject({
    /** Nodes per account. */
    maxNodes: z.number().int().min(1).max(100_000).default(256),
    /** The highest pubsub#max_items (what "max" means). */
    maxItems: z.number().int().min(1).max(100_000).default(256),
    /** Bytes of one item's payload. */
    maxItemSize: size().prefault('256 KiB'),
  }),
  setup(ctx): PepApi {
    const rosterApi = ctx.deps.get(roster);
    const discoApi = ctx.deps.get(disco);
    const store = new PubsubStore(ctx.storage, ctx.host);
    const resolver = new CapsResolver((iq, t) => ctx.request(iq, t), ctx.log);
    const listeners = new Map<string, PepListener[]>();
    const nodeDefaults = new Map<string, Partial<NodeConfig>>();

    const baseDefaults: NodeConfig = {
      title: '',
      description: '',
      type: '',
      // XEP-0163 §7: presence access, payloads delivered, last item on subscription and presence.
      accessModel: 'presence',
      rosterGroupsAllowed: [],
      publishModel: 'publishers',
      maxItems: 1,
      persistItems: true,
      deliverNotifications: true,
      deliverPayloads: true,
      notifyRetract: true,
      notifyDelete: true,
      sendLastPublishedItem: 'on_sub_and_presence',
      notificationType: 'headline',
    };

    const isOwner = (svc: Jid, who: Jid) => who.bare().equals(svc);

    // ------------------------------------------------------------------ who is interested

    interface Recipient {
      jid: Jid;
      /** The `<c/>` it announced (its key), to notice changes. */
      caps: string | undefined;
      /** Nodes it asks notifications for (`+notify`). */
      notify: ReadonlySet<string>;
      /** Its caps could not be learnt (no answer, or an answer that failed verification): try again at its next presence. */
      unknown: boolean;
      /** Bumped by each presence, so a slow caps answer does not overwrite a newer presence. */
      token: number;
    }
    /** Per account (bare JID): the available full JIDs (its own and its contacts') that sent it presence. */
    const recipients = new Map<string, Map<string, Recipient>>();
    let tokens = 0;

    function recipientsOf(owner: Jid): Recipient[] {
      return [...(recipients.get(owner.toString())?.values() ?? [])];
    }

    function forget(owner: Jid, full: Jid): void {
      const m = recipients.get(owner.toString());
      if (!m) return;
      m.delete(full.toString());
      if (m.size === 0) recipients.delete(owner.toString());
    }

    /**
     * Available presence from `full` reached `owner` (or is the owner's own). XEP-0163 §4.3.2:
     * initial presence with an interest brings the last items; later presence brings the last
     * items only of nodes it newly asks for.
     */
    async function sawPresence(owner: Jid, full: Jid, caps: CapsAnnouncement | undefined, admit?: () => Promise<boolean>): Promise<void> {
      const key = owner.toString();
      let m = recipients.get(key);
      const prev = m?.get(full.toString());
      const capsKey = caps ? `${caps.hash ?? ''} ${caps.node} ${caps.ver}` : undefined;
      if (prev && prev.caps === capsKey && !prev.unknown) return;
      const token = ++tokens;
      if (!m) recipients.set(key, (m = new Map()));
      // In place at once, so that an unavailable presence arriving meanwhile removes it.
      m.set(full.toString(), { jid: full, caps: capsKey, notify: prev?.notify ?? new Set(), unknown: false, token });
      if (admit && !(await admit())) {
        if (recipients.get(key)?.get(full.toString())?.token === token) forget(owner, full);
        return;
      }
      let features: ReadonlySet<string> | undefined;
      if (caps) features = resolver.known(caps) ?? (await resolver.resolve(caps, full, owner));
      const current = recipients.get(key)?.get(full.toString());
      if (!current || current.token !== token) return;
      const notify = notifyNodes(features);
      current.notify = notify;
      current.unknown = caps !== undefined && features === undefined;
      const before = prev?.notify ?? new Set<string>();
      const added = [...notify].filter((n) => !before.has(n));
      if (added.length > 0) await sendLastItems(owner, full, added);
    }

    /** The last item of each of these nodes that `to` may see and whose config sends it on presence. */
    async function sendLastItems(owner: Jid, to: Jid, nodes: readonly string[]): Promise<void> {
      // XEP-0163 §4: contacts are auto-subscribed through their presence subscription to the account.
      if (!isOwner(owner, to)) {
        const item = await rosterApi.get(owner, to.bare());
        if (!item || !hasFrom(item.subscription)) return;
      }
      for (const name of nodes) {
        const node = await engine.node(owner, name);
        if (!node || node.config.sendLastPublishedItem !== 'on_sub_and_presence' || !node.config.deliverNotifications) continue;
        if (!isOwner(owner, to) && !(await engine.mayAccess(owner, node, to))) continue;
        const last = await engine.lastItem(owner, node);
        if (!last) continue;
        await send(eventMessage(owner.toString(), to.toString(), node.config, xmlItems(node.name, [itemElement(last, node.config.deliverPayloads)]), last.published));
      }
    }

    async function send(el: Element): Promise<void> {
      try {
        await ctx.send(el);
      } catch (err) {
        ctx.log.warn({ err, to: el.attrs.to }, 'pep notification failed');
      }
    }

    // Own resources: their presence as they send it (before the presence module broadcasts it).
    ctx.on('stanza/inbound', ({ session, stanza }) => {
      if (stanza.kind === 'presence' && stanza.to === undefined) {
        if (stanza.type === 'available') track(sawPresence(session.jid.bare(), session.jid, capsOf(stanza.el)));
        else if (stanza.type === 'unavailable') forget(session.jid.bare(), session.jid);
      }
      return undefined;
    });
    ctx.on('session/closed', ({ session }) => forget(session.jid.bare(), session.jid));

    // Contacts: available and unavailable presence reaching an account, seen through the presence
    // module's gate (which never refuses here). Presence from JIDs in the account's roster is
    // remembered; whether they get notifications is decided when there is one to send (they need
    // a presence subscription to the account, XEP-0163 §4), so a subscription approved after
    // their last presence still counts. Presence from others (room occupants, strangers'
    // directed presence) is ignored, and never answered with a disco#info query.
    ctx.deps.get(presence).addGate(({ user, peer, direction, stanza }) => {
      if (direction !== 'in' || stanza.name !== 'presence' || peer.resource === undefined || user.domain !== ctx.host) return true;
      const type = stanza.attrs.type as string | undefined;
      if (type === 'unavailable' || type === 'error') forget(user, peer);
      else if (type === undefined) track(contactPresence(user, peer, stanza));
      return true;
    });

    async function contactPresence(owner: Jid, peer: Jid, stanza: Element): Promise<void> {
      if (peer.bare().equals(owner)) return; // own resources are tracked from their own stream
      await sawPresence(owner, peer, capsOf(stanza), async () => (await rosterApi.get(owner, peer.bare())) !== undefined);
    }

    function track(p: Promise<void>): void {
      p.catch((err: unknown) => ctx.log.error({ err }, 'pep presence handling failed'));
    }

    // ------------------------------------------------------------------ notifications

    /**
     * The full JIDs to notify of an event on a node (XEP-0163 §4.3): the account's own resources
     * and its subscribed contacts' resources that ask for the node, when the access model lets
     * them see it; then explicit subscribers not reached that way (XEP-0060 §7.1.2; a bare
     * subscription without known resources gets one notification at the bare JID).
     */
    async function audience(owner: Jid, node: PubsubNode, subscribers?: readonly StoredSubscription[]): Promise<Jid[]> {
      const out = new Map<string, Jid>();
      const implicit = recipientsOf(owner).filter((r) => r.notify.has(node.name));
      let items: Map<string, RosterItem> | undefined;
      let affs: Map<string, Affiliation> | undefined;
      for (const r of implicit) {
        const bare = r.jid.bare();
        if (!isOwner(owner, r.jid)) {
          items ??= new Map((await rosterApi.items(owner)).map((i) => [i.jid.toString(), i]));
          affs ??= new Map((await store.affiliations(owner.toString(), node.name)).map((a) => [a.jid, a.affiliation]));
          const item = items.get(bare.toString());
          if (!item || !hasFrom(item.subscription)) continue;
          const aff = affs.get(bare.toString()) ?? 'none';
          if (aff === 'outcast') continue;
          if (!implicitAccess(node.config, item, aff)) continue;
        }
        out.set(r.jid.toString(), r.jid);
      }
      if (ctx.server.cluster) await otherNodes(owner, node, out);
      const subs = subscribers ?? (await store.subscriptions(owner.toString(), node.name, MAX_LISTED));
      for (const s of subs) {
        const jid = Jid.tryParse(s.jid);
        if (!jid || out.has(jid.toString())) continue;
        if (jid.isBare && [...out.values()].some((j) => j.bare().equals(jid))) continue;
        if (subscribers === undefined && !isOwner(owner, jid) && !(await engine.mayAccess(owner, node, jid))) continue;
        out.set(jid.toString(), jid);
      }
      return [...out.values()];
    }

    /**
     * In a cluster, the presence of resources bound on other nodes reached those nodes, not this
     * one: their last presence (and its caps) comes from the session directory instead.
     */
    async function otherNodes(owner: Jid, node: PubsubNode, out: Map<string, Jid>): Promise<void> {
      const known = recipients.get(owner.toString());
      const consider = async (s: SessionHandle) => {
        if (s.node === undefined || !s.available || out.has(s.jid.toString()) || known?.has(s.jid.toString())) return;
        const caps = s.presence ? capsOf(s.presence) : undefined;
        if (!caps) return;
        const features = resolver.known(caps) ?? (await resolver.resolve(caps, s.jid, owner));
        if (notifyNodes(features).has(node.name)) out.set(s.jid.toString(), s.jid);
      };
      for (const s of ctx.sessions.of(owner)) await consider(s);
      const affs = new Map((await store.affiliations(owner.toString(), node.name)).map((a) => [a.jid, a.affiliation]));
      for (const item of await rosterApi.items(owner)) {
        if (!hasFrom(item.subscription) || !ctx.server.hosts.includes(item.jid.domain)) continue;
        const aff = affs.get(item.jid.toString()) ?? 'none';
        if (aff === 'outcast' || !implicitAccess(node.config, item, aff)) continue;
        for (const s of ctx.sessions.of(item.jid)) await consider(s);
      }
    }

    function implicitAccess(config: NodeConfig, item: RosterItem, aff: Affiliation): boolean {
      if (aff === 'member' || aff === 'publisher' || aff === 'owner') return true;
      switch (config.accessModel) {
        case 'open':
        case 'presence':
          return true;
        case 'roster':
          return item.groups.some((g) => config.rosterGroupsAllowed.includes(g));
        case 'whitelist':
          return false;
      }
    }

    async function fanOut(owner: Jid, node: PubsubNode, child: Element, subscribers?: readonly StoredSubscription[]): Promise<void> {
      if (!node.config.deliverNotifications) return;
      for (const to of await audience(owner, node, subscribers)) {
        await send(eventMessage(owner.toString(), to.toString(), node.config, cloneElement(child)));
      }
    }

    async function emit<K extends keyof PepListener>(node: string, kind: K, event: Parameters<NonNullable<PepListener[K]>>[0]): Promise<void> {
      for (const l of listeners.get(node) ?? []) {
        const fn = l[kind] as ((e: typeof event) => void | Promise<void>) | undefined;
        if (!fn) continue;
        try {
          await fn.call(l, event);
        } catch (err) {
          ctx.log.error({ err, node, kind }, 'pep listener failed');
        }
      }
    }

    const notifier: Notifier = {
      async published(e) {
        await fanOut(e.svc, e.node, xmlItems(e.node.name, [itemElement(e.item, e.node.config.deliverPayloads)]));
        await emit(e.node.name, 'published', e);
      },
      async retracted(e) {
        if (e.notify) await fanOut(e.svc, e.node, xmlItems(e.node.name, e.ids.map((id) => retractEl(id))));
        await emit(e.node.name, 'retracted', e);
      },
      async purged(e) {
        await fanOut(e.svc, e.node, purgeEl(e.node.name));
        await emit(e.node.name, 'purged', e);
      },
      async deleted(e) {
        if (e.node.config.notifyDelete) await fanOut(e.svc, e.node, deleteEl(e.node.name), e.subscribers);
        await emit(e.node.name, 'deleted', e);
      },
      async subscribed(e) {
        if (e.node.config.sendLastPublishedItem === 'never' || !e.node.config.deliverNotifications) return;
        const last = await engine.lastItem(e.svc, e.node);
        if (last) await send(eventMessage(e.svc.toString(), e.jid.toString(), e.node.config, xmlItems(e.node.name, [itemElement(last, e.node.config.deliverPayloads)]), last.published));
      },
    };

    const behaviour: Behaviour = {
      kind: 'pep',
      defaults: (node) => ({ ...baseDefaults, ...nodeDefaults.get(node) }),
      limits: { maxNodes: ctx.config.maxNodes, maxItems: ctx.config.maxItems, maxItemBytes: ctx.config.maxItemSize, publishModels: ['publishers'] },
      impliedAffiliation: (svc, who) => (isOwner(svc, who) ? 'owner' : undefined),
      // XEP-0163 §3.2: one publisher per node, the account; others may be members (whitelist) or outcasts.
      assignable: ['member', 'outcast', 'none'],
      mayCreate: (svc, who) => isOwner(svc, who),
      async rosterRelation(svc, _owners, who) {
        const item = await rosterApi.get(svc, who.bare());
        return { subscribed: item !== undefined && hasFrom(item.subscription), groups: item?.groups ?? [] };
      },
      async rosterGroups(svc) {
        return [...new Set((await rosterApi.items(svc)).flatMap((i) => i.groups))].sort();
      },
      notifier,
    };
    const engine = new PubsubEngine(store, behaviour);

    // ------------------------------------------------------------------ IQs

    const svcOf = (to: Jid | undefined, from: Jid) => (to ?? from).bare();
    ctx.iq.get({ ns: PUBSUB, name: 'pubsub', to: ['self', 'bare'] }, (iq) => engine.handle(svcOf(iq.to, iq.from), iq));
    ctx.iq.set({ ns: PUBSUB, name: 'pubsub', to: ['self', 'bare'] }, (iq) => engine.handle(svcOf(iq.to, iq.from), iq));
    // Owner requests from others reach the engine too, which answers forbidden (XEP-0060 §8).
    ctx.iq.get({ ns: PUBSUB_OWNER, name: 'pubsub', to: ['self', 'bare'] }, (iq) => engine.handleOwner(svcOf(iq.to, iq.from), iq));
    ctx.iq.set({ ns: PUBSUB_OWNER, name: 'pubsub', to: ['self', 'bare'] }, (iq) => engine.handleOwner(svcOf(iq.to, iq.from), iq));

    // ------------------------------------------------------------------ disco

    // XEP-0163 §5.2 / XEP-0060 §5.2: the nodes the asker may subscribe to or retrieve from.
    discoApi.addItemsProvider({ target: 'account' }, async (q) => {
      const out = [];
      for (const node of await engine.nodes(q.jid)) {
        if (!(await visibleTo(q.jid, node, q.from))) continue;
        out.push({ jid: q.jid.toString(), node: node.name, name: node.config.title || undefined });
      }
      return out;
    });
    // XEP-0060 §5.3 / §5.4: a node's identity and meta-data.
    discoApi.addInfoProvider({ target: 'account', node: ANY_NODE }, async (q) => {
      if (q.node === undefined) return undefined;
      const node = await engine.node(q.jid, q.node);
      if (!node || !(await visibleTo(q.jid, node, q.from))) return undefined;
      return {
        identities: [{ category: 'pubsub', type: 'leaf' }],
        features: [PUBSUB],
        forms: [metaDataForm(node.config, [q.jid.toString()])],
      };
    });

    async function visibleTo(svc: Jid, node: PubsubNode, who: Jid | undefined): Promise<boolean> {
      if (!who) return node.config.accessModel === 'open';
      return isOwner(svc, who) || engine.mayAccess(svc, node, who);
    }

    // ------------------------------------------------------------------ accounts

    ctx.on('account/deleted', async ({ host, user }) => {
      if (host !== ctx.host) return;
      const svc = Jid.of(user, host);
      await engine.deleteService(svc);
      await store.deleteEntity(svc.toString(), 'pep');
      recipients.delete(svc.toString());
      for (const m of recipients.values()) for (const k of [...m.keys()]) if (Jid.tryParse(k)?.bare().equals(svc)) m.delete(k);
    });

    // ------------------------------------------------------------------ API

    return {
      node: (owner, name) => engine.node(owner.bare(), name),
      async items(owner, name, q) {
        const node = await engine.node(owner.bare(), name);
        return node ? engine.items(owner.bare(), node, q) : [];
      },
      async publish(owner, name, item, opts = {}) {
        const svc = owner.bare();
        const createConfig = { ...behaviour.defaults(name), ...opts.config };
        const { item: stored } = await engine.publish(svc, name, svc, item, { createConfig, source: opts.source });
        return stored;
      },
      async retract(owner, name, ids, opts = {}) {
        const node = await engine.node(owner.bare(), name);
        if (!node) return [];
        return engine.retract(owner.bare(), node, ids, opts);
      },
      async deleteNode(owner, name, source) {
        const node = await engine.node(owner.bare(), name);
        if (node) await engine.delete(owner.bare(), node, source);
      },
      setNodeDefaults(name, config) {
        nodeDefaults.set(name, { ...nodeDefaults.get(name), ...config });
      },
      on(name, listener) {
        const list = listeners.get(name) ?? [];
        list.push(listener);
        listeners.set(name, list);
      },
    };
  },
});

export default pep;
