// The only import a module may use. Everything a feature needs from the core is re-exported here.
export { z } from 'zod';
export { defineModule } from './modules/define.js';
export type {
  ModuleContext, ModuleDefinition, ModuleManifest, PreAuthIqHandler, PreAuthOrigin, DiscoIdentity, XepSupport, ServerInfo, SessionView, StreamFeatureProvider,
  StreamControl, StreamNonzaHandler, Bind2FeatureHandler, Sasl2InlineProvider, Sasl2Outcome, Sasl2UserAgent,
} from './modules/define.js';
export type { SaslMechanism, SaslExchange, SaslStep, SaslContext, ChannelBindingType } from './sasl/mechanism.js';
export { failure as saslFailure } from './sasl/mechanism.js';
export type { AuthGuard, AuthAttempt, AuthDecision, AuthOutcome, AuthCredential, Sasl2Task, TaskStep, SessionClient } from './sasl2/guard.js';
export { decodeUtf8Strict, prepareUsername } from './sasl/common.js';
export { base32Decode, base32Encode, matchTotp, newTotpSecret, otpauthUri, totp } from './accounts/totp.js';
export type { StreamErrorCondition } from './stream/stream-error.js';
export { xml, Element, cloneElement, escapeXML, escapeXMLText } from './xml/element.js';
export { freezeShared, serialize } from './xml/serialize.js';
export type { XmlAttrs, XmlChild } from './xml/element.js';
export { parseXml } from './xml/parse.js';
export { KeyedLock } from './util/keyed-lock.js';
export type { Kysely } from 'kysely';
export { Jid, JidError } from './jid/jid.js';
export { NS } from './stanza/ns.js';
export { StanzaError } from './stanza/error.js';
export { buildForm, readForm } from './stanza/forms.js';
export type { FormField, FieldType, SubmittedForm } from './stanza/forms.js';
export type { StanzaErrorCondition, ErrorType } from './stanza/error.js';
export type { Stanza, MessageStanza, PresenceStanza, IqStanza, MessageType, PresenceType, IqType } from './stanza/envelope.js';
export { toEnvelope } from './stanza/envelope.js';
export type { IqHandler, IqOrigin, IqSpec, IqTarget } from './routing/iq-registry.js';
export type { HookName, HookEvent, HookHandler, FilterResult, ClaimResult, ClaimHookName } from './hooks/types.js';
export type { SessionHandle, SessionStateKey, SessionTap } from './sessions/types.js';
export type { Database, KeyValStore, ArchiveStore, ArchiveItem, ArchiveQuery, ArchivePage, Migration, FastStatement, FastSql, SqlParam } from './storage/types.js';
export { limitedStatements } from './storage/fast-statement.js';
export type { AccountService } from './accounts/types.js';
export type { AccessControl, AccessGrant, AccessSubject } from './acl/engine.js';
export type { AccessRuleName, Role } from './acl/schema.js';
export { AccountError } from './accounts/types.js';
export { size, duration } from './config/schema.js';
export type { Logger } from './log.js';
export type { HttpRouteHandler, HttpRouteSpec } from './transport/module-routes.js';
