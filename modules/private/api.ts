// The private module's API for other modules (bookmarks keeps its XEP-0048 copy here): read and
// write an account's fragments with the same rules and limits as a client's set, and hear of
// the fragments clients store.
import type { Element } from '../../lib/module-api.js';

/** One fragment an account's client stored (XEP-0049 set, answered with a result). */
export interface PrivateStored {
  user: string;
  /** The stored element; an empty one means the fragment was removed. */
  fragment: Element;
}

export type PrivateStoredListener = (event: PrivateStored) => void | Promise<void>;

export interface PrivateXmlApi {
  /** The stored fragment `{ns}name` of a local account on this host, if any. */
  get(user: string, name: string, ns: string): Promise<Element | undefined>;
  /**
   * Stores a fragment, replacing the one with its name and namespace; an empty element removes
   * it. Refused (with the reason) as a client's set would be: a reserved namespace, or the
   * account's limits. Listeners are not told: they hear of clients' sets only.
   */
  set(user: string, fragment: Element): Promise<{ stored: true } | { stored: false; reason: string }>;
  /**
   * Calls `listener` after a client of the account stored a fragment `{ns}name`; returns the
   * unsubscribe function. Runs once the set is stored, before its result is sent; errors are logged.
   */
  onStored(name: string, ns: string, listener: PrivateStoredListener): () => void;
}
