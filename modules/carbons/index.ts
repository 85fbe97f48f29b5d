// XEP-0280 Message Carbons: every Carbons-enabled resource of an account sees both sides of its
// conversations, whichever resource sent or received them.
import { cloneElement, defineModule, NS, StanzaError, xml, z } from '../../lib/module-api.js';
import type { Element, IqHandler, Jid, MessageStanza, SessionHandle } from '../../lib/module-api.js';
import mam from '../mam/index.js';
import { carbonWrapper, isEligible, NS_CARBONS_RULES, ReplyTracker, type Direction } from './rules.js';

export { isEligible, NS_CARBONS_RULES } from './rules.js';

export interface CarbonsApi {
  /** Enables Carbons for a session, as `<enable/>` does (for inline enabling, XEP-0386 Bind2). */
  enable(session: SessionHandle): void;
  disable(session: SessionHandle): void;
  isEnabled(session: SessionHandle): boolean;
}

/** XEP-0280 §§7-8: the copy, from the account's bare JID to one of its resources. */
function wrap(kind: Direction, account: Jid, to: Jid, original: Element, stanzaId?: Element): Element {
  const copy = cloneElement(original);
  // XEP-0297 §3.2: the forwarded stanza keeps its namespace; without xmlns it would inherit
  // urn:xmpp:forward:0.
  copy.attrs.xmlns = NS.client;
  if (stanzaId) copy.cnode(stanzaId);
  return xml(
    'message',
    // "The wrapping message SHOULD maintain the same 'type' attribute value."
    { from: account.toString(), to: to.toString(), type: original.attrs.type as string | undefined },
    xml(kind, { xmlns: NS.carbons }, xml('forwarded', { xmlns: NS.forward }, copy)),
  );
}

export default defineModule({
  name: 'carbons',
  xeps: [{ xep: 280, version: '1.0.1', status: 'complete' }],
  // Clients (Conversations among them) look for Carbons on their server (XEP-0280 §3).
  features: { host: [NS.carbons, NS_CARBONS_RULES] },
  defaultEnabled: true,
  config: z.strictObject({}),
  // With the archive on, sent copies carry the sender's archive id, as received copies do.
  optional: [mam],
  setup(ctx): CarbonsApi {
    const enabled = ctx.sessionState('enabled', () => false);
    const replies = new ReplyTracker();
    const archive = ctx.deps.has(mam) ? ctx.deps.get(mam) : undefined;

    const isEnabled = (s: SessionHandle) => s.get(enabled);

    // §§4-5: enable and disable, any number of times (§10.1); only a local client's own session.
    const toggle = (on: boolean): IqHandler => (_iq, origin) => {
      if (!origin.session) return StanzaError.notAllowed('Carbons are enabled by the client session itself');
      origin.session.set(enabled, on);
      return undefined;
    };
    ctx.iq.set({ ns: NS.carbons, name: 'enable', to: ['self'] }, toggle(true));
    ctx.iq.set({ ns: NS.carbons, name: 'disable', to: ['self'] }, toggle(false));
    // XEP-0386 §4: <enable xmlns='urn:xmpp:carbons:2'/> inside Bind2 <bind/>; nothing in <bound/>.
    ctx.bind2Feature(NS.carbons, (stream, el) => {
      if (el.name === 'enable' && stream.session) stream.session.set(enabled, true);
      return undefined;
    });

    function eligible(m: MessageStanza, direction: Direction, account: Jid, peer: Jid): boolean {
      const answersEligible = m.type === 'error' && replies.answers(account, peer, m.id);
      if (!isEligible({ el: m.el, type: m.type, direction, from: m.from, answersEligible })) return false;
      if (m.type !== 'error') replies.remember(account, peer, m.id);
      return true;
    }

    // §8: a copy of what a client sends goes to every other Carbons-enabled resource of the
    // account, "irrespective of whether the sending client has carbons enabled".
    ctx.on('message/outbound', ({ session, stanza }) => {
      const account = session.jid.bare();
      const peer = stanza.to ?? account;
      if (!eligible(stanza, 'sent', account, peer)) return undefined;
      const others = ctx.sessions.of(account).filter((s) => s.id !== session.id && isEnabled(s));
      if (others.length === 0) return undefined;
      // XEP-0313 §3.5: the copy SHOULD carry the archive id (never the original sent to the peer).
      const archived = archive?.outgoingId(stanza.el);
      for (const s of others) {
        const sid = archived === undefined ? undefined : xml('stanza-id', { xmlns: NS.sid, by: account.toString(), id: archived });
        s.send(wrap('sent', account, s.jid, stanza.el, sid));
      }
      return undefined;
    }, { after: [mam] });

    /**
     * The sessions RFC 6121 §8.5 delivery hands this message to, by the router's rules
     * (lib/routing/router.ts): the addressed resource when it is bound; otherwise every available
     * resource of the highest non-negative priority (all of them for a headline).
     */
    function receivers(m: MessageStanza, first: SessionHandle): Set<string> {
      const to = m.to!;
      if (to.resource !== undefined && ctx.sessions.get(to) !== undefined) return new Set([first.id]);
      const candidates = ctx.sessions.of(to).filter((s) => s.available && s.priority >= 0);
      if (m.type === 'headline') return new Set(candidates.map((s) => s.id));
      const top = Math.max(...candidates.map((s) => s.priority));
      return new Set(candidates.filter((s) => s.priority === top).map((s) => s.id));
    }

    function copyReceived(m: MessageStanza, account: Jid, except: ReadonlySet<string>): void {
      if (!eligible(m, 'received', account, m.from)) return;
      for (const s of ctx.sessions.of(account)) {
        if (!except.has(s.id) && isEnabled(s)) s.send(wrap('received', account, s.jid, m.el));
      }
    }

    // §7: after RFC 6121 delivery, a copy goes to each Carbons-enabled resource that did not get
    // the message. `message/deliver` runs once per receiving session; the copies are made once, at
    // the first, for the set of sessions the router delivers to.
    const copied = new WeakSet<Element>();
    ctx.on('message/deliver', ({ session, stanza }) => {
      if (copied.has(stanza.el) || stanza.to === undefined) return undefined;
      copied.add(stanza.el);
      copyReceived(stanza, session.jid.bare(), receivers(stanza, session));
      return undefined;
    });

    // No resource takes it (offline storage will): every Carbons-enabled resource (bound, but
    // unavailable or with a negative priority) "did not receive it under the RFC 6121 rules".
    ctx.on('message/undeliverable', (event) => {
      // A message stream management hands back unacknowledged was copied when first delivered.
      if ('unacked' in event && event.unacked !== undefined) return undefined;
      const { stanza } = event;
      const to = stanza.to;
      if (to === undefined || to.local === undefined || to.domain !== ctx.host) return undefined;
      copyReceived(stanza, to.bare(), new Set());
      return undefined;
    }, { before: ['offline'] });

    // §11: clients must ignore carbons from anyone but their own bare JID. The server is the only
    // sender that can use that JID (client stanzas carry a full JID), so a wrapper from anyone else
    // (CVE-2017-5589) is forged: it is dropped before it is archived or delivered.
    ctx.on('message/inbound', ({ stanza }) => {
      const to = stanza.to;
      if (to === undefined || to.local === undefined || !carbonWrapper(stanza.el)) return undefined;
      if (stanza.from.equals(to.bare())) return undefined;
      ctx.log.debug({ from: stanza.from.toString() }, 'dropped a forged carbon');
      return 'drop';
    }, { before: [mam] });

    return {
      enable: (s) => s.set(enabled, true),
      disable: (s) => s.set(enabled, false),
      isEnabled,
    };
  },
});
