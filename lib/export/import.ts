// Imports XEP-0227 accounts and their data into Parley's storage, as Parley's exporter, Prosody's
// (mod_storage_xep0227) and ejabberd's (export_piefxis) write them. Accounts that exist already
// are left untouched and reported.
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import type { AccountService, ScramHash } from '../accounts/types.js';
import { Jid } from '../jid/jid.js';
import type { Database } from '../storage/types.js';
import { readForm } from '../stanza/forms.js';
import { cloneElement, xml, type Element } from '../xml/element.js';
import { PEP_DEFAULTS } from './export.js';
import { PIE, SCRAM_MECHANISMS } from './pie.js';
import { PieReader, type ReaderLimits } from './reader.js';

export interface ImportReport {
  imported: string[];
  /** JID → why it was skipped. */
  skipped: Array<{ jid: string; reason: string }>;
}

export interface ImportOptions {
  /** The hosts this server serves; users of other hosts are skipped. */
  hosts: readonly string[];
  limits?: ReaderLimits;
}

const HASH_OF: Record<string, ScramHash> = Object.fromEntries(Object.entries(SCRAM_MECHANISMS).map(([hash, mech]) => [mech, hash as ScramHash]));

const b64 = /^[A-Za-z0-9+/]+={0,2}$/;

export async function importData(storage: Database, accounts: AccountService, input: Readable, opts: ImportOptions): Promise<ImportReport> {
  const reader = new PieReader(opts.limits);
  const decoder = new StringDecoder('utf8');
  const report: ImportReport = { imported: [], skipped: [] };
  const drain = async () => {
    for (const { host, user } of reader.take()) await importUser(storage, accounts, host, user, opts, report);
  };
  for await (const chunk of input) {
    reader.write(typeof chunk === 'string' ? chunk : decoder.write(chunk as Buffer));
    await drain();
  }
  reader.write(decoder.end());
  reader.end();
  await drain();
  return report;
}

function child(el: Element, name: string, ns?: string): Element | undefined {
  return el.getChildElements().find((c) => c.name === name && (ns === undefined || c.attrs.xmlns === ns));
}

async function importUser(storage: Database, accounts: AccountService, rawHost: string, el: Element, opts: ImportOptions, report: ImportReport): Promise<void> {
  const name = String(el.attrs.name ?? '');
  let jid: Jid;
  try {
    jid = Jid.of(name, rawHost);
  } catch {
    report.skipped.push({ jid: `${name}@${rawHost}`, reason: 'not a valid JID' });
    return;
  }
  const host = jid.domain;
  const user = jid.local!;
  const who = jid.toString();
  if (!opts.hosts.includes(host)) {
    report.skipped.push({ jid: who, reason: `${host} is not a host of this server` });
    return;
  }
  if (await accounts.exists(host, user)) {
    report.skipped.push({ jid: who, reason: 'the account exists already' });
    return;
  }
  const created = await createAccount(storage, accounts, host, user, el);
  if (created !== undefined) {
    report.skipped.push({ jid: who, reason: created });
    return;
  }
  await importData227(storage, host, user, el);
  report.imported.push(who);
}

/** The account with its credentials; a reason when it cannot be created. */
async function createAccount(storage: Database, accounts: AccountService, host: string, user: string, el: Element): Promise<string | undefined> {
  const scram = el.getChildElements().filter((c) => c.name === 'scram-credentials' && c.attrs.xmlns === PIE.scram);
  const rows: Array<{ host: string; user: string; hash: string; salt: string; iterations: number; stored_key: string; server_key: string }> = [];
  for (const s of scram) {
    const hash = HASH_OF[String(s.attrs.mechanism ?? '')];
    if (hash === undefined) continue;
    const iterations = Number(s.getChildText('iter-count'));
    const salt = (s.getChildText('salt') ?? '').trim();
    const storedKey = (s.getChildText('stored-key') ?? '').trim();
    const serverKey = (s.getChildText('server-key') ?? '').trim();
    if (!Number.isInteger(iterations) || iterations < 1 || ![salt, storedKey, serverKey].every((v) => b64.test(v))) {
      return `its ${String(s.attrs.mechanism)} credentials are malformed`;
    }
    rows.push({ host, user, hash, salt, iterations, stored_key: storedKey, server_key: serverKey });
  }
  const password = el.attrs.password;
  const bcrypt = child(el, 'bcrypt', PIE.parley)?.getText().trim();
  if (rows.length > 0) {
    await storage.db.transaction().execute(async (trx) => {
      await trx.insertInto('accounts').values({ host, user, created_at: Date.now(), bcrypt: null }).execute();
      await trx.insertInto('account_scram').values(rows).execute();
    });
  } else if (typeof password === 'string' && password !== '') {
    // XEP-0227 §3.2: a plaintext password (older exports); Parley keeps only SCRAM keys of it.
    await accounts.create(host, user, password);
  } else if (bcrypt) {
    await accounts.importBcrypt(host, user, bcrypt);
  } else {
    return 'it has no credentials (neither SCRAM keys nor a password)';
  }
  const disabled = child(el, 'disabled', PIE.parley);
  if (disabled) {
    await accounts.setDisabled(host, user, true, typeof disabled.attrs.reason === 'string' ? disabled.attrs.reason : undefined);
    // Keep when it was disabled, not when it was imported.
    const since = parseStamp(disabled.attrs.since);
    if (since !== undefined) await storage.db.updateTable('account_disabled').set({ since }).where('host', '=', host).where('user', '=', user).execute();
  }
  return undefined;
}

/** XEP-0082 date-time → ms; undefined when absent or not a date. */
function parseStamp(raw: unknown): number | undefined {
  const t = typeof raw === 'string' ? Date.parse(raw) : NaN;
  return Number.isNaN(t) ? undefined : t;
}

function stampOf(el: Element | undefined): number | undefined {
  return parseStamp(el?.attrs.stamp);
}

function bareOf(raw: unknown): string | undefined {
  return typeof raw === 'string' ? Jid.tryParse(raw)?.bare().toString() : undefined;
}

async function importData227(storage: Database, host: string, user: string, el: Element): Promise<void> {
  const me = `${user}@${host}`;
  for (const c of el.getChildElements()) {
    const ns = c.attrs.xmlns;
    if (c.name === 'query' && ns === PIE.roster) await importRoster(storage, host, user, c);
    else if (c.name === 'presence' && c.attrs.type === 'subscribe') await importPending(storage, host, user, c);
    else if (c.name === 'vCard' && ns === PIE.vcard) await storage.keyval('vcard').set(host, user, 'vcard', c.toString());
    else if (c.name === 'query' && ns === PIE.private) {
      for (const frag of c.getChildElements()) {
        if (typeof frag.attrs.xmlns !== 'string') continue;
        await storage.keyval('private').set(host, user, `{${frag.attrs.xmlns}}${frag.name}`, cloneElement(frag).toString());
      }
    } else if (c.name === 'pubsub' && (ns === PIE.pubsubOwner || ns === PIE.pubsub)) await importPep(storage, host, me, el);
    else if (c.name === 'offline-messages') {
      const archive = storage.archive('offline');
      for (const m of c.getChildElements().filter((x) => x.name === 'message')) {
        const copy = cloneElement(m);
        delete copy.attrs.xmlns;
        const when = stampOf(child(m, 'delay', PIE.delay)) ?? Date.now();
        await archive.append(host, user, { id: randomUUID(), when, ...(bareOf(m.attrs.from) ? { with: bareOf(m.attrs.from)! } : {}), value: copy.toString() });
      }
    } else if (c.name === 'archive' && ns === PIE.mam) {
      const archive = storage.archive('mam');
      for (const r of c.getChildElements().filter((x) => x.name === 'result')) {
        const fwd = child(r, 'forwarded', PIE.forward);
        const m = fwd && child(fwd, 'message');
        if (!fwd || !m) continue;
        const copy = cloneElement(m);
        delete copy.attrs.xmlns;
        const from = bareOf(m.attrs.from);
        const to = bareOf(m.attrs.to);
        const peer = from === me ? to : from;
        const id = typeof r.attrs.id === 'string' && r.attrs.id !== '' ? r.attrs.id : randomUUID();
        await archive.append(host, user, { id, when: stampOf(child(fwd, 'delay', PIE.delay)) ?? Date.now(), ...(peer ? { with: peer } : {}), value: copy.toString() });
      }
    } else if (c.name === 'blocklist' && ns === PIE.blocking) {
      for (const item of c.getChildren('item')) {
        const jid = typeof item.attrs.jid === 'string' ? Jid.tryParse(item.attrs.jid) : undefined;
        if (jid) await storage.keyval('blocklist').set(host, user, jid.toString(), '');
      }
    }
  }
}

async function importRoster(storage: Database, host: string, user: string, query: Element): Promise<void> {
  const { RosterStore } = await import('../../modules/roster/store.js');
  const store = new RosterStore(storage);
  for (const item of query.getChildren('item')) {
    const jid = typeof item.attrs.jid === 'string' ? Jid.tryParse(item.attrs.jid) : undefined;
    if (!jid) continue;
    const sub = String(item.attrs.subscription ?? 'none');
    const subscription = (['none', 'to', 'from', 'both'] as const).find((s) => s === sub) ?? 'none';
    const groups = [...new Set(item.getChildren('group').map((g) => g.getText()).filter((g) => g !== ''))];
    await store.mutate(host, user, jid.bare().toString(), () => ({
      jid: jid.bare(),
      name: typeof item.attrs.name === 'string' && item.attrs.name !== '' ? item.attrs.name : undefined,
      subscription,
      ask: item.attrs.ask === 'subscribe',
      approved: item.attrs.approved === 'true' || item.attrs.approved === '1',
      groups,
    }));
  }
}

async function importPending(storage: Database, host: string, user: string, presence: Element): Promise<void> {
  const from = bareOf(presence.attrs.from);
  if (!from) return;
  const { PendingStore } = await import('../../modules/presence/pending.js');
  await new PendingStore(storage).put(host, user, from, xml('presence', { from, to: `${user}@${host}`, type: 'subscribe' }));
}

/** Both pubsub elements at once (configurations first, so items land in configured nodes). */
async function importPep(storage: Database, host: string, service: string, userEl: Element): Promise<void> {
  if ((userEl as Element & { pepDone?: boolean }).pepDone) return;
  (userEl as Element & { pepDone?: boolean }).pepDone = true;
  const { PubsubStore } = await import('../../modules/pep/store.js');
  const { applyConfigForm, CONFIG_FIELDS, PUBLISH_MODELS, effectiveMaxItems } = await import('../../modules/pep/config.js');
  const store = new PubsubStore(storage, host);
  const rules = { maxItems: Number.MAX_SAFE_INTEGER, publishModels: PUBLISH_MODELS };
  const configs = new Map<string, ReturnType<typeof applyConfigForm>>();
  const owner = child(userEl, 'pubsub', PIE.pubsubOwner);
  for (const configure of owner?.getChildren('configure') ?? []) {
    const node = configure.attrs.node;
    if (typeof node !== 'string' || node === '') continue;
    const form = readForm(configure);
    let config: ReturnType<typeof applyConfigForm> = { ...PEP_DEFAULTS, rosterGroupsAllowed: [] };
    if (form) {
      // Fields another server knows and Parley does not are left out rather than refused.
      const known = new Map([...form.fields].filter(([k]) => CONFIG_FIELDS.includes(k)));
      try {
        config = applyConfigForm(config, { formType: undefined, fields: known }, rules);
      } catch {
        // A value Parley refuses (an access model it lacks, say): the node keeps the defaults.
      }
    }
    configs.set(node, config);
  }
  const items = child(userEl, 'pubsub', PIE.pubsub);
  for (const itemsEl of items?.getChildren('items') ?? []) {
    const node = itemsEl.attrs.node;
    if (typeof node === 'string' && node !== '' && !configs.has(node)) configs.set(node, { ...PEP_DEFAULTS, rosterGroupsAllowed: [] });
  }
  for (const [node, config] of configs) {
    if (!(await store.node(service, node))) await store.createNode(service, node, JSON.stringify(config), service);
    const itemsEl = items?.getChildren('items').find((i) => i.attrs.node === node);
    for (const item of itemsEl?.getChildren('item') ?? []) {
      const payload = item.getChildElements()[0];
      const id = typeof item.attrs.id === 'string' && item.attrs.id !== '' ? item.attrs.id : randomUUID();
      const publisher = typeof item.attrs.publisher === 'string' ? item.attrs.publisher : service;
      await store.putItem(service, node, { id, publisher, payload: payload ? cloneElement(payload).toString() : '' }, Math.max(effectiveMaxItems(config, rules), 1));
    }
  }
}
