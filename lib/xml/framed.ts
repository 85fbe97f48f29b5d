// RFC 7395 framing: every WebSocket message holds exactly one complete XML element
// (<open/>, <close/>, a stanza with an explicit xmlns='jabber:client', or a nonza). Parsed with
// the same restrictions and limits as the TCP stream parser.

import type { SaxesAttributeNSIncomplete, SaxesStartTagNS, SaxesTagNS } from 'saxes';
import type { Element } from './element.js';
import type { XmlLimits } from './limits.js';
import {
  XmlStreamError,
  attributeProblem,
  buildElement,
  conditionForSaxesError,
  createSaxes,
  exceedsBytes,
  firstNonWs,
  startTagProblem,
  xmlDeclProblem,
} from './stream-parser.js';

export const NS_FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
const NS_CLIENT = 'jabber:client';

// A JS string from elsewhere may hold lone surrogates, which are not characters; saxes would
// combine a lone high surrogate with whatever follows.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Parses one WebSocket message into its element. Throws XmlStreamError. A top-level element in
 * `jabber:client` comes back without an `xmlns` attribute, like stanzas from the TCP parser; a
 * top-level element in no namespace is refused with `invalid-namespace`.
 */
export function parseFramedElement(text: string, limits: XmlLimits): Element {
  if (exceedsBytes(text, limits.maxStanzaBytes)) {
    throw new XmlStreamError('policy-violation', `message larger than ${limits.maxStanzaBytes} bytes`);
  }
  if (LONE_SURROGATE.test(text)) throw new XmlStreamError('not-well-formed', 'invalid character data');

  const sax = createSaxes();
  const stack: Element[] = [];
  const nsStack: string[] = [];
  const out: { root: Element | null } = { root: null };
  let attrCount = 0;

  const policy = (problem: string | null): void => {
    if (problem !== null) throw new XmlStreamError('policy-violation', problem);
  };
  const restricted = (what: string) => (): void => {
    throw new XmlStreamError('restricted-xml', `${what} are not allowed`);
  };

  sax.on('error', (err: Error) => {
    throw new XmlStreamError(conditionForSaxesError(err.message), err.message);
  });
  sax.on('xmldecl', (decl) => {
    const problem = xmlDeclProblem(decl);
    if (problem !== null) throw problem;
  });
  sax.on('doctype', restricted('DOCTYPE declarations'));
  sax.on('comment', restricted('comments'));
  sax.on('processinginstruction', restricted('processing instructions'));
  sax.on('opentagstart', (tag: SaxesStartTagNS) => {
    policy(startTagProblem(tag.name, stack.length + 1, limits));
    attrCount = 0;
  });
  sax.on('attribute', (attr: SaxesAttributeNSIncomplete) => {
    policy(attributeProblem(attr, ++attrCount, limits));
  });
  sax.on('opentag', (tag: SaxesTagNS) => {
    const depth = stack.length;
    let el: Element;
    if (depth === 0) {
      if (out.root !== null) throw new XmlStreamError('not-well-formed', 'more than one element in a message');
      if (tag.uri === '') throw new XmlStreamError('invalid-namespace', `<${tag.name}> is in no namespace`);
      el = buildElement(tag, NS_CLIENT);
      out.root = el;
    } else {
      el = buildElement(tag, nsStack[depth - 1]);
      stack[depth - 1].cnode(el);
    }
    stack.push(el);
    nsStack.push(tag.uri);
  });
  sax.on('closetag', () => {
    stack.pop();
    nsStack.pop();
  });
  const onText = (t: string): void => {
    const depth = stack.length;
    if (depth === 0) {
      if (firstNonWs(t, 0) >= 0) throw new XmlStreamError('not-well-formed', 'text outside the element');
      return;
    }
    if (exceedsBytes(t, limits.maxTextBytes)) {
      throw new XmlStreamError('policy-violation', `text node longer than ${limits.maxTextBytes} bytes`);
    }
    stack[depth - 1].children.push(t);
  };
  sax.on('text', onText);
  sax.on('cdata', onText);

  sax.write(text);
  sax.close(); // fails on unclosed elements, an empty message, or trailing garbage

  if (out.root === null) throw new XmlStreamError('not-well-formed', 'no element in message');
  return out.root;
}
