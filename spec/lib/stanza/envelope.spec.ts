import { expect } from 'chai';
import { toEnvelope } from '../../../lib/stanza/envelope.js';
import { StanzaError } from '../../../lib/stanza/error.js';
import { Jid } from '../../../lib/jid/jid.js';
import { xml } from '../../../lib/xml/element.js';

const from = Jid.parse('alice@example.com/r');

function condition(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof StanzaError ? err.condition : 'other';
  }
  return undefined;
}

describe('toEnvelope', () => {
  it('bounces a get with two children as bad-request', () => {
    expect(condition(() => toEnvelope(xml('iq', { type: 'get', id: '1' }, xml('a'), xml('b')), from))).to.equal('bad-request');
  });

  it('bounces an iq without an id as bad-request', () => {
    expect(condition(() => toEnvelope(xml('iq', { type: 'get' }, xml('a')), from))).to.equal('bad-request');
  });

  it('bounces an iq with an unknown type as bad-request', () => {
    expect(condition(() => toEnvelope(xml('iq', { type: 'fetch', id: '1' }, xml('a')), from))).to.equal('bad-request');
  });

  it('answers an invalid to address with jid-malformed', () => {
    expect(condition(() => toEnvelope(xml('message', { to: 'a@' }), from))).to.equal('jid-malformed');
  });

  it('treats an unknown message type as normal (RFC 6121 §5.2.2)', () => {
    const s = toEnvelope(xml('message', { type: 'weird' }), from);
    expect(s.kind === 'message' && s.type).to.equal('normal');
  });

  it('gives presence without a type the type available', () => {
    const s = toEnvelope(xml('presence'), from);
    expect(s.kind === 'presence' && s.type).to.equal('available');
  });

  it('refuses presence with an explicit type of available', () => {
    expect(condition(() => toEnvelope(xml('presence', { type: 'available' }), from))).to.equal('bad-request');
  });

  it('exposes the one child of a get as its payload', () => {
    const s = toEnvelope(xml('iq', { type: 'get', id: '1' }, xml('ping', { xmlns: 'urn:xmpp:ping' })), from);
    expect(s.kind === 'iq' && s.payload?.name).to.equal('ping');
  });
});

describe('StanzaError', () => {
  it('serialises the condition, the default type and the text', () => {
    const el = StanzaError.itemNotFound('no such node').toElement();
    expect(el.attrs.type).to.equal('cancel');
    expect(el.getChild('item-not-found', 'urn:ietf:params:xml:ns:xmpp-stanzas')).to.not.equal(undefined);
    expect(el.getChildText('text', 'urn:ietf:params:xml:ns:xmpp-stanzas')).to.equal('no such node');
  });

  it('reads back the condition of an error stanza', () => {
    const stanza = xml('iq', { type: 'error' }, StanzaError.forbidden().toElement());
    expect(StanzaError.fromElement(stanza)?.condition).to.equal('forbidden');
  });
});
