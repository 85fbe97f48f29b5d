// The second step of a web login (the web admin's and the account pages'): when the account has
// TOTP on, the password alone is not enough, as a SASL2 login needs the TOTP task. The code is
// checked by the security module (modules/security/api.ts): each code once, wrong ones throttled
// per account across the cluster.
import type { SecurityApi } from '../../modules/security/api.js';
import { HttpError } from './http-json.js';

export type SecondFactorResult =
  | { kind: 'off' }
  | { kind: 'passed' }
  /** A code is needed and none was sent: not a failure, the page asks for one. */
  | { kind: 'missing'; error: HttpError }
  | { kind: 'failed'; reason: string; error: HttpError };

/** The `code` of a login body, when one was sent. */
export function loginCode(body: Record<string, unknown>): string | undefined {
  const v = body.code;
  return typeof v === 'string' && v.trim() !== '' && v.length <= 64 ? v : undefined;
}

export async function checkSecondFactor(security: SecurityApi | undefined, user: string, code: string | undefined): Promise<SecondFactorResult> {
  if (!security || !(await security.totpEnabled(user))) return { kind: 'off' };
  if (code === undefined) return { kind: 'missing', error: new HttpError(401, 'code_required', 'enter the code your authenticator app shows, or a recovery code') };
  const result = await security.checkCode(user, code);
  if (result.ok) return { kind: 'passed' };
  return {
    kind: 'failed',
    reason: `code ${result.reason ?? 'wrong'}`,
    error: result.reason === 'throttled' ? new HttpError(429, 'too_many_attempts', 'too many wrong codes; try again later') : new HttpError(401, 'wrong_code', 'wrong or already used code'),
  };
}
