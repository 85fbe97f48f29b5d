import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError, type ConfigIssue } from '../../../lib/config/errors.js';
import { formatPath, loadConfig, parseConfig, resolveModules, type ModuleDescriptor } from '../../../lib/config/load.js';

const MODULES: ModuleDescriptor[] = [
  { name: 'ping', config: z.strictObject({ probeIdleClients: z.boolean().default(false) }), defaultEnabled: true },
  {
    name: 'mam',
    config: z.strictObject({
      default: z.enum(['always', 'never', 'roster']).default('roster'),
      maxItems: z.number().int().positive().default(50),
    }),
    defaultEnabled: false,
  },
  { name: 'version', config: z.strictObject({ hideOs: z.boolean().default(true) }), defaultEnabled: true },
];

function issuesOf(fn: () => unknown): ConfigIssue[] {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  expect.fail('expected a ConfigError');
}

function issueAt(issues: ConfigIssue[], path: string): ConfigIssue {
  const found = issues.find((i) => i.path === path);
  expect(found, `an issue at ${path} among ${JSON.stringify(issues.map((i) => i.path))}`).to.not.equal(undefined);
  return found!;
}

describe('config loading', () => {
  describe('parseConfig', () => {
    it('normalises a minimal config: lowercased hosts, default listeners, defaults everywhere', () => {
      const config = parseConfig({ hosts: ['Example.COM'] }, MODULES, '/srv/parley');
      expect(config.hosts).to.deep.equal([{ domain: 'example.com', modules: {} }]);
      expect(config.listeners).to.deep.equal([
        { type: 'c2s', port: 5222, address: '0.0.0.0' },
        { type: 'c2s-tls', port: 5223, address: '0.0.0.0' },
        { type: 'http', port: 5280, address: '0.0.0.0' },
      ]);
      expect(config.tls).to.deep.equal({ certificates: '/srv/parley/certs', generate: false, requireEncryption: true, minVersion: 'TLSv1.2' });
      expect(config.storage).to.deep.equal({ driver: 'sqlite', path: '/srv/parley/data/parley.db' });
      expect(config.auth).to.deep.equal({ scramIterations: 10000, allowPlain: true, throttle: { accountFailures: 5, ipFailures: 20, window: 300_000, failureDelay: 250, maxFailureDelay: 4000 } });
      expect(config.limits.stanzaSize).to.equal(256 * 1024);
      expect(config.limits.preAuthStanzaSize).to.equal(16 * 1024);
      expect(config.limits.unauthenticatedTimeout).to.equal(30_000);
      expect(config.limits.outboundBuffer).to.equal(1024 * 1024);
      expect(config.limits.idleTimeout).to.equal(undefined);
      expect(config.log).to.deep.equal({ level: 'info', pretty: 'auto' });
      expect(config.http.metrics).to.equal(true);
      expect(config.admins).to.deep.equal([]);
      expect(config.contact).to.deep.equal({});
    });

    it('fills in module defaults and lists default-off modules as false', () => {
      const config = parseConfig({ hosts: ['a.test'] }, MODULES, '/');
      expect(config.modules).to.deep.equal({ ping: { probeIdleClients: false }, mam: false, version: { hideOs: true } });
    });

    it('enables a default-off module given options, and disables a default-on module set to false', () => {
      const config = parseConfig({ hosts: ['a.test'], modules: { mam: { default: 'always' }, version: false, ping: null } }, MODULES, '/');
      expect(config.modules.mam).to.deep.equal({ default: 'always', maxItems: 50 });
      expect(config.modules.version).to.equal(false);
      expect(config.modules.ping).to.deep.equal({ probeIdleClients: false });
    });

    it('turns human durations and sizes into milliseconds and bytes', () => {
      const config = parseConfig(
        { hosts: ['a.test'], limits: { stanzaSize: '10 MiB', bytesPerSecond: '1MB', idleTimeout: '2h', unauthenticatedTimeout: 5000 }, auth: { throttle: { window: '7d' } } },
        MODULES,
        '/',
      );
      expect(config.limits.stanzaSize).to.equal(10 * 1024 * 1024);
      expect(config.limits.bytesPerSecond).to.equal(1_000_000);
      expect(config.limits.idleTimeout).to.equal(7_200_000);
      expect(config.limits.unauthenticatedTimeout).to.equal(5000);
      expect(config.auth.throttle.window).to.equal(7 * 86_400_000);
    });

    it('reports a malformed duration or size at its path', () => {
      const issues = issuesOf(() => parseConfig({ hosts: ['a.test'], limits: { idleTimeout: '5 fortnights', stanzaSize: 'huge' } }, MODULES, '/'));
      expect(issueAt(issues, 'limits.idleTimeout').message).to.match(/not a duration/);
      expect(issueAt(issues, 'limits.stanzaSize').message).to.match(/not a size/);
    });

    it('reports every problem at once', () => {
      const issues = issuesOf(() =>
        parseConfig(
          {
            hosts: ['a.test'],
            listeners: [{ type: 'c2s', port: 70000 }],
            auth: { scramIterations: 100 },
            log: { level: 'loud' },
            admins: ['not a jid@@'],
            modules: { mam: { maxItems: -1 } },
          },
          MODULES,
          '/',
        ),
      );
      expect(issues.map((i) => i.path)).to.have.members(['listeners[0].port', 'auth.scramIterations', 'log.level', 'admins[0]', 'modules.mam.maxItems']);
      expect(issueAt(issues, 'listeners[0].port').message).to.equal('must be at most 65535');
      expect(issueAt(issues, 'auth.scramIterations').message).to.equal('must be at least 4096');
      expect(issueAt(issues, 'log.level').message).to.equal('must be one of "trace", "debug", "info", "warn", "error"');
    });

    it('explains the allowed values of log.pretty', () => {
      expect(issueAt(issuesOf(() => parseConfig({ hosts: ['a.test'], log: { pretty: 'sometimes' } }, MODULES, '/')), 'log.pretty').message).to.equal('must be auto, true or false');
    });

    it('formats the ConfigError one issue per line with code PARLEY_ERR_CONFIG', () => {
      try {
        parseConfig({ hosts: ['a.test'], modules: { mam: { defualt: 'always' } }, log: { level: 'loud' } }, MODULES, '/');
        expect.fail('expected a ConfigError');
      } catch (err) {
        const e = err as ConfigError;
        expect(e.code).to.equal('PARLEY_ERR_CONFIG');
        expect(e.message.split('\n')).to.have.members([
          'log.level: must be one of "trace", "debug", "info", "warn", "error"',
          'modules.mam.defualt: unknown key (did you mean "default"?)',
        ]);
      }
    });

    it('treats an unknown top-level key as an error and suggests the known one', () => {
      const issues = issuesOf(() => parseConfig({ hosts: ['a.test'], lsteners: [] }, MODULES, '/'));
      expect(issues).to.deep.equal([{ path: 'lsteners', message: 'unknown key', hint: 'did you mean "listeners"?' }]);
    });

    it('treats unknown nested keys as errors', () => {
      const issues = issuesOf(() => parseConfig({ hosts: ['a.test'], tls: { generte: true, colour: 'blue' } }, MODULES, '/'));
      expect(issueAt(issues, 'tls.generte')).to.include({ message: 'unknown key', hint: 'did you mean "generate"?' });
      expect(issueAt(issues, 'tls.colour')).to.deep.equal({ path: 'tls.colour', message: 'unknown key' });
    });

    it('suggests a known module for an unknown module name', () => {
      const issues = issuesOf(() => parseConfig({ hosts: ['a.test'], modules: { pnig: {} } }, MODULES, '/'));
      expect(issues).to.deep.equal([{ path: 'modules.pnig', message: 'unknown module', hint: 'did you mean "ping"?' }]);
    });

    it('rejects an unknown module even when it is being disabled', () => {
      const issues = issuesOf(() => parseConfig({ hosts: ['a.test'], modules: { verison: false } }, MODULES, '/'));
      expect(issueAt(issues, 'modules.verison').hint).to.equal('did you mean "version"?');
    });

    it("suggests a module's option for a misspelt one", () => {
      const issues = issuesOf(() => parseConfig({ hosts: ['a.test'], modules: { ping: { probeIdleClent: true } } }, MODULES, '/'));
      expect(issues).to.deep.equal([{ path: 'modules.ping.probeIdleClent', message: 'unknown key', hint: 'did you mean "probeIdleClients"?' }]);
    });

    it('suggests the closest allowed value for a misspelt enum value', () => {
      const issues = issuesOf(() => parseConfig({ hosts: ['a.test'], storage: { driver: 'sqlite3' }, listeners: [{ type: 'c2s-ttls', port: 1 }] }, MODULES, '/'));
      expect(issueAt(issues, 'storage.driver')).to.include({ message: 'must be one of "sqlite", "postgres"', hint: 'did you mean "sqlite"?' });
      expect(issueAt(issues, 'listeners[0].type').hint).to.equal('did you mean "c2s-tls"?');
    });

    it('rejects a module setting that is neither options nor false', () => {
      const issues = issuesOf(() => parseConfig({ hosts: ['a.test'], modules: { ping: 'yes' } }, MODULES, '/'));
      expect(issueAt(issues, 'modules.ping').message).to.match(/options \(a mapping\), or false/);
    });

    it('requires hosts, and at least one', () => {
      expect(issueAt(issuesOf(() => parseConfig({}, MODULES, '/')), 'hosts').message).to.match(/^required/);
      expect(issueAt(issuesOf(() => parseConfig({ hosts: [] }, MODULES, '/')), 'hosts').message).to.match(/at least one domain/);
    });

    it('rejects invalid and duplicate domains, and JIDs given as hosts', () => {
      const issues = issuesOf(() => parseConfig({ hosts: ['a.test', 'A.test', 'bad domain', 'user@b.test', 42] }, MODULES, '/'));
      expect(issueAt(issues, 'hosts[1]').message).to.match(/a\.test is listed twice/);
      expect(issueAt(issues, 'hosts[2].domain').message).to.match(/not a valid domain/);
      expect(issueAt(issues, 'hosts[3].domain').message).to.match(/is a JID, not a domain/);
      expect(issueAt(issues, 'hosts[4]').message).to.match(/expected a domain name/);
    });

    it('rejects two listeners on the same address and port', () => {
      const issues = issuesOf(() =>
        parseConfig({ hosts: ['a.test'], listeners: [{ type: 'c2s', port: 5222 }, { type: 'c2s-tls', port: 5222, address: '0.0.0.0' }, { type: 'http', port: 5222, address: '127.0.0.1' }] }, MODULES, '/'),
      );
      expect(issues).to.have.length(1);
      expect(issues[0]).to.deep.include({ path: 'listeners[1].port', message: '0.0.0.0 port 5222 is already used by listeners[0]' });
    });

    it('requires a secret on component listeners and refuses it elsewhere', () => {
      const issues = issuesOf(() => parseConfig({ hosts: ['a.test'], listeners: [{ type: 'component', port: 5347 }, { type: 'c2s', port: 5222, secret: 's' }] }, MODULES, '/'));
      expect(issueAt(issues, 'listeners[0].secret').message).to.equal('a component listener needs a secret');
      expect(issueAt(issues, 'listeners[1].secret').message).to.match(/only component listeners take a secret/);
    });

    it('validates admins as bare JIDs and prepares them', () => {
      expect(parseConfig({ hosts: ['a.test'], admins: ['Admin@A.test'] }, MODULES, '/').admins).to.deep.equal(['admin@a.test']);
      const issues = issuesOf(() => parseConfig({ hosts: ['a.test'], admins: ['admin@a.test/phone', 'a.test'] }, MODULES, '/'));
      expect(issueAt(issues, 'admins[0]').message).to.match(/must be a bare JID/);
      expect(issueAt(issues, 'admins[1]').message).to.match(/must be a bare JID/);
    });

    it('accepts XEP-0157 contact URIs, a single one without brackets, and rejects non-URIs', () => {
      const config = parseConfig({ hosts: ['a.test'], contact: { abuse: 'mailto:abuse@a.test', admin: ['xmpp:admin@a.test'] } }, MODULES, '/');
      expect(config.contact).to.deep.equal({ abuse: ['mailto:abuse@a.test'], admin: ['xmpp:admin@a.test'] });
      expect(issueAt(issuesOf(() => parseConfig({ hosts: ['a.test'], contact: { abuse: ['abuse at a dot test'] } }, MODULES, '/')), 'contact.abuse[0]').message).to.match(/expected a URI/);
    });

    it('takes a postgres storage with a url, and requires the url', () => {
      const config = parseConfig({ hosts: ['a.test'], storage: { driver: 'postgres', url: 'postgres://p@localhost/db' } }, MODULES, '/');
      expect(config.storage).to.deep.equal({ driver: 'postgres', url: 'postgres://p@localhost/db', pool: 10 });
      expect(issueAt(issuesOf(() => parseConfig({ hosts: ['a.test'], storage: { driver: 'postgres' } }, MODULES, '/')), 'storage.url').message).to.equal('required');
    });

    it('treats an empty section (null in YAML) as its defaults', () => {
      const config = parseConfig({ hosts: ['a.test'], tls: null, limits: null }, MODULES, '/base');
      expect(config.tls.certificates).to.equal('/base/certs');
      expect(config.limits.depth).to.equal(64);
    });

    it('resolves relative paths against the base directory and keeps absolute ones', () => {
      const config = parseConfig(
        { hosts: ['a.test'], tls: { certificates: '../certs', hosts: { 'A.test': { cert: 'a.crt', key: '/etc/a.key' } } }, storage: { driver: 'sqlite', path: 'db/p.db' } },
        MODULES,
        '/srv/parley/config',
      );
      expect(config.tls.certificates).to.equal('/srv/parley/certs');
      expect(config.tls.hosts).to.deep.equal({ 'a.test': { cert: '/srv/parley/config/a.crt', key: '/etc/a.key' } });
      expect(config.storage).to.deep.equal({ driver: 'sqlite', path: '/srv/parley/config/db/p.db' });
    });

    it('leaves an in-memory SQLite path alone', () => {
      expect(parseConfig({ hosts: ['a.test'], storage: { driver: 'sqlite', path: ':memory:' } }, MODULES, '/x').storage).to.deep.equal({ driver: 'sqlite', path: ':memory:' });
    });

    describe('per-host module overrides', () => {
      it('merges host options over the server-wide ones and applies defaults', () => {
        const config = parseConfig(
          { hosts: [{ domain: 'a.test', modules: { mam: { maxItems: 5 }, version: false } }, 'b.test'], modules: { mam: { default: 'always' } } },
          MODULES,
          '/',
        );
        expect(config.hosts[0]!.modules).to.deep.equal({ mam: { default: 'always', maxItems: 5 }, version: false });
        expect(config.hosts[1]!.modules).to.deep.equal({});
      });

      it('validates host overrides with the module schema, at the host path', () => {
        const issues = issuesOf(() => parseConfig({ hosts: [{ domain: 'a.test', modules: { mam: { maxItem: 5, default: 'sometimes' } } }] }, MODULES, '/'));
        expect(issueAt(issues, 'hosts[0].modules.mam.maxItem').hint).to.equal('did you mean "maxItems"?');
        expect(issueAt(issues, 'hosts[0].modules.mam.default').message).to.match(/must be one of "always", "never", "roster"/);
      });

      it('reports a server-wide mistake once, not again under each overriding host', () => {
        const issues = issuesOf(() => parseConfig({ hosts: [{ domain: 'a.test', modules: { mam: { maxItems: 5 } } }], modules: { mam: { defualt: 'always' } } }, MODULES, '/'));
        expect(issues.map((i) => i.path)).to.deep.equal(['modules.mam.defualt']);
      });

      it('suggests a known module for an unknown one on a host', () => {
        const issues = issuesOf(() => parseConfig({ hosts: [{ domain: 'a.test', modules: { mma: {} } }] }, MODULES, '/'));
        expect(issues).to.deep.equal([{ path: 'hosts[0].modules.mma', message: 'unknown module', hint: 'did you mean "mam"?' }]);
      });

      it('rejects unknown keys in a host entry', () => {
        const issues = issuesOf(() => parseConfig({ hosts: [{ domain: 'a.test', modles: {} }] }, MODULES, '/'));
        expect(issueAt(issues, 'hosts[0].modles').hint).to.equal('did you mean "modules"?');
      });
    });
  });

  describe('resolveModules', () => {
    it('lists, per host, the enabled modules in catalog order with their effective options', () => {
      const config = parseConfig(
        {
          hosts: ['a.test', { domain: 'b.test', modules: { ping: false, mam: { maxItems: 7 } } }],
          modules: { ping: { probeIdleClients: true } },
        },
        MODULES,
        '/',
      );
      const resolved = resolveModules(config, MODULES);
      expect([...resolved.keys()]).to.deep.equal(['a.test', 'b.test']);
      expect(resolved.get('a.test')).to.deep.equal([
        { name: 'ping', options: { probeIdleClients: true } },
        { name: 'version', options: { hideOs: true } },
      ]);
      expect(resolved.get('b.test')).to.deep.equal([
        { name: 'mam', options: { default: 'roster', maxItems: 7 } },
        { name: 'version', options: { hideOs: true } },
      ]);
    });

    it('enables a default-on module that the config was parsed without', () => {
      const config = parseConfig({ hosts: ['a.test'] }, [], '/');
      const extra: ModuleDescriptor = { name: 'time', config: z.strictObject({ utc: z.boolean().default(true) }), defaultEnabled: true };
      expect(resolveModules(config, [extra]).get('a.test')).to.deep.equal([{ name: 'time', options: { utc: true } }]);
    });
  });

  describe('loadConfig', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'parley-config-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    function write(name: string, text: string): string {
      const file = join(dir, name);
      writeFileSync(file, text);
      return file;
    }

    it('reads YAML and resolves relative paths against the file directory', () => {
      const file = write('parley.yaml', 'hosts: [a.test]\ntls:\n  certificates: ../certs\nstorage:\n  driver: sqlite\n  path: db/parley.db\n');
      const config = loadConfig(file, MODULES);
      expect(config.tls.certificates).to.equal(join(dir, '..', 'certs'));
      expect(config.storage).to.deep.equal({ driver: 'sqlite', path: join(dir, 'db', 'parley.db') });
    });

    it('reports a YAML syntax error as one line with file, line and column', () => {
      const file = write('bad.yaml', 'hosts:\n  - a.test\nlisteners: [\n  { type: c2s, port: 5222 }\nlog: {\n');
      try {
        loadConfig(file, MODULES);
        expect.fail('expected a ConfigError');
      } catch (err) {
        const e = err as ConfigError;
        expect(e).to.be.instanceOf(ConfigError);
        const lines = e.lines();
        expect(lines[0]).to.match(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: YAML syntax error: `));
        for (const line of lines) expect(line).to.not.include('\n');
      }
    });

    it('reports a duplicate key as a YAML error at its line', () => {
      const file = write('dup.yaml', 'hosts: [a.test]\nlog: {}\nlog: {}\n');
      try {
        loadConfig(file, MODULES);
        expect.fail('expected a ConfigError');
      } catch (err) {
        expect((err as ConfigError).issues[0]).to.include({ line: 3, col: 1 });
        expect((err as ConfigError).issues[0]!.message).to.match(/unique/);
      }
    });

    it('gives schema problems the line and column of the offending key or value', () => {
      const file = write('pos.yaml', 'hosts:\n  - a.test\nmodules:\n  ping:\n    probeIdleClent: true\nlog:\n  level: loud\n');
      try {
        loadConfig(file, MODULES);
        expect.fail('expected a ConfigError');
      } catch (err) {
        const e = err as ConfigError;
        expect(e.lines()).to.deep.equal([
          `${file}:5:5: modules.ping.probeIdleClent: unknown key (did you mean "probeIdleClients"?)`,
          `${file}:7:10: log.level: must be one of "trace", "debug", "info", "warn", "error"`,
        ]);
      }
    });

    it('says how to create a missing config file', () => {
      try {
        loadConfig(join(dir, 'nope.yaml'), MODULES);
        expect.fail('expected a ConfigError');
      } catch (err) {
        expect((err as ConfigError).issues[0]!.message).to.match(/does not exist/);
        expect((err as ConfigError).issues[0]!.hint).to.match(/parley\.example\.yaml/);
      }
    });

    it('reports an empty file as missing hosts', () => {
      const file = write('empty.yaml', '# nothing yet\n');
      expect(issueAt(issuesOf(() => loadConfig(file, MODULES)), 'hosts').message).to.match(/^required/);
    });
  });

  describe('formatPath', () => {
    it('writes array indexes in brackets and quotes keys that are not identifiers', () => {
      expect(formatPath(['listeners', 0, 'port'])).to.equal('listeners[0].port');
      expect(formatPath(['tls', 'hosts', 'a.test', 'cert'])).to.equal('tls.hosts["a.test"].cert');
    });
  });
});
