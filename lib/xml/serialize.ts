// Element → XML text for the wire: the same text as ltx's toString, made faster for the hot path
// (no writer closure per element, values without a character to escape are not run through a
// regular expression), and read once for subtrees frozen with `freezeShared`.
//
// Why freezing: a group chat message goes out as one copy per occupant, the copies sharing the
// message's children; serialising those children again for every copy costs more than the rest
// of routing the copy. Their text can be kept only while they cannot change, and ltx elements are
// mutable: a frozen subtree (name, attributes, list of children, all the way down) cannot be
// changed, in strict code a change throws, so its text stays right. Only `parent` stays
// writable: ltx sets it when an element is added to another, which changes no text.
import { Element, escapeXML, escapeXMLText } from 'ltx';

/** Subtrees frozen by freezeShared: their text once made, or null until it is. */
const frozenText = new WeakMap<Element, string | null>();

const ATTR_SPECIAL = /["&'<>]/;
const TEXT_SPECIAL = /[&<>]/;

type Printable = { toString(radix?: number): string };

function attrValue(v: unknown): string {
  const s = typeof v === 'string' ? v : (v as Printable).toString(10);
  return ATTR_SPECIAL.test(s) ? escapeXML(s) : s;
}

function text(s: string): string {
  return TEXT_SPECIAL.test(s) ? escapeXMLText(s) : s;
}

const ltxWrite = Element.prototype.write;

/** The element's XML text, as `el.toString()` gives it. */
export function serialize(el: Element): string {
  if (el.write !== ltxWrite) return el.toString();
  return element(el);
}

function element(el: Element): string {
  // Frozen elements are not extensible: one cheap test before the WeakMap.
  if (!Object.isExtensible(el)) {
    const known = frozenText.get(el);
    if (known !== undefined) {
      if (known !== null) return known;
      const made = build(el);
      frozenText.set(el, made);
      return made;
    }
  }
  return build(el);
}

function build(el: Element): string {
  let out = '<' + el.name;
  const attrs = el.attrs;
  for (const k in attrs) {
    const v: unknown = attrs[k];
    if (v !== null && v !== undefined) out += ' ' + k + '="' + attrValue(v) + '"';
  }
  const children = el.children;
  if (children.length === 0) return out + '/>';
  out += '>';
  for (const child of children as unknown[]) {
    if (child === null || child === undefined) continue;
    if (typeof child === 'string') out += text(child);
    else if (child instanceof Element && child.write === ltxWrite) out += element(child);
    else if (typeof (child as { write?: unknown }).write === 'function') {
      // Whatever else ltx would print through its own write(): printed the same way.
      (child as { write(w: (s: string) => void): void }).write((s) => { out += s; });
    } else if (typeof (child as Printable).toString === 'function') out += escapeXMLText((child as Printable).toString(10));
  }
  return out + '</' + el.name + '>';
}

/**
 * Freezes an element and everything below it, so that it can be shared by many stanzas and its
 * text made once (see above). After this, changing it throws: whoever needs a changed version
 * works on a copy (cloneElement), as they already had to for a child shared between copies.
 */
export function freezeShared(el: Element): void {
  if (frozenText.has(el)) return;
  for (const child of el.children as unknown[]) if (child instanceof Element) freezeShared(child);
  Object.freeze(el.attrs);
  Object.freeze(el.children);
  for (const key of ['name', 'attrs', 'children'] as const) {
    Object.defineProperty(el, key, { value: el[key], writable: false, configurable: false, enumerable: true });
  }
  // No own `write` (or anything else) added later either.
  Object.preventExtensions(el);
  frozenText.set(el, null);
}

/** Whether an element was frozen by freezeShared (its text is read once). */
export function isFrozenShared(el: Element): boolean {
  return frozenText.has(el);
}
