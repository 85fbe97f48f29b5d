// The configs the project ships must load with the real module catalog: an option renamed in a
// module without updating the example would otherwise only show up for users.
import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import { loadConfig, resolveModules } from '../../../lib/config/load.js';
import { MODULE_CATALOG } from '../../../lib/modules/catalog.js';

const configDir = fileURLToPath(new URL('../../../../config/', import.meta.url));

describe('shipped configuration files', () => {
  it('validates config/parley.example.yaml against every real module schema', () => {
    const config = loadConfig(`${configDir}parley.example.yaml`, MODULE_CATALOG);
    const enabled = resolveModules(config, MODULE_CATALOG).get('example.com')!.map((m) => m.name);
    expect(enabled).to.include.members(['roster', 'presence', 'mam', 'muc', 'pep', 'sm', 'carbons']);
  });

  it('validates the quick-start config/parley.yaml', () => {
    const config = loadConfig(`${configDir}parley.yaml`, MODULE_CATALOG);
    expect(config.hosts.map((h) => h.domain)).to.deep.equal(['localhost']);
  });
});
