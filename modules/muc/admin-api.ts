// What the server's admin tools (HTTP admin API, web admin) do with MUC rooms, built only on what
// the muc module already exposes: its API (`MucApi`), its room table, and XMPP itself. Rooms are
// listed from the room table (persistent rooms) and the service's disco#items (public rooms,
// temporary ones included); they are destroyed the way an owner does it (XEP-0045 §10.9), by a
// server admin, whom every room counts as an owner, so occupants get the usual <destroy/>.
import { Jid, NS, StanzaError, xml } from '../../lib/module-api.js';
import type { Database, Element, StanzaErrorCondition } from '../../lib/module-api.js';
import type { MucApi } from './index.js';
import { RoomStore } from './storage.js';

/** Rooms listed at most, per host (the admin pages show a bounded list). */
export const ROOM_LIST_LIMIT = 1000;
const PAGE = 200;

export interface RoomSummary {
  jid: string;
  /** The room's name from its configuration (muc#roomconfig_roomname), when set. */
  title: string | undefined;
  persistent: boolean;
  public: boolean;
  occupants: number;
}

export interface MucAdminDeps {
  muc: MucApi;
  host: string;
  storage: Database;
  /** Sends an IQ through the server's router and waits for the reply. */
  request(iq: Element): Promise<Element>;
  /** In a cluster: the rooms of this service that other nodes hold (room JIDs they claimed). */
  roomsElsewhere?(domain: string): Promise<string[]>;
}

/** Remote rooms asked for their disco#info at once, when listing. */
const REMOTE_CONCURRENCY = 16;

export interface MucAdmin {
  readonly domain: string;
  list(): Promise<RoomSummary[]>;
  /** False when the room does not exist. `admin` must be one of the server's admins. */
  destroy(name: string, admin: Jid, reason?: string): Promise<boolean>;
}

export function mucAdmin(deps: MucAdminDeps): MucAdmin {
  const { muc } = deps;
  const store = new RoomStore(deps.storage, deps.host);

  /** The public rooms the service lists in disco#items (XEP-0045 §6.3), paged with RSM. */
  async function publicRooms(): Promise<string[]> {
    const names: string[] = [];
    let after: string | undefined;
    while (names.length < ROOM_LIST_LIMIT) {
      const set = xml('set', { xmlns: NS.rsm }, xml('max', {}, String(PAGE)), after === undefined ? null : xml('after', {}, after));
      const reply = await deps.request(xml('iq', { type: 'get', from: deps.host, to: muc.domain }, xml('query', { xmlns: NS.discoItems }, set)));
      const items = reply.getChild('query', NS.discoItems)?.getChildren('item') ?? [];
      for (const item of items) {
        const jid = Jid.tryParse(item.attrs.jid as string | undefined);
        if (jid?.local !== undefined) names.push(jid.local);
      }
      const last = reply.getChild('query', NS.discoItems)?.getChild('set', NS.rsm)?.getChildText('last') ?? undefined;
      if (items.length < PAGE || last === undefined || last === after) break;
      after = last;
    }
    return names;
  }

  async function storedRooms(): Promise<string[]> {
    const names: string[] = [];
    for (let after: string | undefined; names.length < ROOM_LIST_LIMIT;) {
      const page = await store.names(after, PAGE);
      names.push(...page);
      if (page.length < PAGE) break;
      after = page[page.length - 1];
    }
    return names;
  }

  /** The rooms other cluster nodes hold; empty on a single node. */
  async function roomsElsewhere(): Promise<Set<string>> {
    const names = new Set<string>();
    for (const jid of (await deps.roomsElsewhere?.(muc.domain)) ?? []) {
      const room = Jid.tryParse(jid);
      if (room?.local !== undefined && room.domain === muc.domain) names.add(room.local);
    }
    return names;
  }

  /** A room held by another node, as its disco#info (§6.4) describes it; undefined when it is gone. */
  async function remoteSummary(name: string): Promise<Omit<RoomSummary, 'jid'> | undefined> {
    let reply: Element;
    try {
      reply = await deps.request(xml('iq', { type: 'get', from: deps.host, to: Jid.of(name, muc.domain).toString() }, xml('query', { xmlns: NS.discoInfo })));
    } catch {
      return undefined;
    }
    const query = reply.attrs.type === 'result' ? reply.getChild('query', NS.discoInfo) : undefined;
    if (!query) return undefined;
    const features = new Set(query.getChildren('feature').map((f) => f.attrs.var));
    const field = (name: string) => query.getChild('x', 'jabber:x:data')?.getChildren('field').find((f) => f.attrs.var === name)?.getChildText('value') ?? undefined;
    return {
      title: field('muc#roomconfig_roomname') || undefined,
      persistent: features.has('muc_persistent'),
      public: features.has('muc_public'),
      occupants: Number(field('muc#roominfo_occupants') ?? 0) || 0,
    };
  }

  return {
    domain: muc.domain,
    async list() {
      const stored = new Set(await storedRooms());
      const listed = new Set(await publicRooms());
      const elsewhere = await roomsElsewhere();
      const names = new Set([...stored, ...listed, ...elsewhere]);
      const out: RoomSummary[] = [];
      const remote: Array<Promise<void>> = [];
      let running = 0;
      const waiting: Array<() => void> = [];
      for (const name of [...names].sort().slice(0, ROOM_LIST_LIMIT)) {
        const jid = Jid.of(name, muc.domain).toString();
        const live = muc.room(name);
        if (!live && elsewhere.has(name)) {
          // Held by another node: ask it (its owner answers), a few at a time.
          remote.push((async () => {
            if (running >= REMOTE_CONCURRENCY) await new Promise<void>((r) => waiting.push(r));
            running++;
            try {
              const summary = await remoteSummary(name);
              if (summary) out.push({ jid, ...summary });
              else if (stored.has(name) || listed.has(name)) out.push({ jid, title: undefined, persistent: stored.has(name), public: listed.has(name), occupants: 0 });
            } finally {
              running--;
              waiting.shift()?.();
            }
          })());
          continue;
        }
        out.push({
          jid,
          title: live?.config.name || undefined,
          persistent: live?.config.persistent ?? stored.has(name),
          public: live?.config.public ?? listed.has(name),
          occupants: live?.occupants.length ?? 0,
        });
      }
      await Promise.all(remote);
      return out.sort((a, b) => a.jid.localeCompare(b.jid));
    },
    async destroy(name, admin, reason) {
      const elsewhere = deps.roomsElsewhere ? (await roomsElsewhere()).has(name) : false;
      if (!elsewhere && !(await muc.exists(name))) return false;
      const destroy = xml('destroy', {}, reason === undefined || reason === '' ? null : xml('reason', {}, reason));
      const iq = xml('iq', { type: 'set', from: admin.bare().toString(), to: Jid.of(name, muc.domain).toString() }, xml('query', { xmlns: NS.mucOwner }, destroy));
      let reply: Element;
      try {
        reply = await deps.request(iq);
      } catch (err) {
        if (err instanceof StanzaError && err.condition === 'item-not-found') return false;
        throw err;
      }
      // The router hands back error replies too (a room another node holds answers with one).
      if (reply.attrs.type === 'error') {
        const condition = reply.getChild('error')?.children.find((c): c is Element => typeof c !== 'string')?.name;
        if (condition === 'item-not-found') return false;
        throw new StanzaError((condition ?? 'internal-server-error') as StanzaErrorCondition, { text: 'the room refused to be destroyed' });
      }
      return true;
    },
  };
}
