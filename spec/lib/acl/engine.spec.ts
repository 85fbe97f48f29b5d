// The access rule language: first match decides, no match denies, roles, IP ranges, targets,
// and the admin lockout refused at config load.
import { expect } from 'chai';
import { Jid } from '../../../lib/jid/jid.js';
import { createAccessControl } from '../../../lib/acl/engine.js';
import { accessSchema, rolesSchema } from '../../../lib/acl/schema.js';
import { parseConfig } from '../../../lib/config/load.js';
import { MODULE_CATALOG } from '../../../lib/modules/catalog.js';

const j = (s: string) => Jid.parse(s);
const acl = (access: unknown, roles: unknown = {}, admins: string[] = ['boss@example.org']) =>
  createAccessControl(accessSchema.parse(access), rolesSchema.parse(roles), admins, ['example.org']);

describe('lib/acl: access rules', () => {
  it('tries entries in order, the first match decides, and nothing matching denies', () => {
    const a = acl({ register: [{ allow: { ip: '10.0.0.0/8' } }, { deny: { ip: '10.1.0.0/16' } }] });
    expect(a.allowed('register', { ip: '10.1.2.3' })).to.equal(true);
    expect(a.allowed('register', { ip: '::ffff:10.9.9.9' })).to.equal(true);
    expect(a.allowed('register', { ip: '192.168.1.1' })).to.equal(false);
    expect(a.allowed('register', {})).to.equal(false);
  });

  it('gives admin, operator, user and limited roles, and defaults: local users create rooms, limited ones do not', () => {
    const a = acl({}, { operator: ['op@example.org'], limited: ['kiosk@example.org'] });
    expect([...a.roles(j('boss@example.org/r'))]).to.include.members(['admin', 'user']);
    expect([...a.roles(j('op@example.org'))]).to.include.members(['operator', 'user']);
    expect([...a.roles(j('kiosk@example.org'))]).to.deep.equal(['limited']);
    expect(a.allowed('create_room', { jid: j('u@example.org') })).to.equal(true);
    expect(a.allowed('create_room', { jid: j('kiosk@example.org') })).to.equal(false);
    expect(a.allowed('create_room', { jid: j('u@remote.example') })).to.equal(false);
    expect(a.allowed('admin', { jid: j('op@example.org') })).to.equal(false);
    expect(a.allowed('operator', { jid: j('op@example.org') })).to.equal(true);
    expect(a.allowed('admin', { jid: j('boss@example.org') })).to.equal(true);
  });

  it('matches send targets by bare JID or domain, and s2s by remote host', () => {
    const a = acl(
      {
        send: [{ allow: { role: 'limited', target: 'support@example.org' } }, { deny: { role: 'limited' } }, { allow: 'all' }],
        s2s: [{ deny: { host: ['spam.example', 'evil.example'] } }, { allow: 'all' }],
      },
      { limited: ['kiosk@example.org'] },
    );
    expect(a.allowed('send', { jid: j('kiosk@example.org'), target: j('support@example.org/desk') })).to.equal(true);
    expect(a.allowed('send', { jid: j('kiosk@example.org'), target: j('other@example.org') })).to.equal(false);
    expect(a.allowed('send', { jid: j('u@example.org'), target: j('other@example.org') })).to.equal(true);
    expect(a.allowed('s2s', { host: 'spam.example' })).to.equal(false);
    expect(a.allowed('s2s', { host: 'good.example' })).to.equal(true);
  });

  it('carries an upload size cap from the matching allow entry', () => {
    const a = acl({ upload: [{ allow: { jid: 'small@example.org' }, maxFileSize: '1 MiB' }, { allow: 'local' }] });
    expect(a.decide('upload', { jid: j('small@example.org') })).to.deep.equal({ allowed: true, maxFileSize: 1024 * 1024 });
    expect(a.decide('upload', { jid: j('big@example.org') })).to.deep.equal({ allowed: true });
    expect(a.decide('upload', { jid: j('x@remote.example') })).to.deep.equal({ allowed: false });
    expect(accessSchema.safeParse({ upload: [{ allow: 'all', maxFileSize: 'lots' }] }).success).to.equal(false);
  });

  it('rejects malformed rules: unknown keys, bad CIDR, bad JIDs, unknown roles', () => {
    expect(accessSchema.safeParse({ register: [{ allow: { ipp: '1.2.3.4' } }] }).success).to.equal(false);
    expect(accessSchema.safeParse({ register: [{ allow: { ip: '10.0.0.0/33' } }] }).success).to.equal(false);
    expect(accessSchema.safeParse({ send: [{ allow: { target: 'a@b/c' } }] }).success).to.equal(false);
    expect(accessSchema.safeParse({ admin: [{ allow: { role: 'root' } }] }).success).to.equal(false);
    expect(accessSchema.safeParse({ nonsense: [{ allow: 'all' }] }).success).to.equal(false);
  });

  it('refuses at config load a rule set that locks every admin out, and names the fix', () => {
    const load = (access: unknown) => () => parseConfig({ hosts: ['example.org'], admins: ['boss@example.org'], access }, MODULE_CATALOG, '/tmp');
    expect(load({ admin: [{ deny: 'all' }] })).to.throw(/access\.admin.*denies every admin.*allow at least one/);
    expect(load({ admin: [{ allow: { jid: 'someone@example.org' } }] })).to.throw(/denies every admin/);
    expect(load({ admin: [{ allow: { jid: 'boss@example.org' } }] })).to.not.throw();
  });
});
