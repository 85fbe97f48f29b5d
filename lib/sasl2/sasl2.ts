// XEP-0388 Extensible SASL Profile (SASL2) and XEP-0386 Bind2: the wire forms. The stream
// machine (lib/stream/c2s-stream.ts) drives the exchange; this file only parses and builds.
import { randomToken } from '../util/random-pool.js';
import { xml, type Element } from '../xml/element.js';
import type { Sasl2UserAgent } from '../modules/define.js';
import type { SaslFailureCondition } from '../sasl/mechanism.js';

export const SASL2_NS = 'urn:xmpp:sasl:2';
export const BIND2_NS = 'urn:xmpp:bind:0';
export const SASL_NS = 'urn:ietf:params:xml:ns:xmpp-sasl';

/** A parsed `<authenticate/>` (XEP-0388 §2.3). */
export interface Sasl2Authenticate {
  mechanism: string;
  /** Base64 text of `<initial-response/>`; undefined when absent ('=' or '' for empty). */
  initialResponse: string | undefined;
  userAgent: Sasl2UserAgent;
  /** XEP-0386 `<bind xmlns='urn:xmpp:bind:0'/>`, when the client asks for Bind2. */
  bind: Element | undefined;
  /** The other children (inline features: XEP-0198 resume, XEP-0484 request-token ...). */
  inline: Element[];
  element: Element;
}

const UUIDISH = /^[\x21-\x7e]{1,256}$/;

/** Parses `<authenticate/>`, or returns a reason it is malformed. */
export function parseAuthenticate(el: Element): Sasl2Authenticate | string {
  const mechanism = el.attrs.mechanism;
  if (typeof mechanism !== 'string' || mechanism === '') return 'mechanism attribute missing';
  let initialResponse: string | undefined;
  let userAgent: Sasl2UserAgent = { id: undefined, software: undefined, device: undefined };
  let bind: Element | undefined;
  const inline: Element[] = [];
  for (const child of el.getChildElements()) {
    const ns = (child.attrs.xmlns as string | undefined) ?? SASL2_NS;
    if (ns === SASL2_NS && child.name === 'initial-response') {
      initialResponse = child.getText().trim();
    } else if (ns === SASL2_NS && child.name === 'user-agent') {
      const id = child.attrs.id;
      // §2.3.1: the id is a UUID; anything else is ignored rather than trusted.
      userAgent = {
        id: typeof id === 'string' && UUIDISH.test(id) ? id : undefined,
        software: child.getChildText('software') ?? undefined,
        device: child.getChildText('device') ?? undefined,
      };
    } else if (ns === BIND2_NS && child.name === 'bind') {
      bind = child;
    } else if (ns !== SASL2_NS) {
      inline.push(child);
    }
  }
  return { mechanism, initialResponse, userAgent, bind, inline, element: el };
}

/** The pre-authentication stream feature (XEP-0388 §2.1). */
export function authenticationFeature(mechanisms: readonly string[], inline: readonly Element[]): Element {
  return xml(
    'authentication',
    { xmlns: SASL2_NS },
    ...mechanisms.map((m) => xml('mechanism', {}, m)),
    inline.length ? xml('inline', {}, ...inline) : null,
  );
}

/** XEP-0386 §2: the Bind2 offer inside `<inline/>`, listing the inline features it takes. */
export function bind2Feature(features: readonly string[]): Element {
  return xml('bind', { xmlns: BIND2_NS }, features.length ? xml('inline', {}, ...features.map((v) => xml('feature', { var: v }))) : null);
}

export function challenge(data: Buffer): Element {
  return xml('challenge', { xmlns: SASL2_NS }, data.length ? data.toString('base64') : null);
}

/** XEP-0388 §2.6.2; `extra` goes after the authorization identifier (bound, resumed, token). */
export function success(authzid: string, additionalData: Buffer | undefined, extra: readonly Element[]): Element {
  return xml(
    'success',
    { xmlns: SASL2_NS },
    additionalData?.length ? xml('additional-data', {}, additionalData.toString('base64')) : null,
    xml('authorization-identifier', {}, authzid),
    ...extra,
  );
}

/** XEP-0388 §2.6.3: the RFC 6120 condition in the SASL namespace, and optional text. */
export function failure(condition: SaslFailureCondition, text?: string): Element {
  return xml('failure', { xmlns: SASL2_NS }, xml(condition, { xmlns: SASL_NS }), text ? xml('text', {}, text) : null);
}

/**
 * XEP-0386 §3: the server picks the resource; the client's tag, when given, is included as-is.
 * A tag no session of the account holds is the resource itself (a client that names its
 * resource, as @xmpp/client does through the tag, keeps it); otherwise the tag gets a
 * server-generated suffix in the RECOMMENDED form `[client tag]/[generated]`, so that a second
 * instance never replaces the first.
 */
export function bind2Resource(tag: string | undefined, taken: (resource: string) => boolean): string {
  const clean = tag?.trim().slice(0, 64);
  if (clean && !taken(clean)) return clean;
  const suffix = randomToken(6);
  return clean ? `${clean}/${suffix}` : suffix;
}

/** XEP-0388 §2.7: authentication succeeded but tasks must follow; `additionalData` is the mechanism's. */
export function continueElement(additionalData: Buffer | undefined, tasks: readonly string[], text?: string): Element {
  return xml(
    'continue',
    { xmlns: SASL2_NS },
    additionalData?.length ? xml('additional-data', {}, additionalData.toString('base64')) : null,
    xml('tasks', {}, ...tasks.map((t) => xml('task', {}, t))),
    text ? xml('text', {}, text) : null,
  );
}

/** XEP-0388 §2.7: a step of a task, from the server. */
export function taskData(payload: Element): Element {
  return xml('task-data', { xmlns: SASL2_NS }, payload);
}
