// XEP-0441 Message Archive Management Preferences (`<prefs xmlns='urn:xmpp:mam:2'/>`): a default
// policy plus always/never lists, matched as §2.3 says.
import { Jid, NS, StanzaError, xml } from '../../lib/module-api.js';
import type { Element } from '../../lib/module-api.js';

export type DefaultPolicy = 'always' | 'never' | 'roster';
const POLICIES: readonly DefaultPolicy[] = ['always', 'never', 'roster'];

/** JIDs per list: preferences are one small document per account. */
export const MAX_PREF_JIDS = 1000;

export interface Prefs {
  default: DefaultPolicy;
  always: string[];
  never: string[];
}

/** Archive everything until the user says otherwise (XEP-0313 §6.1.1's baseline). */
export const DEFAULT_PREFS: Prefs = { default: 'always', always: [], never: [] };

function jidList(parent: Element | undefined, name: string): string[] {
  if (!parent) return [];
  const out = new Set<string>();
  for (const j of parent.getChildren('jid')) {
    const jid = Jid.tryParse(j.getText().trim());
    if (!jid) throw StanzaError.badRequest(`<${name}/> holds an invalid JID`);
    out.add(jid.toString());
  }
  if (out.size > MAX_PREF_JIDS) throw StanzaError.notAcceptable(`at most ${MAX_PREF_JIDS} JIDs in <${name}/>`);
  return [...out];
}

export function parsePrefs(el: Element): Prefs {
  const policy = el.attrs.default as string | undefined;
  if (!POLICIES.includes(policy as DefaultPolicy)) throw StanzaError.badRequest("default must be 'always', 'never' or 'roster'");
  const always = jidList(el.getChild('always'), 'always');
  const never = jidList(el.getChild('never'), 'never');
  return { default: policy as DefaultPolicy, always, never };
}

/** §2.1: the answer always holds both lists, even empty. */
export function prefsElement(p: Prefs): Element {
  return xml(
    'prefs',
    { xmlns: NS.mam, default: p.default },
    xml('always', {}, p.always.map((j) => xml('jid', {}, j))),
    xml('never', {}, p.never.map((j) => xml('jid', {}, j))),
  );
}

/** Stored as JSON in the keyval store; anything unreadable falls back to the defaults. */
export function decodePrefs(text: string | undefined): Prefs {
  if (text === undefined) return DEFAULT_PREFS;
  try {
    const v = JSON.parse(text) as Partial<Prefs>;
    if (!POLICIES.includes(v.default as DefaultPolicy) || !Array.isArray(v.always) || !Array.isArray(v.never)) return DEFAULT_PREFS;
    return { default: v.default as DefaultPolicy, always: v.always.map(String), never: v.never.map(String) };
  } catch {
    return DEFAULT_PREFS;
  }
}

/**
 * §2.3.1: a listed JID with a resource matches the target as is; a bare one matches the target's
 * bare JID.
 */
function listed(list: readonly string[], target: Jid): boolean {
  const full = target.toString();
  const bare = target.bare().toString();
  return list.some((entry) => (entry.includes('/') ? entry === full : entry === bare));
}

/**
 * Whether a message with `target` (the `to` of an outgoing message, the `from` of an incoming one,
 * §2.3.2-3) is archived. The never list wins over the always list: a JID in both is not archived.
 */
export async function shouldArchive(p: Prefs, target: Jid, inRoster: (contact: Jid) => Promise<boolean>): Promise<boolean> {
  if (listed(p.never, target)) return false;
  if (listed(p.always, target)) return true;
  switch (p.default) {
    case 'always': return true;
    case 'never': return false;
    case 'roster': return inRoster(target.bare());
  }
}
