// Evaluates the access rules (./schema.ts) for a subject: who acts (JID, roles, IP), on which
// host, towards which target.
import { BlockList, isIP } from 'node:net';
import type { Jid } from '../jid/jid.js';
import { DEFAULT_RULES, type AccessCondition, type AccessConfig, type AccessEntry, type AccessRuleName, type Role, type RolesConfig } from './schema.js';

export interface AccessSubject {
  /** The one acting (any resource is ignored); undefined before authentication (registration). */
  jid?: Jid;
  /** Their client's address. */
  ip?: string;
  /** The remote domain (s2s), or the domain acting. */
  host?: string;
  /** Where a stanza goes (send). */
  target?: Jid;
}

/** What a rule grants a subject: whether, and for `upload` how large a file at most. */
export interface AccessGrant {
  allowed: boolean;
  maxFileSize?: number;
}

export interface AccessControl {
  allowed(rule: AccessRuleName, subject: AccessSubject): boolean;
  decide(rule: AccessRuleName, subject: AccessSubject): AccessGrant;
  roles(jid: Jid): ReadonlySet<Role>;
}

type Compiled = Array<{ allow: boolean; maxFileSize?: number; test: (s: AccessSubject, roles: () => ReadonlySet<Role>) => boolean }>;

/** IPv4 clients on a dual-stack socket show up as ::ffff:a.b.c.d. */
function normaliseIp(ip: string): string {
  return ip.startsWith('::ffff:') && isIP(ip.slice(7)) === 4 ? ip.slice(7) : ip;
}

function matchesJid(patterns: readonly string[], jid: Jid | undefined): boolean {
  if (!jid) return false;
  const bare = jid.bare().toString();
  return patterns.some((p) => (p.includes('@') ? p === bare : p === jid.domain));
}

function compileCondition(c: AccessCondition, localHosts: ReadonlySet<string>): (s: AccessSubject, roles: () => ReadonlySet<Role>) => boolean {
  if (c === 'all') return () => true;
  if (c === 'none') return () => false;
  const isLocal = (s: AccessSubject) => s.jid !== undefined && s.jid.local !== undefined && localHosts.has(s.jid.domain);
  if (c === 'local') return isLocal;
  const tests: Array<(s: AccessSubject, roles: () => ReadonlySet<Role>) => boolean> = [];
  if (c.jid) tests.push((s) => matchesJid(c.jid!, s.jid));
  if (c.role) tests.push((_s, roles) => { const have = roles(); return c.role!.some((r) => have.has(r)); });
  if (c.ip) {
    const ranges = new BlockList();
    for (const r of c.ip) {
      const [addr, prefix] = r.split('/') as [string, string | undefined];
      const family = isIP(addr) === 4 ? 'ipv4' : 'ipv6';
      if (prefix === undefined) ranges.addAddress(addr, family);
      else ranges.addSubnet(addr, Number(prefix), family);
    }
    tests.push((s) => {
      if (!s.ip) return false;
      const ip = normaliseIp(s.ip);
      const family = isIP(ip);
      return family !== 0 && ranges.check(ip, family === 4 ? 'ipv4' : 'ipv6');
    });
  }
  if (c.host) tests.push((s) => s.host !== undefined && c.host!.includes(s.host.toLowerCase()));
  if (c.target) tests.push((s) => matchesJid(c.target!, s.target));
  if (c.local !== undefined) tests.push((s) => isLocal(s) === c.local);
  return (s, roles) => tests.every((t) => t(s, roles));
}

export function compileRule(entries: readonly AccessEntry[], localHosts: ReadonlySet<string>): Compiled {
  return entries.map((e) =>
    'allow' in e
      ? { allow: true, ...(e.maxFileSize === undefined ? {} : { maxFileSize: e.maxFileSize }), test: compileCondition(e.allow, localHosts) }
      : { allow: false, test: compileCondition(e.deny, localHosts) },
  );
}

export function createAccessControl(access: AccessConfig, roles: RolesConfig, admins: readonly string[], localHosts: readonly string[]): AccessControl {
  const hosts = new Set(localHosts.map((h) => h.toLowerCase()));
  const rules = new Map<AccessRuleName, Compiled>();
  for (const name of Object.keys(DEFAULT_RULES) as AccessRuleName[]) rules.set(name, compileRule(access[name] ?? DEFAULT_RULES[name], hosts));
  const adminSet = new Set([...admins, ...roles.admin]);

  function rolesOf(jid: Jid): ReadonlySet<Role> {
    const set = new Set<Role>();
    const bare = jid.bare().toString();
    const isIn = (patterns: readonly string[]) => matchesJid(patterns, jid);
    if (adminSet.has(bare) || isIn(roles.admin)) set.add('admin');
    if (isIn(roles.operator)) set.add('operator');
    if (isIn(roles.limited)) set.add('limited');
    else if (jid.local !== undefined && hosts.has(jid.domain)) set.add('user');
    return set;
  }

  function decide(rule: AccessRuleName, subject: AccessSubject): AccessGrant {
    // Roles are worked out only when an entry asks for them (the hot `send` rule rarely does).
    let memo: ReadonlySet<Role> | undefined;
    const who = () => (memo ??= subject.jid ? rolesOf(subject.jid) : new Set<Role>());
    for (const e of rules.get(rule)!) {
      if (e.test(subject, who)) return e.maxFileSize === undefined ? { allowed: e.allow } : { allowed: e.allow, maxFileSize: e.maxFileSize };
    }
    return { allowed: false };
  }

  return {
    roles: rolesOf,
    decide,
    allowed: (rule, subject) => decide(rule, subject).allowed,
  };
}

/**
 * A rule set that leaves no configured admin able to administer is a load error: the one way
 * back in would be editing the file by hand. Returns the reason, or undefined when fine.
 */
export function adminLockout(access: AccessConfig, roles: RolesConfig, admins: readonly string[], localHosts: readonly string[], parse: (jid: string) => Jid): string | undefined {
  const all = [...new Set([...admins, ...roles.admin])];
  if (all.length === 0 || access.admin === undefined) return undefined;
  const acl = createAccessControl(access, roles, admins, localHosts);
  if (all.some((a) => acl.allowed('admin', { jid: parse(a) }))) return undefined;
  return `denies every admin (${all.join(', ')}): allow at least one, e.g. add { allow: { role: admin } } first`;
}
