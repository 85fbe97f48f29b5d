// What the security module offers to the rest of the server: its ad-hoc commands (commands.ts),
// client access management (modules/cam) and the web self-service and admin pages (lib/admin)
// all act through these functions, so every path checks codes the same way (throttled, no
// replay) and writes the same audit events.
import QRCode from 'qrcode';
import { base32Encode, matchTotp, newTotpSecret, otpauthUri } from '../../lib/module-api.js';
import type { SecurityStore, AppPassword, SecurityEvent } from './store.js';
import type { CodeCheckResult } from './second-factor.js';

/** Enrolments shown but not yet confirmed with a code expire after this long. */
const PENDING_TTL_MS = 10 * 60_000;
const MAX_PENDING = 1000;
export const MAX_LABEL = 64;

export interface TotpEnrolment {
  /** The otpauth:// URI authenticator apps read (also shown as text). */
  uri: string;
  /** The secret in base32, for typing by hand. */
  secret: string;
  /** The URI as a QR code, a PNG data: URI. */
  qr: string;
}

export type EnrolStart = { ok: true; enrolment: TotpEnrolment } | { ok: false; reason: 'already-on' | 'busy' };
export type EnrolConfirm = { ok: true; recoveryCodes: string[] } | { ok: false; reason: 'expired' | 'wrong' };
export type CodeOutcome = CodeCheckResult;
export type AppPasswordCreated = { ok: true; id: string; password: string } | { ok: false; reason: 'bad-label' | 'too-many' };

export interface SecurityApi {
  readonly host: string;
  appPasswords(user: string): Promise<AppPassword[]>;
  /** Creates an app password for the client named `label`; the password is returned only here. */
  createAppPassword(user: string, label: string, by: string): Promise<AppPasswordCreated>;
  /** Deletes an app password and ends the sessions that logged in with it. */
  revokeAppPassword(user: string, id: string, by: string): Promise<boolean>;
  /** Records a security event for `user`: a structured log line and a row in their audit log. */
  audit(user: string, kind: string, detail: Record<string, unknown>): Promise<void>;
  events(user: string, limit: number): Promise<SecurityEvent[]>;
  totpEnabled(user: string): Promise<boolean>;
  /** Which of `users` have TOTP on (one query, for a page of accounts). */
  totpEnabledAmong(users: readonly string[]): Promise<Set<string>>;
  recoveryCodesLeft(user: string): Promise<number>;
  /**
   * Starts an enrolment: a fresh secret held until confirmed. `key` names the requester (an
   * XMPP full JID, a web session), so two enrolments under way do not mix.
   */
  startTotp(user: string, key: string): Promise<EnrolStart>;
  /** Confirms an enrolment with a code of the new secret; turns TOTP on with fresh recovery codes. */
  confirmTotp(user: string, key: string, code: string, by: string): Promise<EnrolConfirm>;
  /** Checks a TOTP or recovery code: throttled per account, each code used once. */
  checkCode(user: string, code: string): Promise<CodeOutcome>;
  /** The user turns TOTP off, proving it with a code. */
  disableTotp(user: string, code: string, by: string): Promise<CodeOutcome>;
  /** An administrator turns TOTP off without a code (a lost device); false when it was not on. */
  resetTotp(user: string, by: string): Promise<boolean>;
  /**
   * Calls `listener` once TOTP is on for an account, before the enrolment is reported done:
   * credentials issued without the second factor (FAST tokens) are voided there. Returns the
   * unsubscribe.
   */
  onSecondFactorEnabled(listener: (user: string) => Promise<void>): () => void;
}

export interface SecurityApiDeps {
  host: string;
  store: SecurityStore;
  issuer: string;
  window: number;
  recoveryCodes: number;
  maxAppPasswords: number;
  check(user: string, code: string): Promise<CodeCheckResult>;
  audit(user: string, kind: string, detail: Record<string, unknown>): Promise<void>;
  revokeAppPassword(user: string, id: string, by: string): Promise<boolean>;
}

export function securityApi(d: SecurityApiDeps): SecurityApi {
  const { store } = d;
  const pending = new Map<string, { secret: Buffer; expires: number }>();
  const pendingKey = (user: string, key: string) => `${user}\0${key}`;
  const enabledListeners = new Set<(user: string) => Promise<void>>();

  return {
    host: d.host,
    appPasswords: (user) => store.appPasswords(user),
    async createAppPassword(user, label, by) {
      const clean = label.trim();
      if (clean === '' || clean.length > MAX_LABEL) return { ok: false, reason: 'bad-label' };
      if ((await store.appPasswords(user)).length >= d.maxAppPasswords) return { ok: false, reason: 'too-many' };
      const { id, password } = await store.createAppPassword(user, clean);
      await d.audit(user, 'app-password-created', { id, label: clean, by });
      return { ok: true, id, password };
    },
    revokeAppPassword: d.revokeAppPassword,
    audit: d.audit,
    events: (user, limit) => store.events(user, limit),
    totpEnabled: async (user) => (await store.totp(user)) !== undefined,
    totpEnabledAmong: (users) => store.totpEnabledAmong(users),
    recoveryCodesLeft: (user) => store.recoveryCodesLeft(user),
    async startTotp(user, key) {
      if (await store.totp(user)) return { ok: false, reason: 'already-on' };
      const now = Date.now();
      for (const [k, p] of pending) if (p.expires < now) pending.delete(k);
      if (pending.size >= MAX_PENDING) return { ok: false, reason: 'busy' };
      const secret = newTotpSecret();
      pending.set(pendingKey(user, key), { secret, expires: now + PENDING_TTL_MS });
      const uri = otpauthUri(secret, `${user}@${d.host}`, d.issuer);
      const qr = await QRCode.toDataURL(uri, { errorCorrectionLevel: 'M', margin: 2, scale: 4 });
      return { ok: true, enrolment: { uri, secret: base32Encode(secret), qr } };
    },
    async confirmTotp(user, key, code, by) {
      const k = pendingKey(user, key);
      const p = pending.get(k);
      if (!p || p.expires < Date.now()) return { ok: false, reason: 'expired' };
      const step = matchTotp(p.secret, code.replace(/\s/g, ''), Date.now(), d.window);
      if (step === undefined) return { ok: false, reason: 'wrong' };
      pending.delete(k);
      const recoveryCodes = await store.enableTotp(user, base32Encode(p.secret), step, d.recoveryCodes);
      for (const listener of enabledListeners) await listener(user);
      await d.audit(user, 'second-factor-enabled', { by });
      return { ok: true, recoveryCodes };
    },
    checkCode: d.check,
    async disableTotp(user, code, by) {
      const result = await d.check(user, code);
      if (!result.ok) return result;
      await store.disableTotp(user);
      await d.audit(user, 'second-factor-disabled', { by });
      return result;
    },
    onSecondFactorEnabled(listener) {
      enabledListeners.add(listener);
      return () => enabledListeners.delete(listener);
    },
    async resetTotp(user, by) {
      if (!(await store.totp(user))) return false;
      await store.disableTotp(user);
      await d.audit(user, 'second-factor-reset', { by });
      return true;
    },
  };
}
