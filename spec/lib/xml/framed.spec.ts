import { expect } from 'chai';
import type { Element } from '../../../lib/xml/element.js';
import { NS_FRAMING, parseFramedElement } from '../../../lib/xml/framed.js';
import { DEFAULT_LIMITS, StreamParser, XmlStreamError } from '../../../lib/xml/stream-parser.js';
import type { XmlLimits } from '../../../lib/xml/stream-parser.js';

const FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';

function conditionOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(XmlStreamError);
    return (err as XmlStreamError).condition;
  }
  return 'no error';
}

function parse(text: string, limits: XmlLimits = DEFAULT_LIMITS): Element {
  return parseFramedElement(text, limits);
}

/** What the TCP parser makes of the same stanza inside a jabber:client stream. */
function viaTcp(stanza: string): string {
  const out: string[] = [];
  const parser = new StreamParser({
    onStreamOpen: () => undefined,
    onElement: (el) => out.push(el.toString()),
    onStreamClose: () => undefined,
    onError: (err) => {
      throw err;
    },
  });
  parser.write(
    Buffer.from(
      "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com'>" + stanza,
    ),
  );
  expect(out).to.have.length(1);
  return out[0];
}

describe('parseFramedElement (RFC 7395)', () => {
  describe('well-formed messages', () => {
    it('parses <open/> and keeps its framing namespace and attributes', () => {
      const el = parse(`<open xmlns='${FRAMING}' to='example.com' version='1.0' xml:lang='en'/>`);
      expect(NS_FRAMING).to.equal(FRAMING);
      expect(el.name).to.equal('open');
      expect(el.attrs).to.deep.equal({ xmlns: FRAMING, to: 'example.com', version: '1.0', 'xml:lang': 'en' });
    });

    it('parses <close/>', () => {
      const el = parse(`<close xmlns='${FRAMING}' see-other-uri='wss://other.example/ws'/>`);
      expect(el.name).to.equal('close');
      expect(el.attrs).to.deep.equal({ xmlns: FRAMING, 'see-other-uri': 'wss://other.example/ws' });
    });

    it("removes xmlns='jabber:client' from a stanza so it looks like one from the TCP parser", () => {
      const el = parse("<message xmlns='jabber:client' to='a@b' type='chat'><body>hi</body></message>");
      expect(el.name).to.equal('message');
      expect(el.attrs).to.deep.equal({ to: 'a@b', type: 'chat' });
      expect(el.getChild('body')?.getText()).to.equal('hi');
    });

    it('normalises a stanza exactly as the TCP parser does', () => {
      const inner =
        " to='a@b' xmlns:a='urn:a' a:x='1'><body xml:lang='fr'>ça &amp; va</body>" +
        "<x xmlns='jabber:x:data'><field var='v'><value>1</value></field></x><a:ext/><![CDATA[<c>]]></message>";
      const framed = parse(`<message xmlns='jabber:client'${inner}`);
      expect(framed.toString()).to.equal(viaTcp(`<message${inner}`));
    });

    it('keeps xmlns on a nonza in another namespace', () => {
      const el = parse("<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
      expect(el.attrs).to.deep.equal({ xmlns: 'urn:xmpp:sm:3', resume: 'true' });
    });

    it('resolves a prefixed element to its local name and namespace', () => {
      const el = parse("<stream:error xmlns:stream='http://etherx.jabber.org/streams'><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
      expect(el.name).to.equal('error');
      expect(el.attrs).to.deep.equal({ xmlns: 'http://etherx.jabber.org/streams' });
      expect(el.getChild('host-unknown', 'urn:ietf:params:xml:ns:xmpp-streams')).to.not.equal(undefined);
    });

    it('accepts whitespace around the element', () => {
      const el = parse("\n  <presence xmlns='jabber:client'/>\r\n ");
      expect(el.name).to.equal('presence');
    });

    it('accepts non-ASCII text', () => {
      const el = parse("<message xmlns='jabber:client'><body>héllo 😀</body></message>");
      expect(el.getChild('body')?.getText()).to.equal('héllo 😀');
    });
  });

  describe('refused messages', () => {
    const tiny: XmlLimits = {
      maxStanzaBytes: 200,
      maxDepth: 3,
      maxAttributes: 3,
      maxAttributeValueBytes: 10,
      maxTextBytes: 20,
      maxNameBytes: 10,
    };
    const BILLION_LAUGHS =
      '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">' +
      '<!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">' +
      '<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">' +
      '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>' +
      "<message xmlns='jabber:client'><body>&lol3;</body></message>";

    const cases: [string, string, string, XmlLimits?][] = [
      ['two elements in one message', "<presence xmlns='jabber:client'/><presence xmlns='jabber:client'/>", 'not-well-formed'],
      ['a partial element', "<message xmlns='jabber:client'><body>hi</body>", 'not-well-formed'],
      ['a bare start tag', "<message xmlns='jabber:client'", 'not-well-formed'],
      ['text after the element', "<presence xmlns='jabber:client'/>junk", 'not-well-formed'],
      ['text before the element', "junk<presence xmlns='jabber:client'/>", 'not-well-formed'],
      ['an empty message', '', 'not-well-formed'],
      ['a whitespace-only message', '  \n', 'not-well-formed'],
      ['a mismatched end tag', "<message xmlns='jabber:client'><body></message>", 'not-well-formed'],
      ['an undefined entity', "<message xmlns='jabber:client'><body>&xxe;</body></message>", 'restricted-xml'],
      ['a duplicate attribute', "<message xmlns='jabber:client' to='a' to='b'/>", 'not-well-formed'],
      ['an unbound prefix', "<foo:message xmlns='jabber:client'/>", 'not-well-formed'],
      ['a lone surrogate', "<message xmlns='jabber:client'><body>\uD800a</body></message>", 'not-well-formed'],
      ['a DOCTYPE', "<!DOCTYPE message><message xmlns='jabber:client'/>", 'restricted-xml'],
      ['billion laughs', BILLION_LAUGHS, 'restricted-xml'],
      ['a comment', "<message xmlns='jabber:client'><!-- x --></message>", 'restricted-xml'],
      ['a comment after the element', "<message xmlns='jabber:client'/><!-- x -->", 'restricted-xml'],
      ['a processing instruction', "<message xmlns='jabber:client'><?pi x?></message>", 'restricted-xml'],
      ['an element in no namespace', "<message to='a@b'/>", 'invalid-namespace'],
      ['a message over maxStanzaBytes', `<message xmlns='jabber:client'>${'<a/>'.repeat(50)}</message>`, 'policy-violation', tiny],
      ['a message over maxStanzaBytes in bytes but not characters', `<x xmlns='u'>${'é'.repeat(95)}</x>`, 'policy-violation', { ...tiny, maxTextBytes: 1000 }],
      ['nesting deeper than maxDepth', "<a xmlns='u'><b><c><d/></c></b></a>", 'policy-violation', tiny],
      ['more than maxAttributes attributes', "<a xmlns='u' b='1' c='2' d='3'/>", 'policy-violation', tiny],
      ['an attribute value over maxAttributeValueBytes', "<a xmlns='u' b='12345678901'/>", 'policy-violation', tiny],
      ['a name over maxNameBytes', "<abcdefghijk xmlns='u'/>", 'policy-violation', tiny],
      ['a text node over maxTextBytes', `<a xmlns='u'>${'t'.repeat(21)}</a>`, 'policy-violation', tiny],
      ['10,000 nested elements', "<a xmlns='u'>" + '<a>'.repeat(10_000) + '</a>'.repeat(10_001), 'policy-violation', { ...DEFAULT_LIMITS, maxStanzaBytes: 1_000_000 }],
      ['10,000 attributes', '<a ' + Array.from({ length: 10_000 }, (_, i) => `a${i}='v'`).join(' ') + '/>', 'policy-violation', { ...DEFAULT_LIMITS, maxStanzaBytes: 1_000_000 }],
      ['an encoding other than UTF-8', "<?xml version='1.0' encoding='latin1'?><presence xmlns='jabber:client'/>", 'unsupported-encoding'],
    ];
    for (const [what, text, condition, limits] of cases) {
      it(`refuses ${what} with ${condition}`, () => {
        expect(conditionOf(() => parse(text, limits))).to.equal(condition);
      });
    }

    it('accepts what is exactly at the limits used above', () => {
      expect(() => parse("<a xmlns='u'><b><c/></b></a>", tiny)).to.not.throw();
      expect(() => parse("<a xmlns='u' b='1234567890' c='2'/>", tiny)).to.not.throw();
      expect(() => parse(`<abcdefghij xmlns='u'>${'t'.repeat(20)}</abcdefghij>`, tiny)).to.not.throw();
    });
  });
});
