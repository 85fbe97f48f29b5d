// The vcard module's API for other modules (avatars keeps the PHOTO in step with PEP): read and
// write an account's vCard with the same rules as a client's set, and hear of the vCards
// clients set.
import type { Element } from '../../lib/module-api.js';

/** A vCard an account's client set (XEP-0054 §3.2); undefined when it removed it (empty vCard). */
export interface VcardChanged {
  user: string;
  vcard: Element | undefined;
}

export type VcardChangedListener = (event: VcardChanged) => void | Promise<void>;

export type VcardSetResult = { stored: true } | { stored: false; reason: string };

export interface VcardApi {
  /** The stored vCard of a local account on this host, if any. */
  get(user: string): Promise<Element | undefined>;
  /**
   * Replaces the account's vCard (an empty one removes it), refused when over `maxSize` as a
   * client's set would be. Listeners are not told: they hear of clients' sets only.
   */
  set(user: string, vcard: Element): Promise<VcardSetResult>;
  /** Calls `listener` after a client stored its vCard; returns the unsubscribe function. Errors are logged. */
  onChanged(listener: VcardChangedListener): () => void;
}
