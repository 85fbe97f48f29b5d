// The stream machine's view of RFC 7395 framing: each chunk it is given is one complete element
// (a WebSocket message, or one child of a BOSH <body/>), parsed by `parseFramedElement` with the
// stream's current limits. `<open/>` and `<close/>` in the framing namespace become the stream
// header and footer; anything else is a top-level element, as from the TCP stream parser.
//
// Also the other direction: the stream machine writes top-level elements as it would on a TCP
// stream, where they inherit `jabber:client` and the `stream:` prefix from the stream header.
// Framed transports have no header to inherit from, so `qualifyOutgoing` adds the namespace.
import { TextDecoder } from 'node:util';
import { NS_FRAMING, parseFramedElement } from '../xml/framed.js';
import { NS_STREAM, XmlStreamError, type StreamParserHandlers } from '../xml/stream-parser.js';
import type { XmlLimits } from '../xml/limits.js';
import type { ElementParser } from '../stream/c2s-stream.js';

export { NS_FRAMING };
export const NS_CLIENT = 'jabber:client';

export class FramedElementParser implements ElementParser {
  private stopped = false;
  private readonly decoder = new TextDecoder('utf-8', { fatal: true });

  constructor(
    private readonly handlers: StreamParserHandlers,
    private limits: XmlLimits,
  ) {}

  write(chunk: Buffer): void {
    if (this.stopped) return;
    let text: string;
    try {
      text = this.decoder.decode(chunk);
    } catch {
      return this.fail(new XmlStreamError('unsupported-encoding', 'a message is not UTF-8'));
    }
    let el;
    try {
      el = parseFramedElement(text, this.limits);
    } catch (err) {
      if (err instanceof XmlStreamError) return this.fail(err);
      throw err;
    }
    if (el.attrs.xmlns === NS_FRAMING) {
      if (el.name === 'open') {
        // RFC 7395 §3.4: <open/> carries the stream header's attributes. The machine checks the
        // content namespace of a header; for a framed stream it is jabber:client by definition.
        const attrs: Record<string, string> = {};
        for (const [k, v] of Object.entries(el.attrs)) if (typeof v === 'string') attrs[k] = v;
        attrs.xmlns = NS_CLIENT;
        this.handlers.onStreamOpen(attrs, { local: 'stream', ns: NS_STREAM });
        return;
      }
      if (el.name === 'close') {
        // RFC 7395 §3.6: the parser ignores everything after the stream's end, like </stream:stream>.
        this.stopped = true;
        this.handlers.onStreamClose();
        return;
      }
    }
    this.handlers.onElement(el);
  }

  private fail(err: XmlStreamError): void {
    this.stopped = true;
    this.handlers.onError(err);
  }

  reset(): void {
    this.stopped = false;
  }

  setLimits(limits: XmlLimits): void {
    this.limits = limits;
  }
}

export function framedParserFactory(handlers: StreamParserHandlers, limits: XmlLimits): ElementParser {
  return new FramedElementParser(handlers, limits);
}

const START_TAG = /^<([A-Za-z_][^\s/>]*)/;
const ATTRIBUTE = /\s+([^\s=/>]+)\s*=\s*(?:"[^"]*"|'[^']*')/y;

/** Whether the start tag beginning at `from` declares a default namespace (values skipped). */
function declaresXmlns(data: string, from: number): boolean {
  ATTRIBUTE.lastIndex = from;
  for (let m = ATTRIBUTE.exec(data); m !== null; m = ATTRIBUTE.exec(data)) if (m[1] === 'xmlns') return true;
  return false;
}

/**
 * Namespace-qualifies one serialised top-level element written by the stream machine:
 * an element without `xmlns` gets `xmlns='jabber:client'` (RFC 7395 §3.3.3, XEP-0206 §3); with
 * `rewriteStreamPrefix`, `<stream:features>`/`<stream:error>` become
 * `<features xmlns='http://etherx.jabber.org/streams'>` (a WebSocket message has no stream
 * header binding the prefix; a BOSH `<body/>` declares it instead). Works on the string: the
 * start tag's attributes are scanned as quoted values, so text inside a value never counts.
 */
export function qualifyOutgoing(data: string, rewriteStreamPrefix: boolean): string {
  const m = START_TAG.exec(data);
  if (!m) return data;
  const name = m[1];
  const rest = data.slice(m[0].length);
  if (name.startsWith('stream:')) {
    if (!rewriteStreamPrefix) return data;
    const local = name.slice('stream:'.length);
    const closing = `</${name}>`;
    const body = rest.endsWith(closing) ? `${rest.slice(0, -closing.length)}</${local}>` : rest;
    return `<${local} xmlns='${NS_STREAM}'${body}`;
  }
  if (name.includes(':') || declaresXmlns(data, m[0].length)) return data;
  return `<${name} xmlns='${NS_CLIENT}'${rest}`;
}
