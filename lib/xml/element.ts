// The wire form of every stanza: ltx Element trees (the type @xmpp/xml builds on).
import { Element, escapeXML, escapeXMLText, clone as ltxClone } from 'ltx';

export { Element, escapeXML, escapeXMLText };

export type XmlAttrs = Record<string, string | number | undefined | null>;
export type XmlChild = Element | string | null | undefined | false | XmlChild[];

/** Builds an element; undefined/null attributes and falsy children are left out. */
export function xml(name: string, attrs: XmlAttrs = {}, ...children: XmlChild[]): Element {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== undefined && v !== null) clean[k] = String(v);
  }
  const el = new Element(name, clean);
  appendChildren(el, children);
  return el;
}

function appendChildren(el: Element, children: XmlChild[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) appendChildren(el, child);
    else el.cnode(child);
  }
}

/** Direct element children, text nodes skipped. */
export function childElements(el: Element): Element[] {
  return el.getChildElements();
}

/** A deep copy, detached from any parent. */
export function cloneElement(el: Element): Element {
  return ltxClone(el) as Element;
}
