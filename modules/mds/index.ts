// XEP-0490 Message Displayed Synchronization, the server's part: the private PEP node
// 'urn:xmpp:mds:displayed:0' where a user's clients keep, per chat, the stanza-id of the last
// message displayed, and server assist: a client puts a <displayed/> of that namespace next to
// its XEP-0333 displayed marker, and the server strips it and publishes it for the user.
//
// The node is private whoever creates it (a client's publish, or server assist): whitelist access
// (only the account), as many items as the service allows, no last item on subscription
// (XEP-0490 §3.2, §7, Business Rules). Clients that want updates ask with
// 'urn:xmpp:mds:displayed:0+notify' in their caps (§3.3); PEP delivers to them.
import { defineModule, NS, z } from '../../lib/module-api.js';
import type { Element } from '../../lib/module-api.js';
import pep, { type NodeConfig } from '../pep/index.js';

export const NS_MDS = 'urn:xmpp:mds:displayed:0';
export const NS_MDS_ASSIST = 'urn:xmpp:mds:server-assist:0';

export const MDS_NODE_CONFIG: Partial<NodeConfig> = {
  accessModel: 'whitelist',
  maxItems: 'max',
  sendLastPublishedItem: 'never',
  persistItems: true,
};

const mds = defineModule({
  name: 'mds',
  xeps: [{ xep: 490, version: '1.0.1', status: 'complete', note: 'private node defaults and server assist' }],
  features: { account: [NS_MDS_ASSIST] },
  defaultEnabled: true,
  requires: [pep],
  config: z.strictObject({}),
  setup(ctx) {
    const pepApi = ctx.deps.get(pep);
    pepApi.setNodeDefaults(NS_MDS, MDS_NODE_CONFIG);

    // Business Rules: stripped before the archive stores the message and before carbons copy it.
    ctx.on('message/outbound', async ({ session, stanza }) => {
      const el = stanza.el;
      const displayed = el.getChildren('displayed', NS_MDS);
      if (displayed.length === 0) return undefined;
      // Security Considerations: the stanza-id must not reach the recipient.
      el.children = el.children.filter((c) => typeof c === 'string' || !(c.name === 'displayed' && c.attrs.xmlns === NS_MDS));
      // The item id is the verbatim 'to' (Business Rules: the server does not validate it further).
      const itemId = (el.attrs.to as string | undefined) ?? session.jid.bare().toString();
      const payload: Element = displayed[0];
      try {
        await pepApi.publish(session.jid.bare(), NS_MDS, { id: itemId, payload }, { config: MDS_NODE_CONFIG });
      } catch (err) {
        ctx.log.warn({ err, user: session.jid.bare().toString() }, 'server-assisted displayed publication failed');
      }
      // A client must not send it in an otherwise empty message (§3.5.3); such a message has nothing left to deliver.
      return el.getChildElements().length === 0 ? 'drop' : undefined;
    }, { before: ['mam', 'carbons'] });
  },
});

export default mds;
