// XEP-0012 Last Activity: the server's uptime, and for an account the seconds since it last
// logged out with the status of its last unavailable presence, told only to those allowed to see
// its presence (XEP-0012 §3, §8: anything else would leak presence).
import { defineModule, Jid, StanzaError, xml, z } from '../../lib/module-api.js';
import type { Element, IqStanza, SessionHandle } from '../../lib/module-api.js';
import roster, { hasFrom } from '../roster/index.js';

export const NS_LAST = 'jabber:iq:last';

const KEY = 'logout';

interface Logout {
  /** Milliseconds since the epoch. */
  when: number;
  status?: string;
}

function parseLogout(raw: string | undefined): Logout | undefined {
  if (raw === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(raw);
    if (typeof v !== 'object' || v === null) return undefined;
    const { when, status } = v as { when?: unknown; status?: unknown };
    if (typeof when !== 'number') return undefined;
    return typeof status === 'string' ? { when, status } : { when };
  } catch {
    return undefined;
  }
}

const seconds = (ms: number) => String(Math.max(0, Math.floor(ms / 1000)));

export interface LastApi {
  /** When the account last logged out, and with which status; undefined if never (or online since). */
  lastLogout(user: string): Promise<Logout | undefined>;
}

export default defineModule({
  name: 'last',
  xeps: [{ xep: 12, version: '2.0', status: 'complete' }],
  features: { host: [NS_LAST], account: [NS_LAST] },
  defaultEnabled: true,
  optional: [roster],
  config: z.strictObject({}),
  setup(ctx): LastApi {
    const store = ctx.keyval('last');
    const startedAt = Date.now();
    /** The status of the last unavailable presence a session sent. */
    const status = ctx.sessionState<string | undefined>('unavailable-status', () => undefined);
    const rosterApi = ctx.deps.has(roster) ? ctx.deps.get(roster) : undefined;

    /** XEP-0012 §3: the account itself, or an entity it shares its presence with. */
    async function mayKnow(owner: Jid, requester: Jid): Promise<boolean> {
      if (requester.bare().equals(owner.bare())) return true;
      if (!rosterApi) return false;
      const item = await rosterApi.get(owner.bare(), requester.bare());
      return item !== undefined && hasFrom(item.subscription);
    }

    const lastLogout = async (user: string) => parseLogout(await store.get(ctx.host, user, KEY));

    // XEP-0012 §5: the server's uptime.
    ctx.iq.get({ ns: NS_LAST, name: 'query', to: ['host'] }, () => xml('query', { xmlns: NS_LAST, seconds: seconds(Date.now() - startedAt) }));

    // XEP-0012 §3: an account, answered by its server.
    ctx.iq.get({ ns: NS_LAST, name: 'query', to: ['self', 'bare'] }, async (iq: IqStanza): Promise<Element | StanzaError> => {
      const owner = iq.to!.bare();
      if (!(await mayKnow(owner, iq.from))) return StanzaError.forbidden();
      // "at least one connected or available resource": 0.
      if (ctx.sessions.of(owner).length > 0) return xml('query', { xmlns: NS_LAST, seconds: '0' });
      const last = await lastLogout(owner.local!);
      // Never logged in: nothing to tell, answered like an account without the information.
      if (!last) return StanzaError.serviceUnavailable();
      return xml('query', { xmlns: NS_LAST, seconds: seconds(Date.now() - last.when) }, last.status ?? null);
    });

    // XEP-0012 §4: a query to a full JID reaches the client only from those allowed to see the
    // user's presence; the server answers everyone else with forbidden.
    ctx.on('stanza/outgoing', async ({ session, stanza }) => {
      if (stanza.name !== 'iq' || stanza.attrs.type !== 'get') return;
      const query = stanza.getChild('query', NS_LAST);
      if (!query || stanza.getChildElements().length !== 1) return;
      const from = Jid.tryParse(stanza.attrs.from as string | undefined);
      if (!from || (await mayKnow(session.jid, from))) return;
      const reply = xml(
        'iq',
        { type: 'error', id: stanza.attrs.id as string | undefined, from: session.jid.toString(), to: from.toString() },
        xml('query', { xmlns: NS_LAST }),
        StanzaError.forbidden().toElement(),
      );
      await ctx.send(reply);
      return 'drop';
    });

    // The status text of a session's last unavailable presence (XEP-0012 §3); available presence
    // since then makes it stale.
    ctx.on('stanza/inbound', ({ session, stanza }) => {
      if (stanza.kind !== 'presence' || stanza.to !== undefined) return;
      if (stanza.type === 'available') session.set(status, undefined);
      if (stanza.type !== 'unavailable') return;
      const text = stanza.el.getChildText('status');
      session.set(status, text === null || text === '' ? undefined : text);
    });

    ctx.on('session/closed', async ({ session }: { session: SessionHandle }) => {
      if (session.host !== ctx.host || session.jid.local === undefined) return;
      // Only the account's last session logging out makes it offline.
      if (ctx.sessions.of(session.jid.bare()).length > 0) return;
      // A session ended by the removal of its account leaves nothing behind.
      if (!(await ctx.accounts.exists(ctx.host, session.jid.local))) return;
      const record: Logout = { when: Date.now() };
      const text = session.get(status);
      if (text !== undefined) record.status = text;
      // Off every logout's path: committed with the other writes of the moment.
      await store.setBatched(ctx.host, session.jid.local, KEY, JSON.stringify(record));
    });

    ctx.on('account/deleted', async ({ host, user }) => {
      if (host === ctx.host) await store.deleteAccount(host, user);
    });

    return { lastLogout };
  },
});
