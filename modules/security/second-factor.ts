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

/** Failed codes per account within a window; past the limit every code is refused until it ends. */
export class CodeAttempts {
  private readonly failures = new Map<string, { count: number; since: number }>();

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly maxTracked = 10_000,
  ) {}

  locked(user: string, now = Date.now()): boolean {
    const f = this.failures.get(user);
    if (!f) return false;
    if (now - f.since > this.windowMs) {
      this.failures.delete(user);
      return false;
    }
    return f.count >= this.max;
  }

  /** Counts a failure; returns true when this one reached the limit (the moment to alert). */
  fail(user: string, now = Date.now()): boolean {
    const f = this.failures.get(user);
    if (!f || now - f.since > this.windowMs) {
      if (this.failures.size >= this.maxTracked) this.failures.delete(this.failures.keys().next().value!);
      this.failures.set(user, { count: 1, since: now });
      return this.max <= 1;
    }
    f.count++;
    return f.count === this.max;
  }

  reset(user: string): void {
    this.failures.delete(user);
  }
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
  attempts: CodeAttempts,
  user: string,
  code: string,
  window: number,
  onLocked: () => void,
): Promise<CodeCheckResult> {
  if (attempts.locked(user)) return { ok: false, reason: 'throttled' };
  const enrolled = await store.totp(user);
  if (!enrolled) return { ok: false, reason: 'not-enrolled' };
  const clean = code.replace(/\s/g, '');
  let result: CodeCheckResult;
  if (/^\d{6}$/.test(clean)) {
    const step = matchTotp(base32Decode(enrolled.secret)!, clean, Date.now(), window);
    if (step === undefined) result = { ok: false, reason: 'wrong' };
    else result = (await store.useStep(user, step)) ? { ok: true } : { ok: false, reason: 'replayed' };
  } else {
    result = (await store.useRecoveryCode(user, clean)) ? { ok: true, recovery: true } : { ok: false, reason: 'wrong' };
  }
  if (result.ok) attempts.reset(user);
  else if (attempts.fail(user)) onLocked();
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
