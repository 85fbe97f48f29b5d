// The login policy extension point (`ctx.authGuard`): after a SASL mechanism succeeds, a module
// decides whether that is enough (allow), whether SASL2 tasks must follow (XEP-0388 §2.7
// <continue/>: a second factor), or whether this path may not log in at all (legacy SASL for a
// two-factor account). It also accepts app passwords in place of the account password.
import type { Element } from '../xml/element.js';
import type { SaslFailureCondition } from '../sasl/mechanism.js';

/** How the first step proved who the client is. */
export type AuthCredential = 'password' | 'app-password' | 'token';

/** The client of a session, as it authenticated (XEP-0494 lists these). */
export interface SessionClient {
  /** XEP-0388 `<user-agent id/>`, when the client gave one. */
  readonly id: string | undefined;
  readonly software: string | undefined;
  readonly device: string | undefined;
  readonly credential: AuthCredential;
  /** The app password used, when `credential` is 'app-password'. */
  readonly appPasswordId: string | undefined;
  readonly mechanism: string;
}

export interface AuthAttempt {
  readonly host: string;
  /** The prepared localpart that authenticated. */
  readonly user: string;
  /** True for SASL2 (XEP-0388), where tasks can follow; false for RFC 6120 SASL. */
  readonly sasl2: boolean;
  readonly client: SessionClient;
  readonly remoteAddress: string;
}

/** One step of a SASL2 task, as the server answers it. */
export type TaskStep =
  /** Send `<task-data/>` with this payload and wait for the client's. */
  | { kind: 'data'; payload: Element }
  /** The task is complete; `payload` goes into `<success/>`. */
  | { kind: 'done'; payload?: Element }
  | { kind: 'failure'; condition: SaslFailureCondition; text?: string };

/** XEP-0388 §2.7: a task offered in `<continue/>`, run after the client chooses it with `<next/>`. */
export interface Sasl2Task {
  readonly name: string;
  /** `next` is the client's `<next/>`: its children are the task's first data. */
  start(next: Element): Promise<TaskStep>;
  /** `data` is a client `<task-data/>`. */
  step(data: Element): Promise<TaskStep>;
}

export type AuthDecision =
  | { kind: 'allow' }
  | { kind: 'tasks'; tasks: readonly Sasl2Task[]; text?: string }
  | { kind: 'refuse'; condition: SaslFailureCondition; text?: string };

/** What a login attempt came to, for the audit log. */
export interface AuthOutcome {
  readonly host: string;
  /** The account claimed, when the attempt got that far. */
  readonly user: string | undefined;
  readonly mechanism: string;
  readonly remoteAddress: string;
  readonly sasl2: boolean;
  readonly client: SessionClient | undefined;
  readonly result: 'success' | 'failure';
  readonly condition?: string;
}

export interface AuthGuard {
  /** An app password of `user` (PLAIN only: SCRAM has one secret per name); its id, or undefined. */
  verifyAppPassword?(user: string, password: string): Promise<string | undefined>;
  /** Called once the mechanism succeeded, before anything is sent to the client. */
  decide(attempt: AuthAttempt): Promise<AuthDecision>;
  /** Called once per finished login attempt (success after every task, or failure). */
  outcome?(outcome: AuthOutcome): void;
}
