// Size and shape limits the XML parsers enforce before anything else sees the data.

export interface XmlLimits {
  /** Raw bytes of one top-level element (stanza or nonza); also bounds the stream header. */
  maxStanzaBytes: number;
  /** Nesting depth inside a top-level element; the top-level element itself is depth 1. */
  maxDepth: number;
  /** Attributes per element, namespace declarations included. */
  maxAttributes: number;
  /** UTF-8 bytes of one attribute value (after entity decoding). */
  maxAttributeValueBytes: number;
  /** UTF-8 bytes of one text node or CDATA section (after entity decoding). */
  maxTextBytes: number;
  /** UTF-8 bytes of an element or attribute name, prefix included. */
  maxNameBytes: number;
}

/** Limits for authenticated streams. */
export const DEFAULT_LIMITS: XmlLimits = Object.freeze({
  maxStanzaBytes: 262_144,
  maxDepth: 64,
  maxAttributes: 64,
  maxAttributeValueBytes: 8_192,
  maxTextBytes: 262_144,
  maxNameBytes: 256,
});

/** Limits before authentication: a stream header, STARTTLS and SASL need little room. */
export const PREAUTH_LIMITS: XmlLimits = Object.freeze({
  maxStanzaBytes: 16_384,
  maxDepth: 64,
  maxAttributes: 64,
  maxAttributeValueBytes: 8_192,
  maxTextBytes: 16_384,
  maxNameBytes: 256,
});
