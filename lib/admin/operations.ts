// Everything an administrator can do to a running server, in one place: the HTTP admin API, the
// web admin and the CLI (`parley user ...`) all call these, so they behave the same and fail
// with the same AdminError codes (lib/admin/http-api.ts maps the codes to HTTP statuses).
import { createHash } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { AdminError } from '../config/errors.js';
import { Jid } from '../jid/jid.js';
import { AccountError, type AccountService } from '../accounts/types.js';
import type { Database } from '../storage/types.js';
import type { SessionDirectory } from '../sessions/directory.js';
import type { Metrics } from '../metrics.js';
import type { Logger } from '../log.js';
import type { Router } from '../routing/router.js';
import type { MucApi } from '../../modules/muc/index.js';
import { mucAdmin, type RoomSummary } from '../../modules/muc/admin-api.js';
import type { BlockingApi } from '../../modules/blocking/index.js';
import type { QueuedReport } from '../../modules/blocking/reports-api.js';
import type { SecurityApi } from '../../modules/security/api.js';
import { ClusterNode } from '../cluster/node.js';

export const MAX_PAGE = 500;

export interface UserEntry {
  jid: string;
  host: string;
  user: string;
  createdAt: string;
  disabled: boolean;
  sessions: number;
  /** TOTP second factor on (false when the security module is off on its host). */
  twoFactor: boolean;
}

export interface SessionEntry {
  jid: string;
  host: string;
  remoteAddress: string;
  secure: boolean;
  available: boolean;
  hibernating: boolean;
  priority: number;
  /** In a cluster: the node the session is bound on. */
  node?: string;
}

export interface ServerStats {
  name: string;
  version: string;
  hosts: string[];
  uptimeSeconds: number;
  sessions: number;
  accounts: number;
  connections: Record<string, number>;
  stanzas: { in: number; out: number };
  memory: { rssBytes: number; heapUsedBytes: number };
  eventLoopLagSeconds: number | undefined;
}

/** What the operations act on: the core of a running server, or of the CLI (no sessions, no metrics). */
export interface OperationsDeps {
  hosts: readonly string[];
  accounts: AccountService;
  storage: Database;
  admins: readonly Jid[];
  sessions?: SessionDirectory;
  router?: Router;
  metrics?: Metrics;
  /** The API a module returned on a host (`muc`), when it is enabled there. */
  moduleApi?(host: string, module: string): unknown;
  log?: Logger;
  name?: string;
  version?: string;
  startedAt?: number;
  /** Re-reads the config and certificates (the running server only). */
  reload?(): Promise<unknown>;
}

function notFound(what: string, hint: string): AdminError {
  return new AdminError('PARLEY_ERR_NOT_FOUND', what, hint);
}

export class AdminOperations {
  constructor(private readonly deps: OperationsDeps) {}

  get hosts(): readonly string[] {
    return this.deps.hosts;
  }

  /** An account JID of one of this server's hosts (bare, with a localpart). */
  accountJid(input: string): Jid {
    const jid = Jid.tryParse(input.trim());
    if (!jid || jid.local === undefined || jid.resource !== undefined) {
      throw new AdminError('PARLEY_ERR_BAD_REQUEST', `"${input}" is not an account JID`, 'write it as user@domain');
    }
    this.host(jid.domain);
    return jid;
  }

  private host(domain: string): string {
    if (!this.deps.hosts.includes(domain)) {
      throw new AdminError('PARLEY_ERR_UNKNOWN_HOST', `${domain} is not a host of this server`, `use one of ${this.deps.hosts.join(', ')}`);
    }
    return domain;
  }

  // ------------------------------------------------------------------ users

  async createUser(jidText: string, password: string): Promise<Jid> {
    const jid = this.accountJid(jidText);
    if (password === '') throw new AdminError('PARLEY_ERR_BAD_REQUEST', 'the password is empty', 'give a password');
    if (await this.deps.accounts.exists(jid.domain, jid.local!)) {
      throw new AdminError('PARLEY_ERR_ACCOUNT_EXISTS', `${jid} already exists`, 'change its password instead');
    }
    await this.accountCall(() => this.deps.accounts.create(jid.domain, jid.local!, password));
    this.deps.log?.info({ account: jid.toString() }, 'account created by an administrator');
    return jid;
  }

  async deleteUser(jidText: string): Promise<Jid> {
    const jid = this.accountJid(jidText);
    this.endSessions(jid, 'not-authorized');
    if (!(await this.deps.accounts.delete(jid.domain, jid.local!))) throw this.noAccount(jid);
    this.deps.log?.info({ account: jid.toString() }, 'account deleted by an administrator');
    return jid;
  }

  async resetPassword(jidText: string, password: string): Promise<Jid> {
    const jid = this.accountJid(jidText);
    if (password === '') throw new AdminError('PARLEY_ERR_BAD_REQUEST', 'the password is empty', 'give a password');
    if (!(await this.deps.accounts.exists(jid.domain, jid.local!))) throw this.noAccount(jid);
    await this.accountCall(() => this.deps.accounts.setPassword(jid.domain, jid.local!, password));
    this.deps.log?.info({ account: jid.toString() }, 'password reset by an administrator');
    return jid;
  }

  /** Disables (ending its sessions) or re-enables an account. */
  async setDisabled(jidText: string, disabled: boolean): Promise<Jid> {
    const jid = this.accountJid(jidText);
    if (!(await this.deps.accounts.setDisabled(jid.domain, jid.local!, disabled, disabled ? 'disabled by an administrator' : undefined))) throw this.noAccount(jid);
    if (disabled) this.endSessions(jid, 'not-authorized');
    this.deps.log?.info({ account: jid.toString() }, disabled ? 'account disabled by an administrator' : 'account re-enabled by an administrator');
    return jid;
  }

  /**
   * One page of accounts in (host, user) order, after the cursor `after` (the last JID of the
   * previous page). Keyset paging: a page costs the same at any depth.
   */
  async listUsers(opts: { host?: string; after?: string; limit?: number } = {}): Promise<{ users: UserEntry[]; next: string | undefined }> {
    const limit = Math.min(Math.max(1, opts.limit ?? 100), MAX_PAGE);
    const db = this.deps.storage.db as Kysely<AccountRows>;
    let q = db
      .selectFrom('accounts as a')
      .leftJoin('account_disabled as d', (j) => j.onRef('d.host', '=', 'a.host').onRef('d.user', '=', 'a.user'))
      .select(['a.host as host', 'a.user as user', 'a.created_at as created_at', 'd.since as since']);
    if (opts.host !== undefined) q = q.where('a.host', '=', this.host(opts.host));
    if (opts.after !== undefined && opts.after !== '') {
      const after = Jid.tryParse(opts.after);
      if (!after || after.local === undefined) throw new AdminError('PARLEY_ERR_BAD_REQUEST', `after=${opts.after} is not an account JID`, 'pass the next cursor of the previous page');
      q = q.where((eb) => eb.or([eb('a.host', '>', after.domain), eb.and([eb('a.host', '=', after.domain), eb('a.user', '>', after.local!)])]));
    }
    const rows = await q.orderBy('a.host').orderBy('a.user').limit(limit + 1).execute();
    const page = rows.slice(0, limit);
    const twoFactor = new Set<string>();
    for (const host of new Set(page.map((r) => r.host))) {
      const on = await this.security(host)?.totpEnabledAmong(page.filter((r) => r.host === host).map((r) => r.user));
      for (const user of on ?? []) twoFactor.add(`${user}@${host}`);
    }
    const users = page.map((r) => {
      const jid = Jid.of(r.user, r.host);
      return {
        jid: jid.toString(),
        host: r.host,
        user: r.user,
        createdAt: new Date(Number(r.created_at)).toISOString(),
        disabled: r.since !== null,
        sessions: this.deps.sessions?.countOf(jid) ?? 0,
        twoFactor: twoFactor.has(jid.toString()),
      };
    });
    return { users, next: rows.length > limit ? users[users.length - 1]!.jid : undefined };
  }

  /**
   * Turns off an account's second factor (a user who lost their device), audited in the
   * account's security events with who did it.
   */
  async resetSecondFactor(jidText: string, by: string): Promise<Jid> {
    const jid = this.accountJid(jidText);
    const security = this.security(jid.domain);
    if (!security) throw new AdminError('PARLEY_ERR_NOT_FOUND', `the security module is off on ${jid.domain}`, 'enable modules.security to manage second factors');
    if (!(await this.deps.accounts.exists(jid.domain, jid.local!))) throw this.noAccount(jid);
    if (!(await security.resetTotp(jid.local!, by))) throw notFound(`${jid} has no second factor on`, 'nothing to reset');
    this.deps.log?.info({ account: jid.toString(), by }, 'second factor reset by an administrator');
    return jid;
  }

  /** The security module's API on a host, when it is enabled there. */
  security(host: string): SecurityApi | undefined {
    return this.deps.moduleApi?.(host, 'security') as SecurityApi | undefined;
  }

  async countUsers(): Promise<number> {
    const row = await sql<{ n: number | string }>`select count(*) as n from accounts`.execute(this.deps.storage.db);
    return Number(row.rows[0]?.n ?? 0);
  }

  /** The web admin's login: the account's password, and the account not disabled. */
  async verifyLogin(jid: Jid, password: string): Promise<boolean> {
    if (!(await this.deps.accounts.verifyPassword(jid.domain, jid.local!, password))) return false;
    return !(await this.deps.accounts.isDisabled(jid.domain, jid.local!));
  }

  /** An account that exists and is not disabled (a web session of any other ends). */
  async accountActive(jid: Jid): Promise<boolean> {
    return (await this.deps.accounts.exists(jid.domain, jid.local!)) && !(await this.deps.accounts.isDisabled(jid.domain, jid.local!));
  }

  /**
   * A fingerprint of the account's current password (its SCRAM-SHA-256 keys), kept by web
   * sessions: a changed password, from wherever (XMPP, the CLI, the admin API), ends them.
   */
  async passwordFingerprint(jid: Jid): Promise<string | undefined> {
    const { credential: c, real } = await this.deps.accounts.scram(jid.domain, jid.local!, 'SHA-256');
    if (!real) return undefined;
    return createHash('sha256').update(c.salt).update(c.storedKey).update(c.serverKey).digest('base64');
  }

  // ------------------------------------------------------------------ sessions

  listSessions(host?: string): SessionEntry[] {
    // Every node's sessions in a cluster (the others' as this node's directory replica has them).
    const all = this.sessionDirectory().everywhere(host === undefined ? undefined : this.host(host));
    return all
      .map((s) => ({
        ...(s.node === undefined ? {} : { node: s.node }),
        jid: s.jid.toString(),
        host: s.host,
        remoteAddress: s.remoteAddress,
        secure: s.secure,
        available: s.available,
        hibernating: s.hibernating,
        priority: s.priority,
      }))
      .sort((a, b) => a.jid.localeCompare(b.jid));
  }

  /** Ends one session (a full JID) with a policy-violation stream error. */
  kickSession(fullJid: string): Jid {
    const jid = Jid.tryParse(fullJid.trim());
    if (!jid || jid.local === undefined || jid.resource === undefined) {
      throw new AdminError('PARLEY_ERR_BAD_REQUEST', `"${fullJid}" is not a full JID`, 'write it as user@domain/resource');
    }
    const session = this.sessionDirectory().get(jid);
    if (!session) throw notFound(`no session ${jid}`, 'list sessions to see who is online');
    session.close('policy-violation', 'ended by an administrator');
    this.deps.log?.info({ session: jid.toString() }, 'session ended by an administrator');
    return jid;
  }

  private sessionDirectory(): SessionDirectory {
    if (!this.deps.sessions) throw new AdminError('PARLEY_ERR_NOT_RUNNING', 'sessions exist only in a running server', 'use the admin API of the running server');
    return this.deps.sessions;
  }

  private endSessions(jid: Jid, condition: string): void {
    for (const s of this.deps.sessions?.of(jid) ?? []) s.close(condition, 'ended by an administrator');
  }

  // ------------------------------------------------------------------ spam reports

  /** XEP-0377 reports filed on the hosts (or one), oldest first, at most `limit` per host. */
  async listReports(host: string | undefined, limit: number): Promise<Array<QueuedReport & { host: string }>> {
    const hosts = host === undefined ? this.deps.hosts : [this.host(host)];
    const out: Array<QueuedReport & { host: string }> = [];
    for (const h of hosts) for (const r of (await this.reports(h)?.list(limit)) ?? []) out.push({ ...r, host: h });
    return out;
  }

  /** Drops one report, the abuse handled or unfounded. */
  async dismissReport(host: string, id: string): Promise<void> {
    const queue = this.reportQueue(host);
    if (!(await queue.dismiss(id))) throw notFound(`there is no report ${id} on ${host}`, 'list reports to see their ids');
    this.deps.log?.info({ host, report: id }, 'spam report dismissed by an administrator');
  }

  /** Disables the account a report is about (an account of that host), ends its sessions, drops the reports about it. */
  async disableReported(host: string, id: string): Promise<Jid> {
    const queue = this.reportQueue(host);
    const report = await queue.get(id);
    if (!report) throw notFound(`there is no report ${id} on ${host}`, 'list reports to see their ids');
    const jid = Jid.tryParse(report.report.jid)?.bare();
    if (!jid || jid.domain !== host || !(await queue.disableReported(jid.toString()))) {
      throw new AdminError('PARLEY_ERR_CONFLICT', `${report.report.jid} is not an account of ${host}`, 'a remote JID can only be blocked, or its server told; dismiss the report');
    }
    this.deps.log?.info({ host, report: id, account: jid.toString() }, 'reported account disabled by an administrator');
    return jid;
  }

  private reports(host: string): BlockingApi['queue'] | undefined {
    return (this.deps.moduleApi?.(host, 'blocking') as BlockingApi | undefined)?.queue;
  }

  private reportQueue(host: string): BlockingApi['queue'] {
    const queue = this.reports(this.host(host));
    if (!queue) throw notFound(`the blocking module (spam reports) is not enabled on ${host}`, 'enable modules.blocking');
    return queue;
  }

  // ------------------------------------------------------------------ rooms

  async listRooms(host?: string): Promise<RoomSummary[]> {
    const hosts = host === undefined ? this.deps.hosts : [this.host(host)];
    const out: RoomSummary[] = [];
    for (const h of hosts) {
      const muc = this.muc(h);
      if (muc) out.push(...(await muc.list()));
    }
    return out.sort((a, b) => a.jid.localeCompare(b.jid));
  }

  /** Destroys a room (XEP-0045 §10.9) as a server admin: its occupants are told, its data goes. */
  async destroyRoom(roomJid: string, reason?: string): Promise<Jid> {
    const jid = Jid.tryParse(roomJid.trim());
    if (!jid || jid.local === undefined || jid.resource !== undefined) throw new AdminError('PARLEY_ERR_BAD_REQUEST', `"${roomJid}" is not a room JID`, 'write it as room@conference.example.com');
    const host = this.deps.hosts.find((h) => this.muc(h)?.domain === jid.domain);
    const muc = host === undefined ? undefined : this.muc(host);
    if (!muc) throw notFound(`${jid.domain} is not a MUC service of this server`, 'list rooms to see their JIDs');
    const admin = this.deps.admins.find((a) => a.domain === host) ?? this.deps.admins[0];
    if (!admin) throw new AdminError('PARLEY_ERR_NO_ADMIN', 'destroying a room needs a server admin to act as its owner', 'add a JID to admins: in the config');
    if (!(await muc.destroy(jid.local, admin, reason))) throw notFound(`there is no room ${jid}`, 'list rooms to see their JIDs');
    this.deps.log?.info({ room: jid.toString() }, 'room destroyed by an administrator');
    return jid;
  }

  private muc(host: string): ReturnType<typeof mucAdmin> | undefined {
    const api = this.deps.moduleApi?.(host, 'muc') as MucApi | undefined;
    if (!api || !this.deps.router) return undefined;
    const router = this.deps.router;
    const cluster = router.cluster instanceof ClusterNode ? router.cluster : undefined;
    return mucAdmin({
      muc: api,
      host,
      storage: this.deps.storage,
      request: (iq) => router.request(iq, 10_000),
      ...(cluster ? { roomsElsewhere: (domain: string) => cluster.servicesElsewhere(domain) } : {}),
    });
  }

  // ------------------------------------------------------------------ server

  async stats(): Promise<ServerStats> {
    const connections: Record<string, number> = {};
    let stanzasIn = 0;
    let stanzasOut = 0;
    const metrics = this.deps.metrics;
    if (metrics) {
      for (const v of (await metrics.connections.get()).values) connections[String(v.labels.type)] = v.value;
      for (const v of (await metrics.stanzas.get()).values) {
        if (v.labels.direction === 'in') stanzasIn += v.value;
        else stanzasOut += v.value;
      }
    }
    const lag = metrics ? (await metrics.eventLoopLag.get()).values[0]?.value : undefined;
    const mem = process.memoryUsage();
    return {
      name: this.deps.name ?? 'Parley',
      version: this.deps.version ?? 'unknown',
      hosts: [...this.deps.hosts],
      uptimeSeconds: Math.floor((Date.now() - (this.deps.startedAt ?? Date.now())) / 1000),
      sessions: this.deps.sessions?.sizeEverywhere ?? 0,
      accounts: await this.countUsers(),
      connections,
      stanzas: { in: stanzasIn, out: stanzasOut },
      memory: { rssBytes: mem.rss, heapUsedBytes: mem.heapUsed },
      eventLoopLagSeconds: lag,
    };
  }

  async reload(): Promise<unknown> {
    if (!this.deps.reload) throw new AdminError('PARLEY_ERR_NOT_RUNNING', 'only a running server reloads', 'run parley reload');
    return this.deps.reload();
  }

  // ------------------------------------------------------------------ helpers

  private noAccount(jid: Jid): AdminError {
    return notFound(`there is no account ${jid}`, 'list accounts to see their JIDs');
  }

  /** AccountErrors (bad username or password) as AdminErrors with the same code. */
  private async accountCall(fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (err instanceof AccountError) throw new AdminError(err.code, err.message, err.code === 'PARLEY_ERR_ACCOUNT_EXISTS' ? 'change its password instead' : 'choose another');
      throw err;
    }
  }
}

interface AccountRows {
  accounts: { host: string; user: string; created_at: number | string };
  account_disabled: { host: string; user: string; since: number | string };
}
