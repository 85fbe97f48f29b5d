import { expect } from 'chai';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { loadConfig, type ModuleDescriptor } from '../../../lib/config/load.js';
import { MODULE_CATALOG } from '../../../lib/modules/catalog.js';

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

// The real catalog: the shipped files must validate against every module's own schema.
const MODULES: ReadonlyArray<ModuleDescriptor> = MODULE_CATALOG;

describe('shipped config files', () => {
  const root = repoRoot();

  it('config/parley.yaml is a valid quick-start: localhost, generated certificates, data/ beside config/', () => {
    const config = loadConfig(join(root, 'config', 'parley.yaml'), MODULES);
    expect(config.hosts.map((h) => h.domain)).to.deep.equal(['localhost']);
    expect(config.tls.generate).to.equal(true);
    expect(config.tls.certificates).to.equal(join(root, 'data', 'certs'));
    expect(config.storage).to.deep.equal({ driver: 'sqlite', path: join(root, 'data', 'parley.db') });
    expect(config.listeners.map((l) => `${l.type}:${l.port}`)).to.deep.equal(['c2s:5222', 'c2s-tls:5223', 'http:5280']);
    expect(config.log.level).to.equal('info');
  });

  it('config/parley.example.yaml validates and states the defaults it documents', () => {
    const config = loadConfig(join(root, 'config', 'parley.example.yaml'), MODULES);
    expect(config.hosts.map((h) => h.domain)).to.deep.equal(['example.com', 'example.org']);
    expect(config.auth.scramIterations).to.equal(10000);
    expect(config.limits.stanzaSize).to.equal(256 * 1024);
    expect(config.limits.outboundBuffer).to.equal(1024 * 1024);
    expect(config.auth.throttle.window).to.equal(300_000);
    expect(Object.keys(config.modules)).to.include.members(['disco', 'ping', 'version', 'time', 'contact_info', 'roster', 'mam', 'muc']);
    expect(config.modules.pubsub).to.equal(false);
    expect(config.contact.abuse).to.deep.equal(['mailto:abuse@example.com']);
  });

  it('config/parley.example.yaml mentions every top-level option of the schema', async () => {
    const { configSchema } = await import('../../../lib/config/schema.js');
    const { readFileSync } = await import('node:fs');
    const text = readFileSync(join(root, 'config', 'parley.example.yaml'), 'utf8');
    for (const key of Object.keys(configSchema.shape)) expect(text).to.match(new RegExp(`^${key}:`, 'm'), key);
    const nested = { tls: configSchema.shape.tls, auth: configSchema.shape.auth, limits: configSchema.shape.limits, log: configSchema.shape.log, http: configSchema.shape.http, contact: configSchema.shape.contact };
    for (const [section, schema] of Object.entries(nested)) {
      const inner = schema.unwrap() as z.ZodObject;
      for (const key of Object.keys(inner.shape)) expect(text, `${section}.${key}`).to.match(new RegExp(`^\\s+#?\\s*${key}:`, 'm'));
    }
  });
});
