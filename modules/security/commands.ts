// Self-service security commands (XEP-0050) for the account's own user: turn TOTP on (otpauth
// URI plus a QR code as an XEP-0221 data: URI image) and off, create app passwords, and read the
// account's recent security events. Every action goes through the module's API (api.ts), as
// the web self-service pages do.
import { buildForm, StanzaError, xml } from '../../lib/module-api.js';
import type { Jid, ModuleContext, SubmittedForm } from '../../lib/module-api.js';
import type { AdhocApi, CommandResult } from '../adhoc/index.js';
import { MAX_LABEL, type SecurityApi } from './api.js';

export const SECURITY_NODE = 'urn:parley:security';
const MEDIA_NS = 'urn:xmpp:media-element';

const done = (text: string, type: 'info' | 'warn' | 'error' = 'info'): CommandResult => ({ status: 'completed', note: { type, text } });

export function registerSecurityCommands(ctx: ModuleContext<unknown>, commands: AdhocApi, api: SecurityApi): void {
  /** Only the account's own user, from this host. */
  const isLocalUser = (from: Jid) => from.domain === ctx.host && from.local !== undefined;

  function command(action: string, name: string, run: (user: string, from: Jid, form: SubmittedForm | undefined, stage: number) => Promise<CommandResult>): void {
    commands.add({
      node: `${SECURITY_NODE}#${action}`,
      name,
      allowed: isLocalUser,
      run: (req) => run(req.from.local!, req.from, req.form, req.stage),
    });
  }

  command('totp-enable', 'Turn on two-factor authentication (TOTP)', async (user, from, form, stage) => {
    // Enrolments are kept per requesting resource: the code must come from the same client.
    const key = `xmpp:${from.toString()}`;
    if (stage === 0 || !form) {
      const started = await api.startTotp(user, key);
      if (!started.ok) {
        if (started.reason === 'busy') throw StanzaError.resourceConstraint('too many enrolments under way; try again shortly');
        return done('Two-factor authentication is already on; turn it off first to enrol a new device.', 'warn');
      }
      const { uri, secret, qr } = started.enrolment;
      const f = buildForm(
        'form',
        [
          { var: 'qr', type: 'fixed', label: 'Scan this QR code with an authenticator app', values: ['Or enter the secret by hand.'] },
          { var: 'uri', type: 'text-single', label: 'otpauth URI', values: [uri] },
          { var: 'secret', type: 'text-single', label: 'Secret (base32)', values: [secret] },
          { var: 'code', type: 'text-single', label: 'The 6-digit code your app shows now', required: true },
        ],
        { title: 'Turn on two-factor authentication', instructions: 'Add this account to your authenticator app, then enter the code it shows.', formType: SECURITY_NODE },
      );
      // XEP-0221: the QR code as a data: URI image on the field that introduces it.
      const field = f.getChildren('field').find((c) => c.attrs.var === 'qr')!;
      field.cnode(xml('media', { xmlns: MEDIA_NS }, xml('uri', { type: 'image/png' }, qr)));
      return { status: 'executing', form: f };
    }
    const confirmed = await api.confirmTotp(user, key, form.value('code') ?? '', from.toString());
    if (!confirmed.ok) {
      return confirmed.reason === 'expired'
        ? done('This enrolment expired; start again.', 'error')
        : done('That code does not match; start again and check the clock of your device.', 'error');
    }
    return {
      status: 'completed',
      note: { type: 'info', text: 'Two-factor authentication is on. Keep the recovery codes somewhere safe: each works once instead of a code.' },
      form: buildForm('result', [{ var: 'recovery-codes', type: 'text-multi', label: 'Recovery codes', values: confirmed.recoveryCodes }], { title: 'Recovery codes', formType: SECURITY_NODE }),
    };
  });

  command('totp-disable', 'Turn off two-factor authentication', async (user, from, form, stage) => {
    if (!(await api.totpEnabled(user))) return done('Two-factor authentication is not on.', 'warn');
    if (stage === 0 || !form) {
      return {
        status: 'executing',
        form: buildForm('form', [{ var: 'code', type: 'text-single', label: 'A current code, or a recovery code', required: true }], { title: 'Turn off two-factor authentication', formType: SECURITY_NODE }),
      };
    }
    const result = await api.disableTotp(user, form.value('code') ?? '', from.toString());
    if (!result.ok) return done(result.reason === 'throttled' ? 'Too many wrong codes; try again later.' : 'Wrong or already used code.', 'error');
    return done('Two-factor authentication is off.');
  });

  command('app-password-create', 'Create an app password', async (user, from, form, stage) => {
    if (stage === 0 || !form) {
      return {
        status: 'executing',
        form: buildForm('form', [{ var: 'label', type: 'text-single', label: 'Which client is it for?', required: true }], {
          title: 'Create an app password',
          instructions: 'An app password lets one client without two-factor support log in (with PLAIN over TLS). Revoke it any time through client access management.',
          formType: SECURITY_NODE,
        }),
      };
    }
    const label = (form.value('label') ?? '').trim();
    const created = await api.createAppPassword(user, label, from.toString());
    if (!created.ok) {
      if (created.reason === 'bad-label') throw StanzaError.badRequest(`label must be 1 to ${MAX_LABEL} characters`);
      return done('Too many app passwords; revoke one first.', 'error');
    }
    return {
      status: 'completed',
      note: { type: 'info', text: 'Enter this password in that client instead of your account password. It is shown only now.' },
      form: buildForm('result', [{ var: 'id', type: 'text-single', label: 'Id', values: [created.id] }, { var: 'password', type: 'text-single', label: 'App password', values: [created.password] }], { title: label, formType: SECURITY_NODE }),
    };
  });

  command('events', 'Recent security events', async (user) => {
    const events = await api.events(user, 50);
    const lines = events.map((e) => `${new Date(e.at).toISOString()} ${e.kind} ${JSON.stringify(e.detail)}`);
    return {
      status: 'completed',
      form: buildForm('result', [{ var: 'events', type: 'text-multi', label: 'Newest first', values: lines }], { title: 'Recent security events', formType: SECURITY_NODE }),
    };
  });
}
