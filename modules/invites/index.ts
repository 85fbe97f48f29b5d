// Invitations: XEP-0401 (Easy User Onboarding) account invites and XEP-0379 (Pre-Authenticated
// Roster Subscription) contact invites. An invite token, checked before authentication with
// `<preauth xmlns='urn:xmpp:pars:0'/>`, lets the register module create an account even when open
// registration is off; the inviter and the new account then become mutual contacts.
import { buildForm, defineModule, duration, Jid, StanzaError, xml, z } from '../../lib/module-api.js';
import type { Element, PreAuthOrigin } from '../../lib/module-api.js';
import adhoc, { type CommandResult } from '../adhoc/index.js';
import presence from '../presence/index.js';
import roster, { emptyItem } from '../roster/index.js';
import { expiredPage, invitePage } from './page.js';
import { INVITE_PATH, INVITE_STORE, InviteStore, inviteUri, NS_PARS, redeemInvite, type Invite, type NewInvite, type Redeemed } from './store.js';

export { NS_PARS } from './store.js';
export type { Invite } from './store.js';

const NS_INVITE = 'urn:xmpp:invite';
const NS_IBR_TOKEN = 'urn:xmpp:ibr-token:0';
const NODE_INVITE = 'urn:xmpp:invite#invite';
const NODE_CREATE_ACCOUNT = 'urn:xmpp:invite#create-account';

export interface CreatedInvite {
  invite: Invite;
  uri: string;
  /** The landing page, when the server has an HTTP listener. */
  landingUrl: string | undefined;
}

export interface InvitesApi {
  create(spec: Omit<NewInvite, 'lifetimeMs'> & { lifetimeMs?: number }): Promise<CreatedInvite>;
  /** The token a `<preauth/>` validated earlier on this stream (`PreAuthOrigin.stream`). */
  tokenOf(stream: object): string | undefined;
  /** The invite of a token that can still create an account. */
  registrable(token: string): Promise<Invite | undefined>;
  /**
   * Creates an account with an invite: `create` runs only while the invite is valid, one use is
   * spent, and for a contact invite the inviter and the new account become mutual contacts.
   */
  redeem(token: string, user: string, create: () => Promise<void>): Promise<Redeemed>;
  list(): Promise<Invite[]>;
  revoke(token: string): Promise<boolean>;
}

export default defineModule({
  name: 'invites',
  xeps: [
    { xep: 401, version: '0.5.0', status: 'partial', note: 'no password reset invites' },
    { xep: 379, version: '0.3.3', status: 'partial', note: 'the server pre-approves a subscription request carrying a valid token; the inviter\'s request back is left to the client' },
    { xep: 445, version: '0.2.0', status: 'complete' },
  ],
  requires: [adhoc],
  optional: [roster, presence],
  config: z.strictObject({
    /** How long an invite stays valid unless its creator says otherwise. */
    lifetime: duration().default(7 * 24 * 3600 * 1000),
    /** The longest lifetime anyone may ask for. */
    maxLifetime: duration().default(90 * 24 * 3600 * 1000),
    /** Contact invites made by users (not admins) may also create an account on this server. */
    usersMayInviteNewUsers: z.boolean().default(false),
    /** Unexpired invites one user may have at a time. */
    maxPendingPerUser: z.number().int().min(1).max(1000).default(10),
    /** Accounts one multi-use invite may create at most. */
    maxUses: z.number().int().min(1).max(100_000).default(1000),
    /** Serve a landing page for each invite on the HTTP listeners (/invite/<token>). */
    landingPage: z.boolean().default(true),
  }),
  setup(ctx): InvitesApi {
    const store = new InviteStore(ctx.keyval(INVITE_STORE), ctx.host);
    const rosterApi = ctx.deps.has(roster) ? ctx.deps.get(roster) : undefined;
    const commands = ctx.deps.get(adhoc);
    /** Tokens a `<preauth/>` validated, per stream; gone with the stream. */
    const validated = new WeakMap<object, string>();
    const isAdmin = (from: Jid) => ctx.server.admins.some((a) => a.equals(from.bare()));
    const isLocalUser = (from: Jid) => from.local !== undefined && from.domain === ctx.host;

    const landingUrl = (invite: Invite): string | undefined => {
      const base = ctx.config.landingPage ? ctx.http.baseUrl() : undefined;
      return base === undefined ? undefined : `${base}${INVITE_PATH}${invite.token}`;
    };

    async function create(spec: Omit<NewInvite, 'lifetimeMs'> & { lifetimeMs?: number }): Promise<CreatedInvite> {
      const lifetimeMs = Math.min(spec.lifetimeMs ?? ctx.config.lifetime, ctx.config.maxLifetime);
      const uses = Math.min(spec.uses, ctx.config.maxUses);
      const invite = await store.create({ ...spec, lifetimeMs, uses });
      // The token is the secret: never logged.
      ctx.log.info({ kind: invite.kind, inviter: invite.inviter, uses, createdBy: spec.createdBy }, 'invite created');
      return { invite, uri: inviteUri(invite, ctx.host), landingUrl: landingUrl(invite) };
    }

    async function registrable(token: string): Promise<Invite | undefined> {
      const invite = await store.valid(token);
      return invite?.register ? invite : undefined;
    }

    /** XEP-0379 / XEP-0401 §4: the inviter and the invitee subscribe to each other. */
    async function befriend(inviter: string, user: string): Promise<void> {
      if (!rosterApi) return;
      const a = Jid.of(inviter, ctx.host);
      const b = Jid.of(user, ctx.host);
      const both = (contact: Jid) => (current: ReturnType<typeof emptyItem> | undefined) => ({ ...(current ?? emptyItem(contact)), subscription: 'both' as const, ask: false });
      await rosterApi.update(a, b, both(b));
      await rosterApi.update(b, a, both(a));
    }

    async function redeem(token: string, user: string, createAccount: () => Promise<void>): Promise<Redeemed> {
      if (!(await registrable(token))) return { ok: false };
      const result = await redeemInvite(store, token, user, createAccount);
      if (result.ok && result.invite.kind === 'contact' && result.invite.inviter !== undefined) {
        try {
          if (await ctx.accounts.exists(ctx.host, result.invite.inviter)) await befriend(result.invite.inviter, user);
        } catch (err) {
          ctx.log.warn({ err, user }, 'the new account and its inviter could not be made contacts');
        }
      }
      if (result.ok) ctx.log.info({ user, kind: result.invite.kind, inviter: result.invite.inviter }, 'account created with an invite');
      return result;
    }

    // ---------------------------------------------------------------- before authentication

    // XEP-0401 §5 / XEP-0445 §3: the token, checked before the registration it allows.
    ctx.preAuthIq({ ns: NS_PARS, name: 'preauth', type: 'set' }, async (iq: Element, origin: PreAuthOrigin) => {
      const token = iq.getChild('preauth', NS_PARS)?.attrs.token;
      if (typeof token !== 'string' || token === '') return StanzaError.badRequest('the preauth element needs a token');
      if (origin.host !== ctx.host || !(await registrable(token))) {
        return StanzaError.itemNotFound('this invite is not valid: it expired, was used up or never existed');
      }
      validated.set(origin.stream, token);
      return undefined;
    });
    ctx.streamFeature({ stage: 'pre-auth', build: () => xml('register', { xmlns: NS_INVITE }) });
    ctx.streamFeature({ stage: 'pre-auth', build: () => xml('register', { xmlns: NS_IBR_TOKEN }) });

    // XEP-0379 §4: someone who already has an account opens a contact invite; their client sends
    // the token with its subscription request. A valid one pre-approves the request (RFC 6121
    // §3.4), so the presence module answers it with `subscribed` as it handles it.
    if (rosterApi) {
      const roster = rosterApi;
      ctx.on('presence/inbound', async ({ stanza }) => {
        if (stanza.type !== 'subscribe' || stanza.to?.local === undefined || stanza.to.domain !== ctx.host) return undefined;
        const token = stanza.el.getChild('preauth', NS_PARS)?.attrs.token;
        if (typeof token !== 'string' || token === '') return undefined;
        const invite = await store.valid(token);
        if (!invite || invite.kind !== 'contact' || invite.inviter !== stanza.to.local) return undefined;
        if (!(await store.use(token, undefined))) return undefined;
        const user = stanza.to.bare();
        const contact = stanza.from.bare();
        await roster.update(user, contact, (current) => ({ ...(current ?? emptyItem(contact)), approved: true }));
        ctx.log.info({ user: user.toString(), contact: contact.toString() }, 'subscription pre-approved by an invite');
        return undefined;
      }, { before: [presence] });
    }

    // ---------------------------------------------------------------- ad-hoc commands

    const expireField = (invite: Invite) => new Date(invite.expires).toISOString().replace(/\.\d{3}Z$/, 'Z');
    function resultForm(created: CreatedInvite): CommandResult {
      return {
        status: 'completed',
        form: buildForm('result', [
          { var: 'uri', type: 'text-single', label: 'Invite URI', values: [created.uri] },
          ...(created.landingUrl === undefined ? [] : [{ var: 'landing-url', type: 'text-single' as const, label: 'Invite web page', values: [created.landingUrl] }]),
          { var: 'expire', type: 'text-single', label: 'Expires', values: [expireField(created.invite)] },
        ], { title: 'Your invite has been created' }),
      };
    }

    async function pendingOf(user: string): Promise<number> {
      const now = Date.now();
      return (await store.list()).filter((i) => i.inviter === user && i.expires > now).length;
    }

    // XEP-0401 §5.1 / XEP-0379: a user invites a contact (who may also get an account here).
    commands.add({
      node: NODE_INVITE,
      name: 'Invite a contact',
      allowed: isLocalUser,
      async run(req) {
        const user = req.from.local!;
        if ((await pendingOf(user)) >= ctx.config.maxPendingPerUser) {
          throw StanzaError.resourceConstraint(`you have ${ctx.config.maxPendingPerUser} unused invites; wait until they are used or expire`);
        }
        const register = isAdmin(req.from) || ctx.config.usersMayInviteNewUsers;
        return resultForm(await create({ kind: 'contact', inviter: user, register, uses: 1, createdBy: req.from.bare().toString() }));
      },
    });

    // XEP-0401 §5.2: an admin invites someone to create an account.
    commands.add({
      node: NODE_CREATE_ACCOUNT,
      name: 'Create an account invite',
      allowed: isAdmin,
      async run(req) {
        return resultForm(await create({ kind: 'account', register: true, uses: 1, createdBy: req.from.bare().toString() }));
      },
    });

    // ---------------------------------------------------------------- landing page

    if (ctx.config.landingPage) {
      ctx.http.route({ methods: ['GET', 'HEAD'], pathPrefix: INVITE_PATH }, async (req, res) => {
        // Tokens are base64url: nothing to decode, and anything else names no invite.
        const token = (req.url ?? '').slice(INVITE_PATH.length).split(/[?#]/)[0] ?? '';
        const invite = await store.valid(token);
        // Tokens are per host: another host's instance may know this one.
        if (!invite && ctx.server.hosts.length > 1) return 'pass';
        if (!invite) {
          const html = expiredPage(ctx.host);
          res.writeHead(404, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(html) });
          res.end(req.method === 'HEAD' ? undefined : html);
          return;
        }
        const html = invitePage({ host: ctx.host, uri: inviteUri(invite, ctx.host), inviter: invite.kind === 'contact' ? `${invite.inviter}@${ctx.host}` : undefined, expires: new Date(invite.expires) });
        res.writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'cache-control': 'no-store',
          'x-content-type-options': 'nosniff',
          'content-security-policy': "default-src 'none'",
          'content-length': Buffer.byteLength(html),
        });
        res.end(req.method === 'HEAD' ? undefined : html);
      });
    }

    ctx.setInterval(() => {
      store.prune().catch((err: unknown) => ctx.log.warn({ err }, 'pruning expired invites failed'));
    }, 3_600_000);

    // An account's invites go with it.
    ctx.on('account/deleted', async ({ host, user }) => {
      if (host !== ctx.host) return;
      for (const i of await store.list()) if (i.inviter === user) await store.revoke(i.token);
    });

    return {
      create,
      tokenOf: (stream) => validated.get(stream),
      registrable,
      redeem,
      list: () => store.list(),
      revoke: (token) => store.revoke(token),
    };
  },
});
