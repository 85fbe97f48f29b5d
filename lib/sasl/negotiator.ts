// One stream's SASL negotiation (RFC 6120 §6.4): mechanism choice, base64 on the wire, limits,
// login throttling and the outcome. The stream layer turns the steps into <challenge/>,
// <success/> and <failure/> elements.
import type { CredentialLookup, ScramHash } from '../accounts/types.js';
import type { LoginThrottle } from '../accounts/throttle.js';
import { decodeBase64Strict, prepareUsername } from './common.js';
import {
  failure,
  type ChannelBindingType,
  type SaslContext,
  type SaslExchange,
  type SaslMechanism,
  type SaslStep,
} from './mechanism.js';

export interface SaslNegotiatorOptions {
  /** Candidate mechanisms in preference order (strongest first), e.g. a registry's list. */
  mechanisms: SaslMechanism[];
  /** Accepted but never offered in `<mechanisms/>`: XEP-0484 FAST, announced by SASL2 inline. */
  hidden?: SaslMechanism[];
  ctx: SaslContext;
  throttle: LoginThrottle;
  remoteAddress: string;
  /** Called once per finished attempt (for metrics and logs). */
  onResult?: (mechanism: string, result: 'success' | 'failure') => void;
  /** Called with unexpected errors of a mechanism (storage down, bugs); the client sees temporary-auth-failure. */
  onError?: (err: unknown) => void;
  /** Checks an app password given in place of the account password (PLAIN); its id, or undefined. */
  appPassword?: (host: string, user: string, password: string) => Promise<string | undefined>;
  /** Most client messages in one exchange (the initial response counts). Default 10. */
  maxSteps?: number;
  /** Largest decoded client message, bytes. Default 8192. */
  maxResponseBytes?: number;
}

class Throttled extends Error {}

type State =
  | { kind: 'idle' }
  | { kind: 'active'; mechanism: string; exchange: SaslExchange; steps: number }
  | { kind: 'succeeded' };

export class SaslNegotiator {
  private readonly opts: SaslNegotiatorOptions;
  private readonly names: string[];
  private readonly hiddenNames: string[];
  private readonly mechCtx: SaslContext;
  private readonly maxSteps: number;
  private readonly maxBytes: number;
  private state: State = { kind: 'idle' };
  private busy = false;
  private succeededWith: string | undefined;
  /** The account the current exchange claimed (user@host), once a mechanism looked it up. */
  private account: string | undefined;
  /** Set when the password the client gave was an app password (its id). */
  private appPasswordId: string | undefined;
  /** Whether the account is disabled, when the credential lookup said so with the credential. */
  private disabledWith: { host: string; user: string; disabled: boolean } | undefined;

  constructor(opts: SaslNegotiatorOptions) {
    this.opts = opts;
    this.maxSteps = opts.maxSteps ?? 10;
    this.maxBytes = opts.maxResponseBytes ?? 8192;
    this.names = opts.mechanisms.filter((m) => m.available(opts.ctx)).map((m) => m.name);
    this.hiddenNames = (opts.hidden ?? []).filter((m) => m.available(opts.ctx)).map((m) => m.name);
    const inner = opts.ctx.credentials;
    // Mechanisms see credentials through this wrapper: it learns which account is being tried,
    // and refuses the lookup while that account (or this address) is locked out. The lockout
    // is by claimed name, so it says nothing about whether the account exists.
    const credentials: CredentialLookup = {
      scram: async (host: string, user: string, hash: ScramHash) => {
        this.claim(host, user);
        const found = await inner.scram(host, user, hash);
        this.disabledWith = found.disabled === undefined ? undefined : { host, user, disabled: found.disabled };
        return found;
      },
      verifyPassword: async (host: string, user: string, password: string) => {
        this.claim(host, user);
        if (await inner.verifyPassword(host, user, password)) return true;
        this.appPasswordId = await opts.appPassword?.(host, user, password);
        return this.appPasswordId !== undefined;
      },
    };
    this.mechCtx = { ...opts.ctx, credentials, offered: this.names, claim: (host, user) => this.claim(host, user) };
  }

  /** Names to advertise in <mechanisms/>, strongest first. */
  offered(): string[] {
    return [...this.names];
  }

  /** Mechanisms accepted but not listed (XEP-0484 FAST), for the SASL2 inline offer. */
  hiddenOffered(): string[] {
    return [...this.hiddenNames];
  }

  /** XEP-0440: the channel binding types to advertise, when a -PLUS mechanism is offered. */
  channelBindings(): ChannelBindingType[] {
    if (!this.names.some((n) => n.endsWith('-PLUS'))) return [];
    return this.opts.ctx.tls?.bindings() ?? [];
  }

  /** <auth mechanism='…'>initial</auth>; `undefined` or '' when it had no text, '=' for an empty response. */
  async begin(mechanism: string, initialBase64: string | undefined): Promise<SaslStep> {
    if (this.state.kind === 'succeeded') return failure('malformed-request', 'already authenticated');
    // The stream feeds one element at a time; overlapping calls are a caller bug, refused as such.
    if (this.busy) return failure('malformed-request', 'a step is in progress');
    if (this.state.kind === 'active') {
      return this.finish(this.state.mechanism, failure('malformed-request', 'an exchange is already in progress'));
    }
    this.account = undefined;
    this.appPasswordId = undefined;
    this.disabledWith = undefined;
    if (!this.opts.throttle.check(this.opts.remoteAddress).allowed) {
      return this.finish(mechanism, failure('temporary-auth-failure'));
    }
    const mech = this.names.includes(mechanism)
      ? this.opts.mechanisms.find((m) => m.name === mechanism)
      : this.hiddenNames.includes(mechanism)
        ? this.opts.hidden?.find((m) => m.name === mechanism)
        : undefined;
    if (mech === undefined) return this.finish(mechanism, failure('invalid-mechanism'));

    let initial: Buffer | undefined;
    if (initialBase64 !== undefined && initialBase64 !== '') {
      const decoded = this.decode(initialBase64);
      if (decoded.kind === 'failure') return this.finish(mechanism, decoded);
      initial = decoded.data;
    }
    const exchange = mech.create(this.mechCtx);
    this.state = { kind: 'active', mechanism, exchange, steps: 1 };
    return this.run(mechanism, () => exchange.start(initial));
  }

  /** <response>…</response>; '' (no text) or '=' for an empty response. */
  async respond(responseBase64: string): Promise<SaslStep> {
    const state = this.state;
    if (state.kind === 'succeeded') return failure('malformed-request', 'already authenticated');
    if (state.kind !== 'active') return failure('malformed-request', 'no exchange in progress');
    if (this.busy) return failure('malformed-request', 'a step is in progress');
    if (++state.steps > this.maxSteps) return this.finish(state.mechanism, failure('malformed-request', 'too many steps'));
    const decoded = responseBase64 === '' ? { kind: 'ok' as const, data: Buffer.alloc(0) } : this.decode(responseBase64);
    if (decoded.kind === 'failure') return this.finish(state.mechanism, decoded);
    return this.run(state.mechanism, () => state.exchange.step(decoded.data));
  }

  /** <abort/> (RFC 6120 §6.4.4). */
  abort(): SaslStep {
    const step = failure('aborted');
    if (this.state.kind === 'active' && !this.busy) this.finish(this.state.mechanism, step);
    return step;
  }

  /** What the succeeded exchange proved: an account password, an app password, or a FAST token. */
  get credential(): { kind: 'password' | 'app-password' | 'token'; appPasswordId: string | undefined; mechanism: string } {
    const mechanism = this.succeededWith ?? '';
    if (this.appPasswordId !== undefined) return { kind: 'app-password', appPasswordId: this.appPasswordId, mechanism };
    return { kind: this.hiddenNames.includes(mechanism) ? 'token' : 'password', appPasswordId: undefined, mechanism };
  }

  /** The account the last exchange claimed (user@host), for the audit log of failures. */
  get claimedAccount(): string | undefined {
    return this.account;
  }

  /** Whether an exchange has succeeded on this negotiator. */
  get succeeded(): boolean {
    return this.state.kind === 'succeeded';
  }

  private claim(host: string, user: string): void {
    this.account = `${prepareUsername(user) ?? user}@${host.toLowerCase()}`;
    if (!this.opts.throttle.check(this.opts.remoteAddress, this.account).allowed) throw new Throttled();
  }

  private decode(text: string): { kind: 'ok'; data: Buffer } | Extract<SaslStep, { kind: 'failure' }> {
    if (text === '=') return { kind: 'ok', data: Buffer.alloc(0) };
    // Check the size before decoding: 4 characters per 3 bytes.
    if (text.length > Math.ceil(this.maxBytes / 3) * 4) return { kind: 'failure', condition: 'malformed-request', text: 'too large' };
    const data = decodeBase64Strict(text);
    if (data === undefined) return { kind: 'failure', condition: 'incorrect-encoding' };
    if (data.length > this.maxBytes) return { kind: 'failure', condition: 'malformed-request', text: 'too large' };
    return { kind: 'ok', data };
  }

  private async run(mechanism: string, step: () => Promise<SaslStep>): Promise<SaslStep> {
    this.busy = true;
    let result: SaslStep;
    try {
      result = await step();
    } catch (err) {
      if (!(err instanceof Throttled)) this.opts.onError?.(err);
      result = failure('temporary-auth-failure');
    } finally {
      this.busy = false;
    }
    if (result.kind === 'challenge') return result;
    // A disabled account authenticates correctly but may not log in (RFC 6120 §6.5.1). SCRAM
    // read the flag with the credential, one round trip earlier in the same exchange: a
    // disabling that lands in between is the race a disabling just after this check always
    // was (the login goes through), one round trip wider.
    if (result.kind === 'success' && (await this.isDisabled(result.user))) {
      result = failure('account-disabled', 'this account is disabled');
    }
    return this.finish(mechanism, result);
  }

  private isDisabled(user: string): Promise<boolean> | boolean {
    const known = this.disabledWith;
    const { host, credentials } = this.opts.ctx;
    if (known !== undefined && known.user === user && known.host === host) return known.disabled;
    return credentials.isDisabled?.(host, user) ?? false;
  }

  /**
   * Ends the attempt: counts it for the throttle and reports it. A counted failure is answered
   * only after the throttle's progressive delay (the stream reads nothing meanwhile).
   */
  private finish(mechanism: string, step: SaslStep): SaslStep | Promise<SaslStep> {
    const { throttle, remoteAddress } = this.opts;
    if (step.kind === 'success') {
      this.state = { kind: 'succeeded' };
      this.succeededWith = mechanism;
      throttle.succeeded(remoteAddress, this.account ?? `${step.user}@${this.opts.ctx.host.toLowerCase()}`);
      this.opts.onResult?.(mechanism, 'success');
      return step;
    }
    this.state = { kind: 'idle' };
    if (step.kind === 'failure') {
      // A refusal by the throttle itself is not a guess (counting it would extend the lockout
      // forever), and neither is an abort.
      if (step.condition !== 'temporary-auth-failure' && step.condition !== 'aborted') {
        throttle.failed(remoteAddress, this.account);
        this.opts.onResult?.(mechanism, 'failure');
        const delay = throttle.failureDelay(remoteAddress, this.account);
        if (delay > 0) return new Promise<SaslStep>((resolve) => setTimeout(() => resolve(step), delay).unref());
        return step;
      }
      this.opts.onResult?.(mechanism, 'failure');
    }
    return step;
  }
}
