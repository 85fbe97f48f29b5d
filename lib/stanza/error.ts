// RFC 6120 §8.3: stanza errors. A module returns or throws one; the core turns it into the reply.
import { Element, xml } from '../xml/element.js';
import { NS } from './ns.js';

export type ErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

/** RFC 6120 §8.3.3, with the type the RFC gives each condition by default. */
export const STANZA_ERROR_TYPES = {
  'bad-request': 'modify',
  conflict: 'cancel',
  'feature-not-implemented': 'cancel',
  forbidden: 'auth',
  gone: 'cancel',
  'internal-server-error': 'cancel',
  'item-not-found': 'cancel',
  'jid-malformed': 'modify',
  'not-acceptable': 'modify',
  'not-allowed': 'cancel',
  'not-authorized': 'auth',
  'policy-violation': 'modify',
  'recipient-unavailable': 'wait',
  redirect: 'modify',
  'registration-required': 'auth',
  'remote-server-not-found': 'cancel',
  'remote-server-timeout': 'wait',
  'resource-constraint': 'wait',
  'service-unavailable': 'cancel',
  'subscription-required': 'auth',
  'undefined-condition': 'cancel',
  'unexpected-request': 'wait',
} as const satisfies Record<string, ErrorType>;

export type StanzaErrorCondition = keyof typeof STANZA_ERROR_TYPES;

export interface StanzaErrorOptions {
  type?: ErrorType;
  text?: string;
  /** An application-specific condition element (RFC 6120 §8.3.2). */
  appCondition?: Element;
  /** The `by` attribute: the entity that generated the error. */
  by?: string;
}

export class StanzaError extends Error {
  readonly condition: StanzaErrorCondition;
  readonly type: ErrorType;
  readonly text?: string;
  readonly appCondition?: Element;
  readonly by?: string;

  constructor(condition: StanzaErrorCondition, options: StanzaErrorOptions = {}) {
    super(options.text ? `${condition}: ${options.text}` : condition);
    this.name = 'StanzaError';
    this.condition = condition;
    this.type = options.type ?? STANZA_ERROR_TYPES[condition];
    this.text = options.text;
    this.appCondition = options.appCondition;
    this.by = options.by;
  }

  /** The `<error/>` child for a reply. */
  toElement(): Element {
    return xml(
      'error',
      { type: this.type, by: this.by },
      xml(this.condition, { xmlns: NS.stanzaErrors }),
      this.text ? xml('text', { xmlns: NS.stanzaErrors, 'xml:lang': 'en' }, this.text) : null,
      this.appCondition ?? null,
    );
  }

  /** Reads the `<error/>` child of an error stanza, if it is well formed. */
  static fromElement(stanza: Element): StanzaError | undefined {
    const err = stanza.getChild('error');
    if (!err) return undefined;
    const cond = err.getChildElements().find((c) => c.getNS() === NS.stanzaErrors && c.name !== 'text');
    if (!cond || !(cond.name in STANZA_ERROR_TYPES)) return undefined;
    const type = err.attrs.type as ErrorType | undefined;
    return new StanzaError(cond.name as StanzaErrorCondition, {
      type,
      text: err.getChildText('text', NS.stanzaErrors) ?? undefined,
    });
  }

  static badRequest(text?: string, app?: Element) { return new StanzaError('bad-request', { text, appCondition: app }); }
  static conflict(text?: string) { return new StanzaError('conflict', { text }); }
  static featureNotImplemented(text?: string, app?: Element) { return new StanzaError('feature-not-implemented', { text, appCondition: app }); }
  static forbidden(text?: string) { return new StanzaError('forbidden', { text }); }
  static gone(text?: string) { return new StanzaError('gone', { text }); }
  static internalServerError(text?: string) { return new StanzaError('internal-server-error', { text }); }
  static itemNotFound(text?: string) { return new StanzaError('item-not-found', { text }); }
  static jidMalformed(text?: string) { return new StanzaError('jid-malformed', { text }); }
  static notAcceptable(text?: string, app?: Element) { return new StanzaError('not-acceptable', { text, appCondition: app }); }
  static notAllowed(text?: string) { return new StanzaError('not-allowed', { text }); }
  static notAuthorized(text?: string) { return new StanzaError('not-authorized', { text }); }
  static policyViolation(text?: string) { return new StanzaError('policy-violation', { text }); }
  static recipientUnavailable(text?: string) { return new StanzaError('recipient-unavailable', { text }); }
  static redirect(text?: string) { return new StanzaError('redirect', { text }); }
  static registrationRequired(text?: string) { return new StanzaError('registration-required', { text }); }
  static remoteServerNotFound(text?: string) { return new StanzaError('remote-server-not-found', { text }); }
  static remoteServerTimeout(text?: string) { return new StanzaError('remote-server-timeout', { text }); }
  static resourceConstraint(text?: string) { return new StanzaError('resource-constraint', { text }); }
  static serviceUnavailable(text?: string) { return new StanzaError('service-unavailable', { text }); }
  static subscriptionRequired(text?: string) { return new StanzaError('subscription-required', { text }); }
  static undefinedCondition(text?: string, app?: Element) { return new StanzaError('undefined-condition', { text, appCondition: app }); }
  static unexpectedRequest(text?: string) { return new StanzaError('unexpected-request', { text }); }
}
