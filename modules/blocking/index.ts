// XEP-0191 Blocking Command, with XEP-0377 spam reports carried in block requests. A blocked
// entity cannot reach the user (messages and IQs bounce as if the user did not exist, presence
// vanishes) and the user cannot reach it (not-acceptable with <blocked/>).
import { randomBytes } from 'node:crypto';
import { cloneElement, defineModule, Jid, KeyedLock, NS, StanzaError, xml, z } from '../../lib/module-api.js';
import type { Database, Element, IqStanza, SessionHandle, Stanza } from '../../lib/module-api.js';
import presence from '../presence/index.js';
import roster, { hasFrom } from '../roster/index.js';
import adhoc from '../adhoc/index.js';
import { coversContact, matches } from './matching.js';
import { REPORT_STORE, reportQueue, type ReportQueue } from './reports-api.js';
import { spamReportsCommand } from './reports-command.js';
import { NS_REASON_ABUSE_0, NS_REASON_SPAM_0, NS_REPORTING, NS_REPORTING_0, parseReport, type Report } from './report.js';

export const NS_BLOCKING_ERRORS = 'urn:xmpp:blocking:errors';

/** Blocklists kept in memory per database; the least recently used are dropped. */
const CACHE_ACCOUNTS = 10_000;
/** Spam reports kept per reporting account; the oldest go first. */
const MAX_REPORTS = 100;

/**
 * Stanzas this module makes that its own filters must let through: bounces between two parties
 * one of whom blocks the other, the unavailable presence of a new block. Shared by the instances
 * of every host (a bounce may cross from one local host to another); weak, so it holds nothing.
 */
const exempt = new WeakSet<Element>();

/**
 * Blocklists in memory, by account, least recently used first, one cache per database. Shared by
 * the instances of every host on that database: a check often concerns an account of another
 * local host (whether the recipient of a stanza blocks its sender). Only the instance of an
 * account's host changes its list, and it updates the entry as it does; a cluster will need the
 * change announced to the other nodes.
 */
class ListCache {
  private readonly lists = new Map<string, ReadonlySet<string>>();
  /** Bumped by every change: a list read from the database before a change is not cached. */
  private changes = 0;

  private static key(host: string, user: string): string {
    return `${host}\u0000${user}`;
  }

  get(host: string, user: string): ReadonlySet<string> | undefined {
    const key = ListCache.key(host, user);
    const hit = this.lists.get(key);
    if (hit) {
      this.lists.delete(key);
      this.lists.set(key, hit);
    }
    return hit;
  }

  /** A token for `fill`, taken before reading the database. */
  mark(): number {
    return this.changes;
  }

  /** Caches a list read from the database, unless a change happened since `mark`. */
  fill(host: string, user: string, list: ReadonlySet<string>, mark: number): void {
    if (mark === this.changes) this.put(ListCache.key(host, user), list);
  }

  /** The list after a change by its owner's instance. */
  replace(host: string, user: string, list: ReadonlySet<string>): void {
    this.changes++;
    this.put(ListCache.key(host, user), list);
  }

  delete(host: string, user: string): void {
    this.changes++;
    this.lists.delete(ListCache.key(host, user));
  }

  private put(key: string, list: ReadonlySet<string>): void {
    this.lists.delete(key);
    this.lists.set(key, list);
    while (this.lists.size > CACHE_ACCOUNTS) this.lists.delete(this.lists.keys().next().value as string);
  }
}

const caches = new WeakMap<Database, ListCache>();

function cacheFor(db: Database): ListCache {
  let cache = caches.get(db);
  if (!cache) caches.set(db, (cache = new ListCache()));
  return cache;
}

export interface BlockingApi {
  /** XEP-0191: whether the account `owner` (bare) blocks `other`. */
  isBlocked(owner: Jid, other: Jid): Promise<boolean>;
  /** The reports an account filed, oldest first (for admin tools). */
  reports(user: string): Promise<Report[]>;
  /** Every report filed on this host, for the admins to review (ad-hoc command, HTTP admin API). */
  queue: ReportQueue;
}

/** XEP-0191 §3.3: the error for a stanza the user sends to a JID they block. */
function blockedError(): StanzaError {
  return new StanzaError('not-acceptable', { type: 'cancel', appCondition: xml('blocked', { xmlns: NS_BLOCKING_ERRORS }) });
}

/** The `jid` of each <item/>, prepared; throws the XEP-0191 §3.3 errors. */
function parseItems(el: Element): Array<{ jid: Jid; item: Element }> {
  return el.getChildElements()
    .filter((c) => c.name === 'item')
    .map((item) => {
      const raw = item.attrs.jid as string | undefined;
      if (raw === undefined || raw === '') throw StanzaError.badRequest('each item needs a jid');
      const jid = Jid.tryParse(raw);
      if (!jid) throw StanzaError.jidMalformed(`"${raw}" is not a valid JID`);
      return { jid, item };
    });
}

export default defineModule({
  name: 'blocking',
  xeps: [
    { xep: 191, version: '1.3', status: 'complete' },
    { xep: 377, version: '0.4.1', status: 'partial', note: 'reports are kept for the admins, never forwarded (report-origin, third-party)' },
  ],
  features: {
    host: [NS.blocking, NS_REPORTING, NS_REPORTING_0, NS_REASON_SPAM_0, NS_REASON_ABUSE_0],
    account: [NS.blocking],
  },
  defaultEnabled: true,
  optional: [presence, roster, adhoc],
  config: z.strictObject({
    /** JIDs one account may block. */
    maxItems: z.number().int().min(1).max(100_000).default(1000),
  }),
  setup(ctx): BlockingApi {
    const store = ctx.keyval('blocklist');
    const reportStore = ctx.keyval(REPORT_STORE);
    const queue = reportQueue({ host: ctx.host, storage: ctx.storage, store: reportStore, accounts: ctx.accounts, sessionsOf: (a) => ctx.sessions.of(a) });
    if (ctx.deps.has(adhoc)) {
      const isAdmin = (from: Jid) => ctx.server.admins.some((a) => a.equals(from.bare()));
      ctx.deps.get(adhoc).add(spamReportsCommand(queue, isAdmin, (fields, msg) => ctx.log.info(fields, msg)));
    }
    const rosterApi = ctx.deps.has(roster) ? ctx.deps.get(roster) : undefined;
    const lock = new KeyedLock();
    /** XEP-0191 §3.3: resources that asked for the blocklist get its pushes. */
    const interested = ctx.sessionState('interested', () => false);
    const cache = cacheFor(ctx.storage);

    /** The account's blocklist (cached, see ListCache). */
    async function listOf(account: Jid): Promise<ReadonlySet<string>> {
      const user = account.local!;
      const hit = cache.get(account.domain, user);
      if (hit) return hit;
      const mark = cache.mark();
      const list = await load(account.domain, user);
      cache.fill(account.domain, user, list, mark);
      return list;
    }

    async function load(host: string, user: string): Promise<ReadonlySet<string>> {
      return new Set(await store.keys(host, user));
    }

    const isLocalAccount = (jid: Jid) => jid.local !== undefined && ctx.server.hosts.includes(jid.domain);

    /**
     * XEP-0191: whether `owner` blocks `other`. Never between an account's own resources (§7 note),
     * nor against the account's own server, whose replies the client cannot do without.
     */
    async function isBlocked(owner: Jid, other: Jid): Promise<boolean> {
      if (!isLocalAccount(owner)) return false;
      if (other.bare().equals(owner.bare())) return false;
      if (other.local === undefined && other.resource === undefined && other.domain === owner.domain) return false;
      return matches(await listOf(owner.bare()), other);
    }

    // ---------------------------------------------------------------- the protocol

    function push(user: Jid, child: Element): void {
      for (const s of ctx.sessions.of(user)) {
        if (!s.get(interested)) continue;
        s.send(xml('iq', { type: 'set', id: `push-${randomBytes(6).toString('hex')}`, from: user.toString(), to: s.jid.toString() }, cloneElement(child)));
      }
    }

    /** The roster contacts an item covers that may see the user's presence (RFC 6121 §4). */
    async function presenceContacts(user: Jid, items: readonly Jid[]): Promise<Jid[]> {
      if (!rosterApi || items.length === 0) return [];
      const out: Jid[] = [];
      for (const rosterItem of await rosterApi.items(user)) {
        if (!hasFrom(rosterItem.subscription)) continue;
        for (const item of items) {
          if (!coversContact(item, rosterItem.jid)) continue;
          // A full-JID item blocks one resource of the contact: only it is told.
          out.push(item.local !== undefined && item.resource !== undefined ? item : rosterItem.jid);
        }
      }
      return out;
    }

    const available = (user: Jid) => ctx.sessions.of(user).filter((s) => s.available && s.presence);

    async function sendPresence(els: Element[]): Promise<void> {
      for (const el of els) {
        try {
          await ctx.send(el);
        } catch (err) {
          ctx.log.warn({ err }, 'presence after a blocklist change could not be routed');
        }
      }
    }

    async function storeReports(user: Jid, reports: Report[]): Promise<void> {
      for (const r of reports) {
        const key = `${new Date(r.when).toISOString()}-${randomBytes(4).toString('hex')}`;
        await reportStore.set(ctx.host, user.local!, key, JSON.stringify(r));
        // Who reported whom and why; never the text, which may quote the messages.
        ctx.log.info({ reporter: user.toString(), reported: r.jid, reason: r.reason }, 'spam report received');
      }
      if (reports.length === 0) return;
      const keys = await reportStore.keys(ctx.host, user.local!);
      for (const k of keys.slice(0, Math.max(0, keys.length - MAX_REPORTS))) await reportStore.delete(ctx.host, user.local!, k);
    }

    // XEP-0191 §3.2: the blocklist; asking for it subscribes the resource to pushes.
    ctx.iq.get({ ns: NS.blocking, name: 'blocklist', to: ['self'] }, async (iq, origin) => {
      origin.session?.set(interested, true);
      const list = [...(await listOf(iq.from.bare()))].sort();
      return xml('blocklist', { xmlns: NS.blocking }, list.map((jid) => xml('item', { jid })));
    });

    // XEP-0191 §3.3: block.
    ctx.iq.set({ ns: NS.blocking, name: 'block', to: ['self'] }, async (iq: IqStanza) => {
      const user = iq.from.bare();
      const parsed = parseItems(iq.payload!);
      if (parsed.length === 0) return StanzaError.badRequest('name at least one JID to block');
      const now = Date.now();
      const reports = parsed.map(({ jid, item }) => parseReport(item, jid.toString(), now)).filter((r): r is Report => r !== undefined);
      const added = await lock.run(user.toString(), async () => {
        const before = await load(ctx.host, user.local!);
        const fresh = [...new Set(parsed.map((p) => p.jid.toString()))].filter((j) => !before.has(j));
        if (before.size + fresh.length > ctx.config.maxItems) {
          throw StanzaError.notAcceptable(`at most ${ctx.config.maxItems} JIDs can be blocked`);
        }
        for (const j of fresh) await store.set(ctx.host, user.local!, j, '');
        cache.replace(ctx.host, user.local!, new Set([...before, ...fresh]));
        return fresh;
      });
      await storeReports(user, reports);
      if (added.length === 0) return undefined;
      // Items as blocked, without the reports (they are for the admins only).
      push(user, xml('block', { xmlns: NS.blocking }, added.map((jid) => xml('item', { jid }))));
      // XEP-0191 §3.3: unavailable presence to those who could see the user's presence.
      const unavailable: Element[] = [];
      for (const contact of await presenceContacts(user, added.map((j) => Jid.parse(j)))) {
        for (const s of available(user)) {
          const el = xml('presence', { type: 'unavailable', from: s.jid.toString(), to: contact.toString() });
          exempt.add(el);
          unavailable.push(el);
        }
      }
      await sendPresence(unavailable);
      return undefined;
    });

    // XEP-0191 §3.4 / §3.5: unblock some, or everyone.
    ctx.iq.set({ ns: NS.blocking, name: 'unblock', to: ['self'] }, async (iq: IqStanza) => {
      const user = iq.from.bare();
      const parsed = parseItems(iq.payload!);
      const removed = await lock.run(user.toString(), async () => {
        const before = await load(ctx.host, user.local!);
        let gone: string[];
        if (parsed.length === 0) {
          gone = [...before];
          await store.deleteAccount(ctx.host, user.local!);
        } else {
          gone = [...new Set(parsed.map((p) => p.jid.toString()))].filter((j) => before.has(j));
          for (const j of gone) await store.delete(ctx.host, user.local!, j);
        }
        cache.replace(ctx.host, user.local!, new Set([...before].filter((j) => !gone.includes(j))));
        return gone;
      });
      if (removed.length === 0) return undefined;
      push(
        user,
        parsed.length === 0
          ? xml('unblock', { xmlns: NS.blocking })
          : xml('unblock', { xmlns: NS.blocking }, removed.map((jid) => xml('item', { jid }))),
      );
      // XEP-0191 §3.4: the user's current presence to those allowed to see it.
      const current: Element[] = [];
      for (const contact of await presenceContacts(user, removed.map((j) => Jid.parse(j)))) {
        if (await isBlocked(user, contact)) continue; // still covered by another item
        for (const s of available(user)) {
          const el = cloneElement(s.presence!);
          el.attrs.from = s.jid.toString();
          el.attrs.to = contact.toString();
          current.push(el);
        }
      }
      await sendPresence(current);
      return undefined;
    });

    // ---------------------------------------------------------------- enforcement

    /**
     * The error reply to a stanza (RFC 6120 §8.3.1), marked so that this module's own filters let
     * it through: a bounce between two parties one of whom blocks the other must still arrive.
     */
    function bounce(stanza: Stanza, err: StanzaError): Element {
      const reply = xml(stanza.el.name, {
        type: 'error',
        id: stanza.id,
        from: (stanza.to ?? stanza.from.bare()).toString(),
        to: stanza.from.toString(),
      });
      for (const child of stanza.el.getChildElements()) if (child.name !== 'error') reply.cnode(cloneElement(child));
      reply.cnode(err.toElement());
      exempt.add(reply);
      return reply;
    }

    // What the user sends: nothing reaches a JID they block (XEP-0191 §3.3). What another local
    // account sends the user: IQs bounce as from a user who is not there (§3.3).
    ctx.on('stanza/inbound', async ({ session, stanza }) => {
      const to = stanza.to;
      if (!to) return undefined;
      let err: StanzaError | undefined;
      if (await isBlocked(session.jid.bare(), to)) err = blockedError();
      else if (stanza.kind === 'iq' && isLocalAccount(to) && (await isBlocked(to.bare(), session.jid))) {
        if (stanza.type === 'get' || stanza.type === 'set') err = StanzaError.serviceUnavailable();
        else return 'drop';
      } else return undefined;
      // Never an error in answer to an error (RFC 6120 §8.3.1).
      if (stanza.type !== 'error') session.send(bounce(stanza, err));
      return 'drop';
    });

    // XEP-0191 §3.3: a message from a blocked JID bounces with service-unavailable.
    ctx.on('message/inbound', async ({ stanza }) => {
      const to = stanza.to;
      if (!to || to.local === undefined || !(await isBlocked(to.bare(), stanza.from))) return undefined;
      if (stanza.type !== 'error') await ctx.send(bounce(stanza, StanzaError.serviceUnavailable()));
      return 'drop';
    });

    // IQs from a blocked JID to the user's bare or full JID, from anywhere (remote ones included):
    // service-unavailable, as if the user were not there (XEP-0191 §3.3).
    ctx.on('iq/inbound', async ({ stanza }) => {
      const to = stanza.to;
      if (!to || to.local === undefined || !(await isBlocked(to.bare(), stanza.from))) return undefined;
      return StanzaError.serviceUnavailable();
    });

    // Whatever the server sends on the user's behalf to another server (probes, PEP
    // notifications) never reaches a JID the user blocks.
    ctx.on('stanza/remote', async ({ stanza }) => {
      // Errors are the answers XEP-0191 §3.3 itself requires (service-unavailable bounces).
      if (stanza.type === 'error' || stanza.from.local === undefined || !stanza.to || exempt.has(stanza.el)) return undefined;
      if (!isLocalAccount(stanza.from) || !(await isBlocked(stanza.from.bare(), stanza.to))) return undefined;
      return 'drop';
    });

    // Presence both ways, through the presence module's gate (broadcasts, probes, subscriptions):
    // dropped without a word (XEP-0191 §3.3).
    if (ctx.deps.has(presence)) {
      ctx.deps.get(presence).addGate(async ({ user, peer, stanza }) => exempt.has(stanza) || !(await isBlocked(user, peer)));
    }

    // The last line, for whatever reaches a session by other paths (directly delivered presence,
    // IQs to a full JID, notifications generated for an account): nothing from a JID the session's
    // account blocks, nothing from a local account that blocks it.
    ctx.on('stanza/outgoing', async ({ session, stanza }) => {
      if (exempt.has(stanza)) return undefined;
      const from = Jid.tryParse(stanza.attrs.from as string | undefined);
      if (!from) return undefined;
      if (await isBlocked(session.jid.bare(), from)) {
        const type = stanza.attrs.type as string | undefined;
        if (stanza.name === 'iq' && (type === 'get' || type === 'set')) await bounceIq(session, stanza, from);
        return 'drop';
      }
      if (isLocalAccount(from) && (await isBlocked(from.bare(), session.jid))) return 'drop';
      return undefined;
    });

    /** XEP-0191 §3.3: an IQ get/set from a blocked JID is answered service-unavailable. */
    async function bounceIq(session: SessionHandle, iq: Element, from: Jid): Promise<void> {
      const reply = xml('iq', { type: 'error', id: iq.attrs.id as string | undefined, from: session.jid.toString(), to: from.toString() });
      for (const child of iq.getChildElements()) reply.cnode(cloneElement(child));
      reply.cnode(StanzaError.serviceUnavailable().toElement());
      exempt.add(reply);
      await ctx.send(reply);
    }

    ctx.on('account/deleted', async ({ host, user }) => {
      if (host !== ctx.host) return;
      await store.deleteAccount(host, user);
      await reportStore.deleteAccount(host, user);
      cache.delete(host, user);
    });

    return {
      isBlocked,
      queue,
      async reports(user) {
        const out: Report[] = [];
        for (const k of await reportStore.keys(ctx.host, user)) {
          const raw = await reportStore.get(ctx.host, user, k);
          if (raw !== undefined) out.push(JSON.parse(raw) as Report);
        }
        return out;
      },
    };
  },
});

