// XEP-0045 §10.1-10.2 and §16.5.3: a room's configuration, the muc#roomconfig form that shows and
// changes it, and (§6.4, §16.5.4) the muc#roominfo form that disco#info carries.
import { buildForm, Jid, StanzaError, z } from '../../lib/module-api.js';
import type { Element, FormField, SubmittedForm } from '../../lib/module-api.js';
import type { Role } from './affiliations.js';

export const NS_ROOMCONFIG = 'http://jabber.org/protocol/muc#roomconfig';
export const NS_ROOMINFO = 'http://jabber.org/protocol/muc#roominfo';

export const ALLOW_PM = ['anyone', 'participants', 'moderators', 'none'] as const;
export type AllowPm = (typeof ALLOW_PM)[number];
export const WHOIS = ['moderators', 'anyone'] as const;
export type Whois = (typeof WHOIS)[number];
/** The roles the presencebroadcast and getmemberlist fields choose from. */
const LISTED_ROLES = ['moderator', 'participant', 'visitor'] as const;
type ListedRole = (typeof LISTED_ROLES)[number];

/** Longest room name, description or language tag accepted (characters). */
const MAX_TEXT = 1024;

export interface RoomConfig {
  name: string;
  description: string;
  lang: string;
  persistent: boolean;
  public: boolean;
  membersOnly: boolean;
  moderated: boolean;
  passwordProtected: boolean;
  password: string;
  /** `anyone`: non-anonymous; `moderators`: semi-anonymous (§10.1.3). */
  whois: Whois;
  maxUsers: number;
  /** Members (not only admins) may invite others into a members-only room. */
  allowInvites: boolean;
  allowPm: AllowPm;
  /** Participants (not only moderators) may change the subject. */
  changeSubject: boolean;
  /** Discussions are archived (XEP-0313 on the room, status code 170). */
  logging: boolean;
  getMemberList: ListedRole[];
  presenceBroadcast: ListedRole[];
  /** Messages of history sent on entering (muc#maxhistoryfetch). */
  maxHistoryFetch: number;
}

/** Service limits the configuration lives within. */
export interface ConfigLimits {
  maxUsers: number;
  historyLength: number;
  maxHistoryLength: number;
}

export function defaultConfig(limits: ConfigLimits): RoomConfig {
  return {
    name: '',
    description: '',
    lang: '',
    persistent: false,
    public: true,
    membersOnly: false,
    moderated: false,
    passwordProtected: false,
    password: '',
    whois: 'moderators',
    maxUsers: limits.maxUsers,
    allowInvites: false,
    allowPm: 'anyone',
    changeSubject: false,
    logging: true,
    getMemberList: ['moderator', 'participant', 'visitor'],
    presenceBroadcast: ['moderator', 'participant', 'visitor'],
    maxHistoryFetch: limits.historyLength,
  };
}

/** Reads a stored configuration; a field that is missing or no longer valid takes its default. */
export function parseStoredConfig(json: string, limits: ConfigLimits): RoomConfig {
  const d = defaultConfig(limits);
  const roles = z.array(z.enum(LISTED_ROLES));
  const schema = z.object({
    name: z.string().catch(d.name),
    description: z.string().catch(d.description),
    lang: z.string().catch(d.lang),
    persistent: z.boolean().catch(true),
    public: z.boolean().catch(d.public),
    membersOnly: z.boolean().catch(d.membersOnly),
    moderated: z.boolean().catch(d.moderated),
    passwordProtected: z.boolean().catch(d.passwordProtected),
    password: z.string().catch(d.password),
    whois: z.enum(WHOIS).catch(d.whois),
    maxUsers: z.number().int().min(1).max(limits.maxUsers).catch(d.maxUsers),
    allowInvites: z.boolean().catch(d.allowInvites),
    allowPm: z.enum(ALLOW_PM).catch(d.allowPm),
    changeSubject: z.boolean().catch(d.changeSubject),
    logging: z.boolean().catch(d.logging),
    getMemberList: roles.catch(d.getMemberList),
    presenceBroadcast: roles.catch(d.presenceBroadcast),
    maxHistoryFetch: z.number().int().min(0).max(limits.maxHistoryLength).catch(d.maxHistoryFetch),
  });
  let raw: unknown = {};
  try {
    raw = JSON.parse(json);
  } catch {
    raw = {};
  }
  return schema.parse(typeof raw === 'object' && raw !== null ? raw : {});
}

const bool = (v: boolean): string => (v ? '1' : '0');

function maxUsersOptions(limit: number, current: number): string[] {
  const steps = [10, 20, 30, 50, 100, 200, 500, 1000].filter((n) => n < limit);
  return [...new Set([...steps, limit, current])].sort((a, b) => a - b).map(String);
}

/** XEP-0045 §10.1.3 / §10.2: the configuration form with the current values filled in. */
export function configForm(roomJid: Jid, c: RoomConfig, admins: readonly string[], owners: readonly string[], limits: ConfigLimits): Element {
  const roleOptions = LISTED_ROLES.map((r) => ({ value: r, label: r[0].toUpperCase() + r.slice(1) }));
  const fields: FormField[] = [
    { var: 'muc#roomconfig_roomname', type: 'text-single', label: 'Room name', values: [c.name] },
    { var: 'muc#roomconfig_roomdesc', type: 'text-single', label: 'Description', values: [c.description] },
    { var: 'muc#roomconfig_lang', type: 'text-single', label: 'Language of discussion', values: [c.lang] },
    { var: 'muc#roomconfig_persistentroom', type: 'boolean', label: 'Persistent (kept when the last occupant leaves)', values: [bool(c.persistent)] },
    { var: 'muc#roomconfig_publicroom', type: 'boolean', label: 'Listed in the directory of rooms', values: [bool(c.public)] },
    { var: 'muc#roomconfig_membersonly', type: 'boolean', label: 'Only members may enter', values: [bool(c.membersOnly)] },
    { var: 'muc#roomconfig_moderatedroom', type: 'boolean', label: 'Moderated (only participants may speak)', values: [bool(c.moderated)] },
    { var: 'muc#roomconfig_passwordprotectedroom', type: 'boolean', label: 'A password is required to enter', values: [bool(c.passwordProtected)] },
    { var: 'muc#roomconfig_roomsecret', type: 'text-private', label: 'Password', values: [c.password] },
    {
      var: 'muc#roomconfig_whois',
      type: 'list-single',
      label: 'Who may discover the real JIDs of occupants',
      values: [c.whois],
      options: [{ value: 'moderators', label: 'Moderators only' }, { value: 'anyone', label: 'Anyone' }],
    },
    {
      var: 'muc#roomconfig_maxusers',
      type: 'list-single',
      label: 'Maximum number of occupants',
      values: [String(c.maxUsers)],
      options: maxUsersOptions(limits.maxUsers, c.maxUsers).map((v) => ({ value: v })),
    },
    { var: 'muc#roomconfig_allowinvites', type: 'boolean', label: 'Members may invite others', values: [bool(c.allowInvites)] },
    {
      var: 'muc#roomconfig_allowpm',
      type: 'list-single',
      label: 'Who may send private messages',
      values: [c.allowPm],
      options: [
        { value: 'anyone', label: 'Anyone' },
        { value: 'participants', label: 'Anyone with voice' },
        { value: 'moderators', label: 'Moderators only' },
        { value: 'none', label: 'Nobody' },
      ],
    },
    { var: 'muc#roomconfig_changesubject', type: 'boolean', label: 'Participants may change the subject', values: [bool(c.changeSubject)] },
    { var: 'muc#roomconfig_enablelogging', type: 'boolean', label: 'Archive the discussion (message archive on the room)', values: [bool(c.logging)] },
    { var: 'muc#roomconfig_getmemberlist', type: 'list-multi', label: 'Roles that may retrieve the member list', values: c.getMemberList, options: roleOptions },
    { var: 'muc#roomconfig_presencebroadcast', type: 'list-multi', label: 'Roles whose presence is broadcast', values: c.presenceBroadcast, options: roleOptions },
    { var: 'muc#maxhistoryfetch', type: 'text-single', label: `Messages of history sent on entering (at most ${limits.maxHistoryLength})`, values: [String(c.maxHistoryFetch)] },
    { var: 'muc#roomconfig_roomadmins', type: 'jid-multi', label: 'Admins (one JID per line)', values: admins },
    { var: 'muc#roomconfig_roomowners', type: 'jid-multi', label: 'Owners (one JID per line)', values: owners },
  ];
  return buildForm('form', fields, {
    formType: NS_ROOMCONFIG,
    title: `Configuration of ${roomJid.toString()}`,
    instructions: 'Complete this form to change the configuration of the room.',
  });
}

export interface ConfigChange {
  config: RoomConfig;
  /** The full admin list, when the form set it (bare JIDs). */
  admins?: string[];
  /** The full owner list, when the form set it (bare JIDs). */
  owners?: string[];
}

function text(form: SubmittedForm, name: string, current: string): string {
  const values = form.fields.get(name);
  if (values === undefined) return current;
  const v = values.join('\n');
  if (v.length > MAX_TEXT) throw StanzaError.notAcceptable(`${name} is longer than ${MAX_TEXT} characters`);
  return v;
}

function flag(form: SubmittedForm, name: string, current: boolean): boolean {
  return form.bool(name) ?? current;
}

function oneOf<T extends string>(form: SubmittedForm, name: string, allowed: readonly T[], current: T): T {
  const v = form.value(name);
  if (v === undefined) return current;
  if (!(allowed as readonly string[]).includes(v)) throw StanzaError.badRequest(`${name} must be one of ${allowed.join(', ')}`);
  return v as T;
}

function roles(form: SubmittedForm, name: string, current: ListedRole[]): ListedRole[] {
  const values = form.fields.get(name);
  if (values === undefined) return current;
  const out: ListedRole[] = [];
  for (const v of values) {
    if (!(LISTED_ROLES as readonly string[]).includes(v)) throw StanzaError.badRequest(`${name}: ${v} is not a role`);
    if (!out.includes(v as ListedRole)) out.push(v as ListedRole);
  }
  return out;
}

function integer(form: SubmittedForm, name: string, current: number, min: number, max: number, none?: number): number {
  const v = form.value(name);
  if (v === undefined || v === '') return current;
  if (none !== undefined && v === 'none') return none;
  if (!/^\d{1,9}$/.test(v)) throw StanzaError.badRequest(`${name} must be a number`);
  const n = Number(v);
  if (n < min || n > max) throw StanzaError.notAcceptable(`${name} must be between ${min} and ${max}`);
  return n;
}

function jids(form: SubmittedForm, name: string): string[] | undefined {
  const values = form.fields.get(name);
  if (values === undefined) return undefined;
  const out = new Set<string>();
  for (const raw of values.flatMap((v) => v.split(/\s+/))) {
    if (raw === '') continue;
    const jid = Jid.tryParse(raw);
    if (!jid) throw StanzaError.jidMalformed(`${name}: ${raw} is not a JID`);
    out.add(jid.bare().toString());
  }
  return [...out];
}

/**
 * Applies a submitted muc#roomconfig form to the current configuration. Fields left out keep their
 * value; unknown fields are ignored (other servers' extensions). Throws bad-request for malformed
 * values and not-acceptable for values the service refuses (§10.1.3).
 */
export function applyConfigForm(form: SubmittedForm, current: RoomConfig, limits: ConfigLimits): ConfigChange {
  if (form.formType !== undefined && form.formType !== NS_ROOMCONFIG) {
    throw StanzaError.badRequest(`the form must be of type ${NS_ROOMCONFIG}`);
  }
  const config: RoomConfig = {
    name: text(form, 'muc#roomconfig_roomname', current.name),
    description: text(form, 'muc#roomconfig_roomdesc', current.description),
    lang: text(form, 'muc#roomconfig_lang', current.lang),
    persistent: flag(form, 'muc#roomconfig_persistentroom', current.persistent),
    public: flag(form, 'muc#roomconfig_publicroom', current.public),
    membersOnly: flag(form, 'muc#roomconfig_membersonly', current.membersOnly),
    moderated: flag(form, 'muc#roomconfig_moderatedroom', current.moderated),
    passwordProtected: flag(form, 'muc#roomconfig_passwordprotectedroom', current.passwordProtected),
    password: text(form, 'muc#roomconfig_roomsecret', current.password),
    whois: form.value('muc#roomconfig_whois') === 'none' ? 'moderators' : oneOf(form, 'muc#roomconfig_whois', WHOIS, current.whois),
    maxUsers: integer(form, 'muc#roomconfig_maxusers', current.maxUsers, 1, limits.maxUsers, limits.maxUsers),
    allowInvites: flag(form, 'muc#roomconfig_allowinvites', current.allowInvites),
    allowPm: oneOf(form, 'muc#roomconfig_allowpm', ALLOW_PM, current.allowPm),
    changeSubject: flag(form, 'muc#roomconfig_changesubject', current.changeSubject),
    logging: flag(form, 'muc#roomconfig_enablelogging', current.logging),
    getMemberList: roles(form, 'muc#roomconfig_getmemberlist', current.getMemberList),
    presenceBroadcast: roles(form, 'muc#roomconfig_presencebroadcast', current.presenceBroadcast),
    maxHistoryFetch: integer(form, 'muc#maxhistoryfetch', current.maxHistoryFetch, 0, limits.maxHistoryLength),
  };
  // §10.1.3: "the password for a password-protected room is blank" is the example of a refused configuration.
  if (config.passwordProtected && config.password === '') throw StanzaError.notAcceptable('a password-protected room needs a password');
  if (!config.passwordProtected) config.password = '';
  const owners = jids(form, 'muc#roomconfig_roomowners');
  // §10.1 "every room MUST have at least one owner".
  if (owners !== undefined && owners.length === 0) throw StanzaError.notAcceptable('a room needs at least one owner');
  const admins = jids(form, 'muc#roomconfig_roomadmins')?.filter((j) => !owners?.includes(j));
  return { config, admins, owners };
}

/** Whether a role's presence is broadcast to the room (muc#roomconfig_presencebroadcast). */
export function broadcastsRole(c: RoomConfig, role: Role): boolean {
  return role !== 'none' && (c.presenceBroadcast as readonly string[]).includes(role);
}

/** XEP-0045 §6.4: the room's disco#info features that describe its type. */
export function typeFeatures(c: RoomConfig): string[] {
  return [
    c.public ? 'muc_public' : 'muc_hidden',
    c.persistent ? 'muc_persistent' : 'muc_temporary',
    c.membersOnly ? 'muc_membersonly' : 'muc_open',
    c.moderated ? 'muc_moderated' : 'muc_unmoderated',
    c.whois === 'anyone' ? 'muc_nonanonymous' : 'muc_semianonymous',
    c.passwordProtected ? 'muc_passwordprotected' : 'muc_unsecured',
  ];
}

/** XEP-0045 §6.4 / XEP-0128: the muc#roominfo form of disco#info. */
export function roomInfoForm(c: RoomConfig, info: { occupants: number; subject: string; avatarHash?: string }): Element {
  const fields: FormField[] = [
    { var: 'muc#roomconfig_roomname', label: 'Name', values: [c.name] },
    { var: 'muc#roominfo_description', label: 'Description', values: [c.description] },
    { var: 'muc#roominfo_subject', label: 'Subject', values: [info.subject] },
    { var: 'muc#roominfo_subjectmod', type: 'boolean', label: 'Participants may change the subject', values: [bool(c.changeSubject)] },
    { var: 'muc#roomconfig_changesubject', type: 'boolean', label: 'Participants may change the subject', values: [bool(c.changeSubject)] },
    { var: 'muc#roominfo_occupants', label: 'Number of occupants', values: [String(info.occupants)] },
    { var: 'muc#roomconfig_allowinvites', type: 'boolean', label: 'Members may invite others', values: [bool(c.allowInvites)] },
    { var: 'muc#roomconfig_allowpm', type: 'list-single', label: 'Who may send private messages', values: [c.allowPm] },
    { var: 'muc#maxhistoryfetch', label: 'Messages of history sent on entering', values: [String(c.maxHistoryFetch)] },
  ];
  if (c.lang !== '') fields.push({ var: 'muc#roominfo_lang', label: 'Language of discussion', values: [c.lang] });
  // XEP-0486 §3: the hash of the room's avatar (vcard-temp PHOTO).
  if (info.avatarHash !== undefined) fields.push({ var: 'muc#roominfo_avatarhash', type: 'text-multi', label: 'Avatar hash', values: [info.avatarHash] });
  return buildForm('result', fields, { formType: NS_ROOMINFO });
}
