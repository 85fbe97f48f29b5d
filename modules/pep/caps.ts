// XEP-0115 entity capabilities of the entities PEP notifies: what a `<c/>` in their presence
// means, found once per `ver` by a disco#info query to the announcing entity and verified with
// the hash before it is cached (XEP-0115 §5.4). Verified answers are shared by every host of the
// process. An answer whose hash does not match is invalid (§5.4 3.7): not cached, not used, so
// its sender gets no notifications until it announces a `ver` that matches what it answers.
// Legacy caps (no `hash`) cannot be verified; their answer serves that one entity, uncached.
import { xml } from '../../lib/module-api.js';
import type { Element, Jid, Logger } from '../../lib/module-api.js';
import { isCapsHash, verOfQuery } from '../caps/api.js';
import { CAPS, DISCO_INFO } from './ns.js';

export interface CapsAnnouncement {
  node: string;
  ver: string;
  /** The hash function (XEP-0115 v1.5+); undefined for legacy caps, which cannot be verified. */
  hash: string | undefined;
}

/** The `<c xmlns='http://jabber.org/protocol/caps'/>` of a presence, if well formed. */
export function capsOf(presence: Element): CapsAnnouncement | undefined {
  const c = presence.getChild('c', CAPS);
  if (!c) return undefined;
  const node = c.attrs.node as string | undefined;
  const ver = c.attrs.ver as string | undefined;
  if (!node || !ver) return undefined;
  return { node, ver, hash: c.attrs.hash as string | undefined };
}

/** Verified features by `hash ver`, least recently used first. */
const VERIFIED_MAX = 5000;
const verified = new Map<string, ReadonlySet<string>>();
const inflight = new Map<string, Promise<ReadonlySet<string> | undefined>>();

function cacheKey(c: CapsAnnouncement): string | undefined {
  return c.hash !== undefined && isCapsHash(c.hash) ? `${c.hash} ${c.ver}` : undefined;
}

function remember(key: string, features: ReadonlySet<string>): void {
  verified.delete(key);
  verified.set(key, features);
  while (verified.size > VERIFIED_MAX) verified.delete(verified.keys().next().value as string);
}

/** For specs: the verified cache (read-only use) and a way to empty it. */
export const capsCache = {
  has: (hash: string, ver: string): boolean => verified.has(`${hash} ${ver}`),
  clear: (): void => {
    verified.clear();
    inflight.clear();
  },
};

export type Request = (iq: Element, timeoutMs?: number) => Promise<Element>;

export class CapsResolver {
  constructor(private readonly request: Request, private readonly log: Logger, private readonly timeoutMs = 10_000) {}

  /** The verified features of an announcement, when already known. */
  known(c: CapsAnnouncement): ReadonlySet<string> | undefined {
    const key = cacheKey(c);
    if (key === undefined) return undefined;
    const hit = verified.get(key);
    if (hit) remember(key, hit);
    return hit;
  }

  /**
   * The features behind an announcement by `entity` (a full JID), asking it from `asker` (the
   * account whose PEP service wants to know) when the `ver` is not known yet. Undefined when the
   * entity does not answer.
   */
  async resolve(c: CapsAnnouncement, entity: Jid, asker: Jid): Promise<ReadonlySet<string> | undefined> {
    const known = this.known(c);
    if (known) return known;
    // An unknown hash function: nothing could be verified, so nothing is asked.
    if (c.hash !== undefined && !isCapsHash(c.hash)) return undefined;
    const key = cacheKey(c);
    if (key !== undefined) {
      const pending = inflight.get(key);
      if (pending) {
        const shared = await pending;
        // Another entity's query verified this ver; if it did not, ask this entity itself.
        if (shared && verified.has(key)) return shared;
      }
    }
    const query = this.query(c, entity, asker, key);
    if (key !== undefined && !inflight.has(key)) {
      inflight.set(key, query);
      query.finally(() => { if (inflight.get(key) === query) inflight.delete(key); }).catch(() => undefined);
    }
    return query;
  }

  private async query(c: CapsAnnouncement, entity: Jid, asker: Jid, key: string | undefined): Promise<ReadonlySet<string> | undefined> {
    let reply: Element;
    try {
      reply = await this.request(
        xml('iq', { type: 'get', from: asker.toString(), to: entity.toString() }, xml('query', { xmlns: DISCO_INFO, node: `${c.node}#${c.ver}` })),
        this.timeoutMs,
      );
    } catch (err) {
      this.log.debug({ err, entity: entity.toString() }, 'caps: no disco#info answer');
      return undefined;
    }
    const query = reply.attrs.type === 'result' ? reply.getChild('query', DISCO_INFO) : undefined;
    if (!query) return undefined;
    const features = new Set(query.getChildren('feature').map((f) => (f.attrs.var as string | undefined) ?? '').filter((f) => f !== ''));
    if (key !== undefined && c.hash !== undefined && isCapsHash(c.hash)) {
      if (verOfQuery(query, c.hash) !== c.ver) {
        this.log.info({ entity: entity.toString(), ver: c.ver }, 'caps: the disco#info answer does not match its ver; ignored');
        return undefined;
      }
      remember(key, features);
    }
    return features;
  }
}

/** XEP-0163 §4 / XEP-0060 §9.2: the nodes a feature list asks notifications for (`<node>+notify`). */
export function notifyNodes(features: ReadonlySet<string> | undefined): ReadonlySet<string> {
  const out = new Set<string>();
  for (const f of features ?? []) if (f.endsWith('+notify')) out.add(f.slice(0, -'+notify'.length));
  return out;
}
