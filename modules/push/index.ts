// XEP-0357 Push Notifications: a client (an "app client") enables push for its device by giving
// the account its app server's pubsub service and node; while that device cannot take messages
// itself, the server publishes a summary there and the app server wakes the device.
//
// A device "cannot take messages" when its session hibernates (XEP-0198: the connection is gone,
// the session waits to be resumed), when it told the server it is inactive (XEP-0352 CSI), or
// when it has no session at all (the message goes to offline storage or the archive). The first
// two are seen on the session's outgoing stanzas (`stanza/outgoing`, which also runs while a
// session hibernates); the last on `message/inbound`, for registrations no bound session owns
// (or whose session is not available, so that a message to the bare JID goes past it).
// Messages written before the connection dropped but never acknowledged were likely lost with
// it: when the session starts hibernating, one notification sums them up (sm's `onHibernate`).
// A session owns the registrations it enabled, and, after a restart, the one enabled from its
// resource.
//
// Group chat: a room message that mentions the user's nick in that room (learned from the room's
// self-presence, status 110) wakes the device too; other room traffic does not.
//
// message-count is what arrived since the device was last online or the user last marked a chat
// displayed on any device (XEP-0490).
//
// Privacy (XEP-0357 §10): bodies go to the app server only where the admin allows clients to ask
// for them (`includeBody: when-requested`) and the client asked (the `x-parley-include-body`
// field of the enable form, removed before the form is passed on as publish-options). Nothing is
// published before a client enables push, so the module is on by default.
import { cloneElement, defineModule, duration, Jid, NS, StanzaError, z } from '../../lib/module-api.js';
import type { Element, IqStanza, SessionHandle } from '../../lib/module-api.js';
import csi from '../csi/index.js';
import pep from '../pep/index.js';
import { NS_MDS } from '../mds/index.js';
import sm from '../sm/index.js';
import { pushEventFor, trackRoomNick, type PushEvent, type RoomNicks } from './important.js';
import { NS_PUSH, Publisher } from './publisher.js';
import { registrationKey, RegistrationStore, type Registration } from './registrations.js';

export { NS_PUSH, NS_SUMMARY, buildPublish, isPermanent } from './publisher.js';
export { mentions, pushEventFor } from './important.js';
export type { Registration } from './registrations.js';

/** The enable form field with which a client asks for message bodies in its notifications. */
export const INCLUDE_BODY_FIELD = 'x-parley-include-body';
const PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';
const MAX_NODE_LENGTH = 1024;
const MAX_OPTIONS_BYTES = 4096;

interface PushSessionState {
  /** Keys of the registrations this session enabled. */
  readonly owned: Set<string>;
  readonly nicks: RoomNicks;
}

export interface PushApi {
  /** The registrations of an account (admin tools and specs). */
  registrations(user: string): Promise<readonly Registration[]>;
}

const positiveDuration = (def: string, min: number, max: number, what: string) =>
  duration()
    .prefault(def)
    .refine((ms) => ms >= min && ms <= max, { message: what });

const push = defineModule({
  name: 'push',
  xeps: [{ xep: 357, version: '0.4.1', status: 'complete', note: 'summary with message count and sender; bodies opt-in; group chat mentions' }],
  features: { account: [NS_PUSH] },
  defaultEnabled: true,
  optional: [csi, pep, sm],
  config: z.strictObject({
    /** `when-requested`: a client may ask for message bodies in its notifications; `never`: they are never sent. */
    includeBody: z.enum(['never', 'when-requested']).default('never'),
    /** Put the sender's JID (last-message-sender) in notifications. */
    includeSender: z.boolean().default(true),
    /** At most one notification per device this often; what comes meanwhile is summed up in the next. */
    minInterval: positiveDuration('2s', 0, 3_600_000, 'must be between 0s and 1h'),
    /** Retries of a publication that failed for a transient reason, with exponential backoff ... */
    retries: z.number().int().min(0).max(10).default(3),
    /** ... starting at this delay. */
    retryDelay: positiveDuration('5s', 1, 3_600_000, 'must be between 1ms and 1h'),
    /** How long to wait for the app server's answer. */
    timeout: positiveDuration('30s', 100, 300_000, 'must be between 100ms and 5m'),
    /** Notifications that failed (after their retries) in a row before the registration is disabled. */
    disableAfterFailures: z.number().int().min(1).max(1000).default(10),
    /** Registrations kept per account; enabling one more drops the oldest. */
    maxRegistrations: z.number().int().min(1).max(100).default(10),
    /** Rooms per session whose nick is remembered for mentions. */
    maxRooms: z.number().int().min(1).max(100_000).default(1000),
  }),
  setup(ctx): PushApi {
    const cfg = ctx.config;
    const store = new RegistrationStore(ctx.keyval('push'), ctx.host, cfg.maxRegistrations);
    const csiApi = ctx.deps.has(csi) ? ctx.deps.get(csi) : undefined;
    const stateKey = ctx.sessionState<PushSessionState>('state', () => ({ owned: new Set(), nicks: new Map() }));

    const publisher = new Publisher(
      {
        host: ctx.host,
        log: ctx.log,
        request: (iq, timeoutMs) => ctx.request(iq, timeoutMs),
        setTimeout: (fn, ms) => ctx.setTimeout(fn, ms),
        async disable(user, reg) {
          try {
            await store.remove(user, reg.jid, reg.node);
            for (const s of ctx.sessions.of(Jid.of(user, ctx.host))) s.get(stateKey).owned.delete(registrationKey(reg));
          } catch (err) {
            ctx.log.warn({ err, user }, 'could not disable a push registration');
          }
        },
      },
      cfg,
    );

    const accountOf = (user: string) => Jid.of(user, ctx.host);

    /** The bound session that stands for a registration's device, if any. */
    function ownerOf(reg: Registration, sessions: readonly SessionHandle[]): SessionHandle | undefined {
      const key = registrationKey(reg);
      return sessions.find((s) => s.get(stateKey).owned.has(key)) ?? sessions.find((s) => s.jid.resource === reg.resource);
    }

    // ------------------------------------------------------------------ enable / disable

    function parseService(el: Element): Jid {
      const raw = el.attrs.jid as string | undefined;
      if (raw === undefined) throw StanzaError.badRequest(`<${el.name}/> needs the 'jid' of the push service`);
      const jid = Jid.tryParse(raw);
      if (!jid) throw StanzaError.jidMalformed('the push service jid is not a valid JID');
      return jid;
    }

    /** The publish-options form to pass on (minus our own field), and whether bodies were asked for. */
    function parseOptions(el: Element): { options: string | undefined; wantsBody: boolean } {
      const x = el.getChild('x', NS.dataForms);
      if (!x) return { options: undefined, wantsBody: false };
      const formType = x.getChildren('field').find((f) => f.attrs.var === 'FORM_TYPE')?.getChildText('value');
      if (formType !== PUBLISH_OPTIONS) throw StanzaError.badRequest(`the enable form's FORM_TYPE must be ${PUBLISH_OPTIONS}`);
      if (x.attrs.type !== undefined && x.attrs.type !== 'submit') throw StanzaError.badRequest("the enable form must be of type 'submit'");
      const asked = x.getChildren('field').find((f) => f.attrs.var === INCLUDE_BODY_FIELD)?.getChildText('value') ?? undefined;
      if (asked !== undefined && !['true', '1', 'false', '0'].includes(asked)) throw StanzaError.badRequest(`${INCLUDE_BODY_FIELD} must be a boolean`);
      const forwarded = cloneElement(x);
      forwarded.children = forwarded.children.filter((c) => typeof c === 'string' || c.attrs.var !== INCLUDE_BODY_FIELD);
      const options = forwarded.toString();
      if (Buffer.byteLength(options) > MAX_OPTIONS_BYTES) throw StanzaError.notAcceptable(`publish-options may be at most ${MAX_OPTIONS_BYTES} bytes`);
      return { options, wantsBody: asked === 'true' || asked === '1' };
    }

    ctx.iq.set({ ns: NS_PUSH, name: 'enable', to: ['self'] }, async (iq: IqStanza, { session }) => {
      const el = iq.payload!;
      const service = parseService(el);
      const node = el.attrs.node as string | undefined;
      // XEP-0357 §5 says SHOULD; a publish needs a node (XEP-0060 §7.1.1), so a registration without one could never work.
      if (node === undefined || node.length === 0) throw StanzaError.badRequest("<enable/> needs the 'node' the app server provisioned");
      if (node.length > MAX_NODE_LENGTH) throw StanzaError.notAcceptable(`the node may be at most ${MAX_NODE_LENGTH} characters`);
      const { options, wantsBody } = parseOptions(el);
      const user = iq.from.local!;
      const reg: Registration = {
        jid: service.toString(),
        node,
        options,
        includeBody: cfg.includeBody === 'when-requested' && wantsBody,
        resource: session?.jid.resource,
        created: Date.now(),
      };
      await store.put(user, reg);
      const key = registrationKey(reg);
      for (const s of ctx.sessions.of(accountOf(user))) s.get(stateKey).owned.delete(key);
      session?.get(stateKey).owned.add(key);
      publisher.reset(user, reg);
      ctx.log.info({ user, service: reg.jid }, 'push enabled');
      return undefined;
    });

    ctx.iq.set({ ns: NS_PUSH, name: 'disable', to: ['self'] }, async (iq: IqStanza) => {
      const el = iq.payload!;
      const service = parseService(el);
      const node = el.attrs.node as string | undefined;
      const user = iq.from.local!;
      await forgetRegistrations(user, await store.remove(user, service.toString(), node));
      return undefined;
    });

    async function forgetRegistrations(user: string, gone: readonly Registration[]): Promise<void> {
      const sessions = ctx.sessions.of(accountOf(user));
      for (const reg of gone) {
        publisher.forget(user, reg);
        for (const s of sessions) s.get(stateKey).owned.delete(registrationKey(reg));
      }
      if (gone.length) ctx.log.info({ user, removed: gone.length }, 'push disabled');
    }

    // ------------------------------------------------------------------ what warrants a push

    /** Sessions each stanza was already looked at for: CSI puts held stanzas through the filters again. */
    const seen = new WeakMap<Element, Set<string>>();

    async function notifyOwned(session: SessionHandle, event: PushEvent, count = 1): Promise<void> {
      const user = session.jid.local!;
      const sessions = ctx.sessions.of(session.jid.bare());
      for (const reg of await store.list(user)) {
        const owner = ownerOf(reg, sessions);
        if (owner === session) publisher.notify(user, reg, event, count);
      }
    }

    /**
     * The push a message written to `session` warrants, the first time it is looked at for that
     * session; undefined otherwise (CSI re-filters held stanzas; a resumed session resends).
     */
    function firstPushFor(session: SessionHandle, stanza: Element): PushEvent | undefined {
      const ids = seen.get(stanza) ?? new Set<string>();
      if (ids.has(session.id)) return undefined;
      ids.add(session.id);
      seen.set(stanza, ids);
      // Offline storage handing its messages over: each was pushed when it was stored.
      if (stanza.getChildren('delay', NS.delay).some((d) => d.attrs.from === ctx.host)) return undefined;
      return pushEventFor(stanza, session.get(stateKey).nicks, session.jid.bare().toString());
    }

    // Before CSI, which holds presence (and so a room's self-presence) of an inactive session.
    ctx.on('stanza/outgoing', ({ session, stanza }) => {
      if (session.host !== ctx.host || session.jid.local === undefined) return undefined;
      const st = session.get(stateKey);
      if (stanza.name === 'presence') {
        trackRoomNick(stanza, st.nicks, cfg.maxRooms);
        return undefined;
      }
      if (stanza.name !== 'message') return undefined;
      if (!session.hibernating && !csiApi?.isInactive(session)) return undefined;
      const event = firstPushFor(session, stanza);
      if (!event) return undefined;
      notifyOwned(session, event).catch((err: unknown) => ctx.log.warn({ err }, 'push notification failed'));
      return undefined;
    }, { before: ['csi'] });

    // The connection dropped with messages in flight: the device may never have seen them. What
    // was already pushed (written while inactive, or while hibernating before a resumption) is
    // not counted again.
    if (ctx.deps.has(sm)) {
      ctx.deps.get(sm).onHibernate((session, unacked) => {
        if (session.host !== ctx.host || session.jid.local === undefined) return;
        let count = 0;
        let last: PushEvent | undefined;
        for (const stanza of unacked) {
          if (stanza.name !== 'message') continue;
          const event = firstPushFor(session, stanza);
          if (!event) continue;
          count++;
          last = event;
        }
        if (last === undefined) return;
        notifyOwned(session, last, count).catch((err: unknown) => ctx.log.warn({ err }, 'push notification failed'));
      });
    }

    // Devices with no session: the message goes to offline storage (or, with other sessions
    // online, to them and the archive, from which this device will sync).
    ctx.on('message/inbound', async ({ stanza }) => {
      const to = stanza.to ?? stanza.from.bare();
      if (to.domain !== ctx.host || to.local === undefined) return undefined;
      if (await remoteDisable(to.local, stanza.from, stanza.el)) return 'drop';
      const event = pushEventFor(stanza.el, undefined, undefined);
      if (!event) return undefined;
      const regs = await store.list(to.local);
      if (regs.length === 0) return undefined;
      const sessions = ctx.sessions.of(to.bare());
      for (const reg of regs) {
        const owner = ownerOf(reg, sessions);
        // A session that sent no available presence gets only what is addressed to it (RFC 6121
        // §8.5.3.1), which the outgoing path sees; the rest goes past it.
        if (!owner || (!owner.available && !owner.jid.equals(to))) publisher.notify(to.local, reg, event);
      }
      return undefined;
    }, { after: ['blocking'] });

    /**
     * XEP-0357 §8: the push service tells the account it may no longer publish (an affiliation
     * change to none); the registration for that node goes. True when the message was that notice.
     */
    async function remoteDisable(user: string, from: Jid, el: Element): Promise<boolean> {
      const ps = el.getChild('pubsub', NS.pubsub);
      const node = ps?.attrs.node as string | undefined;
      const aff = ps?.getChild('affiliation');
      if (!ps || node === undefined || !aff || aff.attrs.affiliation !== 'none') return false;
      if (Jid.tryParse(aff.attrs.jid as string | undefined)?.bare().equals(accountOf(user)) !== true) return false;
      const service = from.toString();
      if (!(await store.list(user)).some((r) => r.jid === service && r.node === node)) return false;
      await forgetRegistrations(user, await store.remove(user, service, node));
      return true;
    }

    // ------------------------------------------------------------------ the device is back

    async function online(session: SessionHandle): Promise<void> {
      if (session.host !== ctx.host || session.jid.local === undefined) return;
      const user = session.jid.local;
      const sessions = ctx.sessions.of(session.jid.bare());
      for (const reg of await store.list(user)) if (ownerOf(reg, sessions) === session) publisher.reset(user, reg);
    }
    // XEP-0490: the user marked chats displayed (on any device): what was unread has been seen,
    // so each device's count starts over.
    if (ctx.deps.has(pep)) {
      ctx.deps.get(pep).on(NS_MDS, {
        published: async ({ svc }) => {
          if (svc.domain !== ctx.host || svc.local === undefined) return;
          for (const reg of await store.list(svc.local)) publisher.reset(svc.local, reg);
        },
      });
    }

    ctx.on('session/bound', ({ session }) => online(session));
    ctx.on('session/resumed', ({ session }) => online(session));

    ctx.on('account/deleted', async ({ host, user }) => {
      if (host !== ctx.host) return;
      for (const reg of await store.list(user)) publisher.forget(user, reg);
      await store.deleteAccount(user);
    });

    return { registrations: (user) => store.list(user) };
  },
});

export default push;
