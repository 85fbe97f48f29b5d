// The room archive: every groupchat message the room accepts and that carries content is kept
// once, under an unpredictable UID that the room stamps on the reflected copies as its XEP-0359
// stanza-id (XEP-0313 §3.5). The generic archive store holds it: host = service domain, user =
// room name, `with` = the sender's real bare JID (for `with` filters), value = the message as the
// room reflected it, plus <x xmlns='…muc#user'><item jid=…/></x> for those allowed to see real JIDs.
//
// The room does not wait for a write before it sends the message out (the UID is made here, not
// by the store): writes are issued in the order the room accepts messages, which is the order the
// store keeps, and every read of a room's archive first waits for that room's writes, so whoever
// asks (history on entering, MAM, moderation) sees every message already sent.
import { randomBytes } from 'node:crypto';
import { cloneElement, NS, parseXml, xml } from '../../lib/module-api.js';
import type { ArchivePage, ArchiveQuery, ArchiveStore, Element, Jid } from '../../lib/module-api.js';
import { ArchiveQuery as MamPaging } from '../mam/paging.js';
import type { MamQuery } from '../mam/query.js';
import { MUC_NS } from './stanzas.js';

/** Messages past the newest `keep` that one prune looks at. */
const PRUNE_PAGE = 50;

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

/** XEP-0359 §4 / XEP-0313 §3: an unpredictable UID, never reused. */
export function newArchiveId(): string {
  return randomBytes(12).toString('base64url');
}

export class RoomArchive {
  /** Room name → the room's writes not yet durable (resolves when all are, never rejects). */
  private readonly writes = new Map<string, Promise<void>>();

  constructor(
    private readonly store: ArchiveStore,
    private readonly host: string,
    private readonly onWriteFailed: (err: unknown, room: string, id: string) => void,
  ) {}

  /**
   * Stores a reflected message under `id` without making the caller wait; `keep`, when given,
   * then trims the room to its newest `keep` messages (a room that does not log). The store gets
   * the row before this returns, so writes keep the order of the calls.
   */
  write(room: string, id: string, message: Element, sender: Jid | undefined, keep?: number, when = Date.now()): void {
    const stored = xml('message', { ...message.attrs, to: undefined, xmlns: undefined });
    for (const child of message.getChildElements()) stored.cnode(cloneElement(child));
    if (sender !== undefined) stored.cnode(xml('x', { xmlns: NS.mucUser }, xml('item', { jid: sender.bare().toString() })));
    const written = this.store.append(this.host, room, { id, when, with: sender?.bare().toString(), value: stored.toString() });
    const done = (keep === undefined ? written : written.then(() => this.pruneNow(room, keep))).catch((err: unknown) => this.onWriteFailed(err, room, id));
    const previous = this.writes.get(room);
    const tail = previous === undefined ? done : Promise.all([previous, done]).then(() => undefined);
    this.writes.set(room, tail);
    void tail.then(() => {
      if (this.writes.get(room) === tail) this.writes.delete(room);
    });
  }

  /** Resolves once every write issued for the room so far is done. */
  async settled(room: string): Promise<void> {
    await this.writes.get(room);
  }

  /** Resolves once every write issued so far, in every room, is done (before the server stops). */
  async flush(): Promise<void> {
    await Promise.all([...this.writes.values()]);
  }

  async get(room: string, id: string): Promise<ArchivedMessage | undefined> {
    await this.settled(room);
    const page = await this.store.query(this.host, room, { ids: [id], limit: 1 });
    return this.decode(page.items)[0];
  }

  /** The newest messages first, at most `limit`, not older than `start`. */
  async recent(room: string, limit: number, start?: number): Promise<ArchivedMessage[]> {
    if (limit <= 0) return [];
    await this.settled(room);
    const page = await this.store.query(this.host, room, { limit, start, reverse: true });
    return this.decode(page.items);
  }

  async query(room: string, q: ArchiveQuery): Promise<{ page: ArchivePage; messages: ArchivedMessage[] }> {
    await this.settled(room);
    const page = await this.store.query(this.host, room, q);
    return { page, messages: this.decode(page.items) };
  }

  async count(room: string, q: Omit<ArchiveQuery, 'limit' | 'after' | 'before' | 'reverse'>): Promise<number> {
    await this.settled(room);
    return this.store.count(this.host, room, q);
  }

  /** A XEP-0313 query with RSM paging, through the mam module's paging of the generic store. */
  async page(room: string, q: MamQuery, limit: number): Promise<{ messages: ArchivedMessage[]; complete: boolean; count: number | undefined; index: number | undefined }> {
    await this.settled(room);
    const r = await new MamPaging(this.store, this.host, room).run(q, limit, undefined);
    return { messages: this.decode(r.items), complete: r.complete, count: r.count, index: r.index };
  }

  /**
   * Replaces a stored message in place (a moderation tombstone, XEP-0425 §4): the archive order
   * (time, then arrival) and the UID stay as they were. False when the room has no such message.
   */
  async replace(room: string, id: string, message: Element): Promise<boolean> {
    // The room's own writes (an append, then its pruning) finish first; the store waits for its batcher.
    await this.settled(room);
    return this.store.replace(this.host, room, id, message.toString());
  }

  /** Keeps only the newest `keep` messages (a room that does not log keeps just its join history). */
  async prune(room: string, keep: number): Promise<void> {
    await this.settled(room);
    await this.pruneNow(room, keep);
  }

  private async pruneNow(room: string, keep: number): Promise<void> {
    if (keep === 0) {
      await this.store.delete(this.host, room);
      return;
    }
    // Pruned after every write, a room holds at most `keep` + 1 messages: those past `keep` go by
    // id (several can share a millisecond), anything older than what the page saw by time.
    const page = await this.store.query(this.host, room, { limit: keep + PRUNE_PAGE, reverse: true });
    const extra = page.items.slice(keep);
    if (extra.length === 0) return;
    await this.store.delete(this.host, room, { ids: extra.map((i) => i.id) });
    if (page.items.length === keep + PRUNE_PAGE) await this.store.delete(this.host, room, { olderThan: extra[extra.length - 1].when });
  }

  /** Deletes messages older than `olderThan` (retention). */
  async expire(room: string, olderThan: number): Promise<number> {
    await this.settled(room);
    return this.store.delete(this.host, room, { olderThan });
  }

  async deleteRoom(room: string): Promise<void> {
    await this.settled(room);
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
