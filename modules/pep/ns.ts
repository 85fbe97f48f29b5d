// XEP-0060 namespaces and the feature names it registers (§10 and the Registrar's
// pubsub#features list), for PEP (XEP-0163) and the pubsub.<domain> service alike.
export const PUBSUB = 'http://jabber.org/protocol/pubsub';
export const PUBSUB_EVENT = 'http://jabber.org/protocol/pubsub#event';
export const PUBSUB_OWNER = 'http://jabber.org/protocol/pubsub#owner';
export const PUBSUB_ERRORS = 'http://jabber.org/protocol/pubsub#errors';
export const PUBSUB_NODE_CONFIG = 'http://jabber.org/protocol/pubsub#node_config';
export const PUBSUB_PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';
export const PUBSUB_META_DATA = 'http://jabber.org/protocol/pubsub#meta-data';
export const DELAY = 'urn:xmpp:delay';
export const CAPS = 'http://jabber.org/protocol/caps';
export const DISCO_INFO = 'http://jabber.org/protocol/disco#info';
export const DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';

/** `http://jabber.org/protocol/pubsub#<name>`: a feature of XEP-0060 §10. */
export function feature(name: string): string {
  return `${PUBSUB}#${name}`;
}

/** The XEP-0060 features both services implement (and nothing they do not). */
export const COMMON_FEATURES = [
  'config-node',
  'config-node-max',
  'create-and-configure',
  'create-nodes',
  'delete-items',
  'delete-nodes',
  'item-ids',
  'meta-data',
  'member-affiliation',
  'modify-affiliations',
  'manage-subscriptions',
  'multi-items',
  'outcast-affiliation',
  'persistent-items',
  'publish',
  'publish-options',
  'purge-nodes',
  'retract-items',
  'retrieve-affiliations',
  'retrieve-default',
  'retrieve-items',
  'retrieve-subscriptions',
  'subscribe',
  'access-open',
  'access-presence',
  'access-roster',
  'access-whitelist',
] as const;
