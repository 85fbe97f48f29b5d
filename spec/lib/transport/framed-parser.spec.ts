import { expect } from 'chai';
import type { Element } from '../../../lib/xml/element.js';
import { DEFAULT_LIMITS, PREAUTH_LIMITS, XmlStreamError, type StreamParserHandlers } from '../../../lib/xml/stream-parser.js';
import { FramedElementParser, qualifyOutgoing } from '../../../lib/transport/framed-parser.js';
import { websocketFraming } from '../../../lib/transport/websocket.js';

const FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
const STREAMS = 'http://etherx.jabber.org/streams';

function recorder() {
  const events: Array<{ kind: string; attrs?: Record<string, string>; el?: Element; err?: XmlStreamError }> = [];
  const handlers: StreamParserHandlers = {
    onStreamOpen: (attrs) => events.push({ kind: 'open', attrs }),
    onElement: (el) => events.push({ kind: 'element', el }),
    onStreamClose: () => events.push({ kind: 'close' }),
    onError: (err) => events.push({ kind: 'error', err }),
  };
  return { events, handlers };
}

describe('FramedElementParser (RFC 7395 framing for the stream machine)', () => {
  it('turns <open/> into a stream header in jabber:client, keeping its attributes', () => {
    const { events, handlers } = recorder();
    new FramedElementParser(handlers, PREAUTH_LIMITS).write(Buffer.from(`<open xmlns='${FRAMING}' to='localhost' version='1.0' xml:lang='de'/>`));
    expect(events).to.have.length(1);
    expect(events[0].kind).to.equal('open');
    expect(events[0].attrs).to.include({ xmlns: 'jabber:client', to: 'localhost', version: '1.0', 'xml:lang': 'de' });
  });

  it('hands a jabber:client stanza over without its xmlns, like the TCP parser', () => {
    const { events, handlers } = recorder();
    new FramedElementParser(handlers, DEFAULT_LIMITS).write(Buffer.from(`<message xmlns='jabber:client' to='a@b'><body>hi</body></message>`));
    expect(events[0].kind).to.equal('element');
    expect(events[0].el!.name).to.equal('message');
    expect(events[0].el!.attrs.xmlns).to.equal(undefined);
    expect(events[0].el!.getChildText('body')).to.equal('hi');
  });

  it('keeps the namespace of a nonza', () => {
    const { events, handlers } = recorder();
    new FramedElementParser(handlers, PREAUTH_LIMITS).write(Buffer.from(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>`));
    expect(events[0].el!.attrs.xmlns).to.equal('urn:ietf:params:xml:ns:xmpp-sasl');
  });

  it('turns <close/> into the end of the stream and ignores what follows', () => {
    const { events, handlers } = recorder();
    const p = new FramedElementParser(handlers, DEFAULT_LIMITS);
    p.write(Buffer.from(`<close xmlns='${FRAMING}'/>`));
    p.write(Buffer.from(`<message xmlns='jabber:client'/>`));
    expect(events.map((e) => e.kind)).to.deep.equal(['close']);
  });

  it('reports an oversized message as policy-violation, once, until reset', () => {
    const { events, handlers } = recorder();
    const p = new FramedElementParser(handlers, PREAUTH_LIMITS);
    p.write(Buffer.from(`<message xmlns='jabber:client'><body>${'x'.repeat(20_000)}</body></message>`));
    p.write(Buffer.from(`<message xmlns='jabber:client'/>`));
    expect(events.map((e) => e.kind)).to.deep.equal(['error']);
    expect(events[0].err!.condition).to.equal('policy-violation');
    p.reset();
    p.write(Buffer.from(`<message xmlns='jabber:client'/>`));
    expect(events.map((e) => e.kind)).to.deep.equal(['error', 'element']);
  });

  it('applies new limits after setLimits (larger after authentication)', () => {
    const { events, handlers } = recorder();
    const p = new FramedElementParser(handlers, PREAUTH_LIMITS);
    p.setLimits(DEFAULT_LIMITS);
    p.write(Buffer.from(`<message xmlns='jabber:client'><body>${'x'.repeat(20_000)}</body></message>`));
    expect(events[0].kind).to.equal('element');
  });

  it('refuses bytes that are not UTF-8 with unsupported-encoding', () => {
    const { events, handlers } = recorder();
    new FramedElementParser(handlers, DEFAULT_LIMITS).write(Buffer.from([0x3c, 0x61, 0xff, 0x2f, 0x3e]));
    expect(events[0].err!.condition).to.equal('unsupported-encoding');
  });

  it('refuses two elements in one message and a DOCTYPE', () => {
    for (const text of [`<a xmlns='x'/><b xmlns='x'/>`, `<!DOCTYPE a><a xmlns='x'/>`]) {
      const { events, handlers } = recorder();
      new FramedElementParser(handlers, DEFAULT_LIMITS).write(Buffer.from(text));
      expect(events[0].kind, text).to.equal('error');
    }
  });
});

describe('qualifyOutgoing (namespaces for framed transports)', () => {
  it("adds xmlns='jabber:client' to a top-level element without one", () => {
    expect(qualifyOutgoing(`<message to="a@b" type="chat"><body>x</body></message>`, true)).to.equal(
      `<message xmlns='jabber:client' to="a@b" type="chat"><body>x</body></message>`,
    );
    expect(qualifyOutgoing(`<iq type="result" id="1"/>`, true)).to.equal(`<iq xmlns='jabber:client' type="result" id="1"/>`);
    expect(qualifyOutgoing(`<presence/>`, false)).to.equal(`<presence xmlns='jabber:client'/>`);
  });

  it('leaves an element that declares its namespace alone', () => {
    const success = `<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl">dj1h</success>`;
    expect(qualifyOutgoing(success, true)).to.equal(success);
  });

  it('is not fooled by xmlns= inside an attribute value', () => {
    expect(qualifyOutgoing(`<message id=" xmlns='evil'" to="a@b"/>`, true)).to.equal(`<message xmlns='jabber:client' id=" xmlns='evil'" to="a@b"/>`);
    expect(qualifyOutgoing(`<message id=' xmlns="evil"'/>`, true)).to.equal(`<message xmlns='jabber:client' id=' xmlns="evil"'/>`);
  });

  it('rewrites stream:features and stream:error for WebSocket, not for BOSH', () => {
    const features = `<stream:features><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></stream:features>`;
    expect(qualifyOutgoing(features, true)).to.equal(`<features xmlns='${STREAMS}'><bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"/></features>`);
    expect(qualifyOutgoing(features, false)).to.equal(features);
    expect(qualifyOutgoing(`<stream:features/>`, true)).to.equal(`<features xmlns='${STREAMS}'/>`);
    const error = `<stream:error><host-unknown xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></stream:error>`;
    expect(qualifyOutgoing(error, true)).to.equal(`<error xmlns='${STREAMS}'><host-unknown xmlns="urn:ietf:params:xml:ns:xmpp-streams"/></error>`);
  });

  it('leaves framing elements alone', () => {
    const open = websocketFraming.open({ from: 'localhost', id: 'abc', version: '1.0', 'xml:lang': 'en' });
    expect(open).to.equal(`<open xmlns='${FRAMING}' from='localhost' id='abc' version='1.0' xml:lang='en'/>`);
    expect(qualifyOutgoing(open, true)).to.equal(open);
    expect(qualifyOutgoing(websocketFraming.close(), true)).to.equal(`<close xmlns='${FRAMING}'/>`);
  });
});
