// Parses one XML element from text that Parley stored itself (offline queues, archives), with
// the same strict rules as the network parser and generous limits.
import type { Element } from './element.js';
import { parseFramedElement } from './framed.js';
import type { XmlLimits } from './limits.js';

const STORED_LIMITS: XmlLimits = {
  maxStanzaBytes: 16 * 1024 * 1024,
  maxDepth: 256,
  maxAttributes: 1024,
  maxAttributeValueBytes: 16 * 1024 * 1024,
  maxTextBytes: 16 * 1024 * 1024,
  maxNameBytes: 1024,
};

/** Stanzas are stored without their stream's namespace; they are read back as `jabber:client` content. */
export function parseXml(text: string): Element {
  const wrapper = parseFramedElement(`<stored xmlns='jabber:client'>${text}</stored>`, STORED_LIMITS);
  const children = wrapper.getChildElements();
  if (children.length !== 1) throw new Error('stored XML must hold exactly one element');
  const el = children[0];
  el.parent = null;
  return el;
}
