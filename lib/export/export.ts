// Writes accounts and their data in the XEP-0227 format, one <user/> at a time so that a whole
// host never sits in memory: credentials (SCRAM keys, never a password Parley does not have),
// roster with pending requests, vCard, private XML, PEP nodes and items, offline messages, the
// message archive and the blocklist.
import type { Database } from '../storage/types.js';
import { parseXml } from '../xml/parse.js';
import { xml, type Element } from '../xml/element.js';
import { PIE, SCRAM_MECHANISMS, stamp } from './pie.js';

export interface ExportOptions {
  hosts: readonly string[];
  /** Only this account (a localpart of the single host). */
  user?: string;
  /** Include the message archive (XEP-0313); it can be large. */
  archive?: boolean;
}

/** Rows read per query from an archive: bounded work per step. */
const PAGE = 500;

type Write = (chunk: string) => void | Promise<void>;

/** Stored XML back to an element; a row that does not parse is skipped rather than failing the export. */
function stored(text: string): Element | undefined {
  try {
    return parseXml(text);
  } catch {
    return undefined;
  }
}

export async function exportData(storage: Database, opts: ExportOptions, write: Write): Promise<{ users: number }> {
  const db = storage.db;
  let users = 0;
  await write(`<?xml version='1.0' encoding='UTF-8'?>\n<server-data xmlns='${PIE.root}'>\n`);
  for (const host of opts.hosts) {
    await write(`${xml('host', { jid: host }).toString().replace(/\/>$/, '>')}\n`);
    let q = db.selectFrom('accounts').select(['user', 'bcrypt']).where('host', '=', host).orderBy('user');
    if (opts.user !== undefined) q = q.where('user', '=', opts.user);
    const accounts = (await q.execute()) as Array<{ user: string; bcrypt: string | null }>;
    for (const account of accounts) {
      const el = await userElement(storage, host, account.user, account.bcrypt);
      if (opts.archive === false) await write(`${el.toString()}\n`);
      else {
        // The archive goes last and page by page: an account's archive is never held whole.
        const text = el.toString();
        await write(text.endsWith('/>') ? `${text.slice(0, -2)}>` : text.slice(0, -'</user>'.length));
        await writeArchive(storage, host, account.user, write);
        await write('</user>\n');
      }
      users++;
      // Let other work in between accounts (better-sqlite3 is synchronous).
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await write('</host>\n');
  }
  await write('</server-data>\n');
  return { users };
}

async function userElement(storage: Database, host: string, user: string, bcrypt: string | null): Promise<Element> {
  const db = storage.db;
  const el = xml('user', { name: user });

  // XEP-0227 §3.2: SCRAM keys, base64, one element per mechanism.
  const scram = (await db.selectFrom('account_scram').selectAll().where('host', '=', host).where('user', '=', user).orderBy('hash').execute()) as Array<{
    hash: keyof typeof SCRAM_MECHANISMS; salt: string; iterations: number; stored_key: string; server_key: string;
  }>;
  for (const row of scram) {
    if (!(row.hash in SCRAM_MECHANISMS)) continue;
    el.cnode(xml('scram-credentials', { xmlns: PIE.scram, mechanism: SCRAM_MECHANISMS[row.hash] },
      xml('iter-count', {}, String(row.iterations)),
      xml('salt', {}, row.salt),
      xml('server-key', {}, row.server_key),
      xml('stored-key', {}, row.stored_key)));
  }
  if (bcrypt !== null) el.cnode(xml('bcrypt', { xmlns: PIE.parley }, bcrypt));
  const disabled = (await db.selectFrom('account_disabled').select(['since', 'reason']).where('host', '=', host).where('user', '=', user).executeTakeFirst()) as
    | { since: number | string; reason: string | null } | undefined;
  if (disabled) el.cnode(xml('disabled', { xmlns: PIE.parley, since: stamp(Number(disabled.since)), ...(disabled.reason === null ? {} : { reason: disabled.reason }) }));

  // XEP-0227 §3.3: the roster, and pending inbound requests as the presence stanzas.
  const items = (await db.selectFrom('roster_items').selectAll().where('host', '=', host).where('user', '=', user).orderBy('contact').execute()) as Array<{
    contact: string; name: string | null; subscription: string; ask: number | boolean; approved: number | boolean; groups: string;
  }>;
  if (items.length > 0) {
    el.cnode(xml('query', { xmlns: PIE.roster }, items.map((i) => xml('item', {
      jid: i.contact,
      subscription: i.subscription,
      ...(i.name === null ? {} : { name: i.name }),
      ...(Boolean(i.ask) ? { ask: 'subscribe' } : {}),
      ...(Boolean(i.approved) ? { approved: 'true' } : {}),
    }, (JSON.parse(i.groups) as string[]).map((g) => xml('group', {}, g))))));
  }
  if (await hasTable(storage, 'presence_pending')) {
    const pending = (await db.selectFrom('presence_pending').select(['contact']).where('host', '=', host).where('user', '=', user).orderBy('contact').execute()) as Array<{ contact: string }>;
    for (const p of pending) el.cnode(xml('presence', { xmlns: PIE.client, from: p.contact, to: `${user}@${host}`, type: 'subscribe' }));
  }

  // XEP-0227 §3.4: vCard and private XML.
  const vcard = await storage.keyval('vcard').get(host, user, 'vcard');
  const vcardEl = vcard === undefined ? undefined : stored(vcard);
  if (vcardEl) el.cnode(vcardEl);
  const privateKv = storage.keyval('private');
  const fragments: Element[] = [];
  for (const key of await privateKv.keys(host, user)) {
    const raw = await privateKv.get(host, user, key);
    const frag = raw === undefined ? undefined : stored(raw);
    if (frag) fragments.push(frag);
  }
  if (fragments.length > 0) el.cnode(xml('query', { xmlns: PIE.private }, fragments));

  // XEP-0227 §3.5: PEP items, and node configurations in the owner namespace.
  await pepElements(storage, host, `${user}@${host}`, el);

  // XEP-0227 §3.4: offline messages, as stored (with their XEP-0203 delay).
  const offline: Element[] = [];
  await eachArchived(storage, 'offline', host, user, (item) => {
    const m = stored(item.value);
    if (!m) return;
    m.attrs.xmlns = PIE.client;
    offline.push(m);
  });
  if (offline.length > 0) el.cnode(xml('offline-messages', {}, offline));

  // The XEP-0191 blocklist (no XEP-0227 element: the blocking namespace, as clients see it).
  const blocked = await storage.keyval('blocklist').keys(host, user);
  if (blocked.length > 0) el.cnode(xml('blocklist', { xmlns: PIE.blocking }, blocked.sort().map((jid) => xml('item', { jid }))));
  return el;
}

/** XEP-0227 §3.6: the archive, as XEP-0313 results, written a page at a time. */
async function writeArchive(storage: Database, host: string, user: string, write: Write): Promise<void> {
  let open = false;
  const archive = storage.archive('mam');
  let after: string | undefined;
  for (;;) {
    const page = await archive.query(host, user, { limit: PAGE, ...(after === undefined ? {} : { after }) });
    let chunk = '';
    for (const item of page.items) {
      const m = stored(item.value);
      if (!m) continue;
      m.attrs.xmlns = PIE.client;
      chunk += xml('result', { xmlns: PIE.mamResult, id: item.id },
        xml('forwarded', { xmlns: PIE.forward }, xml('delay', { xmlns: PIE.delay, stamp: stamp(item.when) }), m)).toString();
    }
    if (chunk !== '') {
      if (!open) chunk = `${xml('archive', { xmlns: PIE.mam }).toString().slice(0, -2)}>${chunk}`;
      open = true;
      await write(chunk);
    }
    if (page.complete || page.items.length === 0) break;
    after = page.items[page.items.length - 1]!.id;
  }
  if (open) await write('</archive>');
}

async function eachArchived(storage: Database, store: string, host: string, user: string, fn: (item: { id: string; when: number; value: string }) => void): Promise<void> {
  const archive = storage.archive(store);
  let after: string | undefined;
  for (;;) {
    const page = await archive.query(host, user, { limit: PAGE, ...(after === undefined ? {} : { after }) });
    for (const item of page.items) fn(item);
    if (page.complete || page.items.length === 0) return;
    after = page.items[page.items.length - 1]!.id;
  }
}

const tables = new WeakMap<Database, Set<string>>();

/** Module tables exist only once the module's migrations ran (a database from `parley migrate`, say). */
async function hasTable(storage: Database, name: string): Promise<boolean> {
  let known = tables.get(storage);
  if (!known) {
    known = new Set((await storage.db.introspection.getTables()).map((t) => t.name));
    tables.set(storage, known);
  }
  return known.has(name);
}

async function pepElements(storage: Database, host: string, service: string, el: Element): Promise<void> {
  if (!(await hasTable(storage, 'pubsub_nodes'))) return;
  const db = storage.db;
  const nodes = (await db.selectFrom('pubsub_nodes').select(['node', 'config']).where('host', '=', host).where('service', '=', service).orderBy('node').execute()) as Array<{ node: string; config: string }>;
  if (nodes.length === 0) return;
  const { configForm, PUBLISH_MODELS } = await import('../../modules/pep/index.js');
  const { parseStoredConfig } = await import('../../modules/pep/config.js');
  const owner = xml('pubsub', { xmlns: PIE.pubsubOwner });
  const pubsub = xml('pubsub', { xmlns: PIE.pubsub });
  for (const n of nodes) {
    const config = parseStoredConfig(n.config, PEP_DEFAULTS);
    const form = configForm(config, { maxItems: Number.MAX_SAFE_INTEGER, publishModels: PUBLISH_MODELS }, 'form');
    form.attrs.type = 'submit';
    owner.cnode(xml('configure', { node: n.node }, form));
    const rows = (await db.selectFrom('pubsub_items').select(['item_id', 'payload', 'publisher']).where('host', '=', host).where('service', '=', service).where('node', '=', n.node).orderBy('seq').execute()) as Array<{ item_id: string; payload: string; publisher: string }>;
    if (rows.length === 0) continue;
    pubsub.cnode(xml('items', { node: n.node }, rows.map((r) => {
      const payload = r.payload === '' ? undefined : stored(r.payload);
      return xml('item', { id: r.item_id, publisher: r.publisher }, payload ?? null);
    })));
  }
  el.cnode(owner);
  if (pubsub.getChildElements().length > 0) el.cnode(pubsub);
}

/** The PEP module's node defaults (XEP-0163 §7), for stored configurations that omit fields. */
export const PEP_DEFAULTS = {
  title: '',
  description: '',
  type: '',
  accessModel: 'presence',
  rosterGroupsAllowed: [],
  publishModel: 'publishers',
  maxItems: 1,
  persistItems: true,
  deliverNotifications: true,
  deliverPayloads: true,
  notifyRetract: true,
  notifyDelete: true,
  sendLastPublishedItem: 'on_sub_and_presence',
  notificationType: 'headline',
} as const satisfies import('../../modules/pep/config.js').NodeConfig;
