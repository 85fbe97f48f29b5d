// XEP-0115 §5: the verification string of a disco#info answer. The server uses it for its own
// stream feature; PEP uses it to check the `ver` that clients announce in presence (§5.4).
import { createHash } from 'node:crypto';
import { NS } from '../../lib/module-api.js';
import type { Element } from '../../lib/module-api.js';

/** Hash function names from the IANA registry, as written in the `hash` attribute (XEP-0115 §4). */
export type CapsHash = 'sha-1' | 'sha-224' | 'sha-256' | 'sha-384' | 'sha-512';

const NODE_HASHES: Record<CapsHash, string> = {
  'sha-1': 'sha1',
  'sha-224': 'sha224',
  'sha-256': 'sha256',
  'sha-384': 'sha384',
  'sha-512': 'sha512',
};

export function isCapsHash(name: string): name is CapsHash {
  return Object.hasOwn(NODE_HASHES, name);
}

export interface CapsIdentity {
  category: string;
  type: string;
  name?: string;
  lang?: string;
}

/** The parts of a disco#info answer that the hash covers. */
export interface CapsInfo {
  identities: readonly CapsIdentity[];
  features: readonly string[];
  /** XEP-0128 forms (`<x xmlns='jabber:x:data'>`); those without a hidden FORM_TYPE are ignored (§5.4 3.6). */
  forms?: readonly Element[];
}

/** "i;octet" collation (XEP-0115 §5.1): byte order of the UTF-8 forms. */
function octets(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

interface Form {
  type: string;
  fields: Array<{ var: string; values: string[] }>;
}

function readForm(x: Element): Form | undefined {
  const fields = x.getChildren('field');
  const formType = fields.find((f) => f.attrs.var === 'FORM_TYPE');
  if (!formType || formType.attrs.type !== 'hidden') return undefined;
  return {
    type: formType.getChildText('value') ?? '',
    fields: fields
      .filter((f) => f !== formType)
      .map((f) => ({ var: (f.attrs.var as string | undefined) ?? '', values: f.getChildren('value').map((v) => v.getText()) })),
  };
}

function formsOf(info: CapsInfo): Form[] {
  return (info.forms ?? [])
    .filter((x) => x.name === 'x' && x.attrs.xmlns === NS.dataForms)
    .map(readForm)
    .filter((f): f is Form => f !== undefined);
}

/** XEP-0115 §5.1 steps 1-7: the string S that is hashed. */
export function capsString(info: CapsInfo): string {
  let s = '';
  const identities = info.identities
    .map((i) => `${i.category}/${i.type}/${i.lang ?? ''}/${i.name ?? ''}`)
    .sort(octets);
  for (const i of identities) s += `${i}<`;
  for (const f of [...info.features].sort(octets)) s += `${f}<`;
  for (const form of formsOf(info).sort((a, b) => octets(a.type, b.type))) {
    s += `${form.type}<`;
    for (const field of [...form.fields].sort((a, b) => octets(a.var, b.var))) {
      s += `${field.var}<`;
      for (const v of [...field.values].sort(octets)) s += `${v}<`;
    }
  }
  return s;
}

/** XEP-0115 §5.1 steps 8-9: the `ver` attribute, base64 of the hash of S. */
export function capsVer(info: CapsInfo, hash: CapsHash = 'sha-1'): string {
  return createHash(NODE_HASHES[hash]).update(capsString(info), 'utf8').digest('base64');
}

/** Reads identities, features and forms from a disco#info `<query/>`. */
export function capsInfoOf(query: Element): CapsInfo {
  return {
    identities: query.getChildren('identity').map((i) => ({
      category: (i.attrs.category as string | undefined) ?? '',
      type: (i.attrs.type as string | undefined) ?? '',
      name: i.attrs.name as string | undefined,
      lang: i.attrs['xml:lang'] as string | undefined,
    })),
    features: query.getChildren('feature').map((f) => (f.attrs.var as string | undefined) ?? ''),
    forms: query.getChildren('x', NS.dataForms),
  };
}

/**
 * XEP-0115 §5.4 3.3-3.5: why an answer cannot be used to verify a `ver` (duplicate identities,
 * duplicate features, two forms with one FORM_TYPE, a FORM_TYPE with several values), or
 * undefined when it can.
 */
export function capsProblem(info: CapsInfo): string | undefined {
  const ids = info.identities.map((i) => `${i.category}/${i.type}/${i.lang ?? ''}/${i.name ?? ''}`);
  if (new Set(ids).size !== ids.length) return 'duplicate identity';
  if (new Set(info.features).size !== info.features.length) return 'duplicate feature';
  const types = new Set<string>();
  for (const x of info.forms ?? []) {
    if (x.name !== 'x' || x.attrs.xmlns !== NS.dataForms) continue;
    const formType = x.getChildren('field').find((f) => f.attrs.var === 'FORM_TYPE');
    if (!formType || formType.attrs.type !== 'hidden') continue;
    const values = new Set(formType.getChildren('value').map((v) => v.getText()));
    if (values.size > 1) return 'FORM_TYPE with several values';
    const type = [...values][0] ?? '';
    if (types.has(type)) return `two forms with FORM_TYPE ${type}`;
    types.add(type);
  }
  return undefined;
}

/** The `ver` of a disco#info `<query/>`, or undefined when §5.4 says the answer is unusable. */
export function verOfQuery(query: Element, hash: CapsHash = 'sha-1'): string | undefined {
  const info = capsInfoOf(query);
  return capsProblem(info) === undefined ? capsVer(info, hash) : undefined;
}
