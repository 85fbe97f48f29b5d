// The room archive: every groupchat message the room accepts and that carries content is kept
// once, under an unpredictable UID that the room stamps on the reflected copies as its XEP-0359
// stanza-id (XEP-0313 §3.5). The generic archive store holds it: host = service domain, user =
// room name, `with` = the sender's real bare JID (for `with` filters), value = the message as the
// room reflected it, plus <x xmlns='…muc#user'><item jid=…/></x> for those allowed to see real JIDs.
import { randomBytes } from 'node:crypto';
import { cloneElement, NS, parseXml, xml } from '../../lib/module-api.js';
import type { ArchivePage, ArchiveQuery, ArchiveStore, Element, Jid } from '../../lib/module-api.js';
import { ArchiveQuery as MamPaging } from '../mam/paging.js';
import type { MamQuery } from '../mam/query.js';
import { MUC_NS } from './stanzas.js';

export interface ArchivedMessage {
  id: string;
  when: number;
  message: Element;
}

/** Namespaces whose presence makes a bodiless groupchat message worth keeping. */
const CONTENT_NS = new Set<string>([
  NS.retract,
  MUC_NS.retract0,
  MUC_NS.fasten,
  'urn:xmpp:reactions:0',
  'eu.siacs.conversations.axolotl',
  'urn:xmpp:omemo:2',
  'urn:xmpp:openpgp:0',
  'jabber:x:oob',
  'urn:xmpp:sims:1',
]);

/** XEP-0313 §6.1.2 / XEP-0334: does a reflected groupchat message go into the archive? */
export function archivable(message: Element): boolean {
  const children = message.getChildElements();
  const hint = (name: string) => children.some((c) => c.name === name && c.attrs.xmlns === NS.hints);
  if (hint('no-store') || hint('no-permanent-store')) return false;
  if (hint('store')) return true;
  return children.some((c) => (c.name === 'body' && (c.attrs.xmlns === undefined || c.attrs.xmlns === NS.client)) || CONTENT_NS.has(c.attrs.xmlns as string));
}

function parse(value: string): Element | undefined {
  try {
    return parseXml(value);
  } catch {
    return undefined;
  }
}

export class RoomArchive {
  constructor(private readonly store: ArchiveStore, private readonly host: string) {}

  /** Stores a reflected message; returns its UID. */
  async append(room: string, message: Element, sender: Jid | undefined, when = Date.now()): Promise<string> {
    const id = randomBytes(12).toString('base64url');
    const stored = xml('message', { ...message.attrs, to: undefined, xmlns: undefined });
    for (const child of message.getChildElements()) stored.cnode(cloneElement(child));
    if (sender !== undefined) stored.cnode(xml('x', { xmlns: NS.mucUser }, xml('item', { jid: sender.bare().toString() })));
    await this.store.append(this.host, room, { id, when, with: sender?.bare().toString(), value: stored.toString() });
    return id;
  }

  async get(room: string, id: string): Promise<ArchivedMessage | undefined> {
    const page = await this.store.query(this.host, room, { ids: [id], limit: 1 });
    return this.decode(page.items)[0];
  }

  /** The newest messages first, at most `limit`, not older than `start`. */
  async recent(room: string, limit: number, start?: number): Promise<ArchivedMessage[]> {
    if (limit <= 0) return [];
    const page = await this.store.query(this.host, room, { limit, start, reverse: true });
    return this.decode(page.items);
  }

  async query(room: string, q: ArchiveQuery): Promise<{ page: ArchivePage; messages: ArchivedMessage[] }> {
    const page = await this.store.query(this.host, room, q);
    return { page, messages: this.decode(page.items) };
  }

  count(room: string, q: Omit<ArchiveQuery, 'limit' | 'after' | 'before' | 'reverse'>): Promise<number> {
    return this.store.count(this.host, room, q);
  }

  /** A XEP-0313 query with RSM paging, through the mam module's paging of the generic store. */
  async page(room: string, q: MamQuery, limit: number): Promise<{ messages: ArchivedMessage[]; complete: boolean; count: number | undefined; index: number | undefined }> {
    const r = await new MamPaging(this.store, this.host, room).run(q, limit, undefined);
    return { messages: this.decode(r.items), complete: r.complete, count: r.count, index: r.index };
  }

  /**
   * Replaces a stored message (a moderation tombstone, XEP-0425 §4). The generic store is
   * append-only, so the items of that millisecond are taken out and put back in their order with
   * the one replaced: the archive order (time, then arrival) and every UID stay as they were.
   */
  async replace(room: string, id: string, message: Element): Promise<boolean> {
    const target = (await this.store.query(this.host, room, { ids: [id], limit: 1 })).items[0];
    if (!target) return false;
    const same = await this.store.query(this.host, room, { start: target.when, end: target.when, limit: 1000 });
    await this.store.delete(this.host, room, { ids: same.items.map((i) => i.id) });
    for (const item of same.items) await this.store.append(this.host, room, item.id === id ? { ...item, value: message.toString() } : item);
    return true;
  }

  /** Keeps only the newest `keep` messages (a room that does not log keeps just its join history). */
  async prune(room: string, keep: number): Promise<void> {
    if (keep === 0) {
      await this.store.delete(this.host, room);
      return;
    }
    const page = await this.store.query(this.host, room, { limit: keep + 1, reverse: true });
    // Everything older than the oldest kept message (its millisecond stays whole).
    if (page.items.length > keep) await this.store.delete(this.host, room, { olderThan: page.items[keep - 1].when });
  }

  /** Deletes messages older than `olderThan` (retention). */
  expire(room: string, olderThan: number): Promise<number> {
    return this.store.delete(this.host, room, { olderThan });
  }

  async deleteRoom(room: string): Promise<void> {
    await this.store.deleteAccount(this.host, room);
  }

  private decode(items: ArchivePage['items']): ArchivedMessage[] {
    const out: ArchivedMessage[] = [];
    for (const item of items) {
      const message = parse(item.value);
      if (message) out.push({ id: item.id, when: item.when, message });
    }
    return out;
  }
}

/** The archived message without the real-JID extension (for those who may not see it). */
export function withoutRealJid(message: Element): Element {
  const out = xml('message', message.attrs);
  for (const child of message.getChildElements()) {
    if (child.name === 'x' && child.attrs.xmlns === NS.mucUser) continue;
    out.cnode(cloneElement(child));
  }
  return out;
}
