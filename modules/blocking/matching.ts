// XEP-0191 §6 JID matching (as XEP-0016): an item blocks the entity it names, a bare JID every
// resource of the account, a domain the domain itself and every JID at it.
import type { Jid } from '../../lib/module-api.js';

/** The blocklist items that would match `jid`: itself, its bare JID, its domain. */
export function candidates(jid: Jid): string[] {
  const out = new Set<string>([jid.toString(), jid.bare().toString(), jid.domain]);
  return [...out];
}

export function matches(list: ReadonlySet<string>, jid: Jid): boolean {
  if (list.size === 0) return false;
  return candidates(jid).some((c) => list.has(c));
}

/** Whether an item applies to a roster contact (a bare JID). */
export function coversContact(item: Jid, contact: Jid): boolean {
  if (item.local === undefined) return item.resource === undefined && item.domain === contact.domain;
  return item.bare().equals(contact);
}
