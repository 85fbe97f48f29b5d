// Shared set-up for the PEP, bookmarks and avatars specs: a harness with roster, presence,
// disco and PEP, accounts in known subscription states, and clients that announce XEP-0115
// capabilities and answer the server's disco#info query about them, as real clients do.
import { NS, xml, type Element, type XmlChild } from '../../../lib/module-api.js';
import type { z } from 'zod';
import type { ModuleDefinition } from '../../../lib/modules/define.js';
import { Jid } from '../../../lib/jid/jid.js';
import { Harness, type TestClient } from '../../helpers/harness.js';
import roster, { type RosterApi, type Subscription } from '../../../modules/roster/index.js';
import presence from '../../../modules/presence/index.js';
import disco from '../../../modules/disco/index.js';
import pep, { capsCache, PUBSUB, PUBSUB_EVENT, PUBSUB_OWNER, PUBSUB_PUBLISH_OPTIONS } from '../../../modules/pep/index.js';
import { capsVer } from '../../../modules/caps/ver.js';

export const DOMAIN = 'example.com';
export const CAPS_NODE = 'https://spec.example/client';

export interface World {
  h: Harness;
  roster: RosterApi;
  /** Stanzas handed to federation. */
  remote: Element[];
}

type AnyModule = ModuleDefinition<z.ZodType, unknown>;

export async function startWorld(opts: { modules?: readonly AnyModule[]; options?: Record<string, unknown>; users?: readonly string[] } = {}): Promise<World> {
  capsCache.clear();
  const h = await Harness.start({ modules: [roster, presence, disco, pep, ...(opts.modules ?? [])], options: opts.options });
  const remote: Element[] = [];
  h.router.remote = async (stanza) => {
    remote.push(stanza.el);
  };
  for (const u of opts.users ?? ['alice', 'bob', 'carol', 'dave']) await h.createAccount(u);
  return { h, roster: h.api(roster), remote };
}

/** Puts `user`'s roster item for `contact` into a subscription state (from `user`'s point of view). */
export async function relate(w: World, user: string, contact: string, subscription: Subscription, groups: string[] = []): Promise<void> {
  const u = Jid.parse(`${user}@${DOMAIN}`);
  const c = Jid.parse(contact.includes('@') ? contact : `${contact}@${DOMAIN}`);
  await w.roster.update(u, c, () => ({ jid: c, name: undefined, subscription, ask: false, approved: false, groups }));
}

/** Mutual presence subscription between two local accounts. */
export async function friends(w: World, a: string, b: string): Promise<void> {
  await relate(w, a, b, 'both');
  await relate(w, b, a, 'both');
}

export function capsInfo(features: readonly string[]) {
  return { identities: [{ category: 'client', type: 'pc', name: 'Spec' }], features: [NS.discoInfo, ...features] };
}

export function verOf(features: readonly string[]): string {
  return capsVer(capsInfo(features));
}

export const isDiscoQuery = (el: Element): boolean =>
  el.name === 'iq' && el.attrs.type === 'get' && el.getChild('query', NS.discoInfo) !== undefined;

/** Answers the server's disco#info queries (about our caps) until none comes for a while. */
export async function answerDisco(c: TestClient, features: readonly string[], opts: { lie?: readonly string[]; waitMs?: number } = {}): Promise<Element[]> {
  const asked: Element[] = [];
  const info = capsInfo(opts.lie ?? features);
  for (;;) {
    let q: Element;
    try {
      q = await c.next(isDiscoQuery, opts.waitMs ?? 60);
    } catch {
      return asked;
    }
    asked.push(q);
    const node = q.getChild('query')!.attrs.node as string | undefined;
    await c.send(xml('iq', { type: 'result', id: q.attrs.id as string, to: q.attrs.from as string },
      xml('query', { xmlns: NS.discoInfo, node },
        info.identities.map((i) => xml('identity', i)),
        info.features.map((f) => xml('feature', { var: f })))));
  }
}

/**
 * Connects a resource that fetched its roster and sent initial presence announcing `features`
 * through caps (a `+notify` per node it wants), answering the server's caps query.
 */
export async function online(w: World, jid: string, features: readonly string[] = [], opts: { ver?: string; lie?: readonly string[]; caps?: boolean } = {}): Promise<TestClient> {
  const c = await w.h.connect(jid);
  await c.get(xml('query', { xmlns: NS.roster }), c.jid.bare().toString());
  await announce(w, c, features, opts);
  return c;
}

export async function announce(w: World, c: TestClient, features: readonly string[], opts: { ver?: string; lie?: readonly string[]; caps?: boolean } = {}): Promise<Element[]> {
  const caps = opts.caps === false ? null : xml('c', { xmlns: NS.caps, hash: 'sha-1', node: CAPS_NODE, ver: opts.ver ?? verOf(features) });
  await c.send(xml('presence', {}, caps));
  const asked = opts.caps === false ? [] : await answerDisco(c, features, { lie: opts.lie });
  await w.h.settle();
  return asked;
}

export const notify = (node: string) => `${node}+notify`;

export function pubsub(...children: XmlChild[]): Element {
  return xml('pubsub', { xmlns: PUBSUB }, ...children);
}

export function owner(...children: XmlChild[]): Element {
  return xml('pubsub', { xmlns: PUBSUB_OWNER }, ...children);
}

export function publishOptions(fields: Record<string, string | string[]>): Element {
  return xml('publish-options', {},
    xml('x', { xmlns: 'jabber:x:data', type: 'submit' },
      xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, PUBSUB_PUBLISH_OPTIONS)),
      Object.entries(fields).map(([k, v]) => xml('field', { var: k }, (Array.isArray(v) ? v : [v]).map((x) => xml('value', {}, x))))));
}

export function configSubmit(fields: Record<string, string | string[]>): Element {
  return xml('x', { xmlns: 'jabber:x:data', type: 'submit' },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, 'http://jabber.org/protocol/pubsub#node_config')),
    Object.entries(fields).map(([k, v]) => xml('field', { var: k }, (Array.isArray(v) ? v : [v]).map((x) => xml('value', {}, x)))));
}

/** `<iq type='set'><pubsub><publish node><item id>payload</item></publish>[options]</pubsub></iq>` to `to` (own account by default). */
export function publish(c: TestClient, node: string, payload: Element, opts: { id?: string; options?: Record<string, string | string[]>; to?: string } = {}): Promise<Element> {
  return c.iq(xml('iq', { type: 'set', to: opts.to },
    pubsub(xml('publish', { node }, xml('item', { id: opts.id }, payload)), opts.options ? publishOptions(opts.options) : null)));
}

export function items(c: TestClient, to: string, node: string, attrs: Record<string, string> = {}, ids: string[] = []): Promise<Element> {
  return c.iq(xml('iq', { type: 'get', to }, pubsub(xml('items', { node, ...attrs }, ids.map((id) => xml('item', { id }))))));
}

export function itemIds(reply: Element): string[] {
  return reply.getChild('pubsub', PUBSUB)?.getChild('items')?.getChildren('item').map((i) => i.attrs.id as string) ?? [];
}

export const isEvent = (node?: string) => (el: Element): boolean => {
  if (el.name !== 'message') return false;
  const items = el.getChild('event', PUBSUB_EVENT)?.getChildElements()[0];
  return items !== undefined && (node === undefined || items.attrs.node === node);
};

export function events(c: TestClient, node?: string): Element[] {
  return c.received.filter(isEvent(node));
}

export function tune(title: string): Element {
  return xml('tune', { xmlns: 'http://jabber.org/protocol/tune' }, xml('title', {}, title));
}

export const TUNE = 'http://jabber.org/protocol/tune';
export { pep, PUBSUB, PUBSUB_EVENT, PUBSUB_OWNER };
