// XEP-0157 Contact Addresses for XMPP Services: the server's `contact:` addresses, published as a
// `http://jabber.org/network/serverinfo` form (XEP-0128) in the server's disco#info.
import { defineModule, NS, xml, z } from '../../lib/module-api.js';
import type { Element } from '../../lib/module-api.js';
import disco from '../disco/index.js';

/**
 * The serverinfo form for a `contact:` config section (`abuse: [...]` becomes the field
 * `abuse-addresses`), fields in name order; undefined when no address is configured, since an
 * empty form tells clients nothing.
 */
export function serverInfoForm(contact: Readonly<Record<string, readonly string[] | undefined>>): Element | undefined {
  const kinds = Object.keys(contact)
    .filter((k) => (contact[k]?.length ?? 0) > 0)
    .sort();
  if (kinds.length === 0) return undefined;
  return xml(
    'x',
    { xmlns: NS.dataForms, type: 'result' },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, NS.serverInfo)),
    kinds.map((k) => xml('field', { var: `${k}-addresses` }, contact[k]!.map((uri) => xml('value', {}, uri)))),
  );
}

export default defineModule({
  name: 'contact_info',
  xeps: [{ xep: 157, version: '1.1.1', status: 'complete' }],
  defaultEnabled: true,
  requires: [disco],
  config: z.strictObject({}),
  setup(ctx) {
    const form = serverInfoForm(ctx.server.contact);
    if (form) ctx.deps.get(disco).addInfoProvider({ target: 'host' }, () => ({ forms: [form] }));
  },
});
