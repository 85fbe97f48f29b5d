// The `send` access rule (lib/acl): which entities a local client may send stanzas to, e.g. a
// kiosk account that may only talk to support@. Stanzas to the server itself and to the
// account's own JIDs always pass: a client needs them to work at all.
import { defineModule, StanzaError, z } from '../../lib/module-api.js';

export default defineModule({
  name: 'acl',
  defaultEnabled: true,
  config: z.strictObject({}),
  setup(ctx) {
    ctx.on('stanza/inbound', ({ session, stanza }) => {
      const to = stanza.to;
      if (to === undefined || (to.local === undefined && to.domain === ctx.host)) return undefined;
      if (to.bare().equals(session.jid.bare())) return undefined;
      if (ctx.access.allowed('send', { jid: session.jid, target: to, ip: session.remoteAddress })) return undefined;
      // RFC 6120 §8.3.3.12: a local service policy forbids it.
      return new StanzaError('policy-violation', { text: 'you may not send to this address' });
    });
  },
});
