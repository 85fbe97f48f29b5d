import { expect } from 'chai';
import type { Element } from '../../../lib/xml/element.js';
import {
  DEFAULT_LIMITS,
  PREAUTH_LIMITS,
  StreamParser,
  sweepIdleParsers,
  XmlStreamError,
} from '../../../lib/xml/stream-parser.js';
import type { XmlLimits } from '../../../lib/xml/stream-parser.js';

const NS_STREAM = 'http://etherx.jabber.org/streams';
const NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls';

const HEADER =
  "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' " +
  "to='example.com' version='1.0' xml:lang='en'>";

interface Harness {
  parser: StreamParser;
  opens: { attrs: Record<string, string>; name: { local: string; ns: string } }[];
  elements: Element[];
  closes: number;
  errors: XmlStreamError[];
  /** Event names in order: open, element:<name>, close, error:<condition>. */
  events: string[];
}

function harness(limits?: XmlLimits, onElement?: (el: Element, h: Harness) => void): Harness {
  const h: Harness = {
    parser: undefined as unknown as StreamParser,
    opens: [],
    elements: [],
    closes: 0,
    errors: [],
    events: [],
  };
  h.parser = new StreamParser(
    {
      onStreamOpen(attrs, name) {
        h.opens.push({ attrs, name });
        h.events.push('open');
      },
      onElement(el) {
        h.elements.push(el);
        h.events.push(`element:${el.name}`);
        onElement?.(el, h);
      },
      onStreamClose() {
        h.closes++;
        h.events.push('close');
      },
      onError(err) {
        h.errors.push(err);
        h.events.push(`error:${err.condition}`);
      },
    },
    limits,
  );
  return h;
}

function write(h: Harness, data: string | Buffer, chunkSize = Infinity): void {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  if (chunkSize === Infinity) {
    h.parser.write(buf);
    return;
  }
  for (let off = 0; off < buf.length; off += chunkSize) h.parser.write(buf.subarray(off, off + chunkSize));
}

/** Parses `body` inside a standard stream header and returns the harness. */
function parse(body: string | Buffer, limits?: XmlLimits): Harness {
  const h = harness(limits);
  write(h, HEADER);
  write(h, body);
  return h;
}

function expectError(h: Harness, condition: string): void {
  expect(h.errors.map((e) => e.condition), 'errors').to.deep.equal([condition]);
  expect(h.errors[0]).to.be.instanceOf(XmlStreamError);
  expect(h.errors[0]).to.be.instanceOf(Error);
}

function expectNoError(h: Harness): void {
  expect(h.errors.map((e) => `${e.condition}: ${e.message}`), 'errors').to.deep.equal([]);
}

describe('StreamParser', () => {
  describe('a well-formed stream', () => {
    it('reports the stream header with its attributes, its default namespace as attrs.xmlns, and its name', () => {
      const h = harness();
      write(h, HEADER);
      expectNoError(h);
      expect(h.opens).to.have.length(1);
      expect(h.opens[0].name).to.deep.equal({ local: 'stream', ns: NS_STREAM });
      expect(h.opens[0].attrs).to.deep.equal({
        xmlns: 'jabber:client',
        to: 'example.com',
        version: '1.0',
        'xml:lang': 'en',
      });
    });

    it('exposes from and id on the stream header too', () => {
      const h = harness();
      write(
        h,
        "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' " +
          "from='a.example' to='b.example' id='abc123' version='1.0'>",
      );
      expectNoError(h);
      expect(h.opens[0].attrs).to.include({ xmlns: 'jabber:server', from: 'a.example', id: 'abc123' });
    });

    it('delivers a top-level element only once its end tag has arrived', () => {
      const h = harness();
      write(h, HEADER);
      write(h, "<message to='a@b'><body>hel");
      expect(h.elements).to.have.length(0);
      write(h, 'lo</body></message>');
      expectNoError(h);
      expect(h.elements).to.have.length(1);
      expect(h.elements[0].toString()).to.equal('<message to="a@b"><body>hello</body></message>');
    });

    it('delivers several stanzas and nonzas from one chunk in order', () => {
      const h = parse(
        "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>" +
          "<message id='1'/>\n<presence/>\n<iq type='get' id='2'><ping xmlns='urn:xmpp:ping'/></iq>",
      );
      expectNoError(h);
      expect(h.events).to.deep.equal(['open', 'element:features', 'element:message', 'element:presence', 'element:iq']);
    });

    it('gives identical elements when the same stream arrives one byte at a time', () => {
      const stream =
        HEADER +
        "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>\r\n" +
        "<message to='jülia@example.com' id=\"m&amp;1\" type='chat' xmlns:x='urn:x' x:a='v'>" +
        '<body>héllo 😀 wörld &lt;&#x1F600;&#65;&gt;\r\nline2</body><![CDATA[<raw>]]>' +
        "<thread xmlns='urn:other'><t2/></thread></message>  \n\t" +
        "<presence><status xml:lang='fr'>ça va</status></presence>" +
        "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>";
      const whole = harness();
      write(whole, stream);
      const bytewise = harness();
      write(bytewise, stream, 1);
      expectNoError(whole);
      expectNoError(bytewise);
      expect(whole.elements).to.have.length(4);
      expect(bytewise.opens).to.deep.equal(whole.opens);
      expect(bytewise.elements.map(String)).to.deep.equal(whole.elements.map(String));
      const body = whole.elements[1].getChild('body');
      expect(body?.getText()).to.equal('héllo 😀 wörld <😀A>\nline2');
      expect(whole.elements[1].attrs.to).to.equal('jülia@example.com');
      expect(whole.elements[1].attrs.id).to.equal('m&1');
    });

    it('turns predefined entities, character references and CDATA into text', () => {
      const h = parse('<message><body>a &amp; b &lt; c &gt; d &quot;&apos; &#233;&#xe9; <![CDATA[<x>&amp;]]></body></message>');
      expectNoError(h);
      expect(h.elements[0].getChild('body')?.getText()).to.equal('a & b < c > d "\' éé <x>&amp;');
    });

    it('reports </stream:stream> and ignores everything after it', () => {
      const h = parse('<message/></stream:stream>');
      write(h, '<message/>garbage \xff');
      expectNoError(h);
      expect(h.events).to.deep.equal(['open', 'element:message', 'close']);
    });

    it('reports </stream:stream> arriving on its own with nothing after it', () => {
      const h = parse('<presence/>');
      write(h, '</stream:stream>');
      expectNoError(h);
      expect(h.closes).to.equal(1);
      expect(h.events).to.deep.equal(['open', 'element:presence', 'close']);
    });

    it('lets the stream stay open: unclosed <stream:stream> at the end of input is no error', () => {
      const h = parse('<presence/>');
      expectNoError(h);
      expect(h.closes).to.equal(0);
    });

    it('accepts a UTF-8 byte order mark at the very start', () => {
      const h = harness();
      write(h, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(HEADER + '<presence/>')]));
      expectNoError(h);
      expect(h.events).to.deep.equal(['open', 'element:presence']);
    });

    it('accepts a byte order mark alone, or split byte by byte, before the header', () => {
      const alone = harness();
      write(alone, Buffer.from([0xef, 0xbb, 0xbf]));
      write(alone, HEADER + '<presence/>');
      expectNoError(alone);
      expect(alone.events).to.deep.equal(['open', 'element:presence']);
      const split = harness();
      write(split, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(HEADER + '<presence/>')]), 1);
      expectNoError(split);
      expect(split.events).to.deep.equal(['open', 'element:presence']);
    });

    it('accepts a byte order mark again at the start of a restarted stream', () => {
      const h = harness(undefined, (el, hh) => { if (el.name === 'proceed') hh.parser.reset(); });
      write(h, HEADER + `<proceed xmlns='${NS_TLS}'/>`);
      write(h, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(HEADER + '<presence/>')]));
      expectNoError(h);
      expect(h.events).to.deep.equal(['open', 'element:proceed', 'open', 'element:presence']);
    });

    it('keeps U+FEFF inside text, and decodes text split anywhere in a multi-byte character', () => {
      const text = 'a\ufeffb é 漢字 😀 z';
      const h = harness();
      write(h, HEADER);
      write(h, `<message><body>${text}</body></message><message><body>plain</body></message>`, 1);
      expectNoError(h);
      expect(h.elements.map((e) => e.getChildText('body'))).to.deep.equal([text, 'plain']);
    });

    it('reads Uint8Array input as well as Buffers', () => {
      const h = harness();
      const bytes = Buffer.from(HEADER + '<message><body>ü</body></message>');
      h.parser.write(new Uint8Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)));
      expectNoError(h);
      expect(h.elements[0].getChildText('body')).to.equal('ü');
    });

    it('refuses a byte order mark anywhere but the start', () => {
      const h = parse(Buffer.concat([Buffer.from('<presence/>'), Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('<presence/>')]));
      expectError(h, 'not-well-formed');
    });
  });

  describe('namespace normalisation', () => {
    it("leaves xmlns off top-level elements in the stream's default namespace", () => {
      const h = parse("<message to='a@b'/><presence xmlns='jabber:client'/>");
      expectNoError(h);
      expect(h.elements[0].name).to.equal('message');
      expect(Object.keys(h.elements[0].attrs)).to.deep.equal(['to']);
      expect(Object.keys(h.elements[1].attrs)).to.deep.equal([]);
    });

    it('keeps xmlns on top-level elements in another namespace', () => {
      const h = parse("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
      expectNoError(h);
      expect(h.elements[0].name).to.equal('starttls');
      expect(h.elements[0].attrs).to.deep.equal({ xmlns: NS_TLS });
    });

    it('turns stream-prefixed children into their local name with an explicit xmlns', () => {
      const h = parse("<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>");
      expectNoError(h);
      const features = h.elements[0];
      expect(features.name).to.equal('features');
      expect(features.attrs).to.deep.equal({ xmlns: NS_STREAM });
      expect(features.toString()).to.equal(
        `<features xmlns="${NS_STREAM}"><starttls xmlns="${NS_TLS}"><required/></starttls></features>`,
      );
      expect(features.getChild('starttls', NS_TLS)?.getChild('required')).to.not.equal(undefined);
    });

    it("gives a child an xmlns only when its namespace differs from its parent's", () => {
      const h = parse(
        "<message><body>x</body><x xmlns='jabber:x:data'><field var='a'><value>1</value></field></x>" +
          "<active xmlns='http://jabber.org/protocol/chatstates'/></message>",
      );
      expectNoError(h);
      expect(h.elements[0].toString()).to.equal(
        '<message><body>x</body><x xmlns="jabber:x:data"><field var="a"><value>1</value></field></x>' +
          '<active xmlns="http://jabber.org/protocol/chatstates"/></message>',
      );
    });

    it('resolves prefixed elements to their local name and namespace and drops the prefix declaration', () => {
      const h = parse("<message xmlns:e='urn:example'><e:payload><e:item/><plain/></e:payload></message>");
      expectNoError(h);
      expect(h.elements[0].toString()).to.equal(
        '<message><payload xmlns="urn:example"><item/><plain xmlns="jabber:client"/></payload></message>',
      );
    });

    it('resolves a prefixed top-level element in the default namespace to a bare name', () => {
      const h = parse("<c:message xmlns:c='jabber:client' to='a@b'/>");
      expectNoError(h);
      expect(h.elements[0].name).to.equal('message');
      expect(h.elements[0].attrs).to.deep.equal({ to: 'a@b' });
    });

    it('keeps xml:lang as written', () => {
      const h = parse("<message xml:lang='de'><body xml:lang='fr'>salut</body></message>");
      expectNoError(h);
      expect(h.elements[0].attrs).to.deep.equal({ 'xml:lang': 'de' });
      expect(h.elements[0].getChild('body')?.attrs).to.deep.equal({ 'xml:lang': 'fr' });
    });

    it('keeps prefixed attributes with the declaration of their prefix, even when declared on an ancestor', () => {
      const h = parse(
        "<message xmlns:a='urn:a' xmlns:unused='urn:unused' a:x='1'><child a:y='2'/></message>",
      );
      expectNoError(h);
      expect(h.elements[0].attrs).to.deep.equal({ 'a:x': '1', 'xmlns:a': 'urn:a' });
      expect(h.elements[0].getChild('child')?.attrs).to.deep.equal({ 'a:y': '2', 'xmlns:a': 'urn:a' });
    });

    it('measures top-level namespaces against the default namespace of this stream (jabber:server)', () => {
      const h = harness();
      write(
        h,
        "<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' " +
          "xmlns:db='jabber:server:dialback' to='b.example' version='1.0'>" +
          "<message from='a@a.example'/><db:result to='b.example'>key</db:result>",
      );
      expectNoError(h);
      expect(h.elements[0].attrs).to.deep.equal({ from: 'a@a.example' });
      expect(h.elements[1].name).to.equal('result');
      expect(h.elements[1].attrs).to.deep.equal({ xmlns: 'jabber:server:dialback', to: 'b.example' });
    });

    it('refuses a top-level element in no namespace with invalid-namespace', () => {
      const h = parse("<message xmlns='' to='a@b'/>");
      expectError(h, 'invalid-namespace');
      expect(h.elements).to.have.length(0);
    });
  });

  describe('stream restarts', () => {
    it('reset() from onElement after <proceed/> starts a fresh document and drops the rest of that chunk', () => {
      const h = harness(undefined, (el, hh) => {
        if (el.name === 'proceed') hh.parser.reset();
      });
      write(h, HEADER);
      // The TLS handshake bytes after <proceed/> are not XML (nor UTF-8); they must be dropped.
      write(h, Buffer.concat([Buffer.from(`<proceed xmlns='${NS_TLS}'/>`), Buffer.from([0x16, 0x03, 0x01, 0xff, 0xfe, 0x3c])]));
      expectNoError(h);
      // The new stream may start with an XML declaration again.
      write(h, HEADER + '<presence/>');
      expectNoError(h);
      expect(h.events).to.deep.equal(['open', 'element:proceed', 'open', 'element:presence']);
    });

    it('reset() after <success/> plus setLimits() raises the stanza limit for the new stream', () => {
      const big = `<message><body>${'a'.repeat(20_000)}</body></message>`;
      const h = harness(PREAUTH_LIMITS, (el, hh) => {
        if (el.name === 'success') {
          hh.parser.reset();
          hh.parser.setLimits(DEFAULT_LIMITS);
        }
      });
      write(h, HEADER + "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
      write(h, HEADER + big);
      expectNoError(h);
      expect(h.events).to.deep.equal(['open', 'element:success', 'open', 'element:message']);

      const before = harness(PREAUTH_LIMITS);
      write(before, HEADER + big);
      expectError(before, 'policy-violation');
    });

    it('reset() between writes forgets an unfinished element', () => {
      const h = parse("<message><body>half");
      h.parser.reset();
      write(h, HEADER + '<presence/>');
      expectNoError(h);
      expect(h.events).to.deep.equal(['open', 'open', 'element:presence']);
    });
  });

  describe('malformed XML', () => {
    it('refuses a mismatched end tag with not-well-formed and does not deliver the element', () => {
      const h = parse('<message><body>hi</message>');
      expectError(h, 'not-well-formed');
      expect(h.elements).to.have.length(0);
    });

    it('refuses a mismatched end tag on a top-level element without delivering it', () => {
      const h = parse('<message></iq>');
      expectError(h, 'not-well-formed');
      expect(h.elements).to.have.length(0);
    });

    it('refuses </stream:stream> while a stanza is still open, without delivering it or closing', () => {
      const h = parse('<message><body>hi</body></stream:stream>');
      expectError(h, 'not-well-formed');
      expect(h.elements).to.have.length(0);
      expect(h.closes).to.equal(0);
    });

    it('delivers the complete stanzas that came before the error, then reports it', () => {
      const h = parse('<presence/><message></iq>');
      expect(h.events).to.deep.equal(['open', 'element:presence', 'error:not-well-formed']);
    });

    const cases: [string, string][] = [
      ['an unquoted attribute value', '<message to=a@b/>'],
      ['an attribute without a value', '<message to/>'],
      ['a duplicate attribute', "<message to='a' to='b'/>"],
      ['the same attribute twice under different prefixes', "<message xmlns:a='urn:x' xmlns:b='urn:x' a:t='1' b:t='2'/>"],
      ['an unbound element prefix', '<foo:message/>'],
      ['an unbound attribute prefix', "<message foo:to='a'/>"],
      ['< in an attribute value', "<message to='a<b'/>"],
      ['a bare & in text', '<message><body>a & b;</body></message>'],
      ['a disallowed control character', '<message><body>\u0001</body></message>'],
      [']]> in text', '<message><body>a]]>b</body></message>'],
      ['a malformed character reference', '<message><body>&#xD800;</body></message>'],
      ['an empty end tag', '<message></>'],
    ];
    for (const [what, body] of cases) {
      it(`refuses ${what} with not-well-formed`, () => {
        const h = parse(body);
        expectError(h, 'not-well-formed');
        expect(h.elements).to.have.length(0);
      });
    }

    it('refuses text between top-level elements with not-well-formed', () => {
      const h = parse('<presence/>hello<presence/>');
      expect(h.events).to.deep.equal(['open', 'element:presence', 'error:not-well-formed']);
    });

    it('refuses text right after the stream header, even before any < arrives', () => {
      const h = parse('hello');
      expectError(h, 'not-well-formed');
    });

    it('refuses text at the top level arriving in a later chunk', () => {
      const h = parse('<presence/>  ');
      write(h, '  x');
      expect(h.events).to.deep.equal(['open', 'element:presence', 'error:not-well-formed']);
    });

    it('refuses an entity reference at the top level', () => {
      const h = parse('<presence/>&amp;<presence/>');
      expect(h.events).to.deep.equal(['open', 'element:presence', 'error:not-well-formed']);
    });

    it('refuses CDATA at the top level', () => {
      const h = parse('<![CDATA[x]]>');
      expectError(h, 'not-well-formed');
    });

    it('refuses text before the root element', () => {
      const h = harness();
      write(h, 'hello' + HEADER);
      expectError(h, 'not-well-formed');
      expect(h.opens).to.have.length(0);
    });
  });

  describe('encoding', () => {
    const invalid: [string, number[]][] = [
      ['an overlong two-byte form of "/"', [0xc0, 0xaf]],
      ['an overlong three-byte form', [0xe0, 0x80, 0xaf]],
      ['an overlong four-byte form', [0xf0, 0x80, 0x80, 0xaf]],
      ['an encoded UTF-16 surrogate', [0xed, 0xa0, 0x80]],
      ['a stray continuation byte', [0x80]],
      ['a truncated sequence followed by ASCII', [0xe2, 0x82, 0x41]],
      ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
      ['the byte 0xFF', [0xff]],
    ];
    for (const [what, bytes] of invalid) {
      it(`refuses ${what} inside a stanza with not-well-formed`, () => {
        const h = parse(Buffer.concat([Buffer.from('<message><body>'), Buffer.from(bytes), Buffer.from('</body></message>')]));
        expectError(h, 'not-well-formed');
        expect(h.elements).to.have.length(0);
      });
    }

    it('refuses invalid UTF-8 split across chunks', () => {
      const h = harness();
      write(h, HEADER + '<message><body>');
      write(h, Buffer.from([0xed]));
      write(h, Buffer.from([0xa0]));
      write(h, Buffer.from([0x80]));
      write(h, '</body></message>');
      expectError(h, 'not-well-formed');
      expect(h.elements).to.have.length(0);
    });

    it('refuses invalid UTF-8 in the stream header', () => {
      const h = harness();
      write(h, Buffer.concat([Buffer.from("<stream:stream to='"), Buffer.from([0xc0, 0xaf]), Buffer.from("' xmlns='jabber:client'>")]));
      expectError(h, 'not-well-formed');
      expect(h.opens).to.have.length(0);
    });

    it('refuses a UTF-16 stream with unsupported-encoding', () => {
      const h = harness();
      write(h, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(HEADER, 'utf16le')]));
      expectError(h, 'unsupported-encoding');
    });

    it('refuses an XML declaration naming another encoding with unsupported-encoding', () => {
      const h = harness();
      write(h, "<?xml version='1.0' encoding='ISO-8859-1'?>" + HEADER.slice(HEADER.indexOf('<stream')));
      expectError(h, 'unsupported-encoding');
      expect(h.opens).to.have.length(0);
    });

    it('accepts an XML declaration naming UTF-8', () => {
      const h = harness();
      write(h, "<?xml version='1.0' encoding='UTF-8'?>" + HEADER.slice(HEADER.indexOf('<stream')));
      expectNoError(h);
      expect(h.opens).to.have.length(1);
    });
  });

  describe('restricted XML', () => {
    const BILLION_LAUGHS =
      '<?xml version="1.0"?>\n' +
      '<!DOCTYPE lolz [\n' +
      ' <!ENTITY lol "lol">\n' +
      ' <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n' +
      ' <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">\n' +
      ' <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">\n' +
      ' <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">\n' +
      ' <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">\n' +
      ' <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">\n' +
      ' <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">\n' +
      ' <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">\n' +
      ' <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">\n' +
      ']>\n';

    it('refuses the billion laughs DTD before the stream header with restricted-xml', () => {
      const h = harness();
      write(
        h,
        BILLION_LAUGHS +
          "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>" +
          '<message><body>&lol9;</body></message>',
      );
      expectError(h, 'restricted-xml');
      expect(h.opens).to.have.length(0);
      expect(h.elements).to.have.length(0);
    });

    it('refuses billion laughs sent inside the stream with restricted-xml', () => {
      const h = parse(BILLION_LAUGHS.slice(BILLION_LAUGHS.indexOf('<!DOCTYPE')) + '<message><body>&lol9;</body></message>');
      expectError(h, 'restricted-xml');
      expect(h.elements).to.have.length(0);
    });

    it('never expands the billion laughs entity even without its DTD: an undefined entity is restricted-xml', () => {
      const h = parse('<message><body>&lol9;</body></message>');
      expectError(h, 'restricted-xml');
      expect(h.elements).to.have.length(0);
    });

    it('refuses a DOCTYPE without an internal subset with restricted-xml', () => {
      const h = harness();
      write(h, '<!DOCTYPE stream:stream SYSTEM "http://evil.example/x.dtd">' + HEADER.slice(HEADER.indexOf('<stream')));
      expectError(h, 'restricted-xml');
      expect(h.opens).to.have.length(0);
    });

    it('refuses an undefined (internal or external) entity reference in text with restricted-xml', () => {
      expectError(parse('<message><body>&xxe;</body></message>'), 'restricted-xml');
    });

    it('refuses an undefined entity reference in an attribute value with restricted-xml', () => {
      expectError(parse("<message to='&xxe;'/>"), 'restricted-xml');
    });

    it('refuses a comment inside a stanza with restricted-xml', () => {
      const h = parse('<message><!-- hi --><body/></message>');
      expectError(h, 'restricted-xml');
      expect(h.elements).to.have.length(0);
    });

    it('refuses a comment between stanzas with restricted-xml', () => {
      const h = parse('<presence/><!-- hi -->');
      expect(h.events).to.deep.equal(['open', 'element:presence', 'error:restricted-xml']);
    });

    it('refuses a comment before the stream header with restricted-xml', () => {
      const h = harness();
      write(h, '<!-- hi -->' + HEADER.slice(HEADER.indexOf('<stream')));
      expectError(h, 'restricted-xml');
      expect(h.opens).to.have.length(0);
    });

    it('refuses a processing instruction inside a stanza with restricted-xml', () => {
      const h = parse('<message><?php evil() ?></message>');
      expectError(h, 'restricted-xml');
      expect(h.elements).to.have.length(0);
    });

    it('refuses a processing instruction between stanzas with restricted-xml', () => {
      expectError(parse('<?target data?>'), 'restricted-xml');
    });

    it('refuses an XML declaration anywhere but the very start with restricted-xml', () => {
      expectError(parse("<?xml version='1.0'?>"), 'restricted-xml');
    });
  });

  describe('root element', () => {
    it('refuses a root element in the wrong namespace with invalid-namespace', () => {
      const h = harness();
      write(h, "<stream:stream xmlns='jabber:client' xmlns:stream='urn:wrong' to='example.com'>");
      expectError(h, 'invalid-namespace');
      expect(h.opens).to.have.length(0);
    });

    it('refuses an unprefixed <stream> in the content namespace with invalid-namespace', () => {
      const h = harness();
      write(h, "<stream xmlns='jabber:client' to='example.com'>");
      expectError(h, 'invalid-namespace');
    });

    it('refuses a root element with another name with invalid-namespace', () => {
      const h = harness();
      write(h, "<stream:flux xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
      expectError(h, 'invalid-namespace');
    });
  });

  describe('limits', () => {
    const small: XmlLimits = {
      // Room for the stream header (5 attributes, a 32-byte namespace, a 13-byte name).
      maxStanzaBytes: 1000,
      maxDepth: 5,
      maxAttributes: 6,
      maxAttributeValueBytes: 40,
      maxTextBytes: 50,
      maxNameBytes: 16,
    };

    it('refuses a 10 MB stanza with policy-violation before 300 KB of it have been fed', () => {
      const h = harness(DEFAULT_LIMITS);
      write(h, HEADER);
      write(h, "<message to='a@b'><body>");
      const chunk = Buffer.alloc(16_384, 'a');
      let fed = 0;
      while (fed < 10 * 1024 * 1024 && h.errors.length === 0) {
        h.parser.write(chunk);
        fed += chunk.length;
      }
      expectError(h, 'policy-violation');
      expect(fed).to.be.greaterThan(DEFAULT_LIMITS.maxStanzaBytes - 16_384);
      expect(fed).to.be.at.most(300 * 1024);
      expect(h.elements).to.have.length(0);
    });

    it('refuses a 10 MB stanza written in one call with policy-violation', () => {
      const h = parse(`<message><body>${'a'.repeat(10 * 1024 * 1024)}</body></message>`);
      expectError(h, 'policy-violation');
      expect(h.elements).to.have.length(0);
    });

    it('accepts a stanza of exactly maxStanzaBytes and refuses one byte more', () => {
      const make = (bytes: number): string => {
        const shell = '<message><body></body></message>';
        return `<message><body>${'a'.repeat(bytes - shell.length)}</body></message>`;
      };
      const ok = parse(make(small.maxStanzaBytes) + '<presence/>', { ...small, maxTextBytes: 1000 });
      expectNoError(ok);
      expect(ok.elements).to.have.length(2);
      const over = parse(make(small.maxStanzaBytes + 1), { ...small, maxTextBytes: 1000 });
      expectError(over, 'policy-violation');
    });

    it('counts UTF-8 bytes, not characters, toward the stanza limit', () => {
      // 600 characters of "é" are 1,200 bytes: under the limit counted as characters, over it as bytes.
      const stanza = `<message><body>${'é'.repeat(600)}</body></message>`;
      expect(stanza.length).to.be.below(small.maxStanzaBytes);
      const h = parse(stanza, { ...small, maxTextBytes: 10_000 });
      expectError(h, 'policy-violation');
    });

    it('counts a stanza split over many chunks as a whole', () => {
      const body = 'a'.repeat(300);
      const h = harness({ ...small, maxTextBytes: 10_000 });
      write(h, HEADER);
      write(h, `<message><body>${body}${body}${body}${body}</body></message>`, 100);
      expectError(h, 'policy-violation');
      expect(h.elements).to.have.length(0);
    });

    it('does not count whitespace keepalives: 1 MB of spaces between stanzas is no error', () => {
      const h = harness(PREAUTH_LIMITS);
      write(h, HEADER + '<presence/>');
      const spaces = Buffer.alloc(1024 * 1024, ' ');
      write(h, spaces, 16_384);
      write(h, '<presence/>');
      write(h, Buffer.from(' \n\t\r\n'.repeat(50_000)));
      write(h, '<presence/>');
      expectNoError(h);
      expect(h.elements).to.have.length(3);
    });

    it('does not count whitespace keepalives that arrive in the same chunk as stanzas', () => {
      const h = harness(PREAUTH_LIMITS);
      write(h, HEADER + '<presence/>' + ' '.repeat(1024 * 1024) + '<presence/>' + ' '.repeat(100_000));
      write(h, '<presence/>');
      // More whitespace than the whole limit between two stanzas of one small chunk.
      write(h, '<presence/>' + '\r\n'.repeat(10_000) + '<presence/>');
      expectNoError(h);
      expect(h.elements).to.have.length(5);
    });

    it('counts the stream header toward the stanza limit', () => {
      const h = harness(PREAUTH_LIMITS);
      write(h, "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'" + ' '.repeat(20_000) + '>');
      expectError(h, 'policy-violation');
      expect(h.opens).to.have.length(0);
    });

    it('refuses 10,000 nested elements with policy-violation', () => {
      const h = parse('<message>' + '<a>'.repeat(10_000) + '</a>'.repeat(10_000) + '</message>', DEFAULT_LIMITS);
      expectError(h, 'policy-violation');
      expect(h.elements).to.have.length(0);
    });

    it('accepts nesting up to maxDepth and refuses one level more', () => {
      const nest = (depth: number): string => '<a>'.repeat(depth) + '</a>'.repeat(depth);
      const ok = parse(nest(small.maxDepth), small);
      expectNoError(ok);
      expect(ok.elements).to.have.length(1);
      expectError(parse(nest(small.maxDepth + 1), small), 'policy-violation');
    });

    it('refuses 10,000 attributes with policy-violation as soon as the limit is passed', () => {
      const h = harness(DEFAULT_LIMITS);
      write(h, HEADER + '<message');
      let sent = 0;
      while (sent < 10_000 && h.errors.length === 0) {
        write(h, ` a${sent}='v'`);
        sent++;
      }
      expectError(h, 'policy-violation');
      expect(sent).to.equal(DEFAULT_LIMITS.maxAttributes + 1);
    });

    it('accepts maxAttributes attributes and refuses one more', () => {
      const attrs = (n: number): string => Array.from({ length: n }, (_, i) => ` a${i}='v'`).join('');
      const ok = parse(`<message${attrs(small.maxAttributes)}/>`, small);
      expectNoError(ok);
      expect(Object.keys(ok.elements[0].attrs)).to.have.length(small.maxAttributes);
      expectError(parse(`<message${attrs(small.maxAttributes + 1)}/>`, small), 'policy-violation');
    });

    it('refuses an attribute value over maxAttributeValueBytes with policy-violation', () => {
      expectNoError(parse(`<message to='${'x'.repeat(40)}'/>`, small));
      expectError(parse(`<message to='${'x'.repeat(41)}'/>`, small), 'policy-violation');
      // 20 characters of 2 bytes: fine; 21 of them (42 bytes, fewer than 41 characters): over.
      expectNoError(parse(`<message to='${'é'.repeat(20)}'/>`, small));
      expectError(parse(`<message to='${'é'.repeat(21)}'/>`, small), 'policy-violation');
    });

    it('refuses an element name over maxNameBytes with policy-violation', () => {
      expectNoError(parse('<message><abcdefghijklmnop/></message>', small));
      expectError(parse('<message><abcdefghijklmnopq/></message>', small), 'policy-violation');
    });

    it('refuses an attribute name over maxNameBytes with policy-violation', () => {
      expectNoError(parse("<message abcdefghijklmnop='1'/>", small));
      expectError(parse("<message abcdefghijklmnopq='1'/>", small), 'policy-violation');
    });

    it('refuses a text node over maxTextBytes with policy-violation', () => {
      expectNoError(parse(`<message><body>${'t'.repeat(50)}</body></message>`, small));
      expectError(parse(`<message><body>${'t'.repeat(51)}</body></message>`, small), 'policy-violation');
      expectError(parse(`<message><body><![CDATA[${'t'.repeat(51)}]]></body></message>`, small), 'policy-violation');
    });

    it('applies setLimits() to the next stanza', () => {
      const h = harness(small);
      write(h, HEADER);
      h.parser.setLimits({ ...small, maxAttributes: 1 });
      write(h, "<message a='1' b='2'/>");
      expectError(h, 'policy-violation');
    });

    it('ships sensible default and pre-authentication limits', () => {
      expect(DEFAULT_LIMITS.maxStanzaBytes).to.equal(262_144);
      expect(PREAUTH_LIMITS.maxStanzaBytes).to.be.below(DEFAULT_LIMITS.maxStanzaBytes);
      for (const limits of [DEFAULT_LIMITS, PREAUTH_LIMITS]) {
        expect(limits.maxDepth).to.be.within(8, 256);
        expect(limits.maxAttributes).to.be.within(8, 256);
        expect(limits.maxNameBytes).to.be.within(64, 1024);
        expect(limits.maxTextBytes).to.be.at.most(limits.maxStanzaBytes);
      }
    });
  });

  describe('error reporting', () => {
    it('reports an error once and ignores all further input', () => {
      const h = parse('<message></iq><!-- --><presence/>');
      write(h, '<presence/>');
      write(h, Buffer.from([0xff, 0xff]));
      expectError(h, 'not-well-formed');
      expect(h.events).to.deep.equal(['open', 'error:not-well-formed']);
    });

    it('never throws on arbitrary bytes', () => {
      let seed = 42;
      const rand = (): number => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        return seed;
      };
      for (let run = 0; run < 50; run++) {
        const h = harness(DEFAULT_LIMITS);
        write(h, HEADER);
        const bytes = Buffer.alloc(2000);
        for (let i = 0; i < bytes.length; i++) bytes[i] = rand() & 0xff;
        expect(() => write(h, bytes, 97)).to.not.throw();
        expect(h.errors.length).to.be.at.most(1);
      }
    });
  });
});

describe('StreamParser releasing saxes while idle', () => {
  const feed = (h: Harness, s: string) => h.parser.write(Buffer.from(s, 'utf8'));
  const quietSweep = () => {
    sweepIdleParsers(); // marks written-to parsers as seen
    sweepIdleParsers(); // releases those untouched since
  };

  it('releases between stanzas and parses the next one in the same namespace context', () => {
    const h = harness();
    feed(h, "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' xmlns:x='urn:example:x' to='example.com' version='1.0'>");
    feed(h, "<message to='a@example.com'><body>one</body></message>");
    quietSweep();
    expect(h.parser.holdsParser).to.equal(false);

    feed(h, "<message to='b@example.com'><x:thing a='1'/><body>two &amp; more</body></message>");
    expect(h.parser.holdsParser).to.equal(true);
    expect(h.elements).to.have.length(2);
    const second = h.elements[1]!;
    expect(second.attrs.xmlns).to.equal(h.elements[0]!.attrs.xmlns);
    expect(second.getChildText('body')).to.equal('two & more');
    expect(second.getChild('thing', 'urn:example:x')).to.not.equal(undefined);

    quietSweep();
    feed(h, '</stream:stream>');
    expect(h.closes).to.equal(1);
    expect(h.errors).to.deep.equal([]);
  });

  it('tells its owner once when it lets go of saxes for quietness, never mid-stanza or after the stream closed', () => {
    let quiet = 0;
    const handlers = { onStreamOpen: () => undefined, onElement: () => undefined, onStreamClose: () => undefined, onError: () => undefined, onQuiet: () => quiet++ };
    const p = new StreamParser(handlers);
    p.write(Buffer.from(HEADER));
    p.write(Buffer.from('<message><body>half'));
    quietSweep();
    expect(quiet, 'mid-stanza').to.equal(0);
    p.write(Buffer.from(' done</body></message>'));
    quietSweep();
    expect(quiet, 'between stanzas').to.equal(1);
    quietSweep();
    expect(quiet, 'already released').to.equal(1);
    p.write(Buffer.from('<presence/><iq type="get" id="1"><ping xmlns="urn:xmpp:ping"/></iq></stream:stream>'));
    quietSweep();
    expect(quiet, 'closed').to.equal(1);
  });

  it('keeps a parser that is in the middle of a stanza, and one written to since the last sweep', () => {
    const h = harness();
    feed(h, HEADER);
    feed(h, "<message><body>half");
    quietSweep();
    expect(h.parser.holdsParser, 'mid-stanza').to.equal(true);
    feed(h, ' done</body></message>');
    sweepIdleParsers();
    expect(h.parser.holdsParser, 'written since the last sweep').to.equal(true);
    expect(h.elements[0]!.getChildText('body')).to.equal('half done');
  });

  it('still enforces the stanza size limit and well-formedness after a release', () => {
    const limits: XmlLimits = { ...DEFAULT_LIMITS, maxStanzaBytes: 200 };
    const h = harness(limits);
    feed(h, HEADER);
    quietSweep();
    feed(h, `<message><body>${'x'.repeat(150)}</body></message>`);
    expect(h.elements).to.have.length(1);
    quietSweep();
    feed(h, `<message><body>${'x'.repeat(300)}</body></message>`);
    expect(h.errors.map((e) => e.condition)).to.deep.equal(['policy-violation']);

    const g = harness();
    feed(g, HEADER);
    quietSweep();
    feed(g, '<message></iq>');
    expect(g.errors.map((e) => e.condition)).to.deep.equal(['not-well-formed']);
  });
});
