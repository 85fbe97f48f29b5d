// XEP-0494 Client Access Management: a user lists what has access to their account (clients
// holding FAST tokens, app passwords, bound sessions with the user agent they gave at SASL2) and
// revokes any of them. Revocation deletes the credential from the shared store, so no node
// accepts it again, and ends that client's sessions on every node (RemoteSession.close goes over Redis).
import { defineModule, StanzaError, xml, z } from '../../lib/module-api.js';
import type { Element } from '../../lib/module-api.js';
import fast from '../fast/index.js';
import security from '../security/index.js';
import { camApi, type CamApi, type ClientEntry } from './api.js';

export type { CamApi, ClientEntry } from './api.js';

export const CAM_NS = 'urn:xmpp:cam:0';

export default defineModule({
  name: 'cam',
  xeps: [{ xep: 494, version: '0.1.0', status: 'partial', note: 'FAST tokens, app passwords and sessions; revoking a password login asks for a password reset' }],
  features: { account: [CAM_NS] },
  defaultEnabled: true,
  optional: [fast, security],
  config: z.strictObject({}),
  setup(ctx): CamApi {
    const fastApi = ctx.deps.has(fast) ? ctx.deps.get(fast) : undefined;
    const securityApi = ctx.deps.has(security) ? ctx.deps.get(security) : undefined;

    const api = camApi({ host: ctx.host, sessions: ctx.sessions, fast: fastApi, security: securityApi });

    const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
    function render(e: ClientEntry): Element {
      return xml(
        'client',
        { id: e.id, type: e.type, connected: String(e.connected) },
        e.firstSeen !== undefined ? xml('first-seen', {}, iso(e.firstSeen)) : null,
        e.lastSeen !== undefined ? xml('last-seen', {}, iso(e.lastSeen)) : null,
        xml('auth', {}, ...e.auth.map((a) => xml(a))),
        xml('permission', { status: 'unrestricted' }),
        e.software || e.device ? xml('user-agent', {}, e.software ? xml('software', {}, e.software) : null, e.device ? xml('device', {}, e.device) : null) : null,
      );
    }

    ctx.iq.get({ ns: CAM_NS, name: 'list', to: ['self'] }, async (iq) => {
      const list = await api.list(iq.from.local!);
      return xml('clients', { xmlns: CAM_NS }, ...list.map(render));
    });

    ctx.iq.set({ ns: CAM_NS, name: 'revoke', to: ['self'] }, async (iq) => {
      const id = iq.payload!.attrs.id;
      if (typeof id !== 'string' || id === '') throw StanzaError.badRequest('id is required');
      const result = await api.revoke(iq.from.local!, id, iq.from.bare().toString());
      if (result === 'not-found') throw StanzaError.itemNotFound('no such client');
      // A client that holds only the account password can be shut out only by changing it.
      if (result === 'password-reset-required') throw new StanzaError('service-unavailable', { appCondition: xml('password-reset-required', { xmlns: CAM_NS }) });
      return undefined;
    });
    return api;
  },
});
