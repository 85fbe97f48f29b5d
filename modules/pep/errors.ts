// XEP-0060 errors: an RFC 6120 condition plus, usually, a pubsub-specific condition in
// `http://jabber.org/protocol/pubsub#errors` (XEP-0060 §7-§8 error cases).
import { StanzaError, xml } from '../../lib/module-api.js';
import type { StanzaErrorCondition } from '../../lib/module-api.js';
import { PUBSUB_ERRORS } from './ns.js';

function withApp(condition: StanzaErrorCondition, app: string, text?: string, attrs: Record<string, string> = {}): StanzaError {
  return new StanzaError(condition, { text, appCondition: xml(app, { xmlns: PUBSUB_ERRORS, ...attrs }) });
}

export const PubsubError = {
  nodeIdRequired: (text = 'the request must name a node') => withApp('bad-request', 'nodeid-required', text),
  itemRequired: (text = 'the request must include an item with an id') => withApp('bad-request', 'item-required', text),
  payloadRequired: (text = 'the item must carry a payload') => withApp('bad-request', 'payload-required', text),
  invalidPayload: (text = 'an item carries exactly one payload element') => withApp('bad-request', 'invalid-payload', text),
  payloadTooBig: (limit: number) => withApp('not-acceptable', 'payload-too-big', `an item may have at most ${limit} bytes`),
  invalidJid: (text = 'the jid must be your own bare or full JID') => withApp('bad-request', 'invalid-jid', text),
  notSubscribed: (text = 'you are not subscribed to this node') => withApp('unexpected-request', 'not-subscribed', text),
  preconditionNotMet: (text: string) => withApp('conflict', 'precondition-not-met', text),
  presenceSubscriptionRequired: () => withApp('not-authorized', 'presence-subscription-required', 'this node is only for contacts subscribed to its owner\'s presence'),
  notInRosterGroup: () => withApp('not-authorized', 'not-in-roster-group', 'this node is only for some of its owner\'s roster groups'),
  closedNode: () => withApp('not-allowed', 'closed-node', 'this node is only for its whitelist'),
  unsupported: (feature: string, text?: string) => withApp('feature-not-implemented', 'unsupported', text ?? `${feature} is not supported`, { feature }),
  unsupportedAccessModel: (model: string) => withApp('not-acceptable', 'unsupported-access-model', `access model ${model} is not supported`),
  tooManyNodes: (limit: number) => new StanzaError('not-allowed', { text: `at most ${limit} nodes`, appCondition: xml('max-nodes-exceeded', { xmlns: PUBSUB_ERRORS }) }),
};
