// One test per row of RFC 6121 Appendix A (A.2 outbound, A.3 inbound). The expected tables are
// written out here from the RFC, independently of the module's own tables. The user is
// alice@example.com (online, interested, available); the contact is on another server, so every
// stanza the server routes for alice is recorded where federation would take it.
import { expect } from 'chai';
import { xml, type Element } from '../../../lib/module-api.js';
import type { RosterItem } from '../../../modules/roster/index.js';
import { ALICE, ROMEO, online, presences, presencesTo, pushes, seed, startWorld, stateNow, typed, type World } from './world.js';

type Row = [state: string, act: boolean, next: string | undefined];

// A.2.1 .. A.2.4: [existing state, route?, new state (undefined: no state change)]
const OUTBOUND: Record<string, Row[]> = {
  subscribe: [
    ['None', true, 'None + Pending Out'],
    ['None + Pending Out', true, undefined],
    ['None + Pending In', true, 'None + Pending Out+In'],
    ['None + Pending Out+In', true, undefined],
    ['To', true, undefined],
    ['To + Pending In', true, undefined],
    ['From', true, 'From + Pending Out'],
    ['From + Pending Out', true, undefined],
    ['Both', true, undefined],
  ],
  unsubscribe: [
    ['None', true, undefined],
    ['None + Pending Out', true, 'None'],
    ['None + Pending In', true, undefined],
    ['None + Pending Out+In', true, 'None + Pending In'],
    ['To', true, 'None'],
    ['To + Pending In', true, 'None + Pending In'],
    ['From', true, undefined],
    ['From + Pending Out', true, 'From'],
    ['Both', true, 'From'],
  ],
  subscribed: [
    ['None', false, undefined],
    ['None + Pending Out', false, undefined],
    ['None + Pending In', true, 'From'],
    ['None + Pending Out+In', true, 'From + Pending Out'],
    ['To', false, undefined],
    ['To + Pending In', true, 'Both'],
    ['From', false, undefined],
    ['From + Pending Out', false, undefined],
    ['Both', false, undefined],
  ],
  unsubscribed: [
    ['None', false, undefined],
    ['None + Pending Out', false, undefined],
    ['None + Pending In', true, 'None'],
    ['None + Pending Out+In', true, 'None + Pending Out'],
    ['To', false, undefined],
    ['To + Pending In', true, 'To'],
    ['From', true, 'None'],
    ['From + Pending Out', true, 'None + Pending Out'],
    ['Both', true, 'To'],
  ],
};

// A.3.1 .. A.3.4: [existing state, deliver?, new state]
const INBOUND: Record<string, Row[]> = {
  subscribe: [
    ['None', true, 'None + Pending In'],
    ['None + Pending Out', true, 'None + Pending Out+In'],
    ['None + Pending In', false, undefined],
    ['None + Pending Out+In', false, undefined],
    ['To', true, 'To + Pending In'],
    ['To + Pending In', false, undefined],
    ['From', false, undefined],
    ['From + Pending Out', false, undefined],
    ['Both', false, undefined],
  ],
  subscribed: [
    ['None', false, undefined],
    ['None + Pending Out', true, 'To'],
    ['None + Pending In', false, undefined],
    ['None + Pending Out+In', true, 'To + Pending In'],
    ['To', false, undefined],
    ['To + Pending In', false, undefined],
    ['From', false, undefined],
    ['From + Pending Out', true, 'Both'],
    ['Both', false, undefined],
  ],
  unsubscribe: [
    ['None', false, undefined],
    ['None + Pending Out', false, undefined],
    ['None + Pending In', true, 'None'],
    ['None + Pending Out+In', true, 'None + Pending Out'],
    ['To', false, undefined],
    ['To + Pending In', true, 'To'],
    ['From', true, 'None'],
    ['From + Pending Out', true, 'None + Pending Out'],
    ['Both', true, 'To'],
  ],
  unsubscribed: [
    ['None', false, undefined],
    ['None + Pending Out', true, 'None'],
    ['None + Pending In', false, undefined],
    ['None + Pending Out+In', true, 'None + Pending In'],
    ['To', true, 'None'],
    ['To + Pending In', true, 'None + Pending In'],
    ['From', false, undefined],
    ['From + Pending Out', true, 'From'],
    ['Both', true, 'From'],
  ],
};

const SECTION: Record<string, string> = {
  'out subscribe': 'A.2.1', 'out unsubscribe': 'A.2.2', 'out subscribed': 'A.2.3', 'out unsubscribed': 'A.2.4',
  'in subscribe': 'A.3.1', 'in subscribed': 'A.3.2', 'in unsubscribe': 'A.3.3', 'in unsubscribed': 'A.3.4',
};

const hasFromState = (s: string) => s.startsWith('From') || s === 'Both';

/** What a roster push would show of an item. */
function visible(item: RosterItem | undefined): string {
  return item ? `${item.subscription}/${item.ask}/${item.approved}` : 'absent';
}

describe('presence: RFC 6121 Appendix A subscription states', () => {
  let w: World;
  beforeEach(async () => {
    w = await startWorld();
  });
  afterEach(() => w.h.stop());

  async function aliceInState(state: string) {
    await seed(w, ALICE, ROMEO, state);
    const alice = await online(w, 'alice@example.com/phone', { presence: xml('presence', {}, xml('show', {}, 'chat')) });
    alice.clear();
    w.remote.length = 0;
    return alice;
  }

  for (const [type, rows] of Object.entries(OUTBOUND)) {
    describe(`${SECTION[`out ${type}`]} outbound ${type}`, () => {
      for (const [state, route, next] of rows) {
        const preApproval = type === 'subscribed' && (state === 'None' || state === 'None + Pending Out' || state === 'To');
        const what = [
          route ? 'routes it' : 'does not route it',
          next ? `moves to ${next}` : 'keeps the state',
          preApproval ? 'and notes a pre-approval' : '',
        ].filter(Boolean).join(', ');
        it(`outbound ${type} when the user is in state ${state} ${what}`, async () => {
          const alice = await aliceInState(state);
          const before = await w.roster.get(ALICE, ROMEO);
          // The client addresses a full JID; the server stamps both ends as bare JIDs (RFC 6121 §3.1.2).
          await alice.sendPresence({ type, to: 'romeo@remote.example/balcony', id: 'sub1' });
          await w.h.settle();

          const routed = presencesTo(w.remote, typed(type));
          if (route) {
            expect(routed, 'routed').to.have.length(1);
            expect(routed[0].attrs.from).to.equal('alice@example.com');
            expect(routed[0].attrs.to).to.equal('romeo@remote.example');
            expect(routed[0].attrs.id).to.equal('sub1');
          } else {
            expect(routed, 'routed').to.have.length(0);
          }
          expect(await stateNow(w, ALICE, ROMEO)).to.equal(next ?? state);

          const after = await w.roster.get(ALICE, ROMEO);
          if (preApproval) expect(after?.approved, 'approved').to.equal(true);
          const changed = visible(before) !== visible(after);
          const ps = pushes(alice);
          expect(ps, 'roster pushes').to.have.length(changed ? 1 : 0);
          if (changed) {
            const item = ps[0].getChild('query')!.getChild('item')!;
            expect(ps[0].attrs.from).to.equal('alice@example.com');
            expect(item.attrs.jid).to.equal('romeo@remote.example');
            expect(item.attrs.subscription).to.equal(after!.subscription);
            expect(item.attrs.ask).to.equal(after!.ask ? 'subscribe' : undefined);
          }

          if (type === 'subscribed' && route) {
            // RFC 6121 §3.1.5: after the approval, the user's current presence goes to the contact.
            const types = w.remote.map((el) => el.attrs.type ?? 'available');
            expect(types).to.deep.equal(['subscribed', 'available']);
            expect(w.remote[1].attrs.from).to.equal('alice@example.com/phone');
            expect(w.remote[1].getChildText('show')).to.equal('chat');
          }
          if (type === 'unsubscribed' && route) {
            // RFC 6121 §3.2.2: a contact that was subscribed first gets unavailable presence.
            const types = w.remote.map((el) => el.attrs.type);
            expect(types).to.deep.equal(hasFromState(state) ? ['unavailable', 'unsubscribed'] : ['unsubscribed']);
            if (hasFromState(state)) expect(w.remote[0].attrs.from).to.equal('alice@example.com/phone');
          }
        });
      }
    });
  }

  for (const [type, rows] of Object.entries(INBOUND)) {
    describe(`${SECTION[`in ${type}`]} inbound ${type}`, () => {
      for (const [state, deliver, next] of rows) {
        const autoReply = type === 'subscribe' && hasFromState(state);
        const what = [
          deliver ? 'delivers it' : 'does not deliver it',
          next ? `moves to ${next}` : 'keeps the state',
          autoReply ? 'and auto-replies subscribed' : '',
        ].filter(Boolean).join(', ');
        it(`inbound ${type} when the user is in state ${state} ${what}`, async () => {
          const alice = await aliceInState(state);
          const before = await w.roster.get(ALICE, ROMEO);
          await w.h.route(xml('presence', { type, from: 'romeo@remote.example/balcony', to: 'alice@example.com', id: 'in1' }));
          await w.h.settle();

          const got = presences(alice, typed(type));
          if (deliver) {
            expect(got, 'delivered').to.have.length(1);
            expect(got[0].attrs.from).to.equal('romeo@remote.example');
            expect(got[0].attrs.to).to.equal('alice@example.com');
          } else {
            expect(got, 'delivered').to.have.length(0);
          }
          expect(await stateNow(w, ALICE, ROMEO)).to.equal(next ?? state);

          const after = await w.roster.get(ALICE, ROMEO);
          const changed = visible(before) !== visible(after);
          expect(pushes(alice), 'roster pushes').to.have.length(changed ? 1 : 0);

          const replies = presencesTo(w.remote, typed('subscribed'));
          if (autoReply) {
            // A.3.1 "no *": the server answers for the user.
            expect(replies).to.have.length(1);
            expect(replies[0].attrs.from).to.equal('alice@example.com');
            expect(replies[0].attrs.to).to.equal('romeo@remote.example');
          } else {
            expect(replies).to.have.length(0);
          }
          if (type === 'unsubscribe') {
            // RFC 6121 §3.3.3: the contact was subscribed to the user: unavailable from each resource.
            const unavailable = presencesTo(w.remote, typed('unavailable'));
            expect(unavailable.map((el) => el.attrs.from)).to.deep.equal(deliver && hasFromState(state) ? ['alice@example.com/phone'] : []);
          }
        });
      }
    });
  }

  it('keeps the stored request when an inbound subscribe is delivered (None + Pending In is durable)', async () => {
    const alice = await aliceInState('None');
    await w.h.route(xml('presence', { type: 'subscribe', from: 'romeo@remote.example', to: 'alice@example.com' }, xml('status', {}, 'hi')));
    await w.h.settle();
    const stored = await w.pending.list('example.com', 'alice', 10);
    expect(stored.map((p) => p.contact)).to.deep.equal(['romeo@remote.example']);
    expect(stored[0].stanza?.getChildText('status')).to.equal('hi');
    expect(presences(alice, typed('subscribe'))).to.have.length(1);
  });

  it('answers an inbound subscribe with unsubscribed when the user does not exist', async () => {
    await w.h.route(xml('presence', { type: 'subscribe', from: 'romeo@remote.example', to: 'nobody@example.com' }));
    await w.h.settle();
    const replies: Element[] = presencesTo(w.remote);
    expect(replies.map((el) => [el.attrs.type, el.attrs.from, el.attrs.to])).to.deep.equal([
      ['unsubscribed', 'nobody@example.com', 'romeo@remote.example'],
    ]);
  });
});
