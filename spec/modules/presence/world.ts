// Shared set-up for the roster and presence specs: a harness with both modules, a recorded
// route to other servers, and helpers to put an account into a given subscription state.
import { expect } from 'chai';
import { NS, xml, type Element } from '../../../lib/module-api.js';
import { Jid } from '../../../lib/jid/jid.js';
import { Harness, type TestClient } from '../../helpers/harness.js';
import roster, { type RosterApi, type RosterItem, type Subscription } from '../../../modules/roster/index.js';
import presence from '../../../modules/presence/index.js';
import { PendingStore } from '../../../modules/presence/pending.js';

export const ALICE = Jid.parse('alice@example.com');
export const BOB = Jid.parse('bob@example.com');
export const ROMEO = Jid.parse('romeo@remote.example');

export interface World {
  h: Harness;
  /** Stanzas the router handed to federation (other servers), in order. */
  remote: Element[];
  roster: RosterApi;
  pending: PendingStore;
}

export async function startWorld(options: Record<string, unknown> = {}): Promise<World> {
  const h = await Harness.start({ modules: [roster, presence], options });
  const remote: Element[] = [];
  h.router.remote = async (stanza) => {
    remote.push(stanza.el);
  };
  await h.createAccount('alice');
  await h.createAccount('bob');
  return { h, remote, roster: h.api(roster), pending: new PendingStore(h.storage) };
}

/** Connects a resource that fetched its roster (interested) and, unless told not to, sent initial presence. */
export async function online(w: World, jid: string, opts: { presence?: Element | false } = {}): Promise<TestClient> {
  const c = await w.h.connect(jid);
  const reply = await c.get(xml('query', { xmlns: NS.roster }), c.jid.bare().toString());
  expect(reply.attrs.type).to.equal('result');
  if (opts.presence !== false) await c.send(opts.presence ?? xml('presence'));
  await w.h.settle();
  return c;
}

export function isPush(el: Element): boolean {
  return el.name === 'iq' && el.attrs.type === 'set' && el.getChild('query', NS.roster) !== undefined;
}

export function pushes(c: TestClient): Element[] {
  return c.received.filter(isPush);
}

export function presences(c: TestClient, pred: (el: Element) => boolean = () => true): Element[] {
  return c.received.filter((el) => el.name === 'presence' && pred(el));
}

export function presencesTo(remote: Element[], pred: (el: Element) => boolean = () => true): Element[] {
  return remote.filter((el) => el.name === 'presence' && pred(el));
}

export const typed = (type: string | undefined) => (el: Element) => el.attrs.type === type;

/** The nine RFC 6121 A.1 states, as stored facts. */
export const STATE_FACTS: Record<string, { subscription: Subscription; ask: boolean; pendingIn: boolean }> = {
  'None': { subscription: 'none', ask: false, pendingIn: false },
  'None + Pending Out': { subscription: 'none', ask: true, pendingIn: false },
  'None + Pending In': { subscription: 'none', ask: false, pendingIn: true },
  'None + Pending Out+In': { subscription: 'none', ask: true, pendingIn: true },
  'To': { subscription: 'to', ask: false, pendingIn: false },
  'To + Pending In': { subscription: 'to', ask: false, pendingIn: true },
  'From': { subscription: 'from', ask: false, pendingIn: false },
  'From + Pending Out': { subscription: 'from', ask: true, pendingIn: false },
  'Both': { subscription: 'both', ask: false, pendingIn: false },
};

/**
 * Puts `user` into `state` towards `contact`. "None" and "None + Pending In" have no roster item
 * (a stranger, A.1); the other states do.
 */
export async function seed(w: World, user: Jid, contact: Jid, state: string, extra: Partial<RosterItem> = {}): Promise<void> {
  const f = STATE_FACTS[state];
  if (!f) throw new Error(`unknown state ${state}`);
  const needsItem = f.subscription !== 'none' || f.ask || Object.keys(extra).length > 0;
  if (needsItem) {
    await w.roster.update(user, contact, () => ({
      jid: contact.bare(),
      name: undefined,
      groups: [],
      approved: false,
      subscription: f.subscription,
      ask: f.ask,
      ...extra,
    }));
  }
  if (f.pendingIn) {
    await w.pending.put(user.domain, user.local!, contact.bare().toString(), xml('presence', { type: 'subscribe', from: contact.toString(), to: user.toString() }));
  }
}

/** The state `user` is in towards `contact`, read back from storage, in A.1 names. */
export async function stateNow(w: World, user: Jid, contact: Jid): Promise<string> {
  const item = await w.roster.get(user, contact);
  const pendingIn = await w.pending.has(user.domain, user.local!, contact.bare().toString());
  const sub = item?.subscription ?? 'none';
  const ask = item?.ask ?? false;
  const found = Object.entries(STATE_FACTS).find(([, f]) => f.subscription === sub && f.ask === ask && f.pendingIn === pendingIn);
  return found ? found[0] : `undefined state (${sub}, ask=${ask}, pendingIn=${pendingIn})`;
}
