// RFC 6120 §4.7: the stream header over TCP/TLS.
import { escapeXML } from '../xml/element.js';
import { NS } from '../stanza/ns.js';
import type { StreamFraming } from '../transport/types.js';

export function xmlStreamFraming(contentNs: string): StreamFraming {
  return {
    framed: false,
    open(attrs) {
      const rest = Object.entries(attrs).map(([k, v]) => ` ${k}='${escapeXML(v)}'`).join('');
      return `<?xml version='1.0'?><stream:stream xmlns='${contentNs}' xmlns:stream='${NS.stream}'${rest}>`;
    },
    close() {
      return '</stream:stream>';
    },
  };
}
