// RFC 6120 §4.9.3: stream error conditions.
import { xml, type Element } from '../xml/element.js';
import { NS } from '../stanza/ns.js';

export const STREAM_ERROR_CONDITIONS = [
  'bad-format', 'bad-namespace-prefix', 'conflict', 'connection-timeout', 'host-gone', 'host-unknown',
  'improper-addressing', 'internal-server-error', 'invalid-from', 'invalid-namespace', 'invalid-xml',
  'not-authorized', 'not-well-formed', 'policy-violation', 'remote-connection-failed', 'reset',
  'resource-constraint', 'restricted-xml', 'see-other-host', 'system-shutdown', 'undefined-condition',
  'unsupported-encoding', 'unsupported-feature', 'unsupported-stanza-type', 'unsupported-version',
] as const;

export type StreamErrorCondition = (typeof STREAM_ERROR_CONDITIONS)[number];

export function isStreamErrorCondition(s: string | undefined): s is StreamErrorCondition {
  return s !== undefined && (STREAM_ERROR_CONDITIONS as readonly string[]).includes(s);
}

/**
 * The `<stream:error/>` element, written with the `stream` prefix bound on the stream header.
 * `appCondition` is an application-specific condition (RFC 6120 §4.9.4), e.g. XEP-0198's
 * `<handled-count-too-high/>`.
 */
export function streamErrorElement(condition: StreamErrorCondition, text?: string, appCondition?: Element): Element {
  // RFC 6120 §4.9.3.19: see-other-host carries the address as its character data.
  if (condition === 'see-other-host' && text) {
    return xml('stream:error', {}, xml(condition, { xmlns: NS.streamErrors }, text), appCondition ?? null);
  }
  return xml(
    'stream:error',
    {},
    xml(condition, { xmlns: NS.streamErrors }),
    appCondition ?? null,
    text ? xml('text', { xmlns: NS.streamErrors, 'xml:lang': 'en' }, text) : null,
  );
}
