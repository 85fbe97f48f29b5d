// XEP-0484 Fast Authentication Streamlining Tokens: after a password login over SASL2 a client
// asks for a token (`<request-token/>`), and reconnects with it in one round trip using an HT-*
// mechanism (./ht.ts), offered only inside SASL2 `<inline/>`.
//
// Tokens are per account and client (the SASL2 `<user-agent id/>`), bound to the mechanism they
// were requested for, stored hashed, and die with the account's password: each keeps a
// fingerprint of the SCRAM credential it was issued under, so a password change voids it.
// Rotation follows XEP-0484 §7's two-slot algorithm: `cur` (in use) and `new` (issued, not yet
// used); using `new` retires `cur`.
import { createHash, randomBytes } from 'node:crypto';
import { defineModule, duration, xml, z } from '../../lib/module-api.js';
import type { Database, StreamControl } from '../../lib/module-api.js';
import security from '../security/index.js';
import { HT_BLOCK_BYTES, HT_MECHANISMS, htHashOf, htMechanism, tokenKey, type TokenCandidate } from './ht.js';

export const FAST_NS = 'urn:xmpp:fast:0';

type Slot = 'cur' | 'new';

interface TokenRow {
  host: string;
  username: string;
  client_id: string;
  slot: Slot;
  mechanism: string;
  token_key: string;
  cred: string;
  expires_at: number;
}

const fastMigrations = [
  {
    version: 1,
    async up(db: Database['db']) {
      await db.schema
        .createTable('fast_token')
        .addColumn('host', 'text', (c) => c.notNull())
        .addColumn('username', 'text', (c) => c.notNull())
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('slot', 'text', (c) => c.notNull())
        .addColumn('mechanism', 'text', (c) => c.notNull())
        .addColumn('token_key', 'text', (c) => c.notNull())
        .addColumn('cred', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('fast_token_pk', ['host', 'username', 'client_id', 'slot'])
        .execute();
    },
  },
];

/** For client access management (XEP-0494): the clients holding tokens, and revocation. */
export interface FastApi {
  clients(user: string): Promise<Array<{ clientId: string; expiresAt: number }>>;
  /** Deletes every token of this client from the store, so no node accepts them again. */
  revoke(user: string, clientId: string): Promise<number>;
}

/** The clients' last successful token use on this server: which stored token, for <fast invalidate/> and rotation. */
interface Used {
  key: string;
  expiresAt: number;
}

const fast = defineModule({
  name: 'fast',
  xeps: [{ xep: 484, version: '0.2.0', status: 'partial', note: 'HT-SHA-256 and HT-SHA-512 (NONE, EXPR, UNIQ, ENDP); no TLS 0-RTT' }],
  defaultEnabled: true,
  // Tokens issued before the account turned a second factor on were earned without it: they go.
  optional: [security],
  migrations: fastMigrations,
  config: z.strictObject({
    /** How long a token lives; it is rotated once less than half of this is left. */
    tokenLifetime: duration()
      .prefault('14d')
      .refine((ms) => ms >= 60_000, { message: 'must be at least 1m' }),
  }),
  setup(ctx): FastApi {
    const db = ctx.storage.db;
    const lifetime = ctx.config.tokenLifetime;
    const used = new Map<string, Used>();
    const usedKey = (user: string, clientId: string) => `${user}\u0000${clientId}`;

    /** A fingerprint of the account's current password (its SCRAM-SHA-256 keys); undefined without one. */
    async function credential(user: string): Promise<string | undefined> {
      const { credential: c, real } = await ctx.accounts.scram(ctx.host, user, 'SHA-256');
      if (!real) return undefined;
      return createHash('sha256').update(c.salt).update(c.storedKey).update(c.serverKey).digest('base64');
    }

    async function rows(user: string, clientId: string): Promise<TokenRow[]> {
      return (await db
        .selectFrom('fast_token')
        .selectAll()
        .where('host', '=', ctx.host)
        .where('username', '=', user)
        .where('client_id', '=', clientId)
        .execute()) as TokenRow[];
    }

    const verifier = {
      async candidates(host: string, user: string, clientId: string, mechanism: string): Promise<TokenCandidate[]> {
        if (host !== ctx.host) return [];
        const cred = await credential(user);
        const now = Date.now();
        return (await rows(user, clientId))
          .filter((r) => r.mechanism === mechanism && Number(r.expires_at) > now && cred !== undefined && r.cred === cred)
          .map((r) => ({ key: Buffer.from(r.token_key, 'base64') }));
      },
      async used(host: string, user: string, clientId: string, _mechanism: string, key: Buffer): Promise<void> {
        const k = key.toString('base64');
        const row = (await rows(user, clientId)).find((r) => r.token_key === k);
        if (!row) return;
        if (row.slot === 'new') {
          // §7: using the newer token retires the older one.
          await db.transaction().execute(async (trx) => {
            await trx.deleteFrom('fast_token').where('host', '=', host).where('username', '=', user).where('client_id', '=', clientId).where('slot', '=', 'cur').execute();
            await trx.updateTable('fast_token').set({ slot: 'cur' }).where('host', '=', host).where('username', '=', user).where('client_id', '=', clientId).where('slot', '=', 'new').execute();
          });
        }
        used.set(usedKey(user, clientId), { key: k, expiresAt: Number(row.expires_at) });
        if (used.size > 10_000) used.delete(used.keys().next().value!);
      },
    };

    for (const { name, binding } of HT_MECHANISMS) ctx.saslMechanism(htMechanism(name, binding, verifier));
    const names = new Set(HT_MECHANISMS.map((m) => m.name));

    /** Issues a token into the `new` slot (replacing an unused one, §7). */
    async function issue(user: string, clientId: string, mechanism: string): Promise<ReturnType<typeof xml> | undefined> {
      const cred = await credential(user);
      if (cred === undefined) return undefined;
      // Longer than the hash's block, so that its hash is its HMAC key (see ./ht.ts).
      const hash = htHashOf(mechanism);
      const token = randomBytes(Math.ceil((HT_BLOCK_BYTES[hash] + 8) * 0.75)).toString('base64url');
      const expiresAt = Date.now() + lifetime;
      const row: TokenRow = { host: ctx.host, username: user, client_id: clientId, slot: 'new', mechanism, token_key: tokenKey(token, hash).toString('base64'), cred, expires_at: expiresAt };
      await db.transaction().execute(async (trx) => {
        await trx.deleteFrom('fast_token').where('host', '=', ctx.host).where('username', '=', user).where('client_id', '=', clientId).where('slot', '=', 'new').execute();
        await trx.insertInto('fast_token').values(row).execute();
      });
      return xml('token', { xmlns: FAST_NS, expiry: new Date(expiresAt).toISOString(), token });
    }

    async function invalidate(user: string, clientId: string, key: string): Promise<void> {
      await db.deleteFrom('fast_token').where('host', '=', ctx.host).where('username', '=', user).where('client_id', '=', clientId).where('token_key', '=', key).execute();
    }

    ctx.sasl2Inline({
      ns: FAST_NS,
      feature: ({ mechanisms }) => {
        const offered = mechanisms.filter((m) => names.has(m));
        return offered.length ? xml('fast', { xmlns: FAST_NS }, ...offered.map((m) => xml('mechanism', {}, m))) : undefined;
      },
      async handle(stream: StreamControl, el, outcome) {
        const user = stream.account.local!;
        const clientId = outcome.userAgent.id;
        if (clientId === undefined) return undefined;
        const requested = outcome.authenticate.getChild('request-token', FAST_NS);
        if (el.name === 'request-token') {
          const mechanism = el.attrs.mechanism as string | undefined;
          if (mechanism === undefined || !names.has(mechanism)) return undefined;
          return issue(user, clientId, mechanism);
        }
        if (el.name !== 'fast' || !names.has(outcome.mechanism)) return undefined;
        const last = used.get(usedKey(user, clientId));
        used.delete(usedKey(user, clientId));
        if (!last) return undefined;
        if (el.attrs.invalidate === 'true' || el.attrs.invalidate === '1') {
          // §8: gone at once; no new token unless one was requested.
          await invalidate(user, clientId, last.key);
          return undefined;
        }
        // §7: rotation once less than half the lifetime is left.
        if (!requested && last.expiresAt - Date.now() < lifetime / 2) return issue(user, clientId, outcome.mechanism);
        return undefined;
      },
    });

    ctx.on('account/deleted', async ({ host, user }) => {
      if (host !== ctx.host) return;
      await db.deleteFrom('fast_token').where('host', '=', host).where('username', '=', user).execute();
    });

    if (ctx.deps.has(security)) {
      const unsubscribe = ctx.deps.get(security).onSecondFactorEnabled(async (user) => {
        for (const k of used.keys()) if (k.startsWith(usedKey(user, ''))) used.delete(k);
        const r = await db.deleteFrom('fast_token').where('host', '=', ctx.host).where('username', '=', user).executeTakeFirst();
        if (Number(r.numDeletedRows) > 0) ctx.log.info({ account: `${user}@${ctx.host}`, tokens: Number(r.numDeletedRows) }, 'FAST tokens voided: the account turned a second factor on');
      });
      ctx.onStop(unsubscribe);
    }

    return {
      async clients(user) {
        const rows = (await db.selectFrom('fast_token').select(['client_id', 'expires_at']).where('host', '=', ctx.host).where('username', '=', user).execute()) as Array<Pick<TokenRow, 'client_id' | 'expires_at'>>;
        const latest = new Map<string, number>();
        const now = Date.now();
        for (const r of rows) if (Number(r.expires_at) > now) latest.set(r.client_id, Math.max(latest.get(r.client_id) ?? 0, Number(r.expires_at)));
        return [...latest].map(([clientId, expiresAt]) => ({ clientId, expiresAt }));
      },
      async revoke(user, clientId) {
        used.delete(usedKey(user, clientId));
        const r = await db.deleteFrom('fast_token').where('host', '=', ctx.host).where('username', '=', user).where('client_id', '=', clientId).executeTakeFirst();
        return Number(r.numDeletedRows);
      },
    };
  },
});

export default fast;
