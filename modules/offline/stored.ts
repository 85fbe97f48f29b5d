// Reads back XML this module stored (serialised by this server), through the core's strict parser.
import { parseXml } from '../../lib/module-api.js';
import type { Element } from '../../lib/module-api.js';

/** The stored element, or undefined when the text no longer parses (logged by the caller). */
export function parseStored(text: string): Element | undefined {
  try {
    return parseXml(text);
  } catch {
    return undefined;
  }
}
