// The `cluster` config section: defaults, units, and one-line errors for what is wrong.
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../../../lib/config/load.js';
import { MODULE_CATALOG } from '../../../lib/modules/catalog.js';
import { parse as parseYaml } from 'yaml';

const parse = (cluster: unknown) => parseConfig({ hosts: ['example.com'], cluster }, MODULE_CATALOG, '/tmp');

describe('config: cluster', () => {
  it('is off unless configured, or when left empty', () => {
    expect(parseConfig({ hosts: ['example.com'] }, MODULE_CATALOG, '/tmp').cluster).to.equal(undefined);
    expect(parse(null).cluster).to.equal(undefined);
  });

  it('fills in defaults and reads durations', () => {
    const c = parse({ redis: 'redis://127.0.0.1:6379', node: 'n1', heartbeat: '1s' }).cluster!;
    expect(c).to.deep.include({ redis: 'redis://127.0.0.1:6379', node: 'n1', prefix: 'parley:', heartbeat: 1000, expiry: 6000, inboxLength: 100_000 });
    expect(c.seeOtherHost).to.equal(undefined);
  });

  it('refuses a bad Redis URL, a bad node name and unknown keys', () => {
    expect(() => parse({ redis: '127.0.0.1:6379', node: 'n1' })).to.throw(/redis:\/\//);
    expect(() => parse({ redis: 'redis://x', node: 'a b' })).to.throw(/letters, digits/);
    expect(() => parse({ redis: 'redis://x', node: 'n1', hartbeat: '1s' })).to.throw(/hartbeat/);
  });

  it('matches the commented section of config/parley.example.yaml', () => {
    const text = readFileSync(fileURLToPath(new URL('../../../../config/parley.example.yaml', import.meta.url)), 'utf8');
    const block = text.slice(text.indexOf('\ncluster:') + 1).split('\n');
    const yaml = [block[0], ...block.slice(1).filter((l) => l.startsWith('#   ')).map((l) => l.slice(1))].join('\n');
    const c = parse((parseYaml(yaml) as { cluster: unknown }).cluster).cluster!;
    expect(c.node).to.equal('node1');
    expect(c.seeOtherHost).to.equal('xmpp1.example.com:5222');
  });
});
