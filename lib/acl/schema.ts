// The access rule language (config `access:` and `roles:`): one small language for every
// enforcement point. A rule is a list of `allow`/`deny` entries tried in order; the first whose
// condition matches decides, and a rule that nothing matches denies.
//
//   access:
//     register: [{ allow: { ip: 10.0.0.0/8 } }, { deny: all }]
//     send: [{ allow: { role: limited, target: support@example.org } }, { deny: { role: limited } }, { allow: all }]
import { isIP } from 'node:net';
import { z } from 'zod';
import { Jid } from '../jid/jid.js';
import { parseSize } from '../config/units.js';

export const ROLES = ['admin', 'operator', 'user', 'limited'] as const;
export type Role = (typeof ROLES)[number];

/** The enforcement points and what they guard. */
export const ACCESS_RULES = [
  'register', // XEP-0077 account creation (subject: ip)
  'create_room', // XEP-0045 room creation
  'create_persistent_room',
  'create_public_room',
  'upload', // XEP-0363 upload slots
  's2s', // server-to-server with a domain (subject: host = the remote domain)
  'admin', // XEP-0133 commands that delete or change accounts
  'operator', // XEP-0133 commands that kick and disable
  'send', // stanzas from a local client to another entity (subject: target)
] as const;
export type AccessRuleName = (typeof ACCESS_RULES)[number];

const list = <T extends z.ZodType>(item: T) => z.union([item, z.array(item).min(1)]).transform((v) => (Array.isArray(v) ? v : [v]) as Array<z.output<T>>);

/** A JID pattern: a bare JID (user@domain), or a whole domain (domain or @domain). */
const jidPattern = z.string().transform((value, ctx): string => {
  const v = value.trim().replace(/^@/, '');
  try {
    const jid = Jid.parse(v);
    if (jid.resource !== undefined) throw new Error('resource');
    return jid.toString();
  } catch {
    ctx.issues.push({ code: 'custom', message: `"${value}" is not a bare JID or domain (e.g. support@example.org or example.org)`, input: value });
    return z.NEVER;
  }
});

const cidr = z.string().refine(
  (v) => {
    const [addr, prefix, ...rest] = v.trim().split('/');
    const family = isIP(addr ?? '');
    if (family === 0 || rest.length) return false;
    if (prefix === undefined) return true;
    const n = Number(prefix);
    return /^\d+$/.test(prefix) && n <= (family === 4 ? 32 : 128);
  },
  { message: 'must be an IP address or CIDR range, e.g. 10.0.0.0/8 or 2001:db8::/32' },
);

const conditionObject = z.strictObject({
  /** Bare JIDs or domains of the one acting. */
  jid: list(jidPattern).optional(),
  role: list(z.enum(ROLES)).optional(),
  /** Client address ranges. */
  ip: list(cidr).optional(),
  /** Domains: the remote server for `s2s`, else the domain of the one acting. */
  host: list(jidPattern).optional(),
  /** Bare JIDs or domains the stanza goes to (`send`). */
  target: list(jidPattern).optional(),
  /** true: a local account of this server; false: anyone else. */
  local: z.boolean().optional(),
});

/** `all`, `local`, `none`, or an object whose keys must all match. */
export const accessCondition = z.union([z.enum(['all', 'local', 'none']), conditionObject]);
export type AccessCondition = z.output<typeof accessCondition>;

/** A size such as 10 MiB; an `allow` entry of `upload` may cap the file size with it. */
const byteSize = z.unknown().transform((value, ctx): number => {
  try {
    return parseSize(value);
  } catch (err) {
    ctx.issues.push({ code: 'custom', message: (err as Error).message, input: value });
    return z.NEVER;
  }
});

const entry = z.union([z.strictObject({ allow: accessCondition, maxFileSize: byteSize.optional() }), z.strictObject({ deny: accessCondition })]);
export type AccessEntry = z.output<typeof entry>;

export const accessRule = z.array(entry);

export const accessSchema = z.strictObject(Object.fromEntries(ACCESS_RULES.map((r) => [r, accessRule.optional()])) as Record<AccessRuleName, z.ZodOptional<typeof accessRule>>);
export type AccessConfig = z.output<typeof accessSchema>;

/** Extra role members beside `admins:` (every local account is a `user`). */
export const rolesSchema = z.strictObject({
  admin: z.array(jidPattern).default([]),
  operator: z.array(jidPattern).default([]),
  limited: z.array(jidPattern).default([]),
});
export type RolesConfig = z.output<typeof rolesSchema>;

/** What a rule applies to when nothing is configured. */
export const DEFAULT_RULES: Record<AccessRuleName, AccessEntry[]> = {
  register: [{ allow: 'all' }],
  create_room: [{ deny: { role: ['limited'] } }, { allow: 'local' }],
  create_persistent_room: [{ deny: { role: ['limited'] } }, { allow: 'local' }],
  create_public_room: [{ deny: { role: ['limited'] } }, { allow: 'local' }],
  upload: [{ deny: { role: ['limited'] } }, { allow: 'local' }],
  s2s: [{ allow: 'all' }],
  admin: [{ allow: { role: ['admin'] } }],
  operator: [{ allow: { role: ['admin', 'operator'] } }],
  send: [{ allow: 'all' }],
};
