import { expect } from 'chai';
import { parseXml } from '../../../lib/xml/parse.js';
import { xml } from '../../../lib/xml/element.js';

describe('parseXml', () => {
  it('round-trips a stored stanza, namespaces and text included', () => {
    const el = xml('message', { to: 'a@b', type: 'chat' }, xml('body', {}, 'hi <there> & you'), xml('x', { xmlns: 'urn:x' }, xml('y')));
    const back = parseXml(el.toString());
    expect(back.toString()).to.equal(el.toString());
    expect(back.getChild('x', 'urn:x')?.getChild('y')).to.not.equal(undefined);
  });

  it('refuses a DOCTYPE even in stored text', () => {
    expect(() => parseXml('<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>')).to.throw();
  });
});
