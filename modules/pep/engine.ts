// The XEP-0060 engine shared by PEP (XEP-0163, one service per account) and the pubsub.<domain>
// service: node, item, affiliation and subscription operations over PubsubStore, the IQ protocol
// of `<pubsub/>` and `<pubsub xmlns='…#owner'/>`, and event notifications built for the module
// that decides who gets them (a Notifier).
import { randomBytes } from 'node:crypto';
import { Jid, KeyedLock, readForm, StanzaError, xml } from '../../lib/module-api.js';
import type { Element, IqStanza } from '../../lib/module-api.js';
import {
  applyConfigForm,
  CONFIG_FIELDS,
  configForm,
  effectiveMaxItems,
  parseStoredConfig,
  unmetPrecondition,
  type ConfigRules,
  type FormFields,
  type NodeConfig,
} from './config.js';
import { PubsubError } from './errors.js';
import { DELAY, PUBSUB, PUBSUB_EVENT, PUBSUB_OWNER, PUBSUB_PUBLISH_OPTIONS } from './ns.js';
import { AFFILIATIONS, serialisePayload, type Affiliation, type PubsubStore, type StoredSubscription } from './store.js';

export interface ServiceLimits extends ConfigRules {
  /** Nodes per service (an account's PEP, or the whole pubsub.<domain> service). */
  maxNodes: number;
  /** Bytes of one item's payload, serialised. */
  maxItemBytes: number;
}

export interface PubsubNode {
  name: string;
  config: NodeConfig;
  creator: string;
  created: number;
}

export interface PubsubItem {
  id: string;
  publisher: string;
  payload: Element | undefined;
  published: number;
}

export interface PublishedEvent {
  svc: Jid;
  node: PubsubNode;
  item: PubsubItem;
  /** The entity that published (a client's full JID, or the service itself for conversions). */
  publisher: Jid;
  /** Set by server-side publishers (conversions) so that they can ignore their own events. */
  source?: string;
  /** True when this publication created the node. */
  created: boolean;
}

export interface RetractedEvent {
  svc: Jid;
  node: PubsubNode;
  ids: string[];
  notify: boolean;
  source?: string;
}

/** Who gets notified, and how: what differs between PEP and a pubsub service. */
export interface Notifier {
  published(e: PublishedEvent): Promise<void>;
  retracted(e: RetractedEvent): Promise<void>;
  purged(e: { svc: Jid; node: PubsubNode; source?: string }): Promise<void>;
  /** `subscribers`: the explicit subscriptions the node had. */
  deleted(e: { svc: Jid; node: PubsubNode; subscribers: StoredSubscription[]; source?: string }): Promise<void>;
  /** A new subscription (for the last published item, XEP-0060 §6.1.7). */
  subscribed(e: { svc: Jid; node: PubsubNode; jid: Jid }): Promise<void>;
}

export interface Behaviour {
  readonly kind: 'pep' | 'service';
  /** The configuration of a new node. */
  defaults(node: string): NodeConfig;
  readonly limits: ServiceLimits;
  /** An affiliation implied rather than stored: the account owns every node of its PEP service. */
  impliedAffiliation(svc: Jid, who: Jid): Affiliation | undefined;
  /** Affiliations an owner may give to others on this kind of service. */
  readonly assignable: readonly Affiliation[];
  mayCreate(svc: Jid, who: Jid): boolean | Promise<boolean>;
  /** For the presence and roster access models: how `who` stands in the rosters of the node's owners. */
  rosterRelation(svc: Jid, owners: readonly Jid[], who: Jid): Promise<{ subscribed: boolean; groups: readonly string[] }>;
  /** Roster groups the owner could allow (for the configuration form). */
  rosterGroups(svc: Jid, owners: readonly Jid[]): Promise<readonly string[]>;
  readonly notifier: Notifier;
}

/** Listing bounds: no query on a hot path is unbounded (ARCHITECTURE.md §7). */
const MAX_LISTED = 10_000;

export function randomId(): string {
  return randomBytes(8).toString('hex');
}

/** The one payload element of an item, with its namespace written on it (it is stored alone). */
function payloadOf(item: Element): Element {
  const children = item.getChildElements();
  if (children.length === 0) throw PubsubError.payloadRequired();
  if (children.length > 1) throw PubsubError.invalidPayload();
  const payload = children[0];
  const ns = payload.getNS();
  const copy = xml(payload.name, { ...payload.attrs, xmlns: ns });
  copy.children = payload.children;
  return copy;
}

function nodeAttr(el: Element): string | undefined {
  const node = el.attrs.node as string | undefined;
  return node === undefined || node === '' ? undefined : node;
}

function requireNode(el: Element): string {
  const node = nodeAttr(el);
  if (node === undefined) throw PubsubError.nodeIdRequired();
  return node;
}

function parseBool(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw StanzaError.badRequest(`"${value}" is not a boolean`);
}

/** `<items node>…</items>` of an event. */
export function xmlItems(node: string, children: readonly Element[]): Element {
  return xml('items', { node }, ...children);
}

export function retractEl(id: string): Element {
  return xml('retract', { id });
}

/** XEP-0060 §8.5.2: purge notification. */
export function purgeEl(node: string): Element {
  return xml('purge', { node });
}

/** XEP-0060 §8.4.2: deletion notification. */
export function deleteEl(node: string): Element {
  return xml('delete', { node });
}

export function itemElement(item: PubsubItem, withPayload = true): Element {
  return xml('item', { id: item.id }, withPayload && item.payload ? item.payload : null);
}

/** XEP-0060 §7.1.2.1: `<message><event><items node>…</items></event></message>`. */
export function eventMessage(from: string, to: string, config: NodeConfig, child: Element, delay?: number): Element {
  return xml(
    'message',
    { from, to, type: config.notificationType, id: randomId() },
    xml('event', { xmlns: PUBSUB_EVENT }, child),
    delay === undefined ? null : xml('delay', { xmlns: DELAY, stamp: new Date(delay).toISOString(), from }),
  );
}

export class PubsubEngine {
  private readonly lock = new KeyedLock();
  /** The last item of nodes that do not persist items (pubsub#persist_items false), per service and node. */
  private readonly transient = new Map<string, PubsubItem>();

  constructor(readonly store: PubsubStore, readonly behaviour: Behaviour) {}

  private key(svc: Jid, node: string): string {
    return `${svc.toString()}\u0000${node}`;
  }

  private get rules(): ServiceLimits {
    return this.behaviour.limits;
  }

  // ================================================================ operations (no permission checks)

  async node(svc: Jid, name: string): Promise<PubsubNode | undefined> {
    const row = await this.store.node(svc.toString(), name);
    if (!row) return undefined;
    return { name: row.node, config: parseStoredConfig(row.config, this.behaviour.defaults(row.node)), creator: row.creator, created: row.created };
  }

  async nodes(svc: Jid): Promise<PubsubNode[]> {
    const rows = await this.store.nodes(svc.toString(), Math.max(this.rules.maxNodes, 1));
    return rows.map((row) => ({ name: row.node, config: parseStoredConfig(row.config, this.behaviour.defaults(row.node)), creator: row.creator, created: row.created }));
  }

  /** Creates a node; conflict when it exists, not-allowed beyond the node limit. */
  async create(svc: Jid, name: string, creator: Jid, config: NodeConfig): Promise<PubsubNode> {
    return this.lock.run(svc.toString(), () => this.createLocked(svc, name, creator, config));
  }

  private async createLocked(svc: Jid, name: string, creator: Jid, config: NodeConfig): Promise<PubsubNode> {
    if (await this.store.node(svc.toString(), name)) throw StanzaError.conflict(`node ${name} exists`);
    if ((await this.store.countNodes(svc.toString())) >= this.rules.maxNodes) throw PubsubError.tooManyNodes(this.rules.maxNodes);
    await this.store.createNode(svc.toString(), name, JSON.stringify(config), creator.bare().toString());
    if (this.behaviour.impliedAffiliation(svc, creator) !== 'owner') {
      await this.store.setAffiliation(svc.toString(), name, creator.bare().toString(), 'owner');
    }
    return { name, config, creator: creator.bare().toString(), created: Date.now() };
  }

  /**
   * Publishes an item (XEP-0060 §7.1), creating the node when it does not exist (auto-create,
   * §7.1.4) with `createConfig` or the defaults. With `options`, every field is a precondition
   * (§7.1.5). The notifier sends the notifications.
   */
  async publish(
    svc: Jid,
    name: string,
    publisher: Jid,
    item: { id?: string; payload: Element },
    opts: { options?: FormFields; createConfig?: NodeConfig; source?: string; mayCreate?: boolean } = {},
  ): Promise<{ node: PubsubNode; item: PubsubItem; created: boolean }> {
    const payload = serialisePayload(item.payload);
    if (Buffer.byteLength(payload, 'utf8') > this.rules.maxItemBytes) throw PubsubError.payloadTooBig(this.rules.maxItemBytes);
    const id = item.id ?? randomId();
    const outcome = await this.lock.run(svc.toString(), async () => {
      let node = await this.node(svc, name);
      let created = false;
      if (node) {
        if (opts.options) {
          const unmet = unmetPrecondition(node.config, opts.options, this.rules);
          if (unmet !== undefined) throw PubsubError.preconditionNotMet(`the node's ${unmet} does not match the publish options`);
        }
      } else {
        if (opts.mayCreate === false) throw StanzaError.itemNotFound(`no node ${name}`);
        let config = opts.createConfig ?? this.behaviour.defaults(name);
        if (opts.options) {
          // §7.1.5: an unknown field fails the publication like an unmet precondition.
          const unknown = [...opts.options.fields.keys()].find((f) => f !== 'FORM_TYPE' && !CONFIG_FIELDS.includes(f));
          if (unknown !== undefined) throw PubsubError.preconditionNotMet(`${unknown} is not a node configuration option of this service`);
          config = applyConfigForm(config, { formType: undefined, fields: opts.options.fields }, this.rules);
        }
        node = await this.createLocked(svc, name, publisher, config);
        created = true;
      }
      const stored: PubsubItem = { id, publisher: publisher.toString(), payload: item.payload, published: Date.now() };
      if (node.config.persistItems) {
        await this.store.putItem(svc.toString(), name, { id, publisher: stored.publisher, payload }, effectiveMaxItems(node.config, this.rules));
      } else {
        this.transient.set(this.key(svc, name), stored);
      }
      return { node, item: stored, created };
    });
    await this.behaviour.notifier.published({ svc, node: outcome.node, item: outcome.item, publisher, source: opts.source, created: outcome.created });
    return outcome;
  }

  /** The newest `max` items (oldest first), or those with these ids. */
  async items(svc: Jid, node: PubsubNode, q: { ids?: readonly string[]; max?: number } = {}): Promise<PubsubItem[]> {
    const limit = Math.min(q.max ?? effectiveMaxItems(node.config, this.rules), effectiveMaxItems(node.config, this.rules), MAX_LISTED);
    if (!node.config.persistItems) {
      const last = this.transient.get(this.key(svc, node.name));
      if (!last || (q.ids && !q.ids.includes(last.id))) return [];
      return [last];
    }
    const rows = await this.store.items(svc.toString(), node.name, { ids: q.ids, limit });
    return rows.map((r) => ({ id: r.id, publisher: r.publisher, payload: r.payload, published: r.published }));
  }

  async lastItem(svc: Jid, node: PubsubNode): Promise<PubsubItem | undefined> {
    const items = await this.items(svc, node, { max: 1 });
    return items[items.length - 1];
  }

  /** Deletes items; returns the ids that existed. Notifies per `notify` (default: pubsub#notify_retract). */
  async retract(svc: Jid, node: PubsubNode, ids: readonly string[], opts: { notify?: boolean; source?: string } = {}): Promise<string[]> {
    const removed = await this.lock.run(svc.toString(), async () => {
      if (!node.config.persistItems) {
        const last = this.transient.get(this.key(svc, node.name));
        if (last && ids.includes(last.id)) {
          this.transient.delete(this.key(svc, node.name));
          return [last.id];
        }
        return [];
      }
      return this.store.deleteItems(svc.toString(), node.name, ids);
    });
    if (removed.length > 0) {
      await this.behaviour.notifier.retracted({ svc, node, ids: removed, notify: opts.notify ?? node.config.notifyRetract, source: opts.source });
    }
    return removed;
  }

  async purge(svc: Jid, node: PubsubNode, source?: string): Promise<void> {
    await this.lock.run(svc.toString(), async () => {
      this.transient.delete(this.key(svc, node.name));
      await this.store.purge(svc.toString(), node.name);
    });
    await this.behaviour.notifier.purged({ svc, node, source });
  }

  async delete(svc: Jid, node: PubsubNode, source?: string): Promise<void> {
    const subscribers = await this.store.subscriptions(svc.toString(), node.name, MAX_LISTED);
    await this.lock.run(svc.toString(), async () => {
      this.transient.delete(this.key(svc, node.name));
      await this.store.deleteNode(svc.toString(), node.name);
    });
    await this.behaviour.notifier.deleted({ svc, node, subscribers, source });
  }

  /** Stores a new configuration; items beyond a lower max_items go, as do stored items when persistence is turned off. */
  async configure(svc: Jid, node: PubsubNode, config: NodeConfig): Promise<PubsubNode> {
    return this.lock.run(svc.toString(), async () => {
      const key = this.key(svc, node.name);
      if (node.config.persistItems && !config.persistItems) {
        const [last] = await this.store.items(svc.toString(), node.name, { limit: 1 });
        if (last) this.transient.set(key, { id: last.id, publisher: last.publisher, payload: last.payload, published: last.published });
        await this.store.purge(svc.toString(), node.name);
      } else if (!node.config.persistItems && config.persistItems) {
        const last = this.transient.get(key);
        this.transient.delete(key);
        if (last?.payload) await this.store.putItem(svc.toString(), node.name, { id: last.id, publisher: last.publisher, payload: serialisePayload(last.payload) }, effectiveMaxItems(config, this.rules));
      }
      await this.store.updateConfig(svc.toString(), node.name, JSON.stringify(config));
      if (config.persistItems) await this.store.trim(svc.toString(), node.name, effectiveMaxItems(config, this.rules));
      return { ...node, config };
    });
  }

  /** Forgets a whole service (an account's PEP on account deletion). */
  async deleteService(svc: Jid): Promise<void> {
    const prefix = `${svc.toString()}\u0000`;
    for (const k of [...this.transient.keys()]) if (k.startsWith(prefix)) this.transient.delete(k);
    await this.store.deleteService(svc.toString());
  }

  // ================================================================ access

  async affiliation(svc: Jid, node: PubsubNode | undefined, who: Jid): Promise<Affiliation> {
    const implied = this.behaviour.impliedAffiliation(svc, who);
    if (implied) return implied;
    if (!node) return 'none';
    return (await this.store.affiliation(svc.toString(), node.name, who.bare().toString())) ?? 'none';
  }

  async owners(svc: Jid, node: PubsubNode): Promise<Jid[]> {
    if (this.behaviour.kind === 'pep') return [svc];
    return (await this.store.affiliations(svc.toString(), node.name))
      .filter((a) => a.affiliation === 'owner')
      .map((a) => Jid.tryParse(a.jid))
      .filter((j): j is Jid => j !== undefined);
  }

  /**
   * Whether `who` may retrieve items of and subscribe to a node (XEP-0060 §6.1.3, §6.5.9):
   * undefined when it may, else the error to answer with.
   */
  async accessError(svc: Jid, node: PubsubNode, who: Jid, affiliation?: Affiliation): Promise<StanzaError | undefined> {
    const aff = affiliation ?? (await this.affiliation(svc, node, who));
    if (aff === 'outcast') return StanzaError.forbidden('you are banned from this node');
    if (aff === 'owner' || aff === 'publisher' || aff === 'member') return undefined;
    switch (node.config.accessModel) {
      case 'open':
        return undefined;
      case 'whitelist':
        return PubsubError.closedNode();
      case 'presence': {
        const rel = await this.behaviour.rosterRelation(svc, await this.owners(svc, node), who);
        return rel.subscribed ? undefined : PubsubError.presenceSubscriptionRequired();
      }
      case 'roster': {
        const rel = await this.behaviour.rosterRelation(svc, await this.owners(svc, node), who);
        return rel.groups.some((g) => node.config.rosterGroupsAllowed.includes(g)) ? undefined : PubsubError.notInRosterGroup();
      }
    }
  }

  async mayAccess(svc: Jid, node: PubsubNode, who: Jid): Promise<boolean> {
    return (await this.accessError(svc, node, who)) === undefined;
  }

  private async mayPublish(svc: Jid, node: PubsubNode, who: Jid): Promise<boolean> {
    const aff = await this.affiliation(svc, node, who);
    if (aff === 'owner' || aff === 'publisher' || aff === 'publish-only') return true;
    if (aff === 'outcast') return false;
    switch (node.config.publishModel) {
      case 'open':
        return true;
      case 'subscribers':
        return (await this.store.subscription(svc.toString(), node.name, who.bare().toString())) !== undefined
          || (await this.store.subscription(svc.toString(), node.name, who.toString())) !== undefined;
      default:
        return false;
    }
  }

  private async requireOwner(svc: Jid, node: PubsubNode, who: Jid): Promise<void> {
    if ((await this.affiliation(svc, node, who)) !== 'owner') throw StanzaError.forbidden('only an owner of the node may do this');
  }

  private async existing(svc: Jid, name: string): Promise<PubsubNode> {
    const node = await this.node(svc, name);
    if (!node) throw StanzaError.itemNotFound(`no node ${name}`);
    return node;
  }

  // ================================================================ the IQ protocol

  /** `<pubsub xmlns='http://jabber.org/protocol/pubsub'/>`, get or set, to the service `svc`. */
  async handle(svc: Jid, iq: IqStanza): Promise<Element | undefined> {
    const pubsub = iq.payload!;
    const children = pubsub.getChildElements();
    const action = children.find((c) => ['publish', 'retract', 'items', 'subscribe', 'unsubscribe', 'create', 'subscriptions', 'affiliations', 'options', 'default'].includes(c.name));
    if (!action) throw StanzaError.badRequest('no pubsub action in the request');
    const who = iq.from;
    const set = iq.type === 'set';
    switch (action.name) {
      case 'publish':
        if (!set) break;
        return this.onPublish(svc, who, action, pubsub.getChild('publish-options'));
      case 'retract':
        if (!set) break;
        return this.onRetract(svc, who, action);
      case 'items':
        if (set) break;
        return this.onItems(svc, who, action);
      case 'subscribe':
        if (!set) break;
        return this.onSubscribe(svc, who, action);
      case 'unsubscribe':
        if (!set) break;
        return this.onUnsubscribe(svc, who, action);
      case 'create':
        if (!set) break;
        return this.onCreate(svc, who, action, pubsub.getChild('configure'));
      case 'subscriptions':
        if (set) break;
        return this.onOwnSubscriptions(svc, who, action);
      case 'affiliations':
        if (set) break;
        return this.onOwnAffiliations(svc, who, action);
      case 'options':
        throw PubsubError.unsupported('subscription-options');
      case 'default':
        throw PubsubError.unsupported('retrieve-default-sub');
    }
    throw StanzaError.badRequest(`<${action.name}/> is not a pubsub ${iq.type}`);
  }

  /** `<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'/>`, get or set, to the service `svc`. */
  async handleOwner(svc: Jid, iq: IqStanza): Promise<Element | undefined> {
    const pubsub = iq.payload!;
    const action = pubsub.getChildElements()[0];
    if (!action) throw StanzaError.badRequest('no pubsub#owner action in the request');
    const who = iq.from;
    const set = iq.type === 'set';
    switch (action.name) {
      case 'configure':
        return set ? this.onConfigureSet(svc, who, action) : this.onConfigureGet(svc, who, action);
      case 'default':
        if (set) break;
        return xml('pubsub', { xmlns: PUBSUB_OWNER }, xml('default', {}, configForm(this.behaviour.defaults(''), this.rules)));
      case 'delete':
        if (!set) break;
        return this.onDelete(svc, who, action);
      case 'purge':
        if (!set) break;
        return this.onPurge(svc, who, action);
      case 'subscriptions':
        return set ? this.onSubscriptionsSet(svc, who, action) : this.onSubscriptionsGet(svc, who, action);
      case 'affiliations':
        return set ? this.onAffiliationsSet(svc, who, action) : this.onAffiliationsGet(svc, who, action);
    }
    throw StanzaError.badRequest(`<${action.name}/> is not a pubsub#owner ${iq.type}`);
  }

  // ---------------------------------------------------------------- publisher

  private async onPublish(svc: Jid, who: Jid, publish: Element, optionsEl: Element | undefined): Promise<Element> {
    const name = requireNode(publish);
    const items = publish.getChildren('item');
    if (items.length === 0) throw PubsubError.itemRequired('publish an item (this service has no notification-only nodes)');
    if (items.length > 1) throw StanzaError.badRequest('publish one item per request');
    const rawId = items[0].attrs.id as string | undefined;
    const payload = payloadOf(items[0]);
    const options = readForm(optionsEl);
    if (options) {
      if (options.type !== 'submit') throw StanzaError.badRequest('publish-options are a form of type submit');
      if (options.formType !== PUBSUB_PUBLISH_OPTIONS) throw StanzaError.badRequest(`publish-options need the FORM_TYPE ${PUBSUB_PUBLISH_OPTIONS}`);
    }
    const node = await this.node(svc, name);
    if (node) {
      if (!(await this.mayPublish(svc, node, who))) throw StanzaError.forbidden('you may not publish to this node');
    } else if (!(await this.behaviour.mayCreate(svc, who))) {
      // §7.1.3.1 / §7.1.3.3: not the PEP account itself, or no right to auto-create here.
      throw this.behaviour.kind === 'pep' ? StanzaError.forbidden('only the account may publish to its PEP service') : StanzaError.itemNotFound(`no node ${name}`);
    }
    const { item } = await this.publish(svc, name, who, { id: rawId === '' ? undefined : rawId, payload }, { options });
    return xml('pubsub', { xmlns: PUBSUB }, xml('publish', { node: name }, xml('item', { id: item.id })));
  }

  private async onRetract(svc: Jid, who: Jid, retract: Element): Promise<undefined> {
    const name = requireNode(retract);
    const ids = retract.getChildren('item').map((i) => i.attrs.id as string | undefined);
    if (ids.length === 0 || ids.some((id) => id === undefined || id === '')) throw PubsubError.itemRequired();
    const node = await this.existing(svc, name);
    const aff = await this.affiliation(svc, node, who);
    if (aff !== 'owner' && aff !== 'publisher') throw StanzaError.forbidden('you may not retract items of this node');
    const notify = parseBool(retract.attrs.notify as string | undefined);
    const removed = await this.retract(svc, node, ids as string[], { notify });
    if (removed.length === 0) throw StanzaError.itemNotFound('no such item');
    return undefined;
  }

  // ---------------------------------------------------------------- subscriber

  private async onItems(svc: Jid, who: Jid, items: Element): Promise<Element> {
    const name = requireNode(items);
    const node = await this.existing(svc, name);
    const err = await this.accessError(svc, node, who);
    if (err) throw err;
    const rawMax = items.attrs.max_items as string | undefined;
    let max: number | undefined;
    if (rawMax !== undefined) {
      if (!/^\d{1,9}$/.test(rawMax) || Number(rawMax) < 1) throw StanzaError.badRequest('max_items must be a positive number');
      max = Number(rawMax);
    }
    const wanted = items.getChildren('item').map((i) => i.attrs.id as string | undefined).filter((id): id is string => id !== undefined && id !== '');
    const found = await this.items(svc, node, { ids: wanted.length > 0 ? wanted : undefined, max });
    return xml('pubsub', { xmlns: PUBSUB }, xml('items', { node: name }, found.map((i) => itemElement(i))));
  }

  private subscriberJid(who: Jid, el: Element): Jid {
    const raw = el.attrs.jid as string | undefined;
    const jid = Jid.tryParse(raw);
    if (raw === undefined || !jid) throw PubsubError.invalidJid('the request needs the jid to subscribe');
    if (!jid.bare().equals(who.bare())) throw PubsubError.invalidJid();
    return jid;
  }

  private async onSubscribe(svc: Jid, who: Jid, subscribe: Element): Promise<Element> {
    const name = requireNode(subscribe);
    const jid = this.subscriberJid(who, subscribe);
    const node = await this.existing(svc, name);
    const err = await this.accessError(svc, node, who);
    if (err) throw err;
    let sub = await this.store.subscription(svc.toString(), name, jid.toString());
    if (!sub) {
      const subid = randomId();
      await this.store.subscribe(svc.toString(), name, jid.toString(), jid.bare().toString(), subid);
      sub = { node: name, jid: jid.toString(), subid, state: 'subscribed' };
      // After the result has been routed (§6.1.7: the last item follows the subscription).
      setImmediate(() => {
        this.behaviour.notifier.subscribed({ svc, node, jid }).catch(() => undefined);
      });
    }
    return xml('pubsub', { xmlns: PUBSUB }, xml('subscription', { node: name, jid: sub.jid, subid: sub.subid, subscription: 'subscribed' }));
  }

  private async onUnsubscribe(svc: Jid, who: Jid, unsubscribe: Element): Promise<undefined> {
    const name = requireNode(unsubscribe);
    const raw = unsubscribe.attrs.jid as string | undefined;
    const jid = Jid.tryParse(raw);
    if (raw === undefined || !jid) throw PubsubError.invalidJid('the request needs the jid to unsubscribe');
    // §6.2.3.3: unsubscribing someone else is forbidden.
    if (!jid.bare().equals(who.bare())) throw StanzaError.forbidden('you may only unsubscribe yourself');
    await this.existing(svc, name);
    const sub = await this.store.subscription(svc.toString(), name, jid.toString());
    if (!sub) throw PubsubError.notSubscribed();
    await this.store.unsubscribe(svc.toString(), name, jid.toString());
    return undefined;
  }

  private async onOwnSubscriptions(svc: Jid, who: Jid, el: Element): Promise<Element> {
    const only = nodeAttr(el);
    const subs = (await this.store.subscriptionsOf(svc.toString(), who.bare().toString(), MAX_LISTED)).filter((s) => only === undefined || s.node === only);
    return xml('pubsub', { xmlns: PUBSUB }, xml('subscriptions', { node: only }, subs.map((s) => xml('subscription', { node: s.node, jid: s.jid, subid: s.subid, subscription: s.state }))));
  }

  private async onOwnAffiliations(svc: Jid, who: Jid, el: Element): Promise<Element> {
    const only = nodeAttr(el);
    let list: Array<{ node: string; affiliation: Affiliation }>;
    if (this.behaviour.impliedAffiliation(svc, who) === 'owner') {
      list = (await this.nodes(svc)).map((n) => ({ node: n.name, affiliation: 'owner' as Affiliation }));
    } else {
      list = await this.store.affiliationsOf(svc.toString(), who.bare().toString(), MAX_LISTED);
    }
    list = list.filter((a) => only === undefined || a.node === only);
    return xml('pubsub', { xmlns: PUBSUB }, xml('affiliations', { node: only }, list.map((a) => xml('affiliation', { node: a.node, affiliation: a.affiliation }))));
  }

  // ---------------------------------------------------------------- owner

  private async onCreate(svc: Jid, who: Jid, create: Element, configure: Element | undefined): Promise<undefined> {
    // §8.1.2: no instant nodes here.
    const name = nodeAttr(create);
    if (name === undefined) throw new StanzaError('not-acceptable', { text: 'instant nodes are not supported; name the node', appCondition: xml('nodeid-required', { xmlns: 'http://jabber.org/protocol/pubsub#errors' }) });
    if (!(await this.behaviour.mayCreate(svc, who))) throw StanzaError.forbidden('you may not create nodes on this service');
    let config = this.behaviour.defaults(name);
    const form = readForm(configure);
    if (form && form.type !== 'cancel') config = applyConfigForm(config, form, this.rules);
    await this.create(svc, name, who, config);
    return undefined;
  }

  private async onConfigureGet(svc: Jid, who: Jid, el: Element): Promise<Element> {
    const node = await this.existing(svc, requireNode(el));
    await this.requireOwner(svc, node, who);
    const groups = await this.behaviour.rosterGroups(svc, await this.owners(svc, node));
    return xml('pubsub', { xmlns: PUBSUB_OWNER }, xml('configure', { node: node.name }, configForm(node.config, this.rules, 'form', groups)));
  }

  private async onConfigureSet(svc: Jid, who: Jid, el: Element): Promise<undefined> {
    const node = await this.existing(svc, requireNode(el));
    await this.requireOwner(svc, node, who);
    const form = readForm(el);
    if (!form) throw StanzaError.badRequest('submit the configuration form');
    if (form.type === 'cancel') return undefined; // §8.2.5: the owner cancelled
    if (form.type !== 'submit') throw StanzaError.badRequest('a submitted configuration is a form of type submit');
    await this.configure(svc, node, applyConfigForm(node.config, form, this.rules));
    return undefined;
  }

  private async onDelete(svc: Jid, who: Jid, el: Element): Promise<undefined> {
    const node = await this.existing(svc, requireNode(el));
    await this.requireOwner(svc, node, who);
    await this.delete(svc, node);
    return undefined;
  }

  private async onPurge(svc: Jid, who: Jid, el: Element): Promise<undefined> {
    const node = await this.existing(svc, requireNode(el));
    await this.requireOwner(svc, node, who);
    await this.purge(svc, node);
    return undefined;
  }

  private async onSubscriptionsGet(svc: Jid, who: Jid, el: Element): Promise<Element> {
    const node = await this.existing(svc, requireNode(el));
    await this.requireOwner(svc, node, who);
    const subs = await this.store.subscriptions(svc.toString(), node.name, MAX_LISTED);
    return xml('pubsub', { xmlns: PUBSUB_OWNER }, xml('subscriptions', { node: node.name }, subs.map((s) => xml('subscription', { jid: s.jid, subscription: s.state, subid: s.subid }))));
  }

  private async onSubscriptionsSet(svc: Jid, who: Jid, el: Element): Promise<undefined> {
    const node = await this.existing(svc, requireNode(el));
    await this.requireOwner(svc, node, who);
    const changes = el.getChildren('subscription').map((s) => {
      const jid = Jid.tryParse(s.attrs.jid as string | undefined);
      const state = s.attrs.subscription as string | undefined;
      if (!jid) throw StanzaError.jidMalformed('each subscription needs a valid jid');
      if (state !== 'subscribed' && state !== 'none') throw StanzaError.notAcceptable('a subscription state is "subscribed" or "none" here');
      return { jid, state };
    });
    for (const { jid, state } of changes) {
      if (state === 'none') await this.store.unsubscribe(svc.toString(), node.name, jid.toString());
      else await this.store.subscribe(svc.toString(), node.name, jid.toString(), jid.bare().toString(), randomId());
    }
    return undefined;
  }

  private async onAffiliationsGet(svc: Jid, who: Jid, el: Element): Promise<Element> {
    const node = await this.existing(svc, requireNode(el));
    await this.requireOwner(svc, node, who);
    const stored = await this.store.affiliations(svc.toString(), node.name);
    const list = this.behaviour.kind === 'pep' ? [{ jid: svc.toString(), affiliation: 'owner' as Affiliation }, ...stored] : stored;
    return xml('pubsub', { xmlns: PUBSUB_OWNER }, xml('affiliations', { node: node.name }, list.map((a) => xml('affiliation', { jid: a.jid, affiliation: a.affiliation }))));
  }

  private async onAffiliationsSet(svc: Jid, who: Jid, el: Element): Promise<undefined> {
    const node = await this.existing(svc, requireNode(el));
    await this.requireOwner(svc, node, who);
    const changes = el.getChildren('affiliation').map((a) => {
      const jid = Jid.tryParse(a.attrs.jid as string | undefined);
      const affiliation = a.attrs.affiliation as string | undefined;
      if (!jid) throw StanzaError.jidMalformed('each affiliation needs a valid jid');
      if (affiliation === undefined || !(AFFILIATIONS as readonly string[]).includes(affiliation)) throw StanzaError.badRequest(`"${affiliation}" is not an affiliation`);
      if (!this.behaviour.assignable.includes(affiliation as Affiliation)) throw StanzaError.notAcceptable(`the ${affiliation} affiliation cannot be given on this service`);
      if (this.behaviour.impliedAffiliation(svc, jid) !== undefined) throw StanzaError.notAcceptable(`the affiliation of ${jid.bare().toString()} cannot change`);
      return { jid: jid.bare(), affiliation: affiliation as Affiliation };
    });
    if (this.behaviour.kind === 'service') {
      // §8.9.2.4: a node keeps at least one owner.
      const owners = new Set((await this.store.affiliations(svc.toString(), node.name)).filter((a) => a.affiliation === 'owner').map((a) => a.jid));
      for (const c of changes) {
        if (c.affiliation === 'owner') owners.add(c.jid.toString());
        else owners.delete(c.jid.toString());
      }
      if (owners.size === 0) throw StanzaError.notAcceptable('a node keeps at least one owner');
    }
    for (const c of changes) {
      await this.store.setAffiliation(svc.toString(), node.name, c.jid.toString(), c.affiliation);
      // An outcast loses its subscriptions (§8.9.2: outcasts may not subscribe).
      if (c.affiliation === 'outcast') {
        for (const s of await this.store.subscriptionsOf(svc.toString(), c.jid.toString(), MAX_LISTED)) {
          if (s.node === node.name) await this.store.unsubscribe(svc.toString(), node.name, s.jid);
        }
      }
    }
    return undefined;
  }
}
