// XEP-0402 bookmarks (one `<conference xmlns='urn:xmpp:bookmarks:1'/>` item per room, the room
// JID as item id) to and from the XEP-0048 `<storage xmlns='storage:bookmarks'/>` list that
// older clients keep in PEP (XEP-0223) or in private XML (XEP-0049). XEP-0402 §5.3.
import { Jid, xml } from '../../lib/module-api.js';
import type { Element } from '../../lib/module-api.js';

export const NS_BOOKMARKS = 'urn:xmpp:bookmarks:1';
export const NS_LEGACY = 'storage:bookmarks';

/** A conference of XEP-0402: the room, and the payload stored for it. */
export interface Bookmark {
  jid: string;
  conference: Element;
}

function truthy(v: string | undefined): boolean {
  return v === 'true' || v === '1';
}

/** XEP-0048 `<conference jid=…/>` → XEP-0402 item; undefined when it has no valid room JID. */
export function fromLegacyConference(c: Element): Bookmark | undefined {
  const jid = Jid.tryParse(c.attrs.jid as string | undefined);
  if (!jid || jid.resource !== undefined) return undefined;
  const nick = c.getChildText('nick');
  const password = c.getChildText('password');
  // Elements XEP-0048 does not define go to <extensions/>, which XEP-0402 clients must keep.
  const extra = c.getChildElements().filter((e) => e.name !== 'nick' && e.name !== 'password');
  const conference = xml(
    'conference',
    { xmlns: NS_BOOKMARKS, name: (c.attrs.name as string | undefined) || undefined, autojoin: truthy(c.attrs.autojoin as string | undefined) ? 'true' : undefined },
    nick ? xml('nick', {}, nick) : null,
    password ? xml('password', {}, password) : null,
    extra.length > 0 ? xml('extensions', {}, extra.map((e) => withNs(e))) : null,
  );
  return { jid: jid.toString(), conference };
}

/** XEP-0402 item → XEP-0048 `<conference/>` (in the storage:bookmarks namespace). */
export function toLegacyConference(b: Bookmark): Element {
  const c = b.conference;
  const nick = c.getChildText('nick');
  const password = c.getChildText('password');
  const extensions = c.getChild('extensions')?.getChildElements() ?? [];
  return xml(
    'conference',
    { jid: b.jid, name: (c.attrs.name as string | undefined) || undefined, autojoin: truthy(c.attrs.autojoin as string | undefined) ? 'true' : 'false' },
    nick ? xml('nick', {}, nick) : null,
    password ? xml('password', {}, password) : null,
    extensions.map((e) => withNs(e)),
  );
}

/** A copy that carries its namespace itself (it is moved to another parent). */
function withNs(el: Element): Element {
  const copy = xml(el.name, { ...el.attrs, xmlns: el.getNS() || undefined });
  copy.children = el.children;
  return copy;
}

/** The bookmarks of a XEP-0048 storage element, one per room (the first wins). */
export function bookmarksOfStorage(storage: Element): Bookmark[] {
  const out = new Map<string, Bookmark>();
  for (const c of storage.getChildren('conference')) {
    const b = fromLegacyConference(c);
    if (b && !out.has(b.jid)) out.set(b.jid, b);
  }
  return [...out.values()];
}

/** XEP-0048 storage with these bookmarks, and the `<url/>` bookmarks kept from before (XEP-0402 has none). */
export function storageOf(bookmarks: readonly Bookmark[], urls: readonly Element[]): Element {
  return xml('storage', { xmlns: NS_LEGACY }, bookmarks.map(toLegacyConference), urls.map((u) => withNs(u)));
}

export function urlsOf(storage: Element | undefined): Element[] {
  return storage?.getChildren('url') ?? [];
}

/** A comparable form of a payload: attributes sorted, whitespace between elements dropped. */
export function canonical(el: Element | undefined): string {
  if (!el) return '';
  const attrs = Object.keys(el.attrs).filter((k) => el.attrs[k] !== undefined && el.attrs[k] !== null).sort().map((k) => `${k}=${JSON.stringify(String(el.attrs[k]))}`).join(' ');
  const kids = el.children
    .map((c) => (typeof c === 'string' ? c.trim() : canonical(c)))
    .filter((c) => c !== '')
    .join('');
  return `<${el.name} ${attrs}>${kids}</${el.name}>`;
}
