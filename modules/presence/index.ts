// RFC 6121 §3-§4: presence subscriptions (the Appendix A state machine, with pre-approval and
// durable pending requests) and presence broadcast, probes, directed presence and unavailable
// presence on logout or disconnection.
import { cloneElement, defineModule, Jid, NS, StanzaError, xml, z } from '../../lib/module-api.js';
import type { ClaimResult, Element, PresenceStanza, SessionHandle } from '../../lib/module-api.js';
import roster, { emptyItem, hasFrom, hasTo, type RosterItem } from '../roster/index.js';
import { PendingStore, presenceMigrations } from './pending.js';
import { SubscriptionRequestLimit } from './subscription-limit.js';
import { INBOUND, OUTBOUND, partsOf, stateOf, type StateName, type SubscriptionType } from './states.js';

export { INBOUND, OUTBOUND, STATES, stateOf, partsOf } from './states.js';
export type { StateName, SubscriptionType, Row } from './states.js';

/**
 * Decides whether presence may pass between a local user and a peer; XEP-0191 blocking plugs in
 * here. `out`: the server is about to send the user's presence (broadcast, probe answer) to the
 * peer; `in`: presence or a subscription request from the peer is about to reach the user.
 * `peer` is a bare JID, except for inbound available/unavailable/error presence, where it is the
 * sender's full JID.
 */
export type PresenceGate = (event: { user: Jid; peer: Jid; direction: 'in' | 'out'; stanza: Element }) => boolean | Promise<boolean>;

export interface PresenceApi {
  /** Adds a gate; returns a function that removes it. */
  addGate(gate: PresenceGate): () => void;
}

const SUBSCRIPTION_TYPES: readonly string[] = ['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed'];

function isSubscriptionType(type: string): type is SubscriptionType {
  return SUBSCRIPTION_TYPES.includes(type);
}

/** A copy of a presence with new addresses. */
function addressed(el: Element, from: Jid, to: Jid): Element {
  const copy = cloneElement(el);
  copy.attrs.from = from.toString();
  copy.attrs.to = to.toString();
  return copy;
}

const presence = defineModule({
  name: 'presence',
  defaultEnabled: true,
  requires: [roster],
  config: z.strictObject({
    /** Unanswered inbound subscription requests kept per user; more are dropped (and logged). */
    maxPendingSubscriptions: z.number().int().positive().default(1000),
    /** Distinct JIDs one session may send directed presence to (tracked for its unavailable). */
    maxDirectedPresence: z.number().int().positive().default(1000),
    /** New subscription requests one account may send per hour; more bounce with policy-violation. */
    subscriptionRequestsPerHour: z.number().int().positive().default(200),
  }),
  migrations: presenceMigrations,
  setup(ctx): PresenceApi {
    const rosterApi = ctx.deps.get(roster);
    const pending = new PendingStore(ctx.storage);
    const requestLimit = new SubscriptionRequestLimit(ctx.config.subscriptionRequestsPerHour);
    const gates: PresenceGate[] = [];
    /** RFC 6121 §4.6.3: the JIDs this session sent directed available presence to. */
    const directedKey = ctx.sessionState<readonly string[]>('directed', () => []);
    /** When the session's current presence was set, for the delay stamp on replays (XEP-0203). */
    const sinceKey = ctx.sessionState<string | undefined>('since', () => undefined);
    const local = (user: Jid) => user.local ?? '';

    async function allowed(user: Jid, peer: Jid, direction: 'in' | 'out', stanza: Element): Promise<boolean> {
      for (const gate of gates) if (!(await gate({ user, peer, direction, stanza }))) return false;
      return true;
    }

    async function send(el: Element): Promise<void> {
      try {
        await ctx.send(el);
      } catch (err) {
        ctx.log.warn({ err, to: el.attrs.to }, 'presence routing failed');
      }
    }

    async function accountExists(user: Jid): Promise<boolean> {
      if (ctx.sessions.of(user).length > 0) return true;
      return user.local !== undefined && ctx.accounts.exists(user.domain, user.local);
    }

    function errorPresence(original: Element, to: Jid, err: StanzaError): Element {
      const reply = xml('presence', {
        type: 'error',
        id: original.attrs.id as string | undefined,
        from: (original.attrs.to as string | undefined) ?? to.domain,
        to: to.toString(),
      });
      for (const child of original.getChildElements()) if (child.name !== 'error') reply.cnode(cloneElement(child));
      reply.cnode(err.toElement());
      return reply;
    }

    /** The session's last presence, as a replay to `to` (probe answers, a new resource). */
    function replay(s: SessionHandle, to: Jid): Element | undefined {
      if (!s.presence) return undefined;
      const el = addressed(s.presence, s.jid, to);
      el.children = el.children.filter((c) => typeof c === 'string' || !(c.name === 'delay' && c.attrs.xmlns === NS.delay));
      const since = s.get(sinceKey);
      if (since !== undefined) el.cnode(xml('delay', { xmlns: NS.delay, from: ctx.host, stamp: since }));
      return el;
    }

    function availableSessions(user: Jid): SessionHandle[] {
      return ctx.sessions.of(user).filter((s) => s.available);
    }

    /** The current presence of each of the user's available resources, addressed to `to`. */
    function presenceOf(user: Jid, to: Jid): Element[] {
      return availableSessions(user).map((s) => replay(s, to)).filter((el): el is Element => el !== undefined);
    }

    function unavailableOf(user: Jid, to: Jid): Element[] {
      return availableSessions(user).map((s) => xml('presence', { type: 'unavailable', from: s.jid.toString(), to: to.toString() }));
    }

    // ------------------------------------------------------------------ subscription state

    interface Facts {
      item: RosterItem | undefined;
      pendingIn: boolean;
      state: StateName;
    }

    async function facts(user: Jid, contact: Jid): Promise<Facts> {
      const item = await rosterApi.get(user, contact);
      const pendingIn = await pending.has(user.domain, local(user), contact.toString());
      return { item, pendingIn, state: stateOf(item?.subscription ?? 'none', item?.ask ?? false, pendingIn) };
    }

    /**
     * Writes a new state: the roster item (pushed by the roster) and the pending request.
     * A.1: "Pending In" alone is not a roster item; the item is created once it carries more.
     */
    async function enter(user: Jid, contact: Jid, f: Facts, next: StateName | undefined): Promise<void> {
      if (next === undefined || next === f.state) return;
      const parts = partsOf(next);
      if (f.pendingIn && !parts.pendingIn) await pending.delete(user.domain, local(user), contact.toString());
      if (!f.item && parts.subscription === 'none' && !parts.pendingOut) return;
      await rosterApi.update(user, contact, (current) => ({
        ...(current ?? emptyItem(contact)),
        subscription: parts.subscription,
        ask: parts.pendingOut,
        // RFC 6121 §3.4: a pre-approval is used up once the contact is subscribed.
        approved: hasFrom(parts.subscription) ? false : (current?.approved ?? false),
      }));
    }

    /** RFC 6121 §3.1.2, §3.1.5, §3.2.2, §3.3.2, §3.4.2 and A.2: a subscription stanza from a local client. */
    async function outboundSubscription(session: SessionHandle, to: Jid, type: SubscriptionType, el: Element): Promise<void> {
      const user = session.jid.bare();
      const contact = to.bare();
      if (contact.equals(user)) return; // an account is implicitly subscribed to itself
      // RFC 6121 §3.1.2: stamped with the user's bare JID, addressed to the contact's bare JID.
      const stamped = addressed(el, user, contact);
      const then: Element[] = [];
      try {
        await rosterApi.locked(user, async () => {
          const f = await facts(user, contact);
          const row = OUTBOUND[type][f.state];
          switch (type) {
            case 'subscribe':
            case 'unsubscribe':
              // Only requests that ask something new count (a re-sent pending request does not).
              if (type === 'subscribe' && row.next !== undefined && row.next !== f.state && !requestLimit.take(user.toString())) {
                ctx.log.info({ user: user.toString() }, 'subscription request limit reached');
                throw StanzaError.policyViolation(`at most ${ctx.config.subscriptionRequestsPerHour} subscription requests an hour`);
              }
              await enter(user, contact, f, row.next);
              then.push(stamped);
              return;
            case 'subscribed':
              if (row.act) {
                await enter(user, contact, f, row.next);
                // RFC 6121 §3.1.5: the approval, then the user's current presence.
                then.push(stamped, ...(await gated(user, contact, presenceOf(user, contact))));
              } else if (f.state === 'None' || f.state === 'None + Pending Out' || f.state === 'To') {
                // RFC 6121 §3.4.2: a pre-approval, noted on the item (created if need be), not routed.
                if (!f.item?.approved) {
                  await rosterApi.update(user, contact, (current) => ({ ...(current ?? emptyItem(contact)), approved: true }));
                }
              }
              // From, From + Pending Out, Both: already subscribed, silently ignored (§3.4.2 step 1).
              return;
            case 'unsubscribed':
              if (row.act) {
                // RFC 6121 §3.2.2: unavailable presence while the contact is still subscribed, then the cancellation.
                if (hasFrom(partsOf(f.state).subscription)) then.push(...unavailableOf(user, contact));
                then.push(stamped);
                await enter(user, contact, f, row.next);
              } else if (f.item?.approved) {
                // Cancelling a pre-approval (RFC 6121 §3.4): nothing to route.
                await rosterApi.update(user, contact, (current) => current && { ...current, approved: false });
              }
              return;
          }
        });
      } catch (err) {
        if (!(err instanceof StanzaError)) throw err;
        session.send(errorPresence(el, session.jid, err));
        return;
      }
      for (const out of then) await send(out);
    }

    /** RFC 6121 §3.1.3, §3.1.6, §3.2.3, §3.3.3, §3.4 and A.3: a subscription stanza for a local user. */
    async function inboundSubscription(stanza: PresenceStanza, type: SubscriptionType): Promise<void> {
      // RFC 6121 §3.1.3 / §8.5.3.2.1: a subscription stanza to a full JID is handled as to the bare JID.
      const user = stanza.to!.bare();
      const contact = stanza.from.bare();
      if (contact.equals(user)) return;
      if (!(await accountExists(user))) {
        // RFC 6121 §3.1.3 / §8.5.1: no such user; a subscription request is answered "unsubscribed".
        if (type === 'subscribe') await send(xml('presence', { type: 'unsubscribed', from: user.toString(), to: contact.toString() }));
        return;
      }
      if (!(await allowed(user, contact, 'in', stanza.el))) return;
      const request = addressed(stanza.el, contact, user);
      const then: Element[] = [];
      const toInterested = () => {
        for (const s of ctx.sessions.of(user)) if (s.interested) s.send(cloneElement(request));
      };

      await rosterApi.locked(user, async () => {
        const f = await facts(user, contact);
        const row = INBOUND[type][f.state];
        switch (type) {
          case 'subscribe': {
            if (hasFrom(partsOf(f.state).subscription)) {
              // A.3.1 "no *": already subscribed; auto-reply "subscribed" on the user's behalf, and
              // (as after any approval, §3.1.5) the user's presence, which the contact may have lost.
              then.push(xml('presence', { type: 'subscribed', from: user.toString(), to: contact.toString() }));
              then.push(...(await gated(user, contact, presenceOf(user, contact))));
              return;
            }
            if (f.item?.approved) {
              // RFC 6121 §3.4.3: pre-approved; approve on the user's behalf, without asking them.
              const parts = partsOf(f.state);
              await enter(user, contact, f, stateOf(parts.subscription === 'to' ? 'both' : 'from', parts.pendingOut, false));
              then.push(xml('presence', { type: 'subscribed', from: user.toString(), to: contact.toString() }));
              then.push(...(await gated(user, contact, presenceOf(user, contact))));
              return;
            }
            if (!row.act) return; // already pending: no state change, not delivered again
            const count = await pending.count(user.domain, local(user));
            if (count >= ctx.config.maxPendingSubscriptions) {
              ctx.log.warn({ user: user.toString(), contact: contact.toString() }, 'too many pending subscription requests; dropped one');
              return;
            }
            // RFC 6121 §3.1.3: kept until answered, delivered now to every available resource and
            // again at each login (deliverPending).
            await pending.put(user.domain, local(user), contact.toString(), request);
            for (const s of availableSessions(user)) s.send(cloneElement(request));
            return;
          }
          case 'subscribed':
          case 'unsubscribed':
            if (!row.act) return;
            // RFC 6121 §3.1.6 / §3.2.3: deliver to the interested resources, then the roster push.
            toInterested();
            await enter(user, contact, f, row.next);
            return;
          case 'unsubscribe':
            if (!row.act) return;
            // RFC 6121 §3.3.3: deliver, push, and unavailable presence from each available resource.
            toInterested();
            await enter(user, contact, f, row.next);
            if (hasFrom(partsOf(f.state).subscription)) then.push(...unavailableOf(user, contact));
            return;
        }
      });
      for (const out of then) await send(out);
    }

    async function gated(user: Jid, peer: Jid, els: Element[]): Promise<Element[]> {
      const out: Element[] = [];
      for (const el of els) if (await allowed(user, peer, 'out', el)) out.push(el);
      return out;
    }

    // ------------------------------------------------------------------ availability

    /**
     * RFC 6121 §4.2.2 / §4.4.2 / §4.5.2: a presence to every contact subscribed to the user and to
     * the user's available resources (the sender included: an entity is subscribed to itself).
     * Returns the contacts it went to.
     */
    async function broadcast(session: SessionHandle, el: Element, items?: readonly RosterItem[]): Promise<Set<string>> {
      const user = session.jid.bare();
      const sent = new Set<string>();
      for (const item of items ?? (await rosterApi.items(user))) {
        if (!hasFrom(item.subscription)) continue;
        const out = addressed(el, session.jid, item.jid);
        if (!(await allowed(user, item.jid, 'out', out))) continue;
        sent.add(item.jid.toString());
        await send(out);
      }
      for (const s of ctx.sessions.of(user)) {
        if (s.available || s === session) s.send(addressed(el, session.jid, s.jid));
      }
      return sent;
    }

    async function available(session: SessionHandle, el: Element): Promise<void> {
      const initial = !session.available;
      const current = cloneElement(el);
      delete current.attrs.to;
      current.attrs.from = session.jid.toString();
      session.setPresence(current);
      session.set(sinceKey, new Date().toISOString());
      const user = session.jid.bare();
      // One read of the roster serves the broadcast and the probes of an initial presence.
      const items = await rosterApi.items(user);
      await broadcast(session, current, items);
      if (!initial) return;
      // The user's other available resources, to the new one.
      for (const s of availableSessions(user)) {
        if (s === session) continue;
        const el2 = replay(s, session.jid);
        if (el2) session.send(el2);
      }
      // RFC 6121 §4.2.2 / §4.3.1: probe every contact the user is subscribed to. Probes to
      // contacts on this server come from the new resource, so that only it gets the answers;
      // probes to other servers come from the bare JID as the RFC shows them.
      for (const item of items) {
        if (!hasTo(item.subscription)) continue;
        const from = ctx.server.hosts.includes(item.jid.domain) ? session.jid : user;
        await send(xml('presence', { type: 'probe', from: from.toString(), to: item.jid.toString() }));
      }
      await deliverPending(session);
      // Offline storage and others act once the session is available (XEP-0160 §3).
      await ctx.notify('presence/initial', { session });
    }

    /** RFC 6121 §3.1.3: unanswered subscription requests, again, at each login. */
    async function deliverPending(session: SessionHandle): Promise<void> {
      const user = session.jid.bare();
      for (const p of await pending.list(user.domain, local(user), ctx.config.maxPendingSubscriptions)) {
        const contact = Jid.tryParse(p.contact);
        if (!contact) continue;
        const el = p.stanza ?? xml('presence');
        el.attrs.type = 'subscribe';
        el.attrs.from = contact.toString();
        el.attrs.to = user.toString();
        if (await allowed(user, contact, 'in', el)) session.send(el);
      }
    }

    /** RFC 6121 §4.5.2 / §4.6.3: unavailable to everyone who saw the session available. */
    async function unavailable(session: SessionHandle, el: Element): Promise<void> {
      const out = cloneElement(el);
      delete out.attrs.to;
      out.attrs.from = session.jid.toString();
      out.attrs.type = 'unavailable';
      let covered = new Set<string>();
      if (session.available) covered = await broadcast(session, out);
      session.setPresence(undefined);
      session.set(sinceKey, undefined);
      const directed = session.get(directedKey);
      session.set(directedKey, []);
      for (const target of directed) {
        const jid = Jid.tryParse(target);
        if (!jid || covered.has(jid.bare().toString())) continue;
        await send(addressed(out, session.jid, jid));
      }
    }

    /** RFC 6121 §4.6: presence to one entity, routed and remembered, never broadcast. */
    async function directed(session: SessionHandle, to: Jid, type: 'available' | 'unavailable' | 'error', el: Element): Promise<void> {
      const list = session.get(directedKey);
      const target = to.toString();
      if (type === 'available') {
        if (!list.includes(target)) {
          if (list.length >= ctx.config.maxDirectedPresence) {
            session.send(errorPresence(el, session.jid, StanzaError.resourceConstraint('too many directed presences from this session')));
            return;
          }
          session.set(directedKey, [...list, target]);
        }
      } else if (list.includes(target)) {
        session.set(directedKey, list.filter((j) => j !== target));
      }
      await send(el);
    }

    // ------------------------------------------------------------------ probes and delivery

    /** RFC 6121 §4.3.2: a probe to a local user. */
    async function answerProbe(stanza: PresenceStanza): Promise<void> {
      const user = stanza.to!.bare();
      const prober = stanza.from;
      if (!prober.bare().equals(user)) {
        const item = (await accountExists(user)) ? await rosterApi.get(user, prober.bare()) : undefined;
        if (!item || !hasFrom(item.subscription)) {
          // Not subscribed (or no such user): reveal nothing; "unsubscribed" lets the prober's
          // server correct a stale "to" subscription.
          await send(xml('presence', { type: 'unsubscribed', from: user.toString(), to: prober.bare().toString() }));
          return;
        }
        if (!(await allowed(user, prober.bare(), 'out', stanza.el))) return;
      }
      const answers = presenceOf(user, prober);
      if (answers.length === 0) {
        await send(xml('presence', { type: 'unavailable', from: user.toString(), to: prober.toString() }));
        return;
      }
      for (const el of answers) await send(el);
    }

    /** RFC 6121 §4.2.3 / §4.4.3 / §4.5.3 / §8.5: available, unavailable or error presence for a local user. */
    async function deliver(stanza: PresenceStanza): Promise<void> {
      const to = stanza.to!;
      if (!(await allowed(to.bare(), stanza.from, 'in', stanza.el))) return;
      if (to.resource !== undefined) {
        // RFC 6121 §8.5.3.2.1: to a resource that is not connected, presence is silently ignored.
        (ctx.sessions.get(to) ?? (await ctx.sessions.recheck(to)))?.send(stanza.el);
        return;
      }
      // RFC 6121 §8.5.2.1.1: every available resource, whatever its priority.
      for (const s of availableSessions(to)) s.send(stanza.el);
    }

    // ------------------------------------------------------------------ hooks

    ctx.streamFeature({ stage: 'post-auth', build: () => xml('sub', { xmlns: NS.preApproval }) });

    ctx.on('presence/outbound', async ({ session, stanza }): Promise<ClaimResult> => {
      const type = stanza.type;
      if (!stanza.to) {
        if (type === 'available') await available(session, stanza.el);
        else if (type === 'unavailable') await unavailable(session, stanza.el);
        else if (type !== 'error') {
          // Subscription stanzas and probes need an addressee.
          session.send(errorPresence(stanza.el, session.jid, StanzaError.badRequest(`presence of type ${type} needs a 'to'`)));
        }
        return 'claimed';
      }
      if (isSubscriptionType(type)) await outboundSubscription(session, stanza.to, type, stanza.el);
      else if (type === 'probe') await send(stanza.el); // RFC 6121 §4.3.1 leaves probing to servers; route it like any presence
      else await directed(session, stanza.to, type, stanza.el);
      return 'claimed';
    });

    ctx.on('presence/inbound', async ({ stanza }): Promise<ClaimResult> => {
      const type = stanza.type;
      if (stanza.to?.local === undefined) {
        await serverAsContact(stanza.from, type);
        return 'claimed';
      }
      if (isSubscriptionType(type)) await inboundSubscription(stanza, type);
      else if (type === 'probe') await answerProbe(stanza);
      else await deliver(stanza);
      return 'claimed';
    });

    // The server is always available to whoever asks, and approves subscriptions to itself
    // (as Prosody does), so a client that adds the domain to its roster sees it online.
    async function serverAsContact(peer: Jid, type: string): Promise<void> {
      const from = ctx.host;
      const to = peer.toString();
      if (type === 'probe') await send(xml('presence', { from, to }));
      else if (type === 'subscribe') {
        await send(xml('presence', { type: 'subscribed', from, to }));
        await send(xml('presence', { from, to }));
      } else if (type === 'unsubscribe') await send(xml('presence', { type: 'unsubscribed', from, to }));
    }

    // Abrupt disconnection (or a stream closed without unavailable presence): RFC 6121 §4.5.2.
    ctx.on('session/closed', async ({ session }) => {
      if (!session.available && session.get(directedKey).length === 0) return;
      await unavailable(session, xml('presence', { type: 'unavailable' }));
    });

    // RFC 6121 §2.5.2: removing an item cancels the subscriptions both ways.
    rosterApi.onRemoved(async (user, item) => {
      const contact = item.jid;
      const pendingIn = await pending.has(user.domain, local(user), contact.toString());
      if (pendingIn) await pending.delete(user.domain, local(user), contact.toString());
      if (hasTo(item.subscription) || item.ask) {
        await send(xml('presence', { type: 'unsubscribe', from: user.toString(), to: contact.toString() }));
      }
      if (hasFrom(item.subscription) || pendingIn) {
        if (hasFrom(item.subscription)) for (const el of unavailableOf(user, contact)) await send(el);
        await send(xml('presence', { type: 'unsubscribed', from: user.toString(), to: contact.toString() }));
      }
    });

    ctx.on('account/deleted', async ({ host, user }) => {
      if (host !== ctx.host) return;
      await pending.deleteAccount(host, user);
    });

    return {
      addGate(gate) {
        gates.push(gate);
        return () => {
          const i = gates.indexOf(gate);
          if (i >= 0) gates.splice(i, 1);
        };
      },
    };
  },
});

export default presence;
