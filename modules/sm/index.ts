// XEP-0198 Stream Management (urn:xmpp:sm:3) on client streams: acks both ways, and resumption
// of a session whose connection was lost.
//
// Built on the core's extension points: the stream nonza handler (`<enable/>`, `<r/>`, `<a/>`,
// and `<resume/>`, which comes instead of resource binding), the session write and read taps (what
// is sent to the client and what the client sent, counted; copies kept until acknowledged), and
// the `session/lost` claim (a lost connection leaves the session bound and hibernating instead of
// closing it). The session object survives resumption, and with it every module's session state.
//
// When a session ends without acknowledging everything (it expired unresumed, the client closed
// its stream, the server shut down), XEP-0198 §4: what it was not known to have received is
// treated as sent to an unavailable resource. Messages (chat, normal) go through
// `message/undeliverable` to offline storage, addressed to the bare JID, or bounce when nothing
// takes them; IQ requests are answered service-unavailable; presence is dropped (it is current
// again at the next login); groupchat, headline, carbon copies and archive results are dropped
// too: the room, the archive or another resource holds them.
import { randomBytes } from 'node:crypto';
import { cloneElement, defineModule, duration, Jid, NS, StanzaError, toEnvelope, xml, z } from '../../lib/module-api.js';
import type { Element, SessionHandle, StanzaErrorCondition, StreamControl } from '../../lib/module-api.js';
import { ackedSince, addH, parseH, UnackedQueue } from './queue.js';

export { ackedSince, addH, parseH, UnackedQueue, H_MODULUS } from './queue.js';

interface SmState {
  /** What was sent and not acknowledged (and the sent count). */
  readonly queue: UnackedQueue<Element>;
  /** Stanzas handled from the client since <enable/>: the inbound 'h', mod 2^32. */
  handled: number;
  /** The SM-ID when the session may be resumed. */
  readonly id: string | undefined;
  /** Seconds the session may hibernate (the `max` of <enabled/>). */
  readonly max: number;
  /** The stream the session is on (replaced at resumption). */
  stream: StreamControl;
  /** Stanzas sent since the last <r/>. */
  sinceRequest: number;
  awaitingAck: boolean;
  cancelAckTimer: (() => void) | undefined;
  cancelExpiry: (() => void) | undefined;
  /** Set once the session is being closed for having too much unacknowledged. */
  overflowing: boolean;
}

/** An SM-ID whose session ended: a later <resume/> learns its 'h' (XEP-0198 §5). */
interface Expired {
  account: string;
  h: number;
  at: number;
}

const MAX_EXPIRED = 10_000;

/** Told when a resumable session starts hibernating, with what it sent and was not acknowledged, oldest first. */
export type HibernationListener = (session: SessionHandle, unacked: readonly Element[]) => void;

export interface SmApi {
  /** Calls `listener` each time a session's connection is lost and the session waits to be resumed. */
  onHibernate(listener: HibernationListener): void;
}

const sm = defineModule({
  name: 'sm',
  xeps: [{ xep: 198, version: '1.6.3', status: 'complete', note: 'client streams; no location' }],
  defaultEnabled: true,
  config: z.strictObject({
    /** How long a session whose connection was lost waits to be resumed (the most a client may ask for). */
    resumeTimeout: duration()
      .prefault('5m')
      .refine((ms) => ms >= 1000 && ms <= 86_400_000, { message: 'must be between 1s and 1d' }),
    /** Stanzas kept for a client that does not acknowledge them; beyond, the stream or session ends. */
    maxUnacked: z.number().int().min(10).max(1_000_000).default(10_000),
    /** The server asks for an ack (<r/>) after this many stanzas ... */
    requestAckEvery: z.number().int().min(1).max(10_000).default(5),
    /** ... or this long after the first one not yet acknowledged. */
    requestAckAfter: duration()
      .prefault('30s')
      .refine((ms) => ms >= 10, { message: 'must be at least 10ms' }),
  }),
  setup(ctx): SmApi {
    const cfg = ctx.config;
    const hibernationListeners: HibernationListener[] = [];
    const maxSeconds = Math.max(1, Math.floor(cfg.resumeTimeout / 1000));
    const smKey = ctx.sessionState<SmState | undefined>('sm', () => undefined);
    /** Resumable sessions by SM-ID. */
    const resumable = new Map<string, SessionHandle>();
    /** The SM-ID, as shared state: what other cluster nodes look resumption up by. */
    const resumeIdKey = ctx.sessionState<string>('resumeId', () => '');
    const expired = new Map<string, Expired>();

    const failedEl = (condition: StanzaErrorCondition, h?: number) =>
      xml('failed', { xmlns: NS.sm, h: h === undefined ? undefined : String(h) }, xml(condition, { xmlns: NS.stanzaErrors }));
    const failed = (stream: StreamControl, condition: StanzaErrorCondition, h?: number) => stream.write(failedEl(condition, h));

    function request(st: SmState): void {
      st.stream.write(xml('r', { xmlns: NS.sm }));
      st.awaitingAck = true;
      st.sinceRequest = 0;
    }

    function cancelAckTimer(st: SmState): void {
      st.cancelAckTimer?.();
      st.cancelAckTimer = undefined;
    }

    /** Asks again later for what is still unacknowledged (and notices a client that stopped answering). */
    function armAckTimer(session: SessionHandle, st: SmState): void {
      if (st.cancelAckTimer) return;
      st.cancelAckTimer = ctx.setTimeout(() => {
        st.cancelAckTimer = undefined;
        if (session.get(smKey) !== st || session.hibernating || st.queue.length === 0) return;
        request(st);
        armAckTimer(session, st);
      }, cfg.requestAckAfter);
    }

    function rememberExpired(st: SmState, account: string): void {
      if (st.id === undefined) return;
      const now = Date.now();
      for (const [id, e] of expired) {
        if (expired.size < MAX_EXPIRED && now - e.at < cfg.resumeTimeout) break;
        expired.delete(id);
      }
      expired.set(st.id, { account, h: st.handled, at: now });
    }

    // ------------------------------------------------------------------ nonzas

    /** <enable/>: the answer (<enabled/> or <failed/>), written by the caller (or put in Bind2 <bound/>). */
    function enable(stream: StreamControl, el: Element): Element {
      const session = stream.session;
      // XEP-0198 §3: only after resource binding (or by resuming), and only once.
      if (!session || session.get(smKey)) return failedEl('unexpected-request');
      const wantsResume = el.attrs.resume === 'true' || el.attrs.resume === '1';
      const asked = parseH(el.attrs.max);
      const max = Math.min(asked !== undefined && asked > 0 ? asked : maxSeconds, maxSeconds);
      // The SM-ID is unguessable and only good for this account (checked at <resume/>).
      const id = wantsResume ? randomBytes(18).toString('base64url') : undefined;
      const st: SmState = {
        queue: new UnackedQueue<Element>(),
        handled: 0,
        id,
        max,
        stream,
        sinceRequest: 0,
        awaitingAck: false,
        cancelAckTimer: undefined,
        cancelExpiry: undefined,
        overflowing: false,
      };
      // Both counts start now (§4): the next stanza written is the first the client acknowledges.
      session.set(smKey, st);
      if (id !== undefined) {
        resumable.set(id, session);
        session.set(resumeIdKey, id);
      }
      return xml('enabled', id === undefined ? { xmlns: NS.sm } : { xmlns: NS.sm, id, resume: 'true', max: String(max) });
    }

    function ack(stream: StreamControl, el: Element): void {
      const session = stream.session;
      const st = session?.get(smKey);
      if (!session || !st) return; // not enabled: nothing to acknowledge
      const h = parseH(el.attrs.h);
      if (h === undefined) return stream.close('bad-format', "<a/> needs an 'h' attribute: an unsignedInt");
      const result = st.queue.ack(h);
      if (!result.ok) {
        // XEP-0198 §6.
        return stream.close(
          'undefined-condition',
          `You acknowledged ${h} stanzas, but I only sent you ${result.sent} so far.`,
          xml('handled-count-too-high', { xmlns: NS.sm, h: String(h), 'send-count': String(result.sent) }),
        );
      }
      st.awaitingAck = false;
      if (st.queue.length === 0) cancelAckTimer(st);
    }

    function answerRequest(stream: StreamControl): void {
      const st = stream.session?.get(smKey);
      if (st) stream.write(xml('a', { xmlns: NS.sm, h: String(st.handled) }));
    }

    /**
     * <resume/>: the answer (<resumed/> or <failed/>) is returned, to be written first (or put
     * in a SASL2 <success/>, XEP-0198 §5 inline); the retransmissions are written here, after it
     * on the wire.
     */
    function resume(stream: StreamControl, el: Element): Element {
      if (stream.session) return failedEl('unexpected-request');
      const previd = el.attrs.previd;
      const h = parseH(el.attrs.h);
      if (typeof previd !== 'string' || h === undefined) return failedEl('bad-request');
      const session = resumable.get(previd);
      const st = session?.get(smKey);
      // Another account's SM-ID is answered exactly like an unknown one.
      if (!session || !st || !session.jid.bare().equals(stream.account)) {
        // In a cluster the session may be kept on another node: the client is sent there
        // (RFC 6120 §4.9.3.19), and resumes it on its next connection.
        const elsewhere = ctx.sessions.of(stream.account).find((s) => s.seeOtherHost !== undefined && s.get(resumeIdKey) === previd);
        if (elsewhere) {
          stream.close('see-other-host', elsewhere.seeOtherHost);
          return failedEl('item-not-found');
        }
        const gone = expired.get(previd);
        return failedEl('item-not-found', gone?.account === stream.account.toString() ? gone.h : undefined);
      }
      // The client claims more than was sent: its state is not ours. The session stays as it is,
      // for a client that knows better (or to expire).
      if (ackedSince(st.queue.acked, h) > st.queue.length) return failedEl('unexpected-request', st.handled);
      if (!stream.resumeSession(session)) return failedEl('item-not-found');
      st.cancelExpiry?.();
      st.cancelExpiry = undefined;
      cancelAckTimer(st);
      st.stream = stream;
      st.awaitingAck = false;
      st.sinceRequest = 0;
      st.queue.ack(h);
      const answer = xml('resumed', { xmlns: NS.sm, previd, h: String(st.handled) });
      // §5: what the client did not get, again, in order; still unacknowledged. The stream holds
      // these until the caller has written the answer.
      resend.set(stream, () => {
        for (const stanza of st.queue.pending()) stream.write(stanza);
        if (st.queue.length > 0) {
          request(st);
          armAckTimer(session, st);
        }
        ctx.log.debug({ jid: session.jid.toString(), resent: st.queue.length }, 'stream resumed');
      });
      return answer;
    }

    /** Retransmissions that follow a <resumed/> once it is written. */
    const resend = new WeakMap<StreamControl, () => void>();
    function afterAnswer(stream: StreamControl): void {
      const fn = resend.get(stream);
      resend.delete(stream);
      fn?.();
    }

    ctx.streamNonza(NS.sm, (stream, el) => {
      switch (el.name) {
        case 'enable': return stream.write(enable(stream, el));
        case 'resume': {
          stream.write(resume(stream, el));
          return afterAnswer(stream);
        }
        case 'r': return answerRequest(stream);
        case 'a': return ack(stream, el);
        default: return stream.close('unsupported-stanza-type', `<${el.name}/> is not a stream management request`);
      }
    });

    // Not offered again on a stream that enabled it already (inline in Bind2, XEP-0388 §2.6.2).
    ctx.streamFeature({ stage: 'post-auth', build: (session) => (session?.get(smKey) ? undefined : xml('sm', { xmlns: NS.sm })) });

    // XEP-0198 with XEP-0388/0386: <enable/> inside Bind2 <bind/>, answered inside <bound/>; and
    // <resume/> inside SASL2 <authenticate/>, answered inside <success/>. The stream holds what
    // is written meanwhile (retransmissions) until <success/> is out.
    ctx.bind2Feature(NS.sm, (stream, el) => (el.name === 'enable' ? enable(stream, el) : undefined));
    ctx.sasl2Inline({
      ns: NS.sm,
      feature: () => xml('sm', { xmlns: NS.sm }),
      handle: (stream, el) => {
        if (el.name !== 'resume') return undefined;
        const answer = resume(stream, el);
        afterAnswer(stream);
        return answer;
      },
    });

    // ------------------------------------------------------------------ counting

    ctx.onSessionRead((session) => {
      const st = session.get(smKey);
      if (st) st.handled = addH(st.handled, 1);
    });

    ctx.onSessionWrite((session, stanza) => {
      const st = session.get(smKey);
      if (!st) return;
      st.queue.push(stanza);
      if (st.queue.length > cfg.maxUnacked) {
        if (st.overflowing) return;
        st.overflowing = true;
        ctx.log.info({ jid: session.jid.toString(), unacked: st.queue.length }, 'too many unacknowledged stanzas; closing');
        if (session.hibernating) session.close('resource-constraint', 'too many stanzas waiting for the session to be resumed');
        else st.stream.close('resource-constraint', 'too many unacknowledged stanzas');
        return;
      }
      if (session.hibernating) return;
      st.sinceRequest++;
      if (!st.awaitingAck && st.sinceRequest >= cfg.requestAckEvery) request(st);
      armAckTimer(session, st);
    });

    // ------------------------------------------------------------------ hibernation

    // XEP-0198 §5 and §7: a stream that ends without </stream:stream> is unfinished; a resumable
    // session waits for its client.
    ctx.on('session/lost', ({ session }) => {
      const st = session.get(smKey);
      if (!st || st.id === undefined || st.overflowing) return undefined;
      cancelAckTimer(st);
      st.awaitingAck = false;
      st.cancelExpiry = ctx.setTimeout(() => {
        st.cancelExpiry = undefined;
        if (session.hibernating) session.close('connection-timeout', 'stream management: not resumed in time');
      }, st.max * 1000);
      if (hibernationListeners.length > 0) {
        const unacked = st.queue.pending();
        for (const listener of hibernationListeners) {
          try {
            listener(session, unacked);
          } catch (err) {
            ctx.log.warn({ err, jid: session.jid.toString() }, 'a hibernation listener failed');
          }
        }
      }
      return 'claimed';
    });

    ctx.on('session/closed', async ({ session }) => {
      const st = session.get(smKey);
      if (!st) return;
      session.set(smKey, undefined);
      cancelAckTimer(st);
      st.cancelExpiry?.();
      st.cancelExpiry = undefined;
      if (st.id !== undefined) resumable.delete(st.id);
      rememberExpired(st, session.jid.bare().toString());
      for (const stanza of st.queue.drain()) {
        try {
          await handBack(session, stanza);
        } catch (err) {
          ctx.log.warn({ err, jid: session.jid.toString() }, 'an unacknowledged stanza could not be handed back');
        }
      }
    });

    /** XEP-0198 §4: an unacknowledged stanza of a session that ended, as if sent to an unavailable resource. */
    async function handBack(session: SessionHandle, stanza: Element): Promise<void> {
      const type = (stanza.attrs.type as string | undefined) ?? (stanza.name === 'message' ? 'normal' : undefined);
      if (stanza.name === 'iq') {
        if (type === 'get' || type === 'set') await bounce(session, stanza);
        return;
      }
      if (stanza.name !== 'message' || (type !== 'chat' && type !== 'normal')) return;
      if (stanza.getChild('sent', NS.carbons) || stanza.getChild('received', NS.carbons) || stanza.getChild('result', NS.mam)) return;
      const from = Jid.tryParse(stanza.attrs.from as string | undefined);
      if (!from) return;
      const copy = cloneElement(stanza);
      copy.attrs.to = session.jid.bare().toString();
      let envelope;
      try {
        envelope = toEnvelope(copy, from);
      } catch {
        return;
      }
      if (envelope.kind !== 'message') return;
      if (await ctx.claim('message/undeliverable', { stanza: envelope, unacked: session })) return;
      await bounce(session, stanza);
    }

    /** RFC 6121 §8.5.3.2.1: the resource is gone; the sender learns (never an error to an error). */
    async function bounce(session: SessionHandle, stanza: Element): Promise<void> {
      const from = stanza.attrs.from as string | undefined;
      if (from === undefined || stanza.attrs.type === 'error') return;
      const reply = xml(stanza.name, {
        type: 'error',
        id: stanza.attrs.id as string | undefined,
        from: (stanza.attrs.to as string | undefined) ?? session.jid.toString(),
        to: from,
      });
      for (const child of stanza.getChildElements()) if (child.name !== 'error') reply.cnode(cloneElement(child));
      reply.cnode(StanzaError.serviceUnavailable().toElement());
      await ctx.send(reply);
    }

    return { onHibernate: (listener) => void hibernationListeners.push(listener) };
  },
});

export default sm;
