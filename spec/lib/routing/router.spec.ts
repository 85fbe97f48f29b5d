// The router routes a message synchronously when no hook handler waits (no promise per stanza),
// and waits, in order, for handlers that do, with the same verdicts.
import { expect } from 'chai';
import { defineModule, StanzaError, xml, z } from '../../../lib/module-api.js';
import { Harness, type TestClient } from '../../helpers/harness.js';

const chat = (to: string, body: string) => {
  const el = xml('message', { to, type: 'chat', id: body }, xml('body', {}, body));
  return el;
};

/** A module whose message/inbound handler waits before answering what `verdict` says. */
function slowFilter(verdict: (body: string | null) => undefined | 'drop' | StanzaError) {
  return defineModule({
    name: 'slow-filter',
    config: z.strictObject({}),
    setup(ctx) {
      ctx.on('message/inbound', async ({ stanza }) => {
        await new Promise((r) => setTimeout(r, 5));
        return stanza.type === 'error' ? undefined : verdict(stanza.el.getChildText('body'));
      });
    },
  });
}

describe('Router', () => {
  let h: Harness;
  let alice: TestClient;
  let bob: TestClient;
  afterEach(() => h.stop());

  async function start(modules: Parameters<typeof Harness.start>[0]['modules']): Promise<void> {
    h = await Harness.start({ modules });
    await h.createAccount('alice');
    await h.createAccount('bob');
    alice = await h.connect('alice@example.com/a');
    bob = await h.connect('bob@example.com/b');
    // Available, as after initial presence: a bare-JID chat message goes to them (RFC 6121 §8.5.2.1).
    bob.session.setPresence(xml('presence'));
  }

  const fromAlice = (body: string, to = 'bob@example.com') => {
    const el = chat(to, body);
    el.attrs.from = 'alice@example.com/a';
    return el;
  };

  it('delivers a chat message to a bound session before fromClient returns when no hook waits', async () => {
    await start([]);
    const pending = h.router.fromClient(alice.session, fromAlice('now'));
    expect(pending).to.equal(undefined);
    expect(bob.received.map((s) => s.getChildText('body'))).to.deep.equal(['now']);
    expect(bob.received[0].attrs.from).to.equal('alice@example.com/a');
  });

  it('routes a module stanza the same way: resolved at once, delivered already', async () => {
    await start([]);
    const el = xml('message', { from: 'example.com', to: 'bob@example.com/b', type: 'headline' }, xml('body', {}, 'notice'));
    const routed = h.router.route(el);
    expect(bob.received.map((s) => s.getChildText('body'))).to.deep.equal(['notice']);
    await routed;
  });

  it('bounces a message to an account with no session available, synchronously too', async () => {
    await start([]);
    await h.createAccount('carol');
    await alice.send(chat('carol@example.com', 'anyone?'));
    const err = await alice.next((s) => s.attrs.type === 'error');
    expect(err.getChild('error')?.getChild('service-unavailable')).to.not.equal(undefined);
  });

  it('waits for a message/inbound handler that waits, then delivers in order', async () => {
    await start([slowFilter(() => undefined)]);
    const pending = h.router.fromClient(alice.session, fromAlice('one'));
    expect(pending).to.be.instanceOf(Promise);
    expect(bob.received).to.have.length(0);
    await pending;
    await alice.send(chat('bob@example.com', 'two'));
    expect(bob.received.map((s) => s.getChildText('body'))).to.deep.equal(['one', 'two']);
  });

  it("applies a waiting handler's drop and bounce", async () => {
    await start([slowFilter((body) => (body === 'drop me' ? 'drop' : body === 'refuse me' ? StanzaError.forbidden() : undefined))]);
    await alice.send(chat('bob@example.com', 'drop me'));
    await alice.send(chat('bob@example.com', 'refuse me'));
    await alice.send(chat('bob@example.com', 'fine'));
    expect(bob.received.map((s) => s.getChildText('body'))).to.deep.equal(['fine']);
    const err = await alice.next((s) => s.attrs.type === 'error');
    expect(err.attrs.id).to.equal('refuse me');
    expect(err.getChild('error')?.getChild('forbidden')).to.not.equal(undefined);
  });

  it('rejects route() for a stanza without a valid from, never throws', async () => {
    await start([]);
    const el = xml('message', { to: 'bob@example.com' }, xml('body', {}, 'x'));
    let caught: unknown;
    await h.router.route(el).catch((e: unknown) => { caught = e; });
    expect(String(caught)).to.match(/without a valid from/);
  });

  describe('routeEach (fan-out)', () => {
    const headline = (to: string, body: string) => xml('message', { from: 'example.com', to, type: 'headline' }, xml('body', {}, body));

    it('routes every stanza, tells onError of each that failed, and resolves at once when none waited', async () => {
      await start([]);
      const errors: unknown[] = [];
      const done = h.router.routeEach([headline('bob@example.com/b', '1'), xml('message', { to: 'bob@example.com/b' }), headline('alice@example.com/a', '2')], (e) => errors.push(e));
      expect(bob.received.map((s) => s.getChildText('body'))).to.deep.equal(['1']);
      expect(alice.received.map((s) => s.getChildText('body'))).to.deep.equal(['2']);
      expect(errors).to.have.length(1);
      await done;
    });

    it('resolves only once the stanzas that wait are through', async () => {
      await start([slowFilter(() => undefined)]);
      const errors: unknown[] = [];
      bob.session.setPresence(xml('presence'));
      await h.router.routeEach([chat('bob@example.com', 'x'), chat('bob@example.com', 'y')].map((el) => { el.attrs.from = 'example.com'; return el; }), (e) => errors.push(e));
      expect(bob.received.map((s) => s.getChildText('body')).sort()).to.deep.equal(['x', 'y']);
      expect(errors).to.deep.equal([]);
    });
  });
});
