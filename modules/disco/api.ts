// The disco module's API for other modules (PEP, MUC, upload, commands, caps): providers that
// add identities, features, XEP-0128 forms and items to what disco answers, per target and node.
import type { DiscoIdentity, Element, Jid } from '../../lib/module-api.js';

/** `host`: the server's own domain. `account`: an account's bare JID (asked by itself or others). */
export type DiscoTarget = 'host' | 'account';

/** A scope that matches every node of a target; its providers return undefined for nodes they do not serve. */
export const ANY_NODE: unique symbol = Symbol('disco: any node');
export type AnyNode = typeof ANY_NODE;

export interface DiscoScope {
  target: DiscoTarget;
  /**
   * Omitted: the entity itself (a query without `node`). A string: exactly that node, which then
   * exists for disco. `ANY_NODE`: every node query on the target (dynamic nodes such as PEP's);
   * such a node exists only when one of these providers returns something for it.
   */
  node?: string | AnyNode;
}

export interface DiscoQuery {
  target: DiscoTarget;
  /** The entity asked about: the host's domain or an account's bare JID. */
  jid: Jid;
  /** The `node` attribute of the query; undefined for the entity itself. */
  node: string | undefined;
  /** Who asks. Undefined asks for the public view (what anyone may see), e.g. for the caps hash. */
  from: Jid | undefined;
}

/** A disco identity, optionally localised (`xml:lang`). */
export interface DiscoInfoIdentity extends DiscoIdentity {
  lang?: string;
}

/** What one provider adds to a disco#info answer. */
export interface DiscoInfoContribution {
  identities?: readonly DiscoInfoIdentity[];
  features?: readonly string[];
  /** XEP-0128: `<x xmlns='jabber:x:data' type='result'>` forms with a hidden FORM_TYPE field. */
  forms?: readonly Element[];
}

/** A complete disco#info answer: identities deduplicated, features deduplicated and sorted. */
export interface DiscoInfo {
  identities: DiscoInfoIdentity[];
  features: string[];
  forms: Element[];
}

export interface DiscoItem {
  jid: string;
  node?: string;
  name?: string;
}

type Awaitable<T> = T | Promise<T>;

/** Returns what to add, or undefined for nothing. May throw a StanzaError (e.g. forbidden) to refuse the query. */
export type DiscoInfoProvider = (query: DiscoQuery) => Awaitable<DiscoInfoContribution | undefined>;
export type DiscoItemsProvider = (query: DiscoQuery) => Awaitable<readonly DiscoItem[] | undefined>;

export interface DiscoApi {
  /** Adds to disco#info answers in a scope. Returns a function that removes the provider. */
  addInfoProvider(scope: DiscoScope, provider: DiscoInfoProvider): () => void;
  /** Adds to disco#items answers in a scope. Returns a function that removes the provider. */
  addItemsProvider(scope: DiscoScope, provider: DiscoItemsProvider): () => void;
  /** The disco#info answer for a query, exactly as disco would send it; undefined for an unknown node. */
  info(query: DiscoQuery): Promise<DiscoInfo | undefined>;
  /** The disco#items answer for a query; undefined for an unknown node. */
  items(query: DiscoQuery): Promise<DiscoItem[] | undefined>;
  /**
   * Called (batched, on the next turn of the event loop) after providers are added or removed or
   * `changed()` is called; earlier changes are not replayed. Returns a function that removes the listener.
   */
  onChange(listener: () => void): () => void;
  /** For providers whose answers change at runtime: tells listeners (e.g. caps) to recompute. */
  changed(): void;
}
