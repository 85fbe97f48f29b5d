// XEP-0045 §7.2.13-7.2.14: discussion history on entering, read from the room archive and cut by
// the client's <history/> (maxstanzas, maxchars, seconds, since) within the room's
// muc#maxhistoryfetch, whichever sends the least.
import { NS, xml } from '../../lib/module-api.js';
import type { Element, Jid } from '../../lib/module-api.js';
import { withoutRealJid } from './archive.js';
import type { Room } from './room.js';
import type { MucService } from './service.js';
import { parseStamp, stamp } from './stanzas.js';

export interface HistoryRequest {
  maxStanzas: number;
  maxChars?: number;
  start?: number;
}

function whole(value: unknown): number | undefined {
  if (typeof value !== 'string' || !/^\d{1,9}$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

/** The client's <history/>, within the room's limit; malformed attributes are ignored. */
export function historyRequest(room: Room, history: Element | undefined, now = Date.now()): HistoryRequest {
  const limit = room.config.maxHistoryFetch;
  const maxStanzas = whole(history?.attrs.maxstanzas);
  const out: HistoryRequest = { maxStanzas: Math.min(maxStanzas ?? limit, limit) };
  const maxChars = whole(history?.attrs.maxchars);
  if (maxChars !== undefined) out.maxChars = maxChars;
  const seconds = whole(history?.attrs.seconds);
  const since = parseStamp(history?.attrs.since as string | undefined);
  const bounds = [seconds === undefined ? undefined : now - seconds * 1000, since].filter((b): b is number => b !== undefined);
  if (bounds.length > 0) out.start = Math.max(...bounds);
  return out;
}

/** Moderation tombstones, subject changes and the room's own announcements are not discussion. */
function isDiscussion(message: Element, room: Room): boolean {
  if (message.attrs.from === room.jid.toString()) return false;
  // §7.2.15: the subject comes after the history, once, as it is now.
  if (message.getChild('subject') !== undefined && message.getChild('body') === undefined) return false;
  return !message.getChild('retracted', NS.retract);
}

export async function sendHistory(svc: MucService, room: Room, to: Jid, history: Element | undefined): Promise<void> {
  const req = historyRequest(room, history);
  if (req.maxStanzas === 0 || req.maxChars === 0) return;
  const newestFirst = await svc.archive.recent(room.name, req.maxStanzas, req.start);
  const picked: Element[] = [];
  let chars = 0;
  for (const m of newestFirst) {
    if (!isDiscussion(m.message, room)) continue;
    const out = withoutRealJid(m.message);
    out.attrs.to = to.toString();
    // XEP-0203 with the room as `from`, and the stanza-id under which the archive holds it.
    out.cnode(xml('delay', { xmlns: NS.delay, from: room.jid.toString(), stamp: stamp(m.when) }));
    out.cnode(xml('stanza-id', { xmlns: NS.sid, id: m.id, by: room.jid.toString() }));
    // maxchars counts whole stanzas as sent; the history is the largest tail that fits (§7.2.14).
    if (req.maxChars !== undefined) {
      chars += out.toString().length;
      if (chars > req.maxChars) break;
    }
    picked.push(out);
  }
  for (const out of picked.reverse()) await svc.send(out);
}
