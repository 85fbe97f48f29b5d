// XEP-0133 Service Administration: the everyday admin commands, as XEP-0050 ad-hoc commands
// that only the admins named in the config may see and run.
import { buildForm, defineModule, Jid, StanzaError, xml, z } from '../../lib/module-api.js';
import type { Element, SubmittedForm } from '../../lib/module-api.js';
import adhoc, { type CommandResult } from '../adhoc/index.js';

const ADMIN = 'http://jabber.org/protocol/admin';
const MOTD_KEY = 'motd';

type Step = (form: SubmittedForm) => Promise<CommandResult>;

const done = (text: string, type: 'info' | 'warn' | 'error' = 'info'): CommandResult => ({ status: 'completed', note: { type, text } });
const ask = (title: string, fields: Parameters<typeof buildForm>[1]): CommandResult => ({
  status: 'executing',
  form: buildForm('form', fields, { title, formType: ADMIN }),
});

export default defineModule({
  name: 'admin',
  xeps: [{ xep: 133, version: '1.3.0', status: 'partial', note: 'user statistics and a few rarely used commands are left out' }],
  defaultEnabled: true,
  requires: [adhoc],
  config: z.strictObject({}),
  setup(ctx) {
    const commands = ctx.deps.get(adhoc);
    const motd = ctx.keyval('admin');
    // Roles (config `roles:`, `admins:`) through the access rules: `admin` may run everything,
    // `operator` the commands that kick and disable, never those that delete or change accounts.
    const mayRun = (level: 'admin' | 'operator') => (from: Jid) => ctx.access.allowed(level, { jid: from }) || (level === 'operator' && ctx.access.allowed('admin', { jid: from }));

    /** Local accounts named in a jid field; anything else is bad-request. */
    function accounts(form: SubmittedForm, field: string): Jid[] {
      const raw = form.fields.get(field) ?? [];
      if (raw.length === 0) throw StanzaError.badRequest(`${field} is required`);
      return raw.map((v) => {
        const jid = Jid.tryParse(v);
        if (!jid || jid.local === undefined || jid.domain !== ctx.host) throw StanzaError.notAcceptable(`${v} is not an account of ${ctx.host}`);
        return jid.bare();
      });
    }

    function endSessions(account: Jid, condition: string): number {
      const sessions = ctx.sessions.of(account);
      for (const s of sessions) s.close(condition, 'ended by an administrator');
      return sessions.length;
    }

    function command(action: string, name: string, first: () => CommandResult, submit: Step, level: 'admin' | 'operator' = 'admin'): void {
      commands.add({
        node: `${ADMIN}#${action}`,
        name,
        allowed: mayRun(level),
        async run(req) {
          if (req.stage === 0 && !req.form) return first();
          if (!req.form) throw StanzaError.badRequest('submit the form');
          const result = await submit(req.form);
          // The audit trail of admin actions (README "Security"): who ran what, on whom. Never passwords.
          const targets = [...(req.form.fields.get('accountjids') ?? []), ...(req.form.fields.get('accountjid') ?? [])];
          ctx.log.info({ audit: 'admin-action', by: req.from.bare().toString(), action, targets, outcome: result.status === 'completed' ? result.note?.type ?? 'info' : 'pending' }, 'security event');
          return result;
        },
      });
    }

    const jidField = (v: string, label: string, multi = false) => ({ var: v, type: multi ? ('jid-multi' as const) : ('jid-single' as const), label, required: true });

    command('add-user', 'Add a user', () => ask('Add a user', [jidField('accountjid', 'The Jabber ID for the account to be added'), { var: 'password', type: 'text-private', label: 'The password for this account', required: true }, { var: 'password-verify', type: 'text-private', label: 'Retype password', required: true }]), async (f) => {
      const [jid] = accounts(f, 'accountjid');
      const pw = f.value('password');
      if (!pw) throw StanzaError.notAcceptable('a password is required');
      if (f.value('password-verify') !== undefined && f.value('password-verify') !== pw) throw StanzaError.notAcceptable('the passwords differ');
      if (await ctx.accounts.exists(ctx.host, jid.local!)) throw StanzaError.conflict('that account exists');
      await ctx.accounts.create(ctx.host, jid.local!, pw);
      ctx.log.info({ account: jid.toString() }, 'account created by an administrator');
      return done(`${jid} was created`);
    });

    command('delete-user', 'Delete users', () => ask('Delete users', [jidField('accountjids', 'The Jabber ID(s) to delete', true)]), async (f) => {
      const gone: string[] = [];
      for (const jid of accounts(f, 'accountjids')) {
        endSessions(jid, 'not-authorized');
        if (await ctx.accounts.delete(ctx.host, jid.local!)) gone.push(jid.toString());
      }
      ctx.log.info({ accounts: gone }, 'accounts deleted by an administrator');
      return done(gone.length ? `deleted: ${gone.join(', ')}` : 'no such account', gone.length ? 'info' : 'warn');
    });

    command('disable-user', 'Disable users', () => ask('Disable users', [jidField('accountjids', 'The Jabber ID(s) to disable', true)]), async (f) => {
      const list: string[] = [];
      for (const jid of accounts(f, 'accountjids')) {
        if (await ctx.accounts.setDisabled(ctx.host, jid.local!, true, 'disabled by an administrator')) {
          endSessions(jid, 'not-authorized');
          list.push(jid.toString());
        }
      }
      ctx.log.info({ accounts: list }, 'accounts disabled by an administrator');
      return done(list.length ? `disabled: ${list.join(', ')}` : 'no such account', list.length ? 'info' : 'warn');
    }, 'operator');

    command('reenable-user', 'Re-enable users', () => ask('Re-enable users', [jidField('accountjids', 'The Jabber ID(s) to re-enable', true)]), async (f) => {
      const list: string[] = [];
      for (const jid of accounts(f, 'accountjids')) if (await ctx.accounts.setDisabled(ctx.host, jid.local!, false)) list.push(jid.toString());
      return done(list.length ? `re-enabled: ${list.join(', ')}` : 'no such account', list.length ? 'info' : 'warn');
    }, 'operator');

    command('change-user-password', 'Change a user password', () => ask('Change a user password', [jidField('accountjid', 'The Jabber ID'), { var: 'password', type: 'text-private', label: 'The new password', required: true }]), async (f) => {
      const [jid] = accounts(f, 'accountjid');
      const pw = f.value('password');
      if (!pw) throw StanzaError.notAcceptable('a password is required');
      if (!(await ctx.accounts.exists(ctx.host, jid.local!))) throw StanzaError.itemNotFound('no such account');
      await ctx.accounts.setPassword(ctx.host, jid.local!, pw);
      ctx.log.info({ account: jid.toString() }, 'password changed by an administrator');
      return done(`the password of ${jid} was changed`);
    });

    command('end-user-session', 'End user sessions', () => ask('End user sessions', [jidField('accountjids', 'The Jabber ID(s) whose sessions end', true)]), async (f) => {
      let n = 0;
      for (const raw of f.fields.get('accountjids') ?? []) {
        const jid = Jid.tryParse(raw);
        if (!jid || jid.domain !== ctx.host) throw StanzaError.notAcceptable(`${raw} is not an account of ${ctx.host}`);
        if (jid.resource !== undefined) {
          const s = ctx.sessions.get(jid);
          if (s) { s.close('policy-violation', 'ended by an administrator'); n++; }
        } else n += endSessions(jid, 'policy-violation');
      }
      return done(`${n} session(s) ended`);
    }, 'operator');

    /** Result forms (XEP-0133 §4.x): run on execute, no input needed. */
    function report(action: string, name: string, build: () => Promise<Element>): void {
      commands.add({ node: `${ADMIN}#${action}`, name, allowed: mayRun('admin'), run: async () => ({ status: 'completed', form: await build() }) });
    }

    report('get-online-users-list', 'Get list of online users', async () => {
      const users = [...new Set(ctx.sessions.all().map((s) => s.jid.bare().toString()))].sort();
      return buildForm('result', [{ var: 'onlineuserjids', type: 'jid-multi', label: 'The list of all online users', values: users }], { formType: ADMIN });
    });
    report('get-online-users-num', 'Get number of online users', async () => {
      const n = new Set(ctx.sessions.all().map((s) => s.jid.bare().toString())).size;
      return buildForm('result', [{ var: 'onlineusersnum', label: 'The number of online users', values: [String(n)] }], { formType: ADMIN });
    });
    report('get-registered-users-num', 'Get number of registered users', async () => {
      const n = (await ctx.accounts.list(ctx.host)).length;
      return buildForm('result', [{ var: 'registeredusersnum', label: 'The number of registered users', values: [String(n)] }], { formType: ADMIN });
    });

    const messageFields = [{ var: 'subject', type: 'text-single' as const, label: 'Subject' }, { var: 'body', type: 'text-multi' as const, label: 'Message', required: true }];
    const bodyOf = (f: SubmittedForm) => {
      const body = (f.fields.get('body') ?? []).join('\n');
      if (!body) throw StanzaError.notAcceptable('the message is empty');
      return { subject: f.value('subject'), body };
    };
    const headline = (to: string, m: { subject?: string; body: string }) =>
      xml('message', { type: 'headline', from: ctx.host, to }, m.subject ? xml('subject', {}, m.subject) : null, xml('body', {}, m.body));

    command('announce', 'Send announcement to all online users', () => ask('Make an announcement', messageFields), async (f) => {
      const m = bodyOf(f);
      const sessions = ctx.sessions.all().filter((s) => s.available);
      for (const s of sessions) s.send(headline(s.jid.toString(), m));
      return done(`sent to ${sessions.length} session(s)`);
    });

    command('set-motd', 'Set message of the day', () => ask('Set message of the day', messageFields), async (f) => {
      await motd.set(ctx.host, '', MOTD_KEY, JSON.stringify(bodyOf(f)));
      return done('the message of the day is set');
    });

    command('delete-motd', 'Delete message of the day', () => ({ status: 'executing', form: buildForm('form', [{ var: 'confirm', type: 'boolean', label: 'Delete the message of the day?', values: ['1'] }], { formType: ADMIN }) }), async () => {
      await motd.delete(ctx.host, '', MOTD_KEY);
      return done('the message of the day is deleted');
    });

    // XEP-0133 §4.23: the message of the day, to each session as it becomes available.
    ctx.on('presence/initial', async ({ session }) => {
      const raw = await motd.get(ctx.host, '', MOTD_KEY);
      if (raw === undefined) return;
      const m = JSON.parse(raw) as { subject?: string; body: string };
      session.send(headline(session.jid.toString(), m));
    });
  },
});
