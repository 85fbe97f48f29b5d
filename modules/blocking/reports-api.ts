// The review queue of XEP-0377 spam reports: every report filed on a host, oldest first, for the
// admins to dismiss or act on. Used by the admin ad-hoc command (./reports-command.ts) and meant
// for the HTTP admin API.
import { Jid } from '../../lib/module-api.js';
import type { AccountService, Database, KeyValStore, SessionHandle } from '../../lib/module-api.js';
import type { Report } from './report.js';

export const REPORT_STORE = 'spam-reports';

export interface QueuedReport {
  /** Stable id: `<reporter localpart>/<key>` (a localpart never holds a slash, RFC 7622 §3.3.1). */
  id: string;
  /** The reporting account (bare JID). */
  reporter: string;
  report: Report;
}

export interface ReportQueue {
  /** Reports on this host, oldest first; at most `limit`. */
  list(limit: number): Promise<QueuedReport[]>;
  count(): Promise<number>;
  /** One report by its id. */
  get(id: string): Promise<QueuedReport | undefined>;
  /** Drops one report; false when there was none with that id. */
  dismiss(id: string): Promise<boolean>;
  /** Drops every report about a JID (bare); returns how many. */
  dismissAbout(jid: string): Promise<number>;
  /**
   * Disables the reported account (it must be an account of this host), ends its sessions and
   * drops every report about it. False when there is no such account.
   */
  disableReported(jid: string): Promise<boolean>;
}

interface Row {
  user: string;
  key: string;
  value: string;
}

export function reportQueue(opts: {
  host: string;
  storage: Database;
  store: KeyValStore;
  accounts: AccountService;
  sessionsOf: (account: Jid) => SessionHandle[];
}): ReportQueue {
  const { host, storage, store } = opts;
  const rows = (limit?: number) => {
    let q = storage.db.selectFrom('keyval').select(['user', 'key', 'value']).where('host', '=', host).where('store', '=', REPORT_STORE).orderBy('key').orderBy('user');
    if (limit !== undefined) q = q.limit(limit);
    return q.execute() as Promise<Row[]>;
  };
  const toQueued = (r: Row): QueuedReport | undefined => {
    try {
      return { id: `${r.user}/${r.key}`, reporter: `${r.user}@${host}`, report: JSON.parse(r.value) as Report };
    } catch {
      return undefined;
    }
  };
  const split = (id: string): { user: string; key: string } | undefined => {
    const i = id.indexOf('/');
    return i <= 0 || i === id.length - 1 ? undefined : { user: id.slice(0, i), key: id.slice(i + 1) };
  };
  const sameJid = (a: string, b: string) => Jid.tryParse(a)?.bare().toString() === Jid.tryParse(b)?.bare().toString();

  async function dismissAbout(jid: string): Promise<number> {
    let n = 0;
    // Reports about one JID are few next to the queue; the scan is bounded by the per-account cap.
    for (const r of await rows()) {
      const q = toQueued(r);
      if (q && sameJid(q.report.jid, jid)) {
        await store.delete(host, r.user, r.key);
        n++;
      }
    }
    return n;
  }

  return {
    async list(limit) {
      return (await rows(limit)).map(toQueued).filter((q): q is QueuedReport => q !== undefined);
    },
    async count() {
      const r = (await storage.db.selectFrom('keyval').select((eb) => eb.fn.countAll().as('n')).where('host', '=', host).where('store', '=', REPORT_STORE).executeTakeFirst()) as { n: number | string } | undefined;
      return Number(r?.n ?? 0);
    },
    async dismiss(id) {
      const parts = split(id);
      if (!parts || (await store.get(host, parts.user, parts.key)) === undefined) return false;
      await store.delete(host, parts.user, parts.key);
      return true;
    },
    async get(id) {
      const parts = split(id);
      if (!parts) return undefined;
      const value = await store.get(host, parts.user, parts.key);
      return value === undefined ? undefined : toQueued({ user: parts.user, key: parts.key, value });
    },
    dismissAbout,
    async disableReported(jid) {
      const target = Jid.tryParse(jid);
      if (!target || target.local === undefined || target.domain !== host) return false;
      if (!(await opts.accounts.setDisabled(host, target.local, true, 'disabled after spam reports'))) return false;
      for (const s of opts.sessionsOf(target.bare())) s.close('not-authorized', 'the account was disabled');
      await dismissAbout(target.bare().toString());
      return true;
    },
  };
}
