// Invites made without a running server (`parley invite create`): the same store and links the
// module uses, so the server honours them as soon as it runs.
import type { KeyValStore } from '../../lib/module-api.js';
import { INVITE_PATH, INVITE_STORE, InviteStore, inviteUri, type Invite } from './store.js';

export interface OfflineInviteOptions {
  host: string;
  /** Accounts it may create. */
  uses: number;
  lifetimeMs: number;
  /** Make the invitee a contact of this local user (XEP-0379) instead of a plain account invite. */
  contactOf?: string;
  /** The server's HTTP base URL, when it has one (for the landing page). */
  baseUrl: string | undefined;
}

export interface OfflineInvite {
  invite: Invite;
  uri: string;
  landingUrl: string | undefined;
}

export async function createInviteOffline(keyval: (store: string) => KeyValStore, opts: OfflineInviteOptions): Promise<OfflineInvite> {
  const store = new InviteStore(keyval(INVITE_STORE), opts.host);
  const invite = await store.create({
    kind: opts.contactOf === undefined ? 'account' : 'contact',
    ...(opts.contactOf === undefined ? {} : { inviter: opts.contactOf }),
    register: true,
    lifetimeMs: opts.lifetimeMs,
    uses: opts.uses,
    createdBy: 'cli',
  });
  const base = opts.baseUrl?.replace(/\/+$/, '');
  return { invite, uri: inviteUri(invite, opts.host), landingUrl: base === undefined ? undefined : `${base}${INVITE_PATH}${invite.token}` };
}

export async function listInvitesOffline(keyval: (store: string) => KeyValStore, host: string): Promise<Invite[]> {
  return new InviteStore(keyval(INVITE_STORE), host).list();
}
