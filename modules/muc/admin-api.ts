// What the server's admin tools (HTTP admin API, web admin) do with MUC rooms, built only on what
// the muc module already exposes: its API (`MucApi`), its room table, and XMPP itself. Rooms are
// listed from the room table (persistent rooms) and the service's disco#items (public rooms,
// temporary ones included); they are destroyed the way an owner does it (XEP-0045 §10.9), by a
// server admin, whom every room counts as an owner, so occupants get the usual <destroy/>.
import { Jid, NS, StanzaError, xml } from '../../lib/module-api.js';
import type { Database, Element } from '../../lib/module-api.js';
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
}

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

  return {
    domain: muc.domain,
    async list() {
      const stored = new Set(await storedRooms());
      const listed = new Set(await publicRooms());
      const names = new Set([...stored, ...listed]);
      const out: RoomSummary[] = [];
      for (const name of [...names].sort().slice(0, ROOM_LIST_LIMIT)) {
        const live = muc.room(name);
        out.push({
          jid: Jid.of(name, muc.domain).toString(),
          title: live?.config.name || undefined,
          persistent: live?.config.persistent ?? stored.has(name),
          public: live?.config.public ?? listed.has(name),
          occupants: live?.occupants.length ?? 0,
        });
      }
      return out;
    },
    async destroy(name, admin, reason) {
      if (!(await muc.exists(name))) return false;
      const destroy = xml('destroy', {}, reason === undefined || reason === '' ? null : xml('reason', {}, reason));
      const iq = xml('iq', { type: 'set', from: admin.bare().toString(), to: Jid.of(name, muc.domain).toString() }, xml('query', { xmlns: NS.mucOwner }, destroy));
      try {
        await deps.request(iq);
      } catch (err) {
        if (err instanceof StanzaError && err.condition === 'item-not-found') return false;
        throw err;
      }
      return true;
    },
  };
}
