// XML assertions for specs: compares canonical XML (attributes sorted, whitespace between elements
// ignored) with wildcards, so a failure shows a readable line diff.
//
//   expectXml(reply, `<iq type='result' id='*' from='example.com' to='alice@example.com/phone'/>`);
//
// Wildcards: an attribute value `*` accepts any value (the attribute must be present); an element
// whose whole text is `*` accepts any non-empty text.
import { expect } from 'chai';
import { parse } from 'ltx';
import type { Element } from '../../lib/xml/element.js';

const WILDCARD = '*';

type Node = Element | string;

function escapeAttr(v: string): string {
  return v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
}

function escapeText(v: string): string {
  return v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Children with whitespace-only text dropped, adjacent text joined and trimmed. */
function significantChildren(el: Element): Node[] {
  const out: Node[] = [];
  for (const child of el.children as Node[]) {
    if (typeof child === 'string') {
      const last = out[out.length - 1];
      if (typeof last === 'string') out[out.length - 1] = last + child;
      else out.push(child);
    } else {
      out.push(child);
    }
  }
  return out.map((c) => (typeof c === 'string' ? c.trim() : c)).filter((c) => c !== '');
}

/**
 * Canonical, indented form of `el`. With a `pattern` (the expected element at the same place),
 * values the pattern accepts by wildcard are written as `*`, so equal strings mean a match.
 */
function render(el: Element, pattern: Element | undefined, indent: string): string {
  const names = Object.keys(el.attrs).filter((k) => el.attrs[k] !== undefined && el.attrs[k] !== null).sort();
  const attrs = names
    .map((k) => {
      const value = String(el.attrs[k]);
      const shown = pattern !== undefined && pattern.name === el.name && pattern.attrs[k] === WILDCARD ? WILDCARD : value;
      return ` ${k}="${escapeAttr(shown)}"`;
    })
    .join('');
  const children = significantChildren(el);
  const patternChildren = pattern !== undefined && pattern.name === el.name ? significantChildren(pattern) : [];
  if (children.length === 0) return `${indent}<${el.name}${attrs}/>`;
  if (children.length === 1 && typeof children[0] === 'string') {
    const text = patternChildren.length === 1 && patternChildren[0] === WILDCARD ? WILDCARD : children[0];
    return `${indent}<${el.name}${attrs}>${escapeText(text)}</${el.name}>`;
  }
  const inner = children.map((c, i) => {
    if (typeof c === 'string') return `${indent}  ${escapeText(c)}`;
    const p = patternChildren[i];
    return render(c, typeof p === 'string' ? undefined : p, `${indent}  `);
  });
  return `${indent}<${el.name}${attrs}>\n${inner.join('\n')}\n${indent}</${el.name}>`;
}

/** Canonical XML of an element (attributes sorted, insignificant whitespace dropped). */
export function canonicalXml(el: Element | string): string {
  const e = typeof el === 'string' ? (parse(el) as Element) : el;
  return render(e, undefined, '');
}

/** Asserts that `actual` matches `expected` (an XML string, with `*` wildcards). */
export function expectXml(actual: Element | undefined, expected: string, message?: string): void {
  const pattern = parse(expected) as Element;
  expect(actual, message ?? 'expected an element, got undefined').to.not.equal(undefined);
  expect(render(actual!, pattern, ''), message).to.equal(render(pattern, undefined, ''));
}

/** The RFC 6120 §8.3 condition of an error stanza, e.g. 'item-not-found'; undefined if it is not one. */
export function errorCondition(stanza: Element): string | undefined {
  if (stanza.attrs.type !== 'error') return undefined;
  return stanza
    .getChild('error')
    ?.getChildElements()
    .find((c) => c.attrs.xmlns === 'urn:ietf:params:xml:ns:xmpp-stanzas' && c.name !== 'text')?.name;
}

/** Asserts that a stanza is an error with this condition (and error type, when given). */
export function expectError(stanza: Element, condition: string, type?: string): void {
  expect(stanza.attrs.type, `expected an error stanza, got ${stanza.toString()}`).to.equal('error');
  expect(errorCondition(stanza), stanza.toString()).to.equal(condition);
  if (type !== undefined) expect(stanza.getChild('error')?.attrs.type, stanza.toString()).to.equal(type);
}
