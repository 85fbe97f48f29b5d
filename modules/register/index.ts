// XEP-0077 In-Band Registration. Logged-in users can always change their password and remove
// their account; creating accounts before authentication is off unless the admin turns it on
// (XEP-0479 lists it as supported, off by default).
import { defineModule, Jid, NS, StanzaError, xml, z } from '../../lib/module-api.js';
import type { Element, IqOrigin, IqStanza, PreAuthIqHandler, PreAuthOrigin } from '../../lib/module-api.js';
import { WindowCounter } from './rate-limit.js';
import invites, { NS_PARS, type InvitesApi } from '../invites/index.js';

const HOUR_MS = 3_600_000;

export interface RegisterApi {
  /** Answers an IQ a client sent before authenticating (the core calls it once it routes them). */
  preAuthIq: PreAuthIqHandler;
}

/** AccountError codes, read structurally (the class is not part of module-api). */
function accountErrorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('PARLEY_ERR_') ? code : undefined;
}

/** `<username/>` and `<password/>` texts; empty elements count as missing (XEP-0077 §3.1 note). */
function credentials(query: Element): { username: string | undefined; password: string | undefined } {
  const text = (name: string) => {
    const t = query.getChildText(name);
    return t === null || t === '' ? undefined : t;
  };
  return { username: text('username'), password: text('password') };
}

export default defineModule({
  name: 'register',
  xeps: [{ xep: 77, version: '2.4', status: 'partial', note: 'no data forms' }],
  features: { host: [NS.register] },
  defaultEnabled: true,
  optional: [invites],
  config: z.strictObject({
    /** Lets anyone create an account from their client before logging in. */
    allowRegistration: z.boolean().default(false),
    /** Accounts one IP address may create per hour when registration is on. */
    registrationsPerIpPerHour: z.number().int().min(1).max(10_000).default(3),
    /** The <instructions/> shown by clients that register in-band. */
    instructions: z.string().min(1).max(1000).default('Choose a username and password for your new account.'),
  }),
  setup(ctx): RegisterApi {
    const perIp = new WindowCounter(ctx.config.registrationsPerIpPerHour, HOUR_MS);
    const invitesApi: InvitesApi | undefined = ctx.deps.has(invites) ? ctx.deps.get(invites) : undefined;

    // ---------------------------------------------------------------- logged-in users

    // XEP-0077 §3.1: a registered entity learns that it is registered, and under which name.
    ctx.iq.get({ ns: NS.register, name: 'query', to: ['host', 'self'] }, (iq) => {
      // Someone else's account (another host, another server): nothing to register here once
      // authenticated (XEP-0077 §3.1: registration happens before authentication).
      if (iq.from.local === undefined || iq.from.domain !== ctx.host) return StanzaError.serviceUnavailable();
      return xml('query', { xmlns: NS.register }, xml('registered'), xml('username', {}, iq.from.local), xml('password'));
    });

    ctx.iq.set({ ns: NS.register, name: 'query', to: ['host', 'self'] }, async (iq: IqStanza, origin: IqOrigin) => {
      const query = iq.payload!;
      const user = iq.from.local;
      // Only the account's own sessions; another server cannot remove or re-key our accounts.
      if (user === undefined || iq.from.domain !== ctx.host || !origin.session) return StanzaError.forbidden();
      if (query.getChild('remove')) {
        // XEP-0077 §3.2: <remove/> must be the only child.
        if (query.getChildElements().length !== 1) return StanzaError.badRequest('<remove/> must be alone in the query');
        return removeAccount(user);
      }
      return changePassword(user, query, origin);
    });

    async function removeAccount(user: string): Promise<StanzaError | undefined> {
      const account = Jid.of(user, ctx.host);
      // account/deleted makes every module purge the account's data.
      if (!(await ctx.accounts.delete(ctx.host, user))) return StanzaError.registrationRequired();
      ctx.log.info({ user }, 'account removed in-band by its owner');
      // XEP-0077 §3.2: then not-authorized to every session, after the router has written the
      // result (as the roster module defers its interim pushes).
      ctx.setTimeout(() => {
        for (const s of ctx.sessions.of(account)) s.close('not-authorized', 'the account was removed');
      }, 0);
      return undefined;
    }

    async function changePassword(user: string, query: Element, origin: IqOrigin): Promise<StanzaError | undefined> {
      const { username, password } = credentials(query);
      // XEP-0077 §3.3: incomplete information is a bad-request.
      if (username === undefined) return StanzaError.badRequest('include <username/> and <password/>');
      let named: Jid | undefined;
      try {
        // Clients send the localpart; some send the bare JID.
        named = username.includes('@') ? Jid.parse(username) : Jid.of(username, ctx.host);
      } catch {
        named = undefined;
      }
      if (!named || named.local !== user || named.domain !== ctx.host) {
        return StanzaError.badRequest('the username is not the one of this account');
      }
      // XEP-0077 §3.3: an empty password never replaces the existing one.
      if (password === undefined) return StanzaError.notAcceptable('the password must not be empty');
      // XEP-0077 §3.3 / §9: not over a channel that is not encrypted.
      if (!origin.session?.secure) return StanzaError.notAuthorized('change your password over an encrypted connection');
      try {
        await ctx.accounts.setPassword(ctx.host, user, password);
      } catch (err) {
        if (accountErrorCode(err) === 'PARLEY_ERR_BAD_PASSWORD') return StanzaError.notAcceptable('this password cannot be used');
        throw err;
      }
      ctx.log.info({ user }, 'password changed in-band');
      return undefined;
    }

    // ---------------------------------------------------------------- before authentication

    /**
     * The invite this registration comes with (XEP-0401 / XEP-0445): validated by a `<preauth/>`
     * IQ earlier on the stream, or carried in the query itself.
     */
    async function inviteToken(query: Element, origin: PreAuthOrigin): Promise<string | undefined> {
      if (!invitesApi) return undefined;
      const inline = query.getChild('preauth', NS_PARS)?.attrs.token;
      if (typeof inline === 'string' && inline !== '') return (await invitesApi.registrable(inline)) ? inline : undefined;
      return invitesApi.tokenOf(origin.stream);
    }

    async function preAuthIq(iq: Element, origin: PreAuthOrigin): Promise<Element | StanzaError | undefined> {
      const query = iq.getChild('query', NS.register);
      if (!query || iq.getChildElements().length !== 1) return StanzaError.badRequest();
      if (origin.host !== ctx.host) return StanzaError.serviceUnavailable();
      const token = await inviteToken(query, origin);
      // XEP-0077 §3.1: a host without in-band registration answers service-unavailable; with
      // invites only, an invite opens it (XEP-0401 §4).
      if (!ctx.config.allowRegistration && invitesApi === undefined) return StanzaError.serviceUnavailable();
      if (iq.attrs.type === 'get') {
        return xml('query', { xmlns: NS.register }, xml('instructions', {}, ctx.config.instructions), xml('username'), xml('password'));
      }
      if (iq.attrs.type !== 'set') return StanzaError.badRequest();
      // XEP-0077 §3.2: nothing to remove without an account.
      if (query.getChild('remove')) return StanzaError.unexpectedRequest('log in to remove your account');
      if (!ctx.config.allowRegistration && token === undefined) {
        return StanzaError.forbidden('registration on this server needs an invite');
      }
      // XEP-0077 §9: registration sends a password; never in the clear.
      if (!origin.secure) return StanzaError.notAuthorized('register over an encrypted connection');
      const { username, password } = credentials(query);
      // XEP-0077 §3.1: every requested field, non-empty.
      if (username === undefined || password === undefined) return StanzaError.notAcceptable('give a username and a password');
      // The access rule governs open registration; an invite is the admin's own say-so.
      if (token === undefined && !ctx.access.allowed('register', { ip: origin.remoteAddress, host: origin.host })) return StanzaError.forbidden('registration is not allowed from your address');
      // An invite is its own limit; open registration is limited per address.
      if (token === undefined && !perIp.allows(origin.remoteAddress)) {
        return StanzaError.resourceConstraint('too many accounts were created from your address; try again later');
      }
      let user: string;
      try {
        user = Jid.of(username, ctx.host).local!;
      } catch {
        return StanzaError.notAcceptable('this username cannot be used');
      }
      try {
        if (token !== undefined && invitesApi) {
          const redeemed = await invitesApi.redeem(token, user, () => ctx.accounts.create(ctx.host, user, password));
          if (!redeemed.ok) return StanzaError.forbidden('the invite expired or was used up meanwhile');
        } else {
          await ctx.accounts.create(ctx.host, user, password);
        }
      } catch (err) {
        const code = accountErrorCode(err);
        // XEP-0077 §3.1: the name is taken.
        if (code === 'PARLEY_ERR_ACCOUNT_EXISTS') return StanzaError.conflict('this username is taken');
        if (code === 'PARLEY_ERR_BAD_USERNAME') return StanzaError.notAcceptable('this username cannot be used');
        if (code === 'PARLEY_ERR_BAD_PASSWORD') return StanzaError.notAcceptable('this password cannot be used');
        throw err;
      }
      if (token === undefined) perIp.record(origin.remoteAddress);
      ctx.log.info({ user, remote: origin.remoteAddress, invited: token !== undefined }, 'account registered in-band');
      await ctx.notify('account/created', { host: ctx.host, user });
      return undefined;
    }

    if (ctx.config.allowRegistration || invitesApi !== undefined) {
      ctx.preAuthIq({ ns: NS.register, name: 'query', type: 'get' }, preAuthIq);
      ctx.preAuthIq({ ns: NS.register, name: 'query', type: 'set' }, preAuthIq);
      ctx.streamFeature({ stage: 'pre-auth', build: () => xml('register', { xmlns: NS.registerFeature }) });
    }

    return { preAuthIq };
  },
});
