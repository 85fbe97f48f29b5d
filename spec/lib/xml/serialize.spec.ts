import { expect } from 'chai';
import { cloneElement, Element, xml } from '../../../lib/xml/element.js';
import { parseXml } from '../../../lib/xml/parse.js';
import { freezeShared, isFrozenShared, serialize } from '../../../lib/xml/serialize.js';

function samples(): Element[] {
  const withOddChildren = xml('message', { to: 'a@b' }, 'x');
  (withOddChildren.children as unknown[]).push(null, 42, undefined);
  const numeric = new Element('iq', { type: 'get' });
  (numeric.attrs as Record<string, unknown>).seq = 7;
  (numeric.attrs as Record<string, unknown>).gone = null;
  (numeric.attrs as Record<string, unknown>).unset = undefined;
  return [
    xml('presence'),
    xml('message', { type: 'chat', to: 'bob@example.com', from: 'alice@example.com/r', id: 'a"b\'c<d>&e', 'xml:lang': 'en' }, xml('body', {}, 'hi <there> & "you" \'all\'')),
    xml('message', {}, xml('body', {}, 'é ü 漢字 😀'), xml('x', { xmlns: 'jabber:x:oob' }, xml('url', {}, 'https://x/?a=1&b=2')), xml('empty')),
    parseXml("<message xmlns='jabber:client' to='x@y'><body>a&amp;b&lt;c&gt;d</body><thread parent='p&quot;'>t</thread></message>"),
    withOddChildren,
    numeric,
  ];
}

describe('serialize', () => {
  it('gives the same text as ltx toString', () => {
    for (const el of samples()) expect(serialize(el)).to.equal(el.toString());
  });

  it('gives the same text for frozen subtrees, and again when asked again', () => {
    for (const el of samples()) {
      const expected = el.toString();
      for (const c of el.children) if (c instanceof Element) freezeShared(c);
      expect(serialize(el)).to.equal(expected);
      expect(serialize(el)).to.equal(expected);
    }
  });

  it('prints an element with its own write() as ltx would', () => {
    const odd = xml('odd');
    odd.write = (w: (s: string) => void) => { w('<custom/>'); };
    const parent = xml('p', {}, odd);
    expect(serialize(parent)).to.equal(parent.toString());
    expect(serialize(odd)).to.equal('<custom/>');
  });

  describe('a frozen shared subtree', () => {
    const shared = () => {
      const body = xml('body', { 'xml:lang': 'en' }, 'hello');
      const x = xml('x', { xmlns: 'urn:example' }, xml('item', { n: '1' }));
      freezeShared(body);
      freezeShared(x);
      return { body, x };
    };

    it('refuses every change that would alter its text, at every depth', () => {
      const { body, x } = shared();
      const item = x.getChild('item')!;
      expect(isFrozenShared(body) && isFrozenShared(x) && isFrozenShared(item)).to.equal(true);
      const changes: Array<() => void> = [
        () => { body.attrs.id = 'new'; },
        () => { delete body.attrs['xml:lang']; },
        () => { body.children.push('more'); },
        () => { body.children[0] = 'bye'; },
        () => { body.children.length = 0; },
        () => { body.name = 'subject'; },
        () => { body.attrs = {}; },
        () => { body.children = []; },
        () => { item.attrs.n = '2'; },
        () => { x.cnode(xml('extra')); },
        () => { item.t('text'); },
        () => { x.remove('item'); },
        () => { (body as unknown as { write: unknown }).write = () => undefined; },
      ];
      for (const change of changes) expect(change).to.throw(TypeError);
      expect(serialize(body)).to.equal('<body xml:lang="en">hello</body>');
      expect(serialize(x)).to.equal('<x xmlns="urn:example"><item n="1"/></x>');
    });

    it('can still be put into other elements (ltx sets its parent), and copies of it can be changed', () => {
      const { body } = shared();
      const a = xml('message', { to: 'a@x' }, body);
      const b = xml('message', { to: 'b@x' }, body);
      expect(serialize(a)).to.equal('<message to="a@x"><body xml:lang="en">hello</body></message>');
      expect(serialize(b)).to.equal('<message to="b@x"><body xml:lang="en">hello</body></message>');
      const copy = cloneElement(body);
      copy.attrs.id = 'c';
      copy.children.push(' again');
      expect(serialize(copy)).to.equal('<body xml:lang="en" id="c">hello again</body>');
      expect(isFrozenShared(copy)).to.equal(false);
    });

    it('leaves the envelopes that share it free to change, and prints what they became', () => {
      const { body, x } = shared();
      const children = [body, x];
      const one = xml('message', { type: 'groupchat' });
      one.children = children.slice();
      const two = xml('message', { type: 'groupchat' });
      two.children = children.slice();
      expect(serialize(one)).to.equal(serialize(two));
      one.attrs.to = 'one@x/r';
      one.cnode(xml('stanza-id', { id: '1' }));
      two.remove('x', 'urn:example');
      expect(serialize(one)).to.equal('<message type="groupchat" to="one@x/r"><body xml:lang="en">hello</body><x xmlns="urn:example"><item n="1"/></x><stanza-id id="1"/></message>');
      expect(serialize(two)).to.equal('<message type="groupchat"><body xml:lang="en">hello</body></message>');
    });
  });
});
