import { expect } from 'chai';
import { xml } from '../../lib/xml/element.js';
import { canonicalXml, errorCondition, expectError, expectXml } from './xml-assert.js';

describe('expectXml', () => {
  it('accepts the same element with attributes in another order and whitespace between elements', () => {
    const actual = xml('iq', { type: 'result', id: 'a1', to: 'x@y' }, xml('query', { xmlns: 'urn:q' }, xml('item', { jid: 'y' })));
    expectXml(actual, `
      <iq to='x@y' id='a1' type='result'>
        <query xmlns='urn:q'>
          <item jid='y'/>
        </query>
      </iq>`);
  });

  it('accepts any value for an attribute written as *', () => {
    expectXml(xml('iq', { id: 'random-1234', type: 'get' }), `<iq type='get' id='*'/>`);
  });

  it('rejects a missing attribute even when the pattern value is *', () => {
    expect(() => expectXml(xml('iq', { type: 'get' }), `<iq type='get' id='*'/>`)).to.throw();
  });

  it('rejects a different attribute value', () => {
    expect(() => expectXml(xml('iq', { type: 'get' }), `<iq type='set'/>`)).to.throw();
  });

  it('rejects an extra attribute', () => {
    expect(() => expectXml(xml('iq', { type: 'get', id: '1' }), `<iq type='get'/>`)).to.throw();
  });

  it('rejects a missing, extra or reordered child', () => {
    const actual = xml('x', {}, xml('a'), xml('b'));
    expect(() => expectXml(actual, `<x><a/></x>`)).to.throw();
    expect(() => expectXml(actual, `<x><a/><b/><c/></x>`)).to.throw();
    expect(() => expectXml(actual, `<x><b/><a/></x>`)).to.throw();
  });

  it('accepts any non-empty text for an element whose text is *, and only then', () => {
    expectXml(xml('utc', {}, '2024-01-01T00:00:00Z'), `<utc>*</utc>`);
    expect(() => expectXml(xml('utc'), `<utc>*</utc>`)).to.throw();
    expect(() => expectXml(xml('utc', {}, 'a'), `<utc>b</utc>`)).to.throw();
  });

  it('compares namespaces as attributes', () => {
    expect(() => expectXml(xml('query', { xmlns: 'urn:a' }), `<query xmlns='urn:b'/>`)).to.throw();
  });

  it('fails on undefined', () => {
    expect(() => expectXml(undefined, `<iq/>`)).to.throw();
  });

  it('writes canonical XML with sorted attributes', () => {
    expect(canonicalXml(`<a z='1' b='2'><c/></a>`)).to.equal('<a b="2" z="1">\n  <c/>\n</a>');
  });
});

describe('expectError', () => {
  const error = xml('iq', { type: 'error', id: '1' }, xml('error', { type: 'cancel' }, xml('item-not-found', { xmlns: 'urn:ietf:params:xml:ns:xmpp-stanzas' })));

  it('reads the condition of an error stanza', () => {
    expect(errorCondition(error)).to.equal('item-not-found');
    expect(errorCondition(xml('iq', { type: 'result' }))).to.equal(undefined);
  });

  it('passes on the right condition and type and fails otherwise', () => {
    expectError(error, 'item-not-found', 'cancel');
    expect(() => expectError(error, 'bad-request')).to.throw();
    expect(() => expectError(error, 'item-not-found', 'modify')).to.throw();
    expect(() => expectError(xml('iq', { type: 'result' }), 'item-not-found')).to.throw();
  });
});
