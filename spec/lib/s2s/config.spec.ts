// The federation and component parts of the config schema.
import { expect } from 'chai';
import { ConfigError, type ConfigIssue } from '../../../lib/config/errors.js';
import { parseConfig } from '../../../lib/config/load.js';

function issuesOf(fn: () => unknown): ConfigIssue[] {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    return (err as ConfigError).issues;
  }
  expect.fail('expected a ConfigError');
}

const issueAt = (issues: ConfigIssue[], path: string): ConfigIssue => {
  const found = issues.find((i) => i.path === path);
  expect(found, `an issue at ${path} among ${JSON.stringify(issues.map((i) => i.path))}`).to.not.equal(undefined);
  return found!;
};

describe('config: s2s and components', () => {
  it('defaults: TLS required, certificates optional, dialback on, 10m idle, 10s connect, 100 queued', () => {
    const config = parseConfig({ hosts: ['a.test'] }, [], '/');
    expect(config.s2s).to.deep.equal({
      blockedDomains: [],
      requireEncryption: true,
      requireValidCertificates: false,
      dialback: true,
      idleTimeout: 600_000,
      connectTimeout: 10_000,
      queueLimit: 100,
      trustedCAs: [],
      resolver: { hosts: {} },
    });
  });

  it('reads resolver overrides as host:port (5269 by default), [v6]:port, or a mapping', () => {
    const config = parseConfig(
      {
        hosts: ['a.test'],
        s2s: {
          idleTimeout: '30s',
          resolver: { hosts: { 'b.test': '127.0.0.1:5270', 'c.test': 'xmpp.c.test', 'd.test': '[::1]:5299', 'e.test': { host: 'tls.e.test', port: 5223, directTls: true } } },
        },
      },
      [],
      '/',
    );
    expect(config.s2s.idleTimeout).to.equal(30_000);
    expect(config.s2s.resolver.hosts).to.deep.equal({
      'b.test': { host: '127.0.0.1', port: 5270, directTls: false },
      'c.test': { host: 'xmpp.c.test', port: 5269, directTls: false },
      'd.test': { host: '::1', port: 5299, directTls: false },
      'e.test': { host: 'tls.e.test', port: 5223, directTls: true },
    });
  });

  it('refuses a malformed resolver target and unknown s2s keys', () => {
    const issues = issuesOf(() => parseConfig({ hosts: ['a.test'], s2s: { resolver: { hosts: { 'b.test': '127.0.0.1:99999' } }, dialbak: true } }, [], '/'));
    expect(issues.some((i) => i.path.startsWith('s2s.resolver.hosts'))).to.equal(true);
    expect(issues.some((i) => i.path === 's2s.dialbak' || /dialbak/.test(i.message))).to.equal(true);
  });

  it('takes component domains on a component listener, each with its own secret or the listener\'s', () => {
    const config = parseConfig(
      { hosts: ['a.test'], listeners: [{ type: 'component', port: 5347, secret: 's', components: ['Bot.A.test', { domain: 'gw.a.test', secret: 'g' }] }] },
      [],
      '/',
    );
    expect(config.listeners[0]!.components).to.deep.equal([{ domain: 'bot.a.test' }, { domain: 'gw.a.test', secret: 'g' }]);
  });

  it('requires component domains and a secret for each, and refuses components elsewhere', () => {
    const issues = issuesOf(() =>
      parseConfig(
        {
          hosts: ['a.test'],
          listeners: [
            { type: 'component', port: 5347, secret: 's' },
            { type: 'component', port: 5348, components: ['x.a.test'] },
            { type: 'c2s', port: 5222, components: ['y.a.test'] },
          ],
        },
        [],
        '/',
      ),
    );
    expect(issueAt(issues, 'listeners[0].components').message).to.match(/list the component domains/);
    expect(issueAt(issues, 'listeners[1].secret').message).to.equal('a component listener needs a secret');
    expect(issueAt(issues, 'listeners[2].components').message).to.match(/only component listeners take components/);
  });
});
