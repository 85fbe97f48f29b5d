// XEP-0215 External Service Discovery (urn:xmpp:extdisco:2): tells local users about STUN and
// TURN servers, with short-lived TURN credentials made by the "REST API for TURN" scheme
// (draft-uberti-behave-turn-rest; coturn's `use-auth-secret` / `static-auth-secret`).
import { createHmac } from 'node:crypto';
import { defineModule, duration, StanzaError, xml, z } from '../../lib/module-api.js';
import type { Element, IqStanza, Jid } from '../../lib/module-api.js';

export const NS_EXTDISCO = 'urn:xmpp:extdisco:2';

const service = z.strictObject({
  type: z.enum(['stun', 'stuns', 'turn', 'turns']),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).optional(),
  transport: z.enum(['udp', 'tcp']).optional(),
  /** A name for users. */
  name: z.string().min(1).optional(),
  /** The TURN server's shared secret (coturn: static-auth-secret); users then get temporary credentials. */
  secret: z.string().min(1).optional(),
  /** How long temporary credentials last. */
  ttl: duration().prefault('1d'),
});

export type ExternalService = z.output<typeof service>;

/** Temporary TURN credentials: username `<expiry unix time>:<bare JID>`, password base64(HMAC-SHA1(secret, username)). */
export function turnCredentials(secret: string, user: string, expires: number): { username: string; password: string } {
  const username = `${Math.floor(expires / 1000)}:${user}`;
  return { username, password: createHmac('sha1', secret).update(username).digest('base64') };
}

/** XEP-0082 dateTime in UTC, whole seconds. */
function dateTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.000Z$/, 'Z');
}

export default defineModule({
  name: 'extdisco',
  xeps: [{ xep: 215, version: '1.0.0', status: 'complete', note: 'static STUN/TURN list; TURN REST API credentials' }],
  features: { host: [NS_EXTDISCO] },
  config: z.strictObject({
    services: z.array(service).default([]),
  }),
  setup(ctx) {
    const services = ctx.config.services;

    function describe(s: ExternalService, user: Jid, withCredentials: boolean): Element {
      const attrs: Record<string, string | undefined> = {
        type: s.type,
        host: s.host,
        port: s.port === undefined ? undefined : String(s.port),
        transport: s.transport,
        name: s.name,
      };
      if (s.secret !== undefined) {
        if (withCredentials) {
          const expires = Date.now() + s.ttl;
          const creds = turnCredentials(s.secret, user.bare().toString(), expires);
          Object.assign(attrs, { username: creds.username, password: creds.password, expires: dateTime(expires) });
        } else {
          attrs.restricted = 'true';
        }
      }
      return xml('service', attrs);
    }

    /** Only this host's users get the list: credentials are for them alone. */
    function local(iq: IqStanza): Jid | StanzaError {
      const from = iq.from;
      if (from.domain !== ctx.host || from.local === undefined) return StanzaError.forbidden('external services are for local users');
      return from;
    }

    // §3.1, §3.2: all services, or those of one type.
    ctx.iq.get({ ns: NS_EXTDISCO, name: 'services', to: ['host'] }, (iq) => {
      const user = local(iq);
      if (user instanceof StanzaError) return user;
      const type = iq.payload!.attrs.type as string | undefined;
      const list = services.filter((s) => type === undefined || type === '' || s.type === type);
      return xml('services', { xmlns: NS_EXTDISCO, type: type || undefined }, list.map((s) => describe(s, user, true)));
    });

    // §3.3: credentials for one service, named by host and type (and port among several).
    ctx.iq.get({ ns: NS_EXTDISCO, name: 'credentials', to: ['host'] }, (iq) => {
      const user = local(iq);
      if (user instanceof StanzaError) return user;
      const wanted = iq.payload!.getChild('service');
      const host = wanted?.attrs.host as string | undefined;
      const type = wanted?.attrs.type as string | undefined;
      if (!wanted || !host || !type) return StanzaError.badRequest('name the service with host and type');
      const port = wanted.attrs.port === undefined ? undefined : Number(wanted.attrs.port);
      const found = services.find((s) => s.host === host && s.type === type && (port === undefined || s.port === port));
      if (!found) return StanzaError.itemNotFound();
      return xml('credentials', { xmlns: NS_EXTDISCO }, describe(found, user, true));
    });
  },
});
