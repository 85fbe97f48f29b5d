// XEP-0199: answers pings to the server and, on behalf of an account, to its bare JID.
import { defineModule, NS, z } from '../../lib/module-api.js';

export default defineModule({
  name: 'ping',
  xeps: [{ xep: 199, version: '2.0.1', status: 'complete' }],
  features: { host: [NS.ping], account: [NS.ping] },
  defaultEnabled: true,
  config: z.strictObject({}),
  setup(ctx) {
    ctx.iq.get({ ns: NS.ping, name: 'ping', to: ['host', 'self', 'bare'] }, () => undefined);
  },
});
