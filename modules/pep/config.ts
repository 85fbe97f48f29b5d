// Node configuration (XEP-0060 §8.2, the pubsub#node_config FORM_TYPE): the fields this server
// implements, their wire forms, and publish-options preconditions (§7.1.5).
import { buildForm, StanzaError } from '../../lib/module-api.js';
import type { Element, FormField } from '../../lib/module-api.js';
import { PubsubError } from './errors.js';
import { PUBSUB_META_DATA, PUBSUB_NODE_CONFIG } from './ns.js';

export const ACCESS_MODELS = ['open', 'presence', 'roster', 'whitelist'] as const;
export type AccessModel = (typeof ACCESS_MODELS)[number];
export const SEND_LAST = ['never', 'on_sub', 'on_sub_and_presence'] as const;
export type SendLast = (typeof SEND_LAST)[number];
export const PUBLISH_MODELS = ['publishers', 'subscribers', 'open'] as const;
export type PublishModel = (typeof PUBLISH_MODELS)[number];

/** The fields of a submitted form (the module API's SubmittedForm is one). */
export interface FormFields {
  formType: string | undefined;
  fields: ReadonlyMap<string, readonly string[]>;
}

/** XEP-0004 §3.3 boolean: "1"/"true" or "0"/"false". */
function parseBoolean(value: string | undefined, field: string): boolean {
  switch (value?.trim()) {
    case '1':
    case 'true':
      return true;
    case '0':
    case 'false':
      return false;
    default:
      throw StanzaError.notAcceptable(`${field} must be a boolean`);
  }
}

export interface NodeConfig {
  title: string;
  description: string;
  /** pubsub#type: the payload type the node carries (informative only). */
  type: string;
  accessModel: AccessModel;
  rosterGroupsAllowed: readonly string[];
  publishModel: PublishModel;
  /** A number, or 'max': the server's limit. */
  maxItems: number | 'max';
  persistItems: boolean;
  deliverNotifications: boolean;
  deliverPayloads: boolean;
  notifyRetract: boolean;
  notifyDelete: boolean;
  sendLastPublishedItem: SendLast;
  notificationType: 'headline' | 'normal';
}

/** What a service allows in a node's configuration. */
export interface ConfigRules {
  /** The highest pubsub#max_items; 'max' means this. */
  maxItems: number;
  publishModels: readonly PublishModel[];
}

function oneOf<T extends string>(allowed: readonly T[], value: string | undefined, field: string): T {
  const v = value?.trim();
  if (v === undefined || !(allowed as readonly string[]).includes(v)) {
    throw StanzaError.notAcceptable(`${field} must be one of ${allowed.join(', ')}`);
  }
  return v as T;
}

function single(values: readonly string[], field: string): string {
  if (values.length > 1) throw StanzaError.notAcceptable(`${field} takes one value`);
  return values[0] ?? '';
}

function parseMaxItems(value: string, rules: ConfigRules): number | 'max' {
  const v = value.trim();
  if (v === 'max') return 'max';
  if (!/^\d{1,9}$/.test(v)) throw StanzaError.notAcceptable('pubsub#max_items must be a positive number or "max"');
  const n = Number(v);
  if (n < 1) throw StanzaError.notAcceptable('pubsub#max_items must be at least 1');
  if (n > rules.maxItems) throw StanzaError.notAcceptable(`pubsub#max_items may be at most ${rules.maxItems} (or "max")`);
  return n;
}

type Setter = (config: NodeConfig, values: readonly string[], rules: ConfigRules) => NodeConfig;

/** The pubsub#node_config fields this server implements; any other is refused. */
const SETTERS: Record<string, Setter> = {
  'pubsub#title': (c, v) => ({ ...c, title: v.join('\n') }),
  'pubsub#description': (c, v) => ({ ...c, description: v.join('\n') }),
  'pubsub#type': (c, v) => ({ ...c, type: single(v, 'pubsub#type').trim() }),
  'pubsub#access_model': (c, v) => {
    const raw = single(v, 'pubsub#access_model').trim();
    if (!(ACCESS_MODELS as readonly string[]).includes(raw)) throw PubsubError.unsupportedAccessModel(raw);
    return { ...c, accessModel: raw as AccessModel };
  },
  'pubsub#roster_groups_allowed': (c, v) => ({ ...c, rosterGroupsAllowed: [...new Set(v.filter((g) => g !== ''))] }),
  'pubsub#publish_model': (c, v, r) => ({ ...c, publishModel: oneOf(r.publishModels, single(v, 'pubsub#publish_model'), 'pubsub#publish_model') }),
  'pubsub#max_items': (c, v, r) => ({ ...c, maxItems: parseMaxItems(single(v, 'pubsub#max_items'), r) }),
  'pubsub#persist_items': (c, v) => ({ ...c, persistItems: parseBoolean(single(v, 'pubsub#persist_items'), 'pubsub#persist_items') }),
  'pubsub#deliver_notifications': (c, v) => ({ ...c, deliverNotifications: parseBoolean(single(v, 'pubsub#deliver_notifications'), 'pubsub#deliver_notifications') }),
  'pubsub#deliver_payloads': (c, v) => ({ ...c, deliverPayloads: parseBoolean(single(v, 'pubsub#deliver_payloads'), 'pubsub#deliver_payloads') }),
  'pubsub#notify_retract': (c, v) => ({ ...c, notifyRetract: parseBoolean(single(v, 'pubsub#notify_retract'), 'pubsub#notify_retract') }),
  'pubsub#notify_delete': (c, v) => ({ ...c, notifyDelete: parseBoolean(single(v, 'pubsub#notify_delete'), 'pubsub#notify_delete') }),
  'pubsub#send_last_published_item': (c, v) => ({ ...c, sendLastPublishedItem: oneOf(SEND_LAST, single(v, 'pubsub#send_last_published_item'), 'pubsub#send_last_published_item') }),
  'pubsub#notification_type': (c, v) => ({ ...c, notificationType: oneOf(['headline', 'normal'] as const, single(v, 'pubsub#notification_type'), 'pubsub#notification_type') }),
};

export const CONFIG_FIELDS: readonly string[] = Object.keys(SETTERS);

/**
 * Applies a submitted pubsub#node_config form (XEP-0060 §8.2.4) to a configuration. Fields left
 * out keep their value (XEP-0004 incomplete submission); unknown fields are refused.
 */
export function applyConfigForm(base: NodeConfig, form: FormFields, rules: ConfigRules, formType = PUBSUB_NODE_CONFIG): NodeConfig {
  if (form.formType !== undefined && form.formType !== formType) {
    throw StanzaError.badRequest(`the form's FORM_TYPE must be ${formType}`);
  }
  let config = base;
  for (const [name, values] of form.fields) {
    if (name === 'FORM_TYPE') continue;
    const set = SETTERS[name];
    if (!set) throw StanzaError.notAcceptable(`${name} is not a node configuration option of this service`);
    config = set(config, values, rules);
  }
  return config;
}

/** The value a config field has, as it appears in a form. */
function fieldValues(config: NodeConfig, name: string): string[] {
  switch (name) {
    case 'pubsub#title': return config.title === '' ? [] : [config.title];
    case 'pubsub#description': return config.description === '' ? [] : [config.description];
    case 'pubsub#type': return config.type === '' ? [] : [config.type];
    case 'pubsub#access_model': return [config.accessModel];
    case 'pubsub#roster_groups_allowed': return [...config.rosterGroupsAllowed];
    case 'pubsub#publish_model': return [config.publishModel];
    case 'pubsub#max_items': return [String(config.maxItems)];
    case 'pubsub#persist_items': return [String(config.persistItems)];
    case 'pubsub#deliver_notifications': return [String(config.deliverNotifications)];
    case 'pubsub#deliver_payloads': return [String(config.deliverPayloads)];
    case 'pubsub#notify_retract': return [String(config.notifyRetract)];
    case 'pubsub#notify_delete': return [String(config.notifyDelete)];
    case 'pubsub#send_last_published_item': return [config.sendLastPublishedItem];
    case 'pubsub#notification_type': return [config.notificationType];
    default: return [];
  }
}

/**
 * XEP-0060 §7.1.5: every publish-options field is a precondition on the node's configuration of
 * the same name; an unknown field fails too. Returns the first field that does not match, or
 * undefined when all do.
 */
export function unmetPrecondition(config: NodeConfig, form: FormFields, rules: ConfigRules): string | undefined {
  for (const [name, values] of form.fields) {
    if (name === 'FORM_TYPE') continue;
    const set = SETTERS[name];
    if (!set) return name;
    let wanted: NodeConfig;
    try {
      wanted = set(config, values, rules);
    } catch {
      return name;
    }
    if (!sameField(config, wanted, name, rules)) return name;
  }
  return undefined;
}

function sameField(a: NodeConfig, b: NodeConfig, name: string, rules: ConfigRules): boolean {
  if (name === 'pubsub#max_items') return effectiveMaxItems(a, rules) === effectiveMaxItems(b, rules);
  if (name === 'pubsub#roster_groups_allowed') return [...a.rosterGroupsAllowed].sort().join('\n') === [...b.rosterGroupsAllowed].sort().join('\n');
  return fieldValues(a, name).join('\n') === fieldValues(b, name).join('\n');
}

export function effectiveMaxItems(config: NodeConfig, rules: ConfigRules): number {
  return config.maxItems === 'max' ? rules.maxItems : Math.min(config.maxItems, rules.maxItems);
}

/** The configuration form (XEP-0060 §8.2.1 / §8.3 default), with the current values. */
export function configForm(config: NodeConfig, rules: ConfigRules, type: 'form' | 'result' = 'form', rosterGroups: readonly string[] = []): Element {
  const bool = (v: string, label: string): FormField => ({ var: v, type: 'boolean', label, values: fieldValues(config, v) });
  const fields: FormField[] = [
    { var: 'pubsub#title', type: 'text-single', label: 'A friendly name for the node', values: fieldValues(config, 'pubsub#title') },
    { var: 'pubsub#description', type: 'text-single', label: 'A description of the node', values: fieldValues(config, 'pubsub#description') },
    { var: 'pubsub#type', type: 'text-single', label: 'The type of payload data of the node', values: fieldValues(config, 'pubsub#type') },
    {
      var: 'pubsub#access_model', type: 'list-single', label: 'Who may subscribe and retrieve items',
      options: ACCESS_MODELS.map((value) => ({ value })), values: [config.accessModel],
    },
    {
      var: 'pubsub#roster_groups_allowed', type: 'list-multi', label: 'Roster groups allowed to subscribe',
      options: [...new Set([...rosterGroups, ...config.rosterGroupsAllowed])].map((value) => ({ value })), values: [...config.rosterGroupsAllowed],
    },
    {
      var: 'pubsub#publish_model', type: 'list-single', label: 'Who may publish',
      options: rules.publishModels.map((value) => ({ value })), values: [config.publishModel],
    },
    { var: 'pubsub#max_items', type: 'text-single', label: `Items to keep (at most ${rules.maxItems}, or "max")`, values: fieldValues(config, 'pubsub#max_items') },
    bool('pubsub#persist_items', 'Persist items to storage'),
    bool('pubsub#deliver_notifications', 'Deliver event notifications'),
    bool('pubsub#deliver_payloads', 'Deliver payloads with event notifications'),
    bool('pubsub#notify_retract', 'Notify subscribers when items are removed'),
    bool('pubsub#notify_delete', 'Notify subscribers when the node is deleted'),
    {
      var: 'pubsub#send_last_published_item', type: 'list-single', label: 'When to send the last published item',
      options: SEND_LAST.map((value) => ({ value })), values: [config.sendLastPublishedItem],
    },
    {
      var: 'pubsub#notification_type', type: 'list-single', label: 'Message type of event notifications',
      options: [{ value: 'headline' }, { value: 'normal' }], values: [config.notificationType],
    },
  ];
  return buildForm(type, fields, { formType: PUBSUB_NODE_CONFIG });
}

/** XEP-0060 §5.4: the pubsub#meta-data form of a node's disco#info. */
export function metaDataForm(config: NodeConfig, owners: readonly string[]): Element {
  const fields: FormField[] = [
    { var: 'pubsub#title', type: 'text-single', values: fieldValues(config, 'pubsub#title') },
    { var: 'pubsub#description', type: 'text-single', values: fieldValues(config, 'pubsub#description') },
    { var: 'pubsub#type', type: 'text-single', values: fieldValues(config, 'pubsub#type') },
    { var: 'pubsub#access_model', type: 'list-single', values: [config.accessModel] },
    { var: 'pubsub#publish_model', type: 'list-single', values: [config.publishModel] },
    { var: 'pubsub#owner', type: 'jid-single', values: [...owners] },
    { var: 'pubsub#max_items', type: 'text-single', values: fieldValues(config, 'pubsub#max_items') },
    { var: 'pubsub#persist_items', type: 'boolean', values: fieldValues(config, 'pubsub#persist_items') },
  ];
  return buildForm('result', fields.filter((f) => (f.values?.length ?? 0) > 0), { formType: PUBSUB_META_DATA });
}

/** Reads a stored configuration; fields missing from older rows take the defaults. */
export function parseStoredConfig(raw: string, defaults: NodeConfig): NodeConfig {
  try {
    const parsed = JSON.parse(raw) as Partial<NodeConfig>;
    return { ...defaults, ...parsed };
  } catch {
    return defaults;
  }
}
