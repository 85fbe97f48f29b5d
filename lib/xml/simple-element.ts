// A fast path for the stream parser (stream-parser.ts): one complete top-level element written in
// the plain XML that nearly every stanza is written in, turned into the same Element tree saxes
// would give, or undefined: then saxes reads it, and says what is wrong with it if anything is.
//
// It never refuses anything: undefined only means "not plain, or not complete yet". So it has to
// be right about what it accepts, nothing more. Plain means:
// - element names and attribute names of ASCII letters, digits, '_', '-', '.' (not starting with
//   a digit, '-' or '.'); no prefixes but `xml:` on attributes; `xmlns` only as the default
//   namespace, and not empty, nor the XML or XMLNS namespace, nor with spaces around it;
// - attribute values and text with the five predefined entities and character references only,
//   no tab or newline in attribute values (XML normalises them), no '<' in values;
// - no CR, no control character, no U+FFFE/U+FFFF, no lone surrogate, no ']]>' anywhere in it;
//   no comment, CDATA section, processing instruction or DOCTYPE;
// - within every limit (an element over a limit is left to saxes, which reports it).
// The spec compares both paths on generated and mutated input (spec/lib/xml/simple-element.spec.ts).
import { Element } from './element.js';
import type { XmlLimits } from './limits.js';

const XML_NS = 'http://www.w3.org/XML/1998/namespace';
const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';

const LT = 0x3c;
const GT = 0x3e;
const SLASH = 0x2f;
const EQ = 0x3d;
const COLON = 0x3a;
const SQ = 0x27;
const DQ = 0x22;
const AMP = 0x26;

/** What makes an element not plain, anywhere in it (tab and LF are fine, CR is not). */
const NOT_PLAIN_ASCII = /[\x00-\x08\x0b-\x1f]|]]>/;
const NOT_PLAIN = /[\x00-\x08\x0b-\x1f\ufffe\uffff]|]]>|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function isNameStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f;
}

function isNameChar(c: number): boolean {
  return isNameStart(c) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x09;
}

/** XML 1.0 Char production. */
function isXmlChar(cp: number): boolean {
  return cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/** Text with its references replaced, or undefined when one is not a plain reference. */
function decodeRefs(raw: string, amp: number): string | undefined {
  let out = '';
  let from = 0;
  while (amp !== -1) {
    const semi = raw.indexOf(';', amp + 1);
    if (semi === -1 || semi - amp > 10) return undefined;
    let ch: string;
    switch (raw.slice(amp + 1, semi)) {
      case 'amp': ch = '&'; break;
      case 'lt': ch = '<'; break;
      case 'gt': ch = '>'; break;
      case 'quot': ch = '"'; break;
      case 'apos': ch = "'"; break;
      default: {
        const hex = raw.charCodeAt(amp + 2) === 0x78; // &#x
        const digits = raw.slice(amp + (hex ? 3 : 2), semi);
        if (raw.charCodeAt(amp + 1) !== 0x23 || digits.length === 0 || !(hex ? /^[0-9a-fA-F]+$/ : /^[0-9]+$/).test(digits)) return undefined;
        const cp = Number.parseInt(digits, hex ? 16 : 10);
        if (!isXmlChar(cp)) return undefined;
        ch = String.fromCodePoint(cp);
      }
    }
    out += raw.slice(from, amp) + ch;
    from = semi + 1;
    amp = raw.indexOf('&', from);
  }
  return out + raw.slice(from);
}

/** UTF-8 bytes of a string, not counted when its length alone settles the comparison. */
function exceeds(s: string, limit: number): boolean {
  const n = s.length;
  if (n > limit) return true;
  if (n * 3 <= limit) return false;
  return Buffer.byteLength(s, 'utf8') > limit;
}

/**
 * The plain element that starts at `text[start]` (a '<') and ends within `text`: the element
 * and the index after its last '>'. Undefined when it is not plain, not complete in `text`, or
 * over a limit. `streamNs` is the default namespace of the stream; `ascii` says `text` is ASCII.
 */
export function readSimpleElement(
  text: string,
  start: number,
  streamNs: string,
  limits: XmlLimits,
  ascii: boolean,
): { el: Element; end: number } | undefined {
  const len = text.length;
  const stack: Element[] = [];
  const nsStack: string[] = [];
  let root: Element | undefined;
  let i = start;
  for (;;) {
    // At a '<'.
    const next = text.charCodeAt(i + 1);
    if (next === SLASH) {
      // An end tag: the name of the open element, optional spaces, '>'.
      const open = stack[stack.length - 1];
      if (open === undefined) return undefined;
      const name = open.name;
      if (!text.startsWith(name, i + 2)) return undefined;
      i += 2 + name.length;
      while (i < len && isSpace(text.charCodeAt(i))) i++;
      if (i >= len || text.charCodeAt(i) !== GT) return undefined;
      i++;
      stack.pop();
      nsStack.pop();
      if (stack.length === 0) break;
    } else {
      // A start tag.
      if (!isNameStart(next)) return undefined;
      let j = i + 2;
      while (j < len && isNameChar(text.charCodeAt(j))) j++;
      if (j >= len || text.charCodeAt(j) === COLON) return undefined;
      const name = text.slice(i + 1, j);
      const depth = stack.length + 1;
      if (depth > limits.maxDepth || name.length > limits.maxNameBytes) return undefined;
      const parentNs = depth === 1 ? streamNs : nsStack[nsStack.length - 1];
      let ns = parentNs;
      // Attributes, in the order written, `xmlns` kept apart.
      const attrs: Record<string, string> = {};
      let names: string[] | undefined;
      let count = 0;
      let selfClosing = false;
      i = j;
      for (;;) {
        let spaced = false;
        while (i < len && isSpace(text.charCodeAt(i))) {
          i++;
          spaced = true;
        }
        if (i >= len) return undefined;
        const c = text.charCodeAt(i);
        if (c === GT) {
          i++;
          break;
        }
        if (c === SLASH) {
          if (text.charCodeAt(i + 1) !== GT) return undefined;
          i += 2;
          selfClosing = true;
          break;
        }
        if (!spaced || !isNameStart(c)) return undefined;
        let k = i + 1;
        while (k < len && isNameChar(text.charCodeAt(k))) k++;
        let attr = text.slice(i, k);
        if (text.charCodeAt(k) === COLON) {
          if (attr !== 'xml' || !isNameStart(text.charCodeAt(k + 1))) return undefined;
          k += 2;
          while (k < len && isNameChar(text.charCodeAt(k))) k++;
          if (text.charCodeAt(k) === COLON) return undefined;
          attr = text.slice(i, k);
        }
        if (++count > limits.maxAttributes || attr.length > limits.maxNameBytes) return undefined;
        i = k;
        while (i < len && isSpace(text.charCodeAt(i))) i++;
        if (text.charCodeAt(i) !== EQ) return undefined;
        i++;
        while (i < len && isSpace(text.charCodeAt(i))) i++;
        const quote = text.charCodeAt(i);
        if (quote !== SQ && quote !== DQ) return undefined;
        const close = text.indexOf(quote === SQ ? "'" : '"', i + 1);
        if (close === -1) return undefined;
        const raw = text.slice(i + 1, close);
        // '<' is refused by XML; tab and newline are normalised to spaces: left to saxes.
        if (raw.includes('<') || raw.includes('\t') || raw.includes('\n')) return undefined;
        const amp = raw.indexOf('&');
        const value = amp === -1 ? raw : decodeRefs(raw, amp);
        if (value === undefined || exceeds(value, limits.maxAttributeValueBytes)) return undefined;
        i = close + 1;
        if ((names ??= []).includes(attr)) return undefined;
        names.push(attr);
        if (attr === 'xmlns') {
          // saxes trims a namespace name (any JS whitespace): such a one is left to it.
          if (value === '' || value === XML_NS || value === XMLNS_NS || value.trim() !== value) return undefined;
          ns = value;
        } else {
          attrs[attr] = value;
        }
      }
      const el = new Element(name);
      // As buildElement (stream-parser.ts): `xmlns` first, when it differs from the parent's.
      el.attrs = ns === parentNs ? attrs : { xmlns: ns, ...attrs };
      if (depth === 1) root = el;
      else stack[stack.length - 1].cnode(el);
      if (!selfClosing) {
        stack.push(el);
        nsStack.push(ns);
      } else if (depth === 1) break;
    }
    // Text up to the next tag.
    const lt = text.indexOf('<', i);
    if (lt === -1) return undefined;
    if (lt > i) {
      const raw = text.slice(i, lt);
      const amp = raw.indexOf('&');
      const value = amp === -1 ? raw : decodeRefs(raw, amp);
      if (value === undefined || exceeds(value, limits.maxTextBytes)) return undefined;
      stack[stack.length - 1].children.push(value);
    }
    // A comment, CDATA section or processing instruction (<! or <?) is no name: not plain.
    i = lt;
  }
  const whole = text.slice(start, i);
  if ((ascii ? NOT_PLAIN_ASCII : NOT_PLAIN).test(whole)) return undefined;
  if ((ascii ? whole.length : Buffer.byteLength(whole, 'utf8')) > limits.maxStanzaBytes) return undefined;
  return { el: root!, end: i };
}
