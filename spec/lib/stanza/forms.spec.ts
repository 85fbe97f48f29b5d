import { expect } from 'chai';
import { buildForm, readForm } from '../../../lib/stanza/forms.js';
import { StanzaError } from '../../../lib/stanza/error.js';
import { xml } from '../../../lib/xml/element.js';

describe('data forms', () => {
  it('builds a form with FORM_TYPE, fields, options and values', () => {
    const form = buildForm('form', [{ var: 'accountjid', type: 'jid-single', label: 'JID', required: true }, { var: 'n', type: 'list-single', options: [{ value: '1' }], values: ['1'] }], { title: 'T', formType: 'urn:x' });
    expect(form.toString()).to.equal(
      '<x xmlns="jabber:x:data" type="form"><title>T</title><field var="FORM_TYPE" type="hidden"><value>urn:x</value></field>' +
        '<field var="accountjid" type="jid-single" label="JID"><required/></field><field var="n" type="list-single"><option><value>1</value></option><value>1</value></field></x>',
    );
  });

  it('reads submitted values, FORM_TYPE and booleans', () => {
    const parent = xml('command', {}, buildForm('submit', [{ var: 'a', values: ['x', 'y'] }, { var: 'b', values: ['true'] }], { formType: 'urn:x' }));
    const form = readForm(parent)!;
    expect(form.formType).to.equal('urn:x');
    expect(form.fields.get('a')).to.deep.equal(['x', 'y']);
    expect(form.bool('b')).to.equal(true);
  });

  it('answers a field given twice with bad-request', () => {
    const parent = xml('q', {}, xml('x', { xmlns: 'jabber:x:data', type: 'submit' }, xml('field', { var: 'a' }), xml('field', { var: 'a' })));
    expect(() => readForm(parent)).to.throw(StanzaError, /bad-request/);
  });

  it('answers a non-boolean in a boolean field with bad-request', () => {
    const form = readForm(xml('q', {}, buildForm('submit', [{ var: 'b', values: ['maybe'] }])))!;
    expect(() => form.bool('b')).to.throw(StanzaError);
  });
});
