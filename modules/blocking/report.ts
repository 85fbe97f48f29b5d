// XEP-0377 Blocking Command Reports (formerly Spam Reporting): a <report/> inside a blocked item,
// in the current form (urn:xmpp:reporting:1, reason attribute) or the earlier one
// (urn:xmpp:reporting:0, <spam/> or <abuse/> child) that older clients still send.
import type { Element } from '../../lib/module-api.js';

export const NS_REPORTING = 'urn:xmpp:reporting:1';
export const NS_REPORTING_0 = 'urn:xmpp:reporting:0';
export const NS_REASON_SPAM_0 = 'urn:xmpp:reporting:reason:spam:0';
export const NS_REASON_ABUSE_0 = 'urn:xmpp:reporting:reason:abuse:0';
const REASON_SPAM = 'urn:xmpp:reporting:spam';
const REASON_ABUSE = 'urn:xmpp:reporting:abuse';
const NS_SID = 'urn:xmpp:sid:0';

/** Bytes of a report's free text kept for the admins. */
const MAX_TEXT = 2000;
/** Stanza ids kept per report. */
const MAX_IDS = 20;

export interface Report {
  /** The reported JID, as blocked. */
  jid: string;
  reason: 'spam' | 'abuse' | 'unknown';
  text?: string;
  /** XEP-0359 ids of the offending messages, as the reporter's archive knows them. */
  stanzaIds: Array<{ by: string; id: string }>;
  /** Milliseconds since the epoch. */
  when: number;
}

function truncate(text: string): string {
  const buf = Buffer.from(text, 'utf8');
  return buf.length <= MAX_TEXT ? text : buf.subarray(0, MAX_TEXT).toString('utf8').replace(/\uFFFD$/, '');
}

/** The report in a block item, if it carries one. */
export function parseReport(item: Element, jid: string, when: number): Report | undefined {
  const current = item.getChild('report', NS_REPORTING);
  const legacy = current ? undefined : item.getChild('report', NS_REPORTING_0);
  const report = current ?? legacy;
  if (!report) return undefined;
  let reason: Report['reason'] = 'unknown';
  if (current) {
    if (current.attrs.reason === REASON_SPAM) reason = 'spam';
    else if (current.attrs.reason === REASON_ABUSE) reason = 'abuse';
  } else if (report.getChild('spam')) reason = 'spam';
  else if (report.getChild('abuse')) reason = 'abuse';
  const text = report.getChildText('text');
  const stanzaIds = report
    .getChildren('stanza-id', NS_SID)
    .map((s) => ({ by: String(s.attrs.by ?? ''), id: String(s.attrs.id ?? '') }))
    .filter((s) => s.by !== '' && s.id !== '')
    .slice(0, MAX_IDS);
  const out: Report = { jid, reason, stanzaIds, when };
  if (text !== null && text.trim() !== '') out.text = truncate(text);
  return out;
}
