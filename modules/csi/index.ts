// XEP-0352 Client State Indication: while a client says it is inactive (a phone in a pocket), the
// stanzas it does not need at once wait, so that its radio can sleep; they go out, in order, when
// it is active again, when something important comes, or when too many wait.
//
// What waits and what passes follows Prosody's mod_csi_simple, with ejabberd's mod_client_state
// folding of superseded updates:
// - waits: presence updates (available, unavailable, error), of which only the latest per sender
//   full JID is kept; chat-state notifications without a body (only the latest per sender);
//   headlines (PEP notifications); receipts, chat markers and other messages without content.
// - passes at once, after everything held (so the order is kept): IQs, messages with a body or a
//   subject, errors, carbon copies of what the user sent elsewhere, encrypted messages (EME,
//   OMEMO, OpenPGP: their content is not visible), invitations, call proposals (Jingle Message
//   Initiation), subscription requests and answers, and anything that is not one of the above.
//
// Holding is an outgoing filter (`stanza/outgoing`) returning 'drop'; releasing puts the held
// stanzas back at the head of the session's outbound queue (`session.sendFirst`), marked so that
// this filter lets them through: every other filter sees them again, and stream management
// counts each once, when it is written.
import { defineModule, NS, xml, z } from '../../lib/module-api.js';
import type { Element, SessionHandle } from '../../lib/module-api.js';

const NS_EME = 'urn:xmpp:eme:0';
const NS_AXOLOTL = 'eu.siacs.conversations.axolotl';
const NS_OMEMO2 = 'urn:xmpp:omemo:2';
const NS_OPENPGP = 'urn:xmpp:openpgp:0';
const NS_PGP_LEGACY = 'jabber:x:encrypted';
const NS_CONFERENCE = 'jabber:x:conference';
const NS_JMI = ['urn:xmpp:jingle-message:0', 'urn:xmpp:jingle-message:1'];

interface CsiState {
  inactive: boolean;
  /** Held stanzas, oldest first. */
  held: Array<{ el: Element; key: string | undefined }>;
  /** Released by this module: the filter lets them through once. */
  released: WeakSet<Element>;
}

const SUBSCRIPTION = new Set(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed']);

/** The message a carbon copy of a received message carries (XEP-0280 §7), or the message itself. */
function unwrapReceivedCarbon(m: Element): Element {
  const inner = m.getChild('received', NS.carbons)?.getChild('forwarded', NS.forward)?.getChild('message');
  return inner ?? m;
}

/** True when the stanza must reach an inactive client now. */
export function isUrgent(stanza: Element): boolean {
  switch (stanza.name) {
    case 'iq':
      return true;
    case 'presence':
      // Someone asks (or answers) for a subscription: the user acts on it.
      return SUBSCRIPTION.has((stanza.attrs.type as string | undefined) ?? 'available');
    case 'message': {
      const type = stanza.attrs.type as string | undefined;
      if (type === 'headline') return false;
      if (type === 'error') return true;
      // The user wrote from another device: clients clear their notifications on it.
      if (stanza.getChild('sent', NS.carbons)) return true;
      const m = unwrapReceivedCarbon(stanza);
      if (m.getChild('body') || m.getChild('subject')) return true;
      if (m.getChild('encryption', NS_EME) || m.getChild('encrypted', NS_AXOLOTL) || m.getChild('encrypted', NS_OMEMO2)) return true;
      if (m.getChild('openpgp', NS_OPENPGP) || m.getChild('x', NS_PGP_LEGACY)) return true;
      if (m.getChild('x', NS_CONFERENCE) || m.getChild('x', NS.mucUser)?.getChild('invite')) return true;
      if (m.getChildElements().some((c) => NS_JMI.includes(c.attrs.xmlns as string))) return true;
      return false;
    }
    default:
      return true;
  }
}

/**
 * What a held stanza supersedes: presence updates and chat states from the same full JID. An
 * update that supersedes nothing (a receipt, a headline) has no key.
 */
function supersedeKey(stanza: Element): string | undefined {
  const from = (stanza.attrs.from as string | undefined) ?? '';
  if (stanza.name === 'presence') {
    const type = (stanza.attrs.type as string | undefined) ?? 'available';
    return type === 'available' || type === 'unavailable' ? `p\u0000${from}` : undefined;
  }
  if (stanza.name === 'message') {
    const children = stanza.getChildElements();
    const chatState = children.some((c) => c.attrs.xmlns === NS.chatstates);
    const onlyState = children.every((c) => c.attrs.xmlns === NS.chatstates || c.attrs.xmlns === NS.hints || c.name === 'thread');
    return chatState && onlyState ? `c\u0000${from}` : undefined;
  }
  return undefined;
}

export interface CsiApi {
  /** The client said it is inactive (XEP-0352 <inactive/>, or inline in Bind2) and not active since. */
  isInactive(session: SessionHandle): boolean;
}

const csi = defineModule({
  name: 'csi',
  xeps: [{ xep: 352, version: '1.0.0', status: 'complete' }],
  defaultEnabled: true,
  config: z.strictObject({
    /** Stanzas held for an inactive client; when this many wait, they all go out. */
    maxHeld: z.number().int().min(1).max(10_000).default(100),
  }),
  setup(ctx): CsiApi {
    const key = ctx.sessionState<CsiState>('state', () => ({ inactive: false, held: [], released: new WeakSet() }));

    /** Everything held (then `also`), at the head of the outbound queue, in order. */
    function release(session: SessionHandle, st: CsiState, also?: Element): void {
      const out = st.held.map((h) => h.el);
      st.held = [];
      if (also) out.push(also);
      for (const el of out) st.released.add(el);
      session.sendFirst(out);
    }

    ctx.on('stanza/outgoing', ({ session, stanza }) => {
      const st = session.get(key);
      if (st.released.has(stanza)) {
        st.released.delete(stanza);
        return undefined;
      }
      if (!st.inactive || isUrgent(stanza)) {
        if (st.held.length === 0) return undefined;
        // Held stanzas are older: they go first (the radio is up anyway).
        release(session, st, stanza);
        return 'drop';
      }
      const superseded = supersedeKey(stanza);
      if (superseded !== undefined) {
        const i = st.held.findIndex((h) => h.key === superseded);
        if (i >= 0) st.held.splice(i, 1);
      }
      st.held.push({ el: stanza, key: superseded });
      if (st.held.length >= ctx.config.maxHeld) release(session, st);
      return 'drop';
    });

    ctx.nonza(NS.csi, (session, el) => {
      const st = session.get(key);
      if (el.name === 'inactive') st.inactive = true;
      else if (el.name === 'active') {
        st.inactive = false;
        // XEP-0352 §5.1: flushed before anything the client sends next is answered.
        if (st.held.length) release(session, st);
      }
    });

    // XEP-0386 §4: a client may bind already inactive (<inactive/> inside Bind2 <bind/>).
    ctx.bind2Feature(NS.csi, (stream, el) => {
      if (el.name === 'inactive' && stream.session) stream.session.get(key).inactive = true;
      return undefined;
    });

    // XEP-0352 §5.2: a resumed stream starts active.
    ctx.on('session/resumed', ({ session }) => {
      const st = session.get(key);
      st.inactive = false;
      if (st.held.length) release(session, st);
    });

    ctx.streamFeature({ stage: 'post-auth', build: () => xml('csi', { xmlns: NS.csi }) });
    return { isInactive: (session) => session.get(key).inactive };
  },
});

export default csi;
