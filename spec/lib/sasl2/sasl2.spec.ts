import { expect } from 'chai';
import { parseXml } from '../../../lib/xml/parse.js';
import { authenticationFeature, bind2Feature, bind2Resource, continueElement, failure, parseAuthenticate, success, taskData, BIND2_NS } from '../../../lib/sasl2/sasl2.js';
import { xml } from '../../../lib/xml/element.js';

describe('lib/sasl2: SASL2 (XEP-0388) and Bind2 (XEP-0386) wire forms', () => {
  it('parses an <authenticate/> with initial response, user agent, Bind2 and inline requests', () => {
    const el = parseXml(
      `<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-256'><initial-response>biwsbj11c2Vy</initial-response>` +
        `<user-agent id='d4565fa7-4d72-4749-b3d3-740edbf87770'><software>Conversations</software><device>Pixel</device></user-agent>` +
        `<bind xmlns='urn:xmpp:bind:0'><tag>Conversations.Abcd</tag></bind>` +
        `<resume xmlns='urn:xmpp:sm:3' previd='x' h='3'/><request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/></authenticate>`,
    );
    const a = parseAuthenticate(el);
    if (typeof a === 'string') throw new Error(a);
    expect(a.mechanism).to.equal('SCRAM-SHA-256');
    expect(a.initialResponse).to.equal('biwsbj11c2Vy');
    expect(a.userAgent).to.deep.equal({ id: 'd4565fa7-4d72-4749-b3d3-740edbf87770', software: 'Conversations', device: 'Pixel' });
    expect(a.bind?.getChildText('tag')).to.equal('Conversations.Abcd');
    expect(a.inline.map((e) => e.name)).to.deep.equal(['resume', 'request-token']);
  });

  it('refuses an <authenticate/> without a mechanism', () => {
    expect(parseAuthenticate(parseXml(`<authenticate xmlns='urn:xmpp:sasl:2'/>`))).to.be.a('string');
  });

  it('ignores a user-agent id with spaces or control characters', () => {
    const a = parseAuthenticate(parseXml(`<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><user-agent id='a b'/></authenticate>`));
    expect(typeof a !== 'string' && a.userAgent.id).to.equal(undefined);
  });

  it('builds the feature with mechanisms and inline Bind2 features', () => {
    const f = authenticationFeature(['SCRAM-SHA-256', 'PLAIN'], [bind2Feature(['urn:xmpp:carbons:2'])]);
    expect(f.toString()).to.equal(
      `<authentication xmlns="urn:xmpp:sasl:2"><mechanism>SCRAM-SHA-256</mechanism><mechanism>PLAIN</mechanism>` +
        `<inline><bind xmlns="urn:xmpp:bind:0"><inline><feature var="urn:xmpp:carbons:2"/></inline></bind></inline></authentication>`,
    );
  });

  it('builds <success/> with additional data, the authorization identifier and inline results', () => {
    const s = success('a@b/c', Buffer.from('v=x'), [xml('bound', { xmlns: BIND2_NS })]);
    expect(s.toString()).to.equal(
      `<success xmlns="urn:xmpp:sasl:2"><additional-data>dj14</additional-data><authorization-identifier>a@b/c</authorization-identifier><bound xmlns="urn:xmpp:bind:0"/></success>`,
    );
  });

  it('builds <failure/> with the RFC 6120 condition in the SASL namespace', () => {
    expect(failure('not-authorized', 'no').toString()).to.equal(
      `<failure xmlns="urn:xmpp:sasl:2"><not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-sasl"/><text>no</text></failure>`,
    );
  });

  it('uses a free tag as the resource, and adds a generated suffix to one in use or none', () => {
    expect(bind2Resource('Gajim', () => false)).to.equal('Gajim');
    expect(bind2Resource('Gajim', () => true)).to.match(/^Gajim\/[A-Za-z0-9_-]{8}$/);
    expect(bind2Resource(undefined, () => false)).to.match(/^[A-Za-z0-9_-]{8}$/);
    expect(bind2Resource('Gajim', () => true)).to.not.equal(bind2Resource('Gajim', () => true));
  });

  it('builds <continue/> with the mechanism data, the tasks and a text, and <task-data/> (XEP-0388 §2.7)', () => {
    const c = continueElement(Buffer.from('v=abc'), ['TOTP', 'HOTP'], 'This account requires a second factor');
    expect(c.attrs.xmlns).to.equal('urn:xmpp:sasl:2');
    expect(c.getChildText('additional-data')).to.equal(Buffer.from('v=abc').toString('base64'));
    expect(c.getChild('tasks')!.getChildren('task').map((t) => t.getText())).to.deep.equal(['TOTP', 'HOTP']);
    expect(c.getChildText('text')).to.equal('This account requires a second factor');
    expect(continueElement(undefined, ['TOTP']).getChild('additional-data')).to.equal(undefined);
    const d = taskData(xml('totp', { xmlns: 'urn:parley:sasl2:totp:0' }));
    expect(d.attrs.xmlns).to.equal('urn:xmpp:sasl:2');
    expect(d.getChild('totp', 'urn:parley:sasl2:totp:0')).to.not.equal(undefined);
  });
});
