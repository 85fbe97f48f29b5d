// XEP-0115 Entity Capabilities for the server itself: the hash of its disco#info, offered as a
// stream feature (§6.3) so clients can skip querying the server's features when they know it.
import { defineModule, Jid, NS, xml, z } from '../../lib/module-api.js';
import type { Element } from '../../lib/module-api.js';
import disco, { ANY_NODE } from '../disco/index.js';
import { capsVer } from './ver.js';

export * from './ver.js';

/** The `node` of the server's caps: identifies the software (XEP-0115 §4). */
export const CAPS_NODE = 'https://parley.im';

export interface CapsApi {
  /** The server's current `ver` (sha-1), or undefined while it is being recomputed. */
  ver(): string | undefined;
}

export default defineModule({
  name: 'caps',
  xeps: [{ xep: 115, version: '1.6.0', status: 'complete' }],
  // §6.2: an entity that supports caps advertises the namespace.
  features: { host: [NS.caps] },
  defaultEnabled: true,
  requires: [disco],
  config: z.strictObject({}),
  setup(ctx): CapsApi {
    const api = ctx.deps.get(disco);
    const hostJid = Jid.parse(ctx.host);
    const publicInfo = () => api.info({ target: 'host', jid: hostJid, node: undefined, from: undefined });
    let current: string | undefined;
    let generation = 0;

    const recompute = async (): Promise<void> => {
      const mine = ++generation;
      // Offer nothing rather than a stale hash: a client caches features by ver.
      current = undefined;
      try {
        const info = await publicInfo();
        if (mine === generation && info) current = capsVer(info);
      } catch (err) {
        ctx.log.error({ err }, 'cannot compute the server caps hash');
      }
    };

    const build = (): Element | undefined =>
      current === undefined ? undefined : xml('c', { xmlns: NS.caps, hash: 'sha-1', node: CAPS_NODE, ver: current });
    ctx.streamFeature({ stage: 'pre-auth', build });
    ctx.streamFeature({ stage: 'post-auth', build });

    // §6.2: disco#info to node#ver answers the same as without a node.
    api.addInfoProvider({ target: 'host', node: ANY_NODE }, (q) =>
      current !== undefined && q.node === `${CAPS_NODE}#${current}` ? publicInfo() : undefined);

    api.onChange(() => void recompute());
    void recompute();
    return { ver: () => current };
  },
});
