// A stand-in for the presence module's part in these specs: initial presence (no `to`) sets the
// session's presence and fires presence/initial, unavailable clears it. Nothing is broadcast.
import { defineModule, z } from '../../../lib/module-api.js';

export const presenceStub = defineModule({
  name: 'presence-stub',
  config: z.strictObject({}),
  setup(ctx) {
    ctx.on('presence/outbound', async ({ session, stanza }) => {
      if (stanza.to) return undefined;
      if (stanza.type === 'unavailable') {
        session.setPresence(undefined);
        return 'claimed';
      }
      if (stanza.type !== 'available') return undefined;
      const initial = !session.available;
      session.setPresence(stanza.el);
      if (initial) await ctx.notify('presence/initial', { session });
      return 'claimed';
    });
  },
});
