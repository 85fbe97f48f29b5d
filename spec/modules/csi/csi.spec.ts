import { expect } from 'chai';
import { defineModule, NS, xml, z } from '../../../lib/module-api.js';
import type { Element } from '../../../lib/module-api.js';
import csi, { isUrgent } from '../../../modules/csi/index.js';
import { Harness, type TestClient } from '../../helpers/harness.js';

const ALICE = 'alice@example.com/phone';
const CHATSTATES = 'http://jabber.org/protocol/chatstates';

const presence = (from: string, status: string, type?: string) => xml('presence', { from, to: ALICE, type }, xml('status', {}, status));
const chat = (from: string, id: string, ...children: Element[]) => xml('message', { from, to: ALICE, type: 'chat', id }, ...children);
const body = (text: string) => xml('body', {}, text);

/** What the client received, compactly: `presence:from:status`, `message:id`, `iq:id`. */
function seen(c: TestClient): string[] {
  return c.received.map((s) => {
    if (s.name === 'presence') return `presence:${s.attrs.from}:${s.getChildText('status') ?? s.attrs.type ?? ''}`;
    return `${s.name}:${s.attrs.id}`;
  });
}

describe('csi (XEP-0352)', () => {
  let h: Harness;
  let alice: TestClient;

  async function start(options: Record<string, unknown> = {}, extra: Parameters<typeof Harness.start>[0]['modules'] = []): Promise<void> {
    h = await Harness.start({ modules: [csi, ...extra], options: { csi: options } });
    await h.createAccount('alice');
    await h.createAccount('bob');
    alice = await h.connect(ALICE);
  }

  const inactive = () => alice.send(xml('inactive', { xmlns: NS.csi }));
  const active = () => alice.send(xml('active', { xmlns: NS.csi }));
  const route = async (...stanzas: Element[]) => {
    for (const s of stanzas) await h.route(s);
    await h.settle();
  };

  afterEach(() => h.stop());

  it('offers <csi/> in the stream features after authentication only', async () => {
    await start();
    expect(h.streamFeatures('post-auth').map((f) => f.toString())).to.include(`<csi xmlns="${NS.csi}"/>`);
    expect(h.streamFeatures('pre-auth').filter((f) => f.attrs.xmlns === NS.csi)).to.deep.equal([]);
  });

  it('passes everything through while the client is active, as it is at first', async () => {
    await start();
    await route(presence('bob@example.com/a', 'one'), chat('bob@example.com/a', 'm1', xml('active', { xmlns: CHATSTATES })));
    expect(seen(alice)).to.deep.equal(['presence:bob@example.com/a:one', 'message:m1']);
  });

  it('holds presence while inactive and sends only the latest per full JID, in order, on <active/>', async () => {
    await start();
    await inactive();
    await route(
      presence('bob@example.com/a', 'one'),
      presence('carol@example.com/x', 'away'),
      presence('bob@example.com/a', 'two'),
      presence('bob@example.com/b', 'other resource'),
      presence('bob@example.com/a', 'three'),
    );
    expect(seen(alice)).to.deep.equal([]);
    await active();
    await h.settle();
    expect(seen(alice)).to.deep.equal([
      'presence:carol@example.com/x:away',
      'presence:bob@example.com/b:other resource',
      'presence:bob@example.com/a:three',
    ]);
  });

  it('lets unavailable presence replace the available one it follows', async () => {
    await start();
    await inactive();
    await route(presence('bob@example.com/a', 'here'), xml('presence', { from: 'bob@example.com/a', to: ALICE, type: 'unavailable' }));
    await active();
    await h.settle();
    expect(seen(alice)).to.deep.equal(['presence:bob@example.com/a:unavailable']);
  });

  it('sends a message with a body at once, after the stanzas it held, in their order', async () => {
    await start();
    await inactive();
    await route(presence('bob@example.com/a', 'one'), chat('bob@example.com/a', 'cs', xml('composing', { xmlns: CHATSTATES })));
    expect(seen(alice)).to.deep.equal([]);
    await route(chat('bob@example.com/a', 'm1', body('hello')));
    expect(seen(alice)).to.deep.equal(['presence:bob@example.com/a:one', 'message:cs', 'message:m1']);
    // Still inactive: the next presence waits again.
    await route(presence('bob@example.com/a', 'two'));
    expect(seen(alice)).to.have.length(3);
  });

  it('passes IQs and subscription requests at once', async () => {
    await start();
    await inactive();
    await route(
      xml('iq', { type: 'get', id: 'q1', from: 'bob@example.com/a', to: ALICE }, xml('query', { xmlns: NS.version })),
      xml('presence', { from: 'carol@example.com', to: ALICE, type: 'subscribe' }),
    );
    expect(seen(alice)).to.deep.equal(['iq:q1', 'presence:carol@example.com:subscribe']);
  });

  it('holds chat states without a body, keeping only the latest per sender', async () => {
    await start();
    await inactive();
    await route(
      chat('bob@example.com/a', 'c1', xml('composing', { xmlns: CHATSTATES })),
      chat('carol@example.com/x', 'c2', xml('composing', { xmlns: CHATSTATES })),
      chat('bob@example.com/a', 'c3', xml('paused', { xmlns: CHATSTATES })),
    );
    expect(seen(alice)).to.deep.equal([]);
    await active();
    await h.settle();
    expect(seen(alice)).to.deep.equal(['message:c2', 'message:c3']);
  });

  it('holds receipts and headlines, each of them', async () => {
    await start();
    await inactive();
    await route(
      chat('bob@example.com/a', 'rc1', xml('received', { xmlns: NS.receipts, id: 'x' })),
      chat('bob@example.com/a', 'rc2', xml('received', { xmlns: NS.receipts, id: 'y' })),
      xml('message', { from: 'bob@example.com', to: ALICE, type: 'headline', id: 'hl' }, body('news')),
    );
    expect(seen(alice)).to.deep.equal([]);
    await active();
    await h.settle();
    expect(seen(alice)).to.deep.equal(['message:rc1', 'message:rc2', 'message:hl']);
  });

  it('sends everything once maxHeld stanzas wait, and does not hold those again', async () => {
    await start({ maxHeld: 3 });
    await inactive();
    await route(
      chat('bob@example.com/a', 'rc1', xml('received', { xmlns: NS.receipts, id: '1' })),
      chat('bob@example.com/a', 'rc2', xml('received', { xmlns: NS.receipts, id: '2' })),
    );
    expect(seen(alice)).to.deep.equal([]);
    await route(chat('bob@example.com/a', 'rc3', xml('received', { xmlns: NS.receipts, id: '3' })));
    expect(seen(alice)).to.deep.equal(['message:rc1', 'message:rc2', 'message:rc3']);
    await route(chat('bob@example.com/a', 'rc4', xml('received', { xmlns: NS.receipts, id: '4' })));
    expect(seen(alice)).to.have.length(3);
  });

  it('starts active again when the session is resumed on a new stream (XEP-0352 §5.2), sending what it held', async () => {
    await start();
    await inactive();
    await route(presence('bob@example.com/a', 'one'));
    await h.runtime().hooks.notify('session/resumed', { session: alice.session });
    await h.settle();
    expect(seen(alice)).to.deep.equal(['presence:bob@example.com/a:one']);
    await route(presence('bob@example.com/a', 'two'));
    expect(seen(alice)).to.have.length(2);
  });

  it('keeps each session to its own state', async () => {
    await start();
    const tablet = await h.connect('alice@example.com/tablet');
    await inactive();
    await h.route(xml('presence', { from: 'bob@example.com/a', to: 'alice@example.com/tablet' }, xml('status', {}, 'x')));
    await h.settle();
    expect(tablet.received).to.have.length(1);
  });

  it('lets the other outgoing filters see what it releases', async () => {
    const dropped = new Set<string>();
    // A filter that, like blocking, may decide differently by the time the stanza goes out.
    const gate = defineModule({
      name: 'gate',
      config: z.strictObject({}),
      setup(ctx) {
        ctx.on('stanza/outgoing', ({ stanza }) => (dropped.has(stanza.attrs.from as string) ? 'drop' : undefined));
      },
    });
    await start({}, [gate]);
    await inactive();
    await route(presence('bob@example.com/a', 'one'), presence('carol@example.com/x', 'two'));
    dropped.add('bob@example.com/a');
    await active();
    await h.settle();
    expect(seen(alice)).to.deep.equal(['presence:carol@example.com/x:two']);
  });
});

describe('csi: what is urgent', () => {
  const m = (attrs: Record<string, string>, ...children: Element[]) => xml('message', { from: 'bob@example.com/a', ...attrs }, ...children);
  const cases: Array<[string, Element, boolean]> = [
    ['an IQ', xml('iq', { type: 'get', id: '1' }, xml('ping', { xmlns: NS.ping })), true],
    ['available presence', xml('presence'), false],
    ['unavailable presence', xml('presence', { type: 'unavailable' }), false],
    ['a presence error', xml('presence', { type: 'error' }), false],
    ['a subscription request', xml('presence', { type: 'subscribe' }), true],
    ['a subscription approval', xml('presence', { type: 'subscribed' }), true],
    ['a chat message with a body', m({ type: 'chat' }, xml('body', {}, 'hi')), true],
    ['a groupchat message with a body', m({ type: 'groupchat' }, xml('body', {}, 'hi')), true],
    ['a room subject', m({ type: 'groupchat' }, xml('subject', {}, 'topic')), true],
    ['a chat state alone', m({ type: 'chat' }, xml('composing', { xmlns: CHATSTATES })), false],
    ['a delivery receipt', m({}, xml('received', { xmlns: NS.receipts, id: 'x' })), false],
    ['a chat marker', m({}, xml('displayed', { xmlns: NS.chatMarkers, id: 'x' })), false],
    ['a headline with a body', m({ type: 'headline' }, xml('body', {}, 'news')), false],
    ['a message error', m({ type: 'error' }, xml('error', { type: 'cancel' })), true],
    ['an OMEMO message without body', m({ type: 'chat' }, xml('encrypted', { xmlns: 'eu.siacs.conversations.axolotl' })), true],
    ['an EME-marked message', m({ type: 'chat' }, xml('encryption', { xmlns: 'urn:xmpp:eme:0', namespace: 'x' })), true],
    ['a carbon of a message sent elsewhere', m({}, xml('sent', { xmlns: NS.carbons })), true],
    [
      'a carbon of a received chat state',
      m({}, xml('received', { xmlns: NS.carbons }, xml('forwarded', { xmlns: NS.forward }, xml('message', { xmlns: NS.client }, xml('active', { xmlns: CHATSTATES }))))),
      false,
    ],
    [
      'a carbon of a received message with a body',
      m({}, xml('received', { xmlns: NS.carbons }, xml('forwarded', { xmlns: NS.forward }, xml('message', { xmlns: NS.client }, xml('body', {}, 'x'))))),
      true,
    ],
    ['a direct MUC invitation', m({}, xml('x', { xmlns: 'jabber:x:conference', jid: 'room@muc.example.com' })), true],
    ['a call proposal', m({}, xml('propose', { xmlns: 'urn:xmpp:jingle-message:0', id: 'c' })), true],
  ];
  for (const [what, stanza, urgent] of cases) {
    it(`${urgent ? 'sends' : 'holds'} ${what}${urgent ? ' at once' : ''}`, () => {
      expect(isUrgent(stanza)).to.equal(urgent);
    });
  }
});
