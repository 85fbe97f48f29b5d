// Account security: a TOTP second factor (RFC 6238) asked as a SASL2 task after the password,
// recovery codes, app passwords for clients without SASL2, throttling of code guesses, and an
// audit log of security events (structured log lines, and per account in the database).
//
// The login policy (lib/sasl2/guard.ts): a password login of an account with TOTP on must finish
// the TOTP task (SASL2) and is refused on legacy SASL; FAST tokens (issued only after the whole
// login, tasks included) and app passwords log in without a code.
import { defineModule, duration, Jid, z } from '../../lib/module-api.js';
import type { AuthDecision, AuthOutcome, SessionHandle } from '../../lib/module-api.js';
import adhoc from '../adhoc/index.js';
import { securityMigrations, SecurityStore } from './store.js';
import { securityApi, type SecurityApi } from './api.js';
import { checkCode, totpTask } from './second-factor.js';
import { registerSecurityCommands } from './commands.js';

export type { SecurityApi } from './api.js';

export default defineModule({
  name: 'security',
  xeps: [{ xep: 388, status: 'partial', note: 'SASL2 tasks: TOTP second factor (task TOTP, modelled on XEP-0400)' }],
  defaultEnabled: true,
  requires: [adhoc],
  migrations: securityMigrations,
  config: z.strictObject({
    totp: z
      .strictObject({
        /** Issuer shown by authenticator apps; defaults to the host name. */
        issuer: z.string().min(1).max(64).optional(),
        /** Time steps of clock drift accepted either side of now (RFC 6238 §5.2). */
        window: z.number().int().min(0).max(3).default(1),
        /** Recovery codes handed out at enrolment, each usable once instead of a code. */
        recoveryCodes: z.number().int().min(0).max(20).default(10),
      })
      .prefault({}),
    codeAttempts: z
      .strictObject({
        /** Wrong second-factor codes per account before codes are refused for `window`. */
        max: z.number().int().min(1).default(5),
        window: duration().prefault('15m'),
      })
      .prefault({}),
    /** App passwords per account. */
    maxAppPasswords: z.number().int().min(0).max(100).default(20),
    /** Security events kept per account (oldest dropped first). */
    maxEvents: z.number().int().min(10).max(10_000).default(200),
  }),
  setup(ctx): SecurityApi {
    const store = new SecurityStore(ctx.storage, ctx.host, ctx.config.maxEvents);
    const limit = { max: ctx.config.codeAttempts.max, windowMs: ctx.config.codeAttempts.window };

    async function audit(user: string, kind: string, detail: Record<string, unknown>): Promise<void> {
      ctx.log.info({ audit: kind, account: `${user}@${ctx.host}`, ...detail }, 'security event');
      try {
        if (await ctx.accounts.exists(ctx.host, user)) await store.addEvent(user, kind, detail);
      } catch (err) {
        ctx.log.error({ err }, 'could not record a security event');
      }
    }

    const check = (user: string, code: string) =>
      checkCode(store, limit, user, code, ctx.config.totp.window, () => {
        // An alert: enough wrong codes in a row that someone holding the password is guessing.
        ctx.log.warn({ audit: 'second-factor-throttled', account: `${user}@${ctx.host}` }, 'second-factor codes throttled after repeated failures');
        void audit(user, 'second-factor-throttled', {});
      });

    function clientDetail(o: Pick<AuthOutcome, 'client' | 'remoteAddress' | 'mechanism' | 'sasl2'>): Record<string, unknown> {
      return {
        ip: o.remoteAddress,
        mechanism: o.mechanism,
        sasl2: o.sasl2,
        ...(o.client?.software ? { software: o.client.software } : {}),
        ...(o.client?.device ? { device: o.client.device } : {}),
        ...(o.client ? { credential: o.client.credential } : {}),
      };
    }

    ctx.authGuard({
      verifyAppPassword: (user, password) => store.verifyAppPassword(user, password),
      async decide(attempt): Promise<AuthDecision> {
        if (attempt.client.credential !== 'password') return { kind: 'allow' };
        if (!(await store.totp(attempt.user))) return { kind: 'allow' };
        return { kind: 'tasks', tasks: [totpTask(attempt.user, (code) => check(attempt.user, code), ctx.log)], text: 'This account requires a second factor' };
      },
      outcome(o) {
        if (o.user === undefined) {
          ctx.log.info({ audit: 'login-failed', ip: o.remoteAddress, mechanism: o.mechanism, condition: o.condition }, 'security event');
          return;
        }
        const kind = o.result === 'success' ? 'login' : 'login-failed';
        void audit(o.user, kind, { ...clientDetail(o), ...(o.condition ? { condition: o.condition } : {}) });
      },
    });

    function endSessions(user: string, match: (s: SessionHandle) => boolean): number {
      const sessions = ctx.sessions.of(Jid.of(user, ctx.host)).filter(match);
      for (const s of sessions) s.close('not-authorized', 'access revoked');
      return sessions.length;
    }

    async function revokeAppPassword(user: string, id: string, by: string): Promise<boolean> {
      const gone = await store.revokeAppPassword(user, id);
      if (!gone) return false;
      const ended = endSessions(user, (s) => s.client?.appPasswordId === id);
      await audit(user, 'app-password-revoked', { id, by, sessionsEnded: ended });
      return true;
    }

    const api: SecurityApi = securityApi({
      host: ctx.host,
      store,
      issuer: ctx.config.totp.issuer ?? ctx.host,
      window: ctx.config.totp.window,
      recoveryCodes: ctx.config.totp.recoveryCodes,
      maxAppPasswords: ctx.config.maxAppPasswords,
      check,
      audit,
      revokeAppPassword,
    });
    registerSecurityCommands(ctx, ctx.deps.get(adhoc), api);

    ctx.on('account/deleted', async ({ host, user }) => {
      if (host === ctx.host) await store.deleteAccount(user);
    });
    return api;
  },
});
