// The admins' ad-hoc command (XEP-0050) over the spam report queue: pick a report, then dismiss
// it, dismiss every report about the same JID, or disable the reported local account.
import { buildForm, StanzaError } from '../../lib/module-api.js';
import type { Jid } from '../../lib/module-api.js';
import type { AdhocCommand, CommandResult } from '../adhoc/index.js';
import type { QueuedReport, ReportQueue } from './reports-api.js';

export const NODE_SPAM_REPORTS = 'urn:parley:admin#spam-reports';
const FORM_TYPE = 'urn:parley:admin#spam-reports';
/** Reports shown in one form; the rest wait for the next run. */
const SHOWN = 50;

const ACTIONS = [
  { value: 'dismiss', label: 'Dismiss this report' },
  { value: 'dismiss-all', label: 'Dismiss every report about the reported JID' },
  { value: 'disable', label: 'Disable the reported account (local accounts) and dismiss its reports' },
] as const;

function describe(q: QueuedReport): string {
  const when = new Date(q.report.when).toISOString().slice(0, 16).replace('T', ' ');
  const text = q.report.text === undefined ? '' : `: ${q.report.text.slice(0, 200)}`;
  return `${q.reporter} reported ${q.report.jid} (${q.report.reason}, ${when} UTC)${text}`;
}

export function spamReportsCommand(queue: ReportQueue, isAdmin: (from: Jid) => boolean, log: (fields: Record<string, unknown>, msg: string) => void): AdhocCommand {
  return {
    node: NODE_SPAM_REPORTS,
    name: 'Review spam reports',
    allowed: isAdmin,
    async run(req): Promise<CommandResult> {
      if (req.stage === 0 && !req.form) {
        const [reports, total] = await Promise.all([queue.list(SHOWN), queue.count()]);
        if (reports.length === 0) return { status: 'completed', note: { type: 'info', text: 'No spam reports are waiting.' } };
        return {
          status: 'executing',
          form: buildForm('form', [
            { var: 'waiting', type: 'fixed', values: [`${total} report${total === 1 ? '' : 's'} waiting${total > SHOWN ? `; the oldest ${SHOWN} are shown` : ''}.`] },
            { var: 'report', type: 'list-single', label: 'Report', required: true, options: reports.map((q) => ({ label: describe(q), value: q.id })) },
            { var: 'action', type: 'list-single', label: 'Action', required: true, values: ['dismiss'], options: ACTIONS.map((a) => ({ label: a.label, value: a.value })) },
          ], { title: 'Spam reports', formType: FORM_TYPE }),
        };
      }
      const form = req.form;
      if (!form) throw StanzaError.badRequest('submit the form');
      const id = form.value('report');
      const action = form.value('action') ?? 'dismiss';
      if (!id) throw StanzaError.badRequest('choose a report');
      const report = await queue.get(id);
      if (!report) throw StanzaError.itemNotFound('that report is gone (dismissed meanwhile?)');
      switch (action) {
        case 'dismiss':
          await queue.dismiss(id);
          log({ report: id, reported: report.report.jid, by: req.from.bare().toString() }, 'spam report dismissed');
          return { status: 'completed', note: { type: 'info', text: `Dismissed the report about ${report.report.jid}.` } };
        case 'dismiss-all': {
          const n = await queue.dismissAbout(report.report.jid);
          log({ reported: report.report.jid, count: n, by: req.from.bare().toString() }, 'spam reports dismissed');
          return { status: 'completed', note: { type: 'info', text: `Dismissed ${n} report${n === 1 ? '' : 's'} about ${report.report.jid}.` } };
        }
        case 'disable': {
          if (!(await queue.disableReported(report.report.jid))) {
            throw StanzaError.notAcceptable(`${report.report.jid} is not an account of this server; dismiss the report or block its domain (s2s.blockedDomains)`);
          }
          log({ reported: report.report.jid, by: req.from.bare().toString() }, 'reported account disabled');
          return { status: 'completed', note: { type: 'info', text: `Disabled ${report.report.jid} and dismissed the reports about it.` } };
        }
        default:
          throw StanzaError.badRequest(`unknown action "${action}"`);
      }
    },
  };
}
