// What goes into a user archive (XEP-0313 §6.1.1, XEP-0334, XEP-0424), how long it stays, and the
// XEP-0359 stanza-id rules.
import { duration, Jid, NS, z } from '../../lib/module-api.js';
import type { Element, MessageStanza } from '../../lib/module-api.js';

function child(el: Element, name: string, ns: string): Element | undefined {
  return el.getChildElements().find((c) => c.name === name && c.attrs.xmlns === ns);
}

export function retractOf(el: Element): Element | undefined {
  return child(el, 'retract', NS.retract);
}

/**
 * XEP-0313 §6.1.1: messages of type normal or chat with a body. XEP-0334: <no-store/> and
 * <no-permanent-store/> keep a message out, <store/> brings one in. XEP-0424 §5: a retraction is
 * always stored, so that clients that were offline learn about it.
 */
export function isStorable(m: MessageStanza): boolean {
  // Errors, headlines and groupchat (the room keeps its own archive) are not conversation.
  // XEP-0334 §5: hints inside errors are ignored anyway.
  if (m.type !== 'chat' && m.type !== 'normal') return false;
  if (child(m.el, 'no-store', NS.hints) || child(m.el, 'no-permanent-store', NS.hints)) return false;
  if (child(m.el, 'store', NS.hints) || retractOf(m.el)) return true;
  return m.el.getChildElements().some((c) => c.name === 'body' && (c.attrs.xmlns === undefined || c.attrs.xmlns === NS.client));
}

/**
 * `retention`: how long archived messages are kept, a duration as everywhere in the config
 * (`365d`, `8w`), or `never` to keep them forever (null).
 */
export function retention() {
  return z
    .unknown()
    .transform((value, tctx): number | null => {
      if (value === 'never') return null;
      const parsed = duration().safeParse(value);
      if (!parsed.success) {
        for (const issue of parsed.error.issues) tctx.issues.push({ code: 'custom', message: `${issue.message}; or "never" to keep messages forever`, input: value });
        return z.NEVER;
      }
      if (parsed.data <= 0) {
        tctx.issues.push({ code: 'custom', message: 'retention must be longer than 0; write "never" to keep messages forever', input: value });
        return z.NEVER;
      }
      return parsed.data;
    })
    .prefault('365d');
}

/**
 * XEP-0359 §3 rule 2: a stanza-id whose `by` we would set is deleted before anything else sees
 * the stanza. We set them for every account of this server (user archives, §3.5 of XEP-0313) and
 * our services set them for their JIDs (MUC rooms). A service's own stanza-id travels in stanzas
 * from that JID itself (a room's messages come from its occupants' JIDs, room@service/nick): those
 * are kept. Everything else claiming to be by one of our JIDs is a forgery.
 */
export function stripOwnStanzaIds(el: Element, from: Jid, ourDomains: ReadonlySet<string>, serviceDomains: ReadonlySet<string>): void {
  for (const sid of el.getChildElements()) {
    if (sid.name !== 'stanza-id' || sid.attrs.xmlns !== NS.sid) continue;
    const by = Jid.tryParse(sid.attrs.by as string | undefined);
    // Unparseable: it names nobody we speak for, so it is not ours to remove (rule 3).
    if (!by || !ourDomains.has(by.domain)) continue;
    if (serviceDomains.has(by.domain) && from.bare().equals(by.bare())) continue;
    el.remove(sid);
  }
}
