// XEP-0092 Software Version: the server's name and version. The operating system is left out
// unless the admin opts in, since it helps attackers more than users (XEP-0092 §6).
import { type as osType, release as osRelease } from 'node:os';
import { defineModule, NS, xml, z } from '../../lib/module-api.js';

export default defineModule({
  name: 'version',
  xeps: [{ xep: 92, version: '1.1', status: 'complete' }],
  features: { host: [NS.version] },
  defaultEnabled: true,
  config: z.strictObject({
    showOs: z.boolean().default(false),
  }),
  setup(ctx) {
    const os = ctx.config.showOs ? `${osType()} ${osRelease()}` : undefined;
    ctx.iq.get({ ns: NS.version, name: 'query', to: ['host'] }, () =>
      xml(
        'query',
        { xmlns: NS.version },
        xml('name', {}, ctx.server.name),
        xml('version', {}, ctx.server.version),
        os !== undefined ? xml('os', {}, os) : null,
      ));
  },
});
