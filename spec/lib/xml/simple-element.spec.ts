// The stream parser's fast path for plain elements (lib/xml/simple-element.ts) must give exactly
// what saxes gives: the same elements (same attributes in the same order, same text nodes), the
// same errors at the same point, under the same limits. Compared here on hand-picked cases and on
// thousands of generated and mutated stanzas, whole and cut into random pieces.
import { expect } from 'chai';
import type { Element } from '../../../lib/xml/element.js';
import { readSimpleElement } from '../../../lib/xml/simple-element.js';
import { DEFAULT_LIMITS, StreamParser, type XmlLimits } from '../../../lib/xml/stream-parser.js';

const HEADER =
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";

/** Everything about an element that either path could get differently, text nodes one by one. */
function dump(el: Element): unknown {
  return [el.name, Object.entries(el.attrs), el.children.map((c) => (typeof c === 'string' ? c : dump(c as Element)))];
}

function run(input: Buffer, cuts: number[], limits: XmlLimits, plainFastPath: boolean): string[] {
  const events: string[] = [];
  const parser: StreamParser = new StreamParser(
    {
      onStreamOpen: () => {
        events.push('open');
        // The header itself is read under the defaults; the limits under test apply after it.
        parser.setLimits(limits);
      },
      onElement: (el) => events.push(JSON.stringify(dump(el))),
      onStreamClose: () => events.push('close'),
      onError: (err) => events.push(`error:${err.condition}`),
    },
    DEFAULT_LIMITS,
    { plainFastPath },
  );
  // The header alone first: the body's pieces then start between top-level elements, where the
  // fast path reads.
  parser.write(Buffer.from(HEADER));
  let from = 0;
  for (const cut of [...cuts, input.length]) {
    if (cut > from) parser.write(input.subarray(from, cut));
    from = Math.max(from, cut);
  }
  return events;
}

function same(body: string | Buffer, limits: XmlLimits = DEFAULT_LIMITS, cuts: number[] = []): string[] {
  const input = typeof body === 'string' ? Buffer.from(body) : body;
  const fast = run(input, cuts, limits, true);
  const slow = run(input, cuts, limits, false);
  expect(fast, `${input.toString()} cut at ${cuts.join(',')}`).to.deep.equal(slow);
  return fast;
}

/** mulberry32: a small seeded generator, so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMES = ['message', 'body', 'x', 'a.b', '_u', 'a-b', 'A9', 'p:el', 'stream:error', 'é', '1bad', 'xml', 'a:b:c', '-x'];
const ATTR_NAMES = ['to', 'from', 'id', 'type', 'xml:lang', 'xmlns', 'xmlns:p', 'p:attr', 'xml:space', 'é', 'a:b', 'xmlns:xml', 'id', 'xml'];
const VALUES = [
  'a@b/c', '', 'urn:a', 'jabber:client', 'http://www.w3.org/XML/1998/namespace', 'http://www.w3.org/2000/xmlns/',
  'x &amp; y', '&lt;&gt;&quot;&apos;', '&#65;&#x42;', '&#x1F600;', '&#0;', '&#xD800;', '&bogus;', 'a & b', '&amp', 'a<b', 'a>b',
  'tab\there', 'nl\nhere', 'cr\rhere', 'é漢😀', ']]>', "it's", 'say "hi"', '&#10;', '&#13;', '&#xFFFE;', '\u0001',
];
const TEXTS = [
  'hello', ' ', '\n  ', 'a &amp; b', '&lt;tag&gt;', '&#x1F600; &#233;', 'a ]]> b', 'x]]y', 'bad & amp', '&nope;', 'cr\r\nlf', 'tab\t',
  'é 漢字 😀', '\u0007bell', '\ufffe', '<![CDATA[ <raw> ]]>', '<!-- c -->', '<?pi x?>', "quote ' \" >", '&#0;', '&#x110000;',
];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function genElement(r: () => number, depth: number): string {
  const name = r() < 0.85 ? pick(r, NAMES.slice(0, 7)) : pick(r, NAMES);
  let s = `<${name}`;
  const n = Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const space = r() < 0.95 ? pick(r, [' ', '  ', '\n', '\t', ' \r\n ']) : '';
    const q = r() < 0.5 ? "'" : '"';
    const eq = r() < 0.9 ? '=' : pick(r, [' = ', '=\n', '']);
    s += `${space}${r() < 0.8 ? pick(r, ATTR_NAMES.slice(0, 6)) : pick(r, ATTR_NAMES)}${eq}${q}${r() < 0.7 ? pick(r, VALUES.slice(0, 8)) : pick(r, VALUES)}${q}`;
  }
  if (r() < 0.2) s += pick(r, [' ', '\n']);
  if (depth > 3 || r() < 0.3) return `${s}/>`;
  s += '>';
  const kids = Math.floor(r() * 4);
  for (let i = 0; i < kids; i++) s += r() < 0.5 ? genElement(r, depth + 1) : r() < 0.8 ? pick(r, TEXTS.slice(0, 6)) : pick(r, TEXTS);
  const close = r() < 0.95 ? name : pick(r, NAMES);
  return `${s}</${close}${r() < 0.1 ? ' ' : ''}>`;
}

function mutate(r: () => number, s: string): string {
  const at = Math.floor(r() * (s.length + 1));
  switch (Math.floor(r() * 4)) {
    case 0: return s.slice(0, at) + s.slice(at + 1);
    case 1: return s.slice(0, at) + pick(r, ['<', '>', '&', '/', '"', "'", '=', ' ', ':', ']]>', '\u0000', 'é']) + s.slice(at);
    case 2: return s.slice(0, at);
    default: return s;
  }
}

const SMALL: XmlLimits = { maxStanzaBytes: 120, maxDepth: 3, maxAttributes: 2, maxAttributeValueBytes: 12, maxTextBytes: 10, maxNameBytes: 8 };

describe('StreamParser fast path for plain elements', () => {
  it('reads a plain stanza without saxes, as saxes would', () => {
    const el = readSimpleElement(
      `<message to='a@b' type="chat" xml:lang='en'><body>hi &amp; bye &#x1F600;</body><x xmlns='urn:x'><y a='1'/></x></message>`,
      0,
      'jabber:client',
      DEFAULT_LIMITS,
      false,
    );
    expect(el?.el.toString()).to.equal('<message to="a@b" type="chat" xml:lang="en"><body>hi &amp; bye 😀</body><x xmlns="urn:x"><y a="1"/></x></message>');
    same(`<message to='a@b' type="chat" xml:lang='en'><body>hi &amp; bye &#x1F600;</body><x xmlns='urn:x'><y a='1'/></x></message>`);
  });

  it('leaves to saxes what is not plain or not complete', () => {
    for (const s of [
      "<message><body><![CDATA[x]]></body></message>",
      "<message><!-- c --></message>",
      "<p:message xmlns:p='jabber:client'/>",
      "<message a='1' a='2'/>",
      "<message a='x\ty'/>",
      "<message><body>a\r\nb</body></message>",
      "<message><body>",
      "<message xmlns=''/>",
      "<message><body>x</bodyy></message>",
    ]) {
      expect(readSimpleElement(s, 0, 'jabber:client', DEFAULT_LIMITS, true), s).to.equal(undefined);
      same(s);
    }
  });

  it('gives the same events on hand-picked edge cases, whole and byte by byte', () => {
    const cases = [
      '<presence/><presence/>  \n<iq type="get" id="1"><query xmlns="jabber:iq:roster"/></iq>',
      "<message><body>  </body>\n  <x xmlns='urn:a'>\n    <y/>\n  </x>\n</message>",
      "<message a='1'b='2'/>",
      '<message a = "1"/>',
      '<message></message >',
      '< message/>',
      '<message/>text',
      '<message/></stream:stream><message/>',
      "<message xmlns='http://www.w3.org/XML/1998/namespace'/>",
      '<message><body>&#65;&#x42;&amp;&lt;&gt;&quot;&apos;</body></message>',
      '<message><body>&#0;</body></message>',
      '<message><body>&#x110000;</body></message>',
      '<message><body>]]></body></message>',
      "<message xml:lang='en' xml:lang='fr'/>",
      "<message x:y='1'/>",
      "<message><body>é 漢字 😀</body></message><message><body>\u0007</body></message>",
      '<message><body/></message><message>',
    ];
    for (const c of cases) {
      same(c);
      same(c, DEFAULT_LIMITS, Array.from({ length: Buffer.byteLength(c) }, (_, i) => i));
      // Cut after each top-level element's end, so that each piece starts with the next one.
      same(c, DEFAULT_LIMITS, [...c.matchAll(/>/g)].map((m) => Buffer.byteLength(c.slice(0, m.index + 1))));
    }
  });

  it('gives the same events under tight limits', () => {
    for (const c of [
      "<message><body>0123456789A</body></message>",
      "<message a='1' b='2' c='3'/>",
      "<message><a><b><c/></b></a></message>",
      "<message a='0123456789abc'/>",
      "<message a='&#x1F600;&#x1F600;&#x1F600;&#x1F600;'/>",
      "<abcdefghi/>",
      "<m abcdefghi='1'/>",
      "<m xml:langx='1'/>",
      `<m>${'x'.repeat(9)}</m><m>${'y'.repeat(200)}</m>`,
      "<m><b>é é é é</b></m>",
      `<m>${'<b>123456789</b>'.repeat(6)}</m>`,
      `<m>${'<b>123456789</b>'.repeat(8)}</m>`,
      `<m>${'<b>é</b>'.repeat(13)}</m>`,
    ]) {
      same(c, SMALL);
    }
  });

  it('gives the same events on 4,000 generated and mutated stanzas, whole and cut into pieces', () => {
    const r = prng(20261130);
    for (let n = 0; n < 4000; n++) {
      let body = '';
      const count = 1 + Math.floor(r() * 3);
      for (let i = 0; i < count; i++) body += genElement(r, 1) + (r() < 0.3 ? pick(r, [' ', '\n', '']) : '');
      if (r() < 0.3) body = mutate(r, body);
      const bytes = Buffer.from(body);
      const cuts = Array.from({ length: Math.floor(r() * 4) }, () => Math.floor(r() * (bytes.length + 1))).sort((a, b) => a - b);
      same(bytes, r() < 0.25 ? SMALL : DEFAULT_LIMITS, r() < 0.5 ? [] : cuts);
    }
  });

  it('stops at once when a handler restarts the stream, as saxes does', () => {
    for (const plainFastPath of [true, false]) {
      const seen: string[] = [];
      const parser: StreamParser = new StreamParser(
        {
          onStreamOpen: () => seen.push('open'),
          onElement: (el) => {
            seen.push(el.name);
            if (el.name === 'proceed') parser.reset();
          },
          onStreamClose: () => seen.push('close'),
          onError: (err) => seen.push(`error:${err.condition}`),
        },
        DEFAULT_LIMITS,
        { plainFastPath },
      );
      parser.write(Buffer.from(`${HEADER}<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><message/>\u0016\u0003\u0001garbage`));
      expect(seen, `fast path ${plainFastPath}`).to.deep.equal(['open', 'proceed']);
    }
  });
});
