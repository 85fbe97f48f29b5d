// The TOTP second factor as a SASL2 task (XEP-0388 §2.7), modelled on XEP-0400 (Deferred): the
// task is named TOTP; the client sends the code in `<totp xmlns='urn:parley:sasl2:totp:0'/>`,
// inside `<next/>` or, when the server asks with an empty `<totp/>` in `<task-data/>`, inside
// the client's `<task-data/>`. A recovery code is accepted in place of a TOTP code (once).
import { xml } from '../../lib/module-api.js';
import type { Element, Logger, Sasl2Task, TaskStep } from '../../lib/module-api.js';
import { base32Decode, matchTotp } from '../../lib/module-api.js';
import type { SecurityStore } from './store.js';

export const TOTP_TASK = 'TOTP';
export const TOTP_NS = 'urn:parley:sasl2:totp:0';

/** How many wrong codes an account may get within a window before every code is refused. */
export interface CodeLimit {
  max: number;
  windowMs: number;
}

export interface CodeCheckResult {
  ok: boolean;
  /** Why not, for the audit log: wrong, replayed, throttled. */
  reason?: 'wrong' | 'replayed' | 'throttled' | 'not-enrolled';
  recovery?: boolean;
}

/** Checks a TOTP or recovery code for an enrolled account, refusing replays, counting failures. */
export async function checkCode(
  store: SecurityStore,
  limit: CodeLimit,
  user: string,
  code: string,
  window: number,
  onLocked: () => void,
): Promise<CodeCheckResult> {
  const enrolled = await store.totp(user);
  if (!enrolled) return { ok: false, reason: 'not-enrolled' };
  // The count lives in the database: guesses spread over the nodes of a cluster add up.
  if (enrolled.failures >= limit.max && Date.now() - enrolled.failedSince <= limit.windowMs) return { ok: false, reason: 'throttled' };
  const clean = code.replace(/\s/g, '');
  let result: CodeCheckResult;
  if (/^\d{6}$/.test(clean)) {
    const step = matchTotp(base32Decode(enrolled.secret)!, clean, Date.now(), window);
    if (step === undefined) result = { ok: false, reason: 'wrong' };
    else result = (await store.useStep(user, step)) ? { ok: true } : { ok: false, reason: 'replayed' };
  } else {
    result = (await store.useRecoveryCode(user, clean)) ? { ok: true, recovery: true } : { ok: false, reason: 'wrong' };
  }
  if (result.ok) await store.codeSucceeded(user);
  else if ((await store.codeFailed(user, limit.windowMs)) === limit.max) onLocked();
  return result;
}

/** The TOTP task for one login of `user`. */
export function totpTask(user: string, check: (code: string) => Promise<CodeCheckResult>, log: Logger): Sasl2Task {
  const answer = async (el: Element | undefined): Promise<TaskStep> => {
    if (!el) return { kind: 'data', payload: xml('totp', { xmlns: TOTP_NS }) };
    const code = el.getText().trim();
    if (code === '' || code.length > 64) return { kind: 'failure', condition: 'malformed-request', text: 'no code' };
    const result = await check(code);
    if (result.ok) return { kind: 'done' };
    log.debug({ user, reason: result.reason }, 'second factor refused');
    if (result.reason === 'throttled') return { kind: 'failure', condition: 'temporary-auth-failure', text: 'too many wrong codes; try again later' };
    return { kind: 'failure', condition: 'not-authorized', text: 'wrong or already used code' };
  };
  return {
    name: TOTP_TASK,
    start: (next) => answer(next.getChild('totp', TOTP_NS)),
    step: (data) => {
      const el = data.getChild('totp', TOTP_NS);
      return el ? answer(el) : Promise.resolve({ kind: 'failure', condition: 'malformed-request', text: `expected <totp xmlns='${TOTP_NS}'/>` });
    },
  };
}
