// Streaming parser for XMPP XML streams (RFC 6120 §4, §11).
//
// Bytes → strict UTF-8 decoder → saxes (strict XML 1.0 tokenizer, namespaces on) → ltx Elements,
// one per top-level child of <stream:stream>. Every limit is enforced here, before anything else
// sees the data:
//
// - Raw bytes of a top-level element are counted from its '<' to its final '>'. The count is
//   checked when the element ends and after every piece of input (at most SLICE_BYTES) that
//   leaves it unfinished, so an oversized stanza is refused after at most one extra piece,
//   never after buffering all of it. The stream header (prolog + <stream:stream ...>) is counted
//   the same way. Whitespace between top-level elements is skipped before saxes sees it and
//   counts toward nothing.
// - Depth, attribute count, name, attribute value and text sizes are checked on saxes events,
//   attribute count per attribute, so 10,000 attributes stop at the first one over the limit.
// - DOCTYPE, comments and processing instructions are `restricted-xml`; saxes never expands
//   entities other than the five predefined ones and character references, and reports any other
//   entity reference as an error (`restricted-xml`, RFC 6120 §11.1).
//
// Byte positions come from saxes' `position` (an index into the JS strings it was given); a
// JS-string span converts to UTF-8 bytes exactly because the input was valid UTF-8.

import { isAscii, isUtf8 } from 'node:buffer';
import { TextDecoder } from 'node:util';
import { SaxesParser } from 'saxes';
import type { SaxesAttributeNSIncomplete, SaxesStartTagNS, SaxesTagNS, XMLDecl } from 'saxes';
import { Element } from './element.js';
import { readSimpleElement } from './simple-element.js';
import { DEFAULT_LIMITS, PREAUTH_LIMITS } from './limits.js';
import type { XmlLimits } from './limits.js';

export { DEFAULT_LIMITS, PREAUTH_LIMITS };
export type { XmlLimits };

export const NS_STREAM = 'http://etherx.jabber.org/streams';

export type XmlErrorCondition =
  | 'not-well-formed'
  | 'restricted-xml'
  | 'policy-violation'
  | 'invalid-namespace'
  | 'bad-format'
  | 'unsupported-encoding';

/** A stream-level XML error; `condition` is the RFC 6120 stream error condition to send. */
export class XmlStreamError extends Error {
  readonly condition: XmlErrorCondition;

  constructor(condition: XmlErrorCondition, message: string) {
    super(message);
    this.name = 'XmlStreamError';
    this.condition = condition;
  }
}

export interface StreamParserHandlers {
  /** The <stream:stream> root. `attrs` holds its attributes (declarations of prefixes left out);
   * its default namespace, if declared, is `attrs.xmlns`. */
  onStreamOpen(attrs: Record<string, string>, name: { local: string; ns: string }): void;
  /** Each complete top-level child (stanza or nonza), prefixes normalised away. */
  onElement(el: Element): void;
  /** </stream:stream>. The parser ignores all input after it. */
  onStreamClose(): void;
  /** Called once; after it the parser ignores all further input (until reset()). */
  onError(err: XmlStreamError): void;
  /** The stream went quiet between top-level elements and the parser let go of its saxes
   * instance: a chance for the stream's owner to let go of what it grew too. */
  onQuiet?(): void;
}

// ---------------------------------------------------------------------------------------------
// Pieces shared with the WebSocket framing parser (framed.ts). Internal to lib/xml.

/** @internal saxes options used by both parsers. */
export type SaxOptions = {
  xmlns: true;
  position: false;
  forceXMLVersion: true;
  defaultXMLVersion: '1.0';
};

/** @internal */
export function createSaxes(): SaxesParser<SaxOptions> {
  return new SaxesParser<SaxOptions>({
    xmlns: true,
    position: false,
    forceXMLVersion: true,
    defaultXMLVersion: '1.0',
  });
}

/** @internal Maps a saxes well-formedness error message to a stream error condition. */
export function conditionForSaxesError(message: string): XmlErrorCondition {
  if (/doctype/i.test(message)) return 'restricted-xml';
  // RFC 6120 §11.1: entity references other than the predefined five are restricted XML.
  if (/undefined entity/i.test(message)) return 'restricted-xml';
  // `<?xml ...?>` anywhere but at the very start is a processing instruction to XMPP.
  if (/XML declaration must (be|appear) at the start/i.test(message)) return 'restricted-xml';
  return 'not-well-formed';
}

/** True when `s` is longer than `limit` UTF-8 bytes; computes the byte length only when needed. */
export function exceedsBytes(s: string, limit: number): boolean {
  const n = s.length;
  if (n > limit) return true; // every UTF-16 code unit is at least one UTF-8 byte
  if (n * 3 <= limit) return false; // and at most three
  return Buffer.byteLength(s, 'utf8') > limit;
}

/** @internal Problem with an element's name or depth, or null. `depth` counts the new element. */
export function startTagProblem(name: string, depth: number, limits: XmlLimits): string | null {
  if (exceedsBytes(name, limits.maxNameBytes)) return `element name longer than ${limits.maxNameBytes} bytes`;
  if (depth > limits.maxDepth) return `elements nested deeper than ${limits.maxDepth}`;
  return null;
}

/** @internal Problem with an attribute, or null. `count` includes this attribute. */
export function attributeProblem(
  attr: SaxesAttributeNSIncomplete,
  count: number,
  limits: XmlLimits,
): string | null {
  if (count > limits.maxAttributes) return `more than ${limits.maxAttributes} attributes on one element`;
  if (exceedsBytes(attr.name, limits.maxNameBytes)) return `attribute name longer than ${limits.maxNameBytes} bytes`;
  if (exceedsBytes(attr.value, limits.maxAttributeValueBytes)) {
    return `attribute value longer than ${limits.maxAttributeValueBytes} bytes`;
  }
  return null;
}

/** @internal Problem with the XML declaration, or null. */
export function xmlDeclProblem(decl: XMLDecl): XmlStreamError | null {
  if (decl.version !== '1.0') return new XmlStreamError('not-well-formed', `XML version ${String(decl.version)} is not supported`);
  if (decl.encoding !== undefined && !/^utf-?8$/i.test(decl.encoding)) {
    return new XmlStreamError('unsupported-encoding', `encoding ${decl.encoding} is not supported; use UTF-8`);
  }
  return null;
}

const WS_CODES = new Set([0x20, 0x09, 0x0a, 0x0d]);
const NON_WS = /[^\x20\t\r\n]/g;

/** Index of the first non-whitespace (XML S) character of `s` at or after `from`, or -1. */
export function firstNonWs(s: string, from: number): number {
  if (from >= s.length) return -1;
  if (!WS_CODES.has(s.charCodeAt(from))) return from;
  NON_WS.lastIndex = from;
  const m = NON_WS.exec(s);
  return m === null ? -1 : m.index;
}

/**
 * @internal Builds the ltx Element for a saxes tag with prefixes normalised away: the local name;
 * `xmlns` only when the namespace differs from `parentNs`; `xml:*` attributes as written; other
 * prefixed attributes as written together with the declaration of their prefix; every other
 * namespace declaration dropped.
 */
export function buildElement(tag: SaxesTagNS, parentNs: string): Element {
  const attrs: Record<string, string> = {};
  if (tag.uri !== parentNs) attrs.xmlns = tag.uri;
  const src = tag.attributes;
  for (const key in src) {
    const a = src[key];
    const prefix = a.prefix;
    if (prefix === '') {
      if (a.name !== 'xmlns') attrs[a.name] = a.value;
    } else if (prefix !== 'xmlns') {
      attrs[a.name] = a.value;
      if (prefix !== 'xml') attrs[`xmlns:${prefix}`] = a.uri;
    }
  }
  const el = new Element(tag.local);
  el.attrs = attrs;
  return el;
}

// ---------------------------------------------------------------------------------------------

/** Thrown through saxes to stop it mid-chunk; never escapes write(). */
const ABORT = Symbol('abort');
/** Marks a pending </stream:stream> (see `pending`). */
const STREAM_CLOSE = Symbol('stream-close');

/** Raw bytes decoded and handed to saxes at a time; bounds what is buffered past a limit. */
const SLICE_BYTES = 65_536;

const PROLOG = 0; // before the root start tag is complete; counted toward maxStanzaBytes
const GAP = 1; // between top-level elements; whitespace is free
const ELEMENT = 2; // inside a top-level element (or whatever follows a '<' at depth 1)
const CLOSED = 3; // after </stream:stream>

const LT = 0x3c;
const NON_ASCII = /[^\x00-\x7f]/;

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * The same string, interned: saxes hands out slices of the decoded chunk, and a slice kept for the
 * life of a stream (its namespace) would keep the whole chunk with it. Interned strings are also
 * shared by every stream that declares the same one.
 */
function intern(s: string): string {
  for (const key in { [s]: 0 }) return key;
  return s;
}

/**
 * Length of `b` without a trailing UTF-8 sequence that is valid so far but incomplete. A lead byte
 * that can never start a sequence is left in, for the decoder to refuse at once.
 */
function completeLength(b: Uint8Array): number {
  const len = b.length;
  if (len === 0 || b[len - 1] < 0x80) return len;
  for (let back = 1; back <= 3 && back <= len; back++) {
    const c = b[len - back];
    if ((c & 0xc0) === 0x80) continue; // continuation byte: look further back
    if (c < 0xc2 || c > 0xf4) return len;
    const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    return need > back ? len - back : len;
  }
  return len;
}

/** Length of the longest prefix of `b` that is well-formed UTF-8 (Unicode Table 3-7). Only
 * used after the decoder refused a slice, to find where the refusal starts. */
function validUtf8Prefix(b: Uint8Array): number {
  const end = b.length;
  let i = 0;
  while (i < end) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0;
      else if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90;
      else if (c === 0xf4) hi = 0x8f;
    } else return i;
    if (i + n >= end) return i;
    const c2 = b[i + 1];
    if (c2 < lo || c2 > hi) return i;
    for (let k = 2; k <= n; k++) if ((b[i + k] & 0xc0) !== 0x80) return i;
    i += n + 1;
  }
  return end;
}

/**
 * How often parsers of quiet streams give back their saxes instance (about
 * 4 KiB of heap held, the largest part of an idle connection's JS state): a parser untouched for
 * a whole period between two sweeps releases them, and builds new ones when the next bytes
 * arrive. A second: most sessions go quiet right after logging in, and a stream that sends less
 * than once a second pays the rebuild (a few microseconds, measured) at most once a second; a
 * busier one never does.
 */
export const IDLE_RELEASE_MS = 1_000;

/** Parsers that hold a saxes instance and may go quiet; swept by one timer for all of them. */
const holding = new Set<StreamParser>();
let sweeper: NodeJS.Timeout | undefined;

function track(parser: StreamParser): void {
  holding.add(parser);
  if (sweeper === undefined) {
    sweeper = setInterval(sweepIdleParsers, IDLE_RELEASE_MS);
    sweeper.unref();
  }
}

/**
 * One sweep: parsers written to since the last one are kept; the others release their saxes if
 * they are between top-level elements, and leave the set either way (the next write brings them
 * back), so the set holds only recently active parsers.
 */
export function sweepIdleParsers(): void {
  for (const parser of holding) {
    if (parser.touchedSinceSweep()) continue;
    parser.releaseParser();
    holding.delete(parser);
  }
  if (holding.size === 0 && sweeper !== undefined) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

/** Escapes an attribute value for the replayed root tag (double quotes). */
function quoteAttr(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

export class StreamParser {
  private readonly handlers: StreamParserHandlers;
  private limits: XmlLimits;
  /** null while released (idle between top-level elements); rebuilt from `rootReplay`. */
  private sax: SaxesParser<SaxOptions> | null;
  /** The stream header's name and namespace declarations, to rebuild saxes' context. */
  private rootReplay = '';
  private touched = false;
  /** Bumped by reset(); a handler that sees it change stops the old document. */
  private generation = 0;
  private failed = false;
  private phase = PROLOG;
  private sawFirstByte = false;
  /** An incomplete UTF-8 sequence at the end of the last slice. */
  private carry: Uint8Array | null = null;
  /** Whether any bytes were decoded (a BOM is stripped only before the first). */
  private decodedAny = false;
  private rootOpen = false;
  /** Default namespace declared on <stream:stream>. */
  private streamNs = '';
  private stack: Element[] = [];
  private nsStack: string[] = [];
  private attrCount = 0;
  /**
   * A top-level element (or the stream close) whose end tag saxes has reported. Delivered at the
   * next event or at the end of the piece: saxes reports a mismatched end tag by first calling
   * the close handler for the element it pops and only then failing, so delivery waits until we
   * know the end tag matched.
   */
  private pending: Element | typeof STREAM_CLOSE | null = null;

  // Byte accounting. Positions are indexes into `piece`, the string last handed to saxes.
  private piece = '';
  private pieceAscii = true;
  /** saxes' position of piece[0]. */
  private pieceBase = 0;
  /** Characters handed to saxes so far (saxes' position at the end of the last piece). */
  private saxFed = 0;
  /** Bytes of the current unit (header or top-level element) in earlier pieces. */
  private count = 0;
  /** Where the current unit starts counting in this piece. */
  private countFrom = 0;
  /** Where the current gap starts in this piece. */
  private gapFrom = 0;

  /** Whether plain top-level elements skip saxes (simple-element.ts); off only to compare both paths. */
  private readonly plain: boolean;

  constructor(handlers: StreamParserHandlers, limits: XmlLimits = DEFAULT_LIMITS, options: { plainFastPath?: boolean } = {}) {
    this.handlers = handlers;
    this.limits = limits;
    this.plain = options.plainFastPath ?? true;
    this.sax = this.createSax();
  }

  /** Whether this parser holds a saxes instance (false while released for idleness). */
  get holdsParser(): boolean {
    return this.sax !== null;
  }

  /** @internal For the sweep: whether write() ran since the last call, and clears the mark. */
  touchedSinceSweep(): boolean {
    const t = this.touched;
    this.touched = false;
    return t;
  }

  /**
   * Drops the saxes instance when nothing of the stream is half-read: between top-level
   * elements, no pending delivery, no partial UTF-8 sequence. The next write rebuilds it with
   * the stream header's namespace context. Returns whether it was released.
   */
  releaseParser(): boolean {
    if (this.sax === null) return true;
    const closed = this.failed || this.phase === CLOSED;
    const between = this.rootOpen && this.phase === GAP && this.stack.length === 0 && this.pending === null && this.carry === null;
    if (!closed && !between) return false;
    this.sax = null;
    this.piece = '';
    // Emptied arrays keep the room they grew to; fresh ones hold none.
    this.stack = [];
    this.nsStack = [];
    if (!closed) this.handlers.onQuiet?.();
    return true;
  }

  /** Feeds raw bytes. Never throws for bad input (errors go to onError); exceptions thrown by
   * the handlers themselves propagate and leave the parser failed. */
  write(chunk: Buffer | Uint8Array): void {
    if (this.failed || this.phase === CLOSED) return;
    if (!this.touched) {
      this.touched = true;
      track(this);
    }
    const gen = this.generation;
    try {
      if (!this.sawFirstByte && chunk.length > 0) {
        this.sawFirstByte = true;
        // 0xFE/0xFF never occur in UTF-8: this is a UTF-16 byte order mark.
        if (chunk[0] === 0xfe || chunk[0] === 0xff) {
          this.fail('unsupported-encoding', 'the stream is not UTF-8');
        }
      }
      const len = chunk.length;
      for (let off = 0; off < len; off += SLICE_BYTES) {
        this.decodeAndFeed(len <= SLICE_BYTES ? chunk : chunk.subarray(off, off + SLICE_BYTES));
        if (gen !== this.generation || this.failed || this.phase === CLOSED) return;
      }
    } catch (e) {
      if (e === ABORT) return;
      if (gen === this.generation) this.failed = true;
      throw e;
    }
  }

  /** Starts a fresh document (stream restart after STARTTLS or SASL). When called from a
   * handler during write(), the rest of that chunk is discarded. */
  reset(): void {
    this.generation++;
    this.sax = this.createSax();
    this.rootReplay = '';
    this.failed = false;
    this.phase = PROLOG;
    this.sawFirstByte = false;
    this.carry = null;
    this.decodedAny = false;
    this.rootOpen = false;
    this.streamNs = '';
    this.stack = [];
    this.nsStack = [];
    this.attrCount = 0;
    this.pending = null;
    this.piece = '';
    this.pieceAscii = true;
    this.pieceBase = 0;
    this.saxFed = 0;
    this.count = 0;
    this.countFrom = 0;
    this.gapFrom = 0;
  }

  /** Replaces the limits; applies from the next check on (e.g. raise them after auth). */
  setLimits(limits: XmlLimits): void {
    this.limits = limits;
  }

  // -------------------------------------------------------------------------------------------

  private createSax(replay?: string): SaxesParser<SaxOptions> {
    const sax = createSaxes();
    // The replayed header goes in before any handler is attached: it was checked when it came.
    if (replay !== undefined) sax.write(replay);
    sax.on('error', (err) => this.onSaxError(err));
    sax.on('xmldecl', (decl) => {
      const problem = xmlDeclProblem(decl);
      if (problem !== null) this.fail(problem.condition, problem.message);
    });
    sax.on('doctype', () => this.fail('restricted-xml', 'DOCTYPE declarations are not allowed'));
    sax.on('comment', () => this.fail('restricted-xml', 'comments are not allowed'));
    sax.on('processinginstruction', () => this.fail('restricted-xml', 'processing instructions are not allowed'));
    sax.on('opentagstart', (tag) => this.onOpenTagStart(tag));
    sax.on('attribute', (attr) => this.onAttribute(attr));
    sax.on('opentag', (tag) => this.onOpenTag(tag));
    sax.on('closetag', (tag) => this.onCloseTag(tag));
    sax.on('text', (text) => this.onText(text));
    sax.on('cdata', (text) => this.onText(text));
    return sax;
  }

  /**
   * Decodes one slice and feeds it. Only complete UTF-8 sequences reach the decoder (an
   * incomplete one at the end waits in `carry`), so when it refuses the input, everything before
   * the first invalid byte is still parsed: a <proceed/> followed by TLS bytes in the same chunk
   * is delivered (and the caller resets) instead of failing.
   */
  private decodeAndFeed(slice: Uint8Array): void {
    let data = slice;
    if (this.carry !== null) {
      data = Buffer.concat([this.carry, slice]);
      this.carry = null;
    }
    const cut = completeLength(data);
    if (cut < data.length) {
      this.carry = Uint8Array.prototype.slice.call(data, cut); // a copy: callers may reuse buffers
      data = data.subarray(0, cut);
    }
    if (data.length === 0) return;
    // Validated and decoded by Node's native UTF-8 code (simdutf): several times cheaper per read
    // than TextDecoder, and ASCII (most of XMPP) is copied as is. Only complete sequences get
    // here, so no decoder state is carried between reads; the BOM rule is the decoder's.
    const bytes = asBuffer(data);
    if (isAscii(bytes)) {
      this.decodedAny = true;
      this.feed(bytes.toString('latin1'), true);
      return;
    }
    let text: string;
    if (isUtf8(bytes)) {
      const bom = !this.decodedAny && bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf;
      text = bytes.toString('utf8', bom ? 3 : 0);
    } else {
      const good = validUtf8Prefix(data);
      if (good > 0) {
        // A fresh decoder for the valid part; it strips a BOM only at the start of the stream.
        const prefix = new TextDecoder('utf-8', { fatal: true, ignoreBOM: this.decodedAny });
        const valid = prefix.decode(data.subarray(0, good));
        this.decodedAny = true;
        const gen = this.generation;
        if (valid.length > 0) this.feed(valid);
        if (gen !== this.generation) return;
      }
      this.fail('not-well-formed', 'invalid UTF-8');
    }
    this.decodedAny = true;
    if (text.length > 0) this.feed(text);
  }

  /** Hands one decoded string to saxes, then accounts for what it left unfinished. */
  private feed(text: string, ascii = !NON_ASCII.test(text)): void {
    let piece = text;
    if (this.phase === GAP) {
      // Between top-level elements: skip whitespace (keepalives) without counting or buffering.
      let k = firstNonWs(text, 0);
      if (k < 0) return;
      if (text.charCodeAt(k) !== LT) this.fail('not-well-formed', 'text between top-level elements');
      if (this.plain && this.pending === null) {
        // Plain elements complete in this text are read without saxes, several times faster;
        // from the first that is not, saxes reads on (and judges it).
        for (;;) {
          const read = readSimpleElement(text, k, this.streamNs, this.limits, ascii);
          if (read === undefined) break;
          this.deliver(read.el);
          k = firstNonWs(text, read.end);
          if (k < 0) return;
          // Text after it: saxes reads it, as it would have, and finds what is wrong first.
          if (text.charCodeAt(k) !== LT) break;
        }
      }
      if (k > 0) piece = text.slice(k);
    }
    if (this.sax === null) {
      this.sax = this.createSax(this.rootReplay);
      this.saxFed = this.rootReplay.length;
    }
    this.piece = piece;
    // A piece is a tail of the text: ASCII when the text is.
    this.pieceAscii = ascii;
    this.pieceBase = this.saxFed;
    this.saxFed += piece.length;
    this.countFrom = 0;
    this.gapFrom = 0;
    this.sax.write(piece);
    if (this.pending !== null) this.flushPending();

    const end = piece.length;
    if (this.phase === GAP) {
      const k = firstNonWs(piece, this.gapFrom);
      if (k < 0) return;
      if (piece.charCodeAt(k) !== LT) this.fail('not-well-formed', 'text between top-level elements');
      // A top-level element has begun but its name is not complete yet.
      this.phase = ELEMENT;
      this.count = 0;
      this.countFrom = k;
    }
    this.count += this.bytes(this.countFrom, end);
    this.checkUnitSize(this.count);
  }

  /** UTF-8 bytes of piece[from, to). */
  private bytes(from: number, to: number): number {
    if (to <= from) return 0;
    return this.pieceAscii ? to - from : Buffer.byteLength(this.piece.slice(from, to), 'utf8');
  }

  /** Index in `piece` just after the character saxes last consumed. */
  private here(): number {
    return this.sax!.position - this.pieceBase;
  }

  private checkUnitSize(bytes: number): void {
    if (bytes > this.limits.maxStanzaBytes) {
      const what = this.rootOpen ? 'top-level element' : 'stream header';
      this.fail('policy-violation', `${what} larger than ${this.limits.maxStanzaBytes} bytes`);
    }
  }

  private onSaxError(err: Error): void {
    const message = err.message;
    const mismatch = message.includes('unexpected close tag') || message.includes('unmatched closing tag');
    this.fail(conditionForSaxesError(message), message, mismatch);
  }

  private onOpenTagStart(tag: SaxesStartTagNS): void {
    if (this.pending !== null) this.flushPending();
    const depth = this.stack.length + 1;
    const problem = startTagProblem(tag.name, this.rootOpen ? depth : 0, this.limits);
    if (problem !== null) this.fail('policy-violation', problem);
    if (this.rootOpen && this.phase === GAP) {
      // Only whitespace can lie between the gap start and this '<' (anything else already failed).
      this.phase = ELEMENT;
      this.count = 0;
      this.countFrom = Math.max(0, firstNonWs(this.piece, this.gapFrom));
    }
    this.attrCount = 0;
  }

  private onAttribute(attr: SaxesAttributeNSIncomplete): void {
    const problem = attributeProblem(attr, ++this.attrCount, this.limits);
    if (problem !== null) this.fail('policy-violation', problem);
  }

  private onOpenTag(tag: SaxesTagNS): void {
    if (!this.rootOpen) {
      this.openRoot(tag);
      return;
    }
    const depth = this.stack.length;
    if (depth === 0 && tag.uri === '') {
      this.fail('invalid-namespace', `<${tag.name}> is in no namespace`);
    }
    const parentNs = depth === 0 ? this.streamNs : this.nsStack[depth - 1];
    const el = buildElement(tag, parentNs);
    if (depth > 0) this.stack[depth - 1].cnode(el);
    this.stack.push(el);
    this.nsStack.push(tag.uri);
  }

  private openRoot(tag: SaxesTagNS): void {
    if (tag.local !== 'stream' || tag.uri !== NS_STREAM) {
      this.fail('invalid-namespace', `the root element must be <stream> in ${NS_STREAM}`);
    }
    this.checkUnitSize(this.count + this.bytes(this.countFrom, this.here()));
    const attrs: Record<string, string> = {};
    const src = tag.attributes;
    let declarations = '';
    for (const key in src) {
      const a = src[key];
      if (a.prefix === 'xmlns' || a.name === 'xmlns') declarations += ` ${a.name}="${quoteAttr(a.value)}"`;
      if (a.prefix !== 'xmlns') attrs[a.name] = a.value;
    }
    // Interned: kept for the life of the stream, and the same for nearly every stream.
    this.rootReplay = intern(`<${tag.name}${declarations}>`);
    this.streamNs = intern(this.sax!.resolve('') ?? '');
    this.rootOpen = true;
    this.phase = GAP;
    this.gapFrom = this.here();
    this.count = 0;
    const gen = this.generation;
    this.handlers.onStreamOpen(attrs, { local: tag.local, ns: tag.uri });
    if (gen !== this.generation) throw ABORT;
  }

  private onCloseTag(_tag: SaxesTagNS): void {
    if (this.pending !== null) this.flushPending();
    const depth = this.stack.length;
    if (depth === 0) {
      this.pending = STREAM_CLOSE;
      return;
    }
    const el = this.stack.pop() as Element;
    this.nsStack.pop();
    if (depth === 1) {
      const end = this.here();
      this.checkUnitSize(this.count + this.bytes(this.countFrom, end));
      this.phase = GAP;
      this.gapFrom = end;
      this.count = 0;
      this.pending = el;
    }
  }

  private onText(text: string): void {
    if (this.pending !== null) this.flushPending();
    const depth = this.stack.length;
    if (depth === 0) {
      if (firstNonWs(text, 0) >= 0) this.fail('not-well-formed', 'text between top-level elements');
      return;
    }
    if (exceedsBytes(text, this.limits.maxTextBytes)) {
      this.fail('policy-violation', `text node longer than ${this.limits.maxTextBytes} bytes`);
    }
    this.stack[depth - 1].children.push(text);
  }

  private flushPending(): void {
    const p = this.pending;
    if (p === null) return;
    this.pending = null;
    if (p === STREAM_CLOSE) {
      this.phase = CLOSED;
      this.handlers.onStreamClose();
      throw ABORT; // nothing after </stream:stream> is read
    }
    this.deliver(p);
  }

  private deliver(el: Element): void {
    const gen = this.generation;
    this.handlers.onElement(el);
    if (gen !== this.generation) throw ABORT;
  }

  /** Reports an error once and stops. A pending element is delivered first, unless the error
   * is about its own end tag. */
  private fail(condition: XmlErrorCondition, message: string, discardPending = false): never {
    if (this.pending !== null) {
      if (discardPending) this.pending = null;
      else this.flushPending();
    }
    this.failed = true;
    this.handlers.onError(new XmlStreamError(condition, message));
    throw ABORT;
  }
}
