// One stream's login policy (lib/sasl2/guard.ts) between the SASL mechanism and success: asks the
// host's guard whether a successful mechanism is enough, runs the SASL2 tasks it asks for
// (XEP-0388 §2.7 <continue/>, <next/>, <task-data/>), and reports every outcome for the audit
// log. The stream machine turns the steps into elements.
import type { Element } from '../xml/element.js';
import type { Logger } from '../log.js';
import type { SaslStep } from '../sasl/mechanism.js';
import type { SaslNegotiator } from '../sasl/negotiator.js';
import type { AuthDecision, AuthGuard, Sasl2Task, SessionClient, TaskStep } from './guard.js';
import { continueElement, taskData, type Sasl2Authenticate } from './sasl2.js';

/** A SASL step as the stream sees it: a mechanism's, a SASL2 `<continue/>`/`<task-data/>`, or success after tasks. */
export type LoginStep =
  | Exclude<SaslStep, { kind: 'success' }>
  | { kind: 'success'; user: string; data?: Buffer; taskResult?: Element }
  | { kind: 'continue'; element: Element };

interface PendingTasks {
  user: string;
  client: SessionClient;
  tasks: readonly Sasl2Task[];
  current: Sasl2Task | undefined;
}

export interface LoginPolicyOptions {
  /** The stream's host is known only once its header arrived. */
  host(): string;
  guard(): AuthGuard | undefined;
  remoteAddress: string;
  log: Logger;
}

export class LoginPolicy {
  private pending: PendingTasks | undefined;
  /** How the authenticated client proved itself, once allowed; given to the session it binds. */
  client: SessionClient | undefined;

  constructor(private readonly opts: LoginPolicyOptions) {}

  /** `<continue/>` was sent and the tasks are not done: a new authentication is a stream error (§3). */
  get tasksPending(): boolean {
    return this.pending !== undefined;
  }

  /**
   * After a mechanism step: a success passes the guard, which may allow it, ask for SASL2 tasks
   * (a `continue` step carrying `<continue/>`), or refuse it. `request` is the SASL2
   * `<authenticate/>`, undefined for RFC 6120 SASL (where tasks become a refusal).
   */
  async afterMechanism(step: SaslStep, negotiator: SaslNegotiator | undefined, request: Sasl2Authenticate | undefined): Promise<LoginStep> {
    if (step.kind === 'challenge' || !negotiator) return step;
    const isSasl2 = request !== undefined;
    if (step.kind === 'failure') {
      const claimed = negotiator.claimedAccount;
      this.report(claimed?.slice(0, claimed.lastIndexOf('@')), request?.mechanism ?? '', isSasl2, undefined, step.condition);
      return step;
    }
    const cred = negotiator.credential;
    const ua = request?.userAgent;
    const client: SessionClient = {
      id: ua?.id, software: ua?.software, device: ua?.device, credential: cred.kind, appPasswordId: cred.appPasswordId, mechanism: cred.mechanism,
    };
    const guard = this.opts.guard();
    let decision: AuthDecision = { kind: 'allow' };
    if (guard) {
      try {
        decision = await guard.decide({ host: this.opts.host(), user: step.user, sasl2: isSasl2, client, remoteAddress: this.opts.remoteAddress });
      } catch (err) {
        this.opts.log.error({ err }, 'login policy failed');
        decision = { kind: 'refuse', condition: 'temporary-auth-failure' };
      }
    }
    if (decision.kind === 'tasks' && !isSasl2) {
      // RFC 6120 SASL has no tasks: such an account logs in over SASL2 or with an app password.
      decision = { kind: 'refuse', condition: 'not-authorized', text: 'this account requires a second factor: use a SASL2 client or an app password' };
    }
    if (decision.kind === 'refuse') {
      this.report(step.user, cred.mechanism, isSasl2, client, decision.condition);
      return { kind: 'failure', condition: decision.condition, text: decision.text };
    }
    if (decision.kind === 'tasks') {
      this.pending = { user: step.user, client, tasks: decision.tasks, current: undefined };
      return { kind: 'continue', element: continueElement(step.data, decision.tasks.map((t) => t.name), decision.text) };
    }
    this.client = client;
    this.report(step.user, cred.mechanism, isSasl2, client, undefined);
    return step;
  }

  /** XEP-0388 §2.7: `<next/>` picks a task, `<task-data/>` continues it. Only while `tasksPending`. */
  async runTask(el: Element): Promise<LoginStep> {
    const pending = this.pending!;
    let result: TaskStep;
    try {
      if (el.name === 'next') {
        if (pending.current) return { kind: 'failure', condition: 'malformed-request', text: 'a task is under way' };
        const task = pending.tasks.find((t) => t.name === el.attrs.task);
        if (!task) result = { kind: 'failure', condition: 'invalid-mechanism', text: 'no such task offered' };
        else {
          pending.current = task;
          result = await task.start(el);
        }
      } else if (pending.current) {
        result = await pending.current.step(el);
      } else {
        result = { kind: 'failure', condition: 'malformed-request', text: 'choose a task with <next/> first' };
      }
    } catch (err) {
      this.opts.log.error({ err }, 'SASL2 task failed');
      result = { kind: 'failure', condition: 'temporary-auth-failure' };
    }
    if (result.kind === 'data') return { kind: 'continue', element: taskData(result.payload) };
    this.pending = undefined;
    if (result.kind === 'failure') {
      this.report(pending.user, pending.client.mechanism, true, pending.client, result.condition);
      return result;
    }
    this.client = pending.client;
    this.report(pending.user, pending.client.mechanism, true, pending.client, undefined);
    return { kind: 'success', user: pending.user, taskResult: result.payload };
  }

  /** The exchange ended without success (abort, failure written): forget the tasks. */
  reset(aborted: boolean): void {
    const pending = this.pending;
    this.pending = undefined;
    if (pending && aborted) this.report(pending.user, pending.client.mechanism, true, pending.client, 'aborted');
  }

  private report(user: string | undefined, mechanism: string, sasl2: boolean, client: SessionClient | undefined, failed: string | undefined): void {
    const guard = this.opts.guard();
    if (!guard?.outcome) return;
    try {
      guard.outcome({
        host: this.opts.host(), user, mechanism, remoteAddress: this.opts.remoteAddress, sasl2, client,
        result: failed === undefined ? 'success' : 'failure', ...(failed === undefined ? {} : { condition: failed }),
      });
    } catch (err) {
      this.opts.log.error({ err }, 'login outcome handler failed');
    }
  }
}
