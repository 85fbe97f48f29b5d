// Each enforcement point of the access rules (lib/acl), with an allowed and a denied case, on a
// real server: registration by address, room creation and persistent rooms, upload slots,
// XEP-0133 commands by role, send-to rules for a kiosk account, and s2s by remote domain.
import { expect } from 'chai';
import { loggedIn, RawClient, DEFAULT_PASSWORD, type XNode } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { createLogger } from '../../lib/log.js';
import { iq, runCommand } from './helpers-security.js';

const UPLOAD = 'urn:xmpp:http:upload:0';
const COMMANDS = 'http://jabber.org/protocol/commands';
const stanzaError = (el: XNode) => el.child('error')?.children.find((c) => c.ns === 'urn:ietf:params:xml:ns:xmpp-stanzas')?.name;

describe('e2e: access rules at every enforcement point', function () {
  this.timeout(30_000);
  let srv: TestServer;
  const open: RawClient[] = [];
  const logLines: string[] = [];
  const login = async (user: string, resource = 'r') => {
    const c = await loggedIn(srv, user, { resource });
    open.push(c);
    return c;
  };

  before(async () => {
    srv = await startTestServer({
      listeners: [
        { type: 'c2s', port: 0, address: '127.0.0.1' },
        { type: 'c2s-tls', port: 0, address: '127.0.0.1' },
        { type: 'http', port: 0, address: '127.0.0.1' },
        { type: 's2s', port: 0, address: '127.0.0.1' },
      ],
      admins: ['boss@localhost'],
      roles: { operator: ['op@localhost'], limited: ['kiosk@localhost'] },
      access: {
        register: [{ deny: { ip: '127.0.0.2' } }, { allow: { ip: '127.0.0.0/8' } }],
        create_persistent_room: [{ allow: { role: 'admin' } }],
        upload: [{ deny: { role: 'limited' } }, { allow: { role: 'operator' }, maxFileSize: '1 KiB' }, { allow: 'local' }],
        send: [{ allow: { role: 'limited', target: ['support@localhost', 'conference.localhost', 'upload.localhost'] } }, { deny: { role: 'limited' } }, { allow: 'all' }],
        s2s: [{ deny: { host: 'evil.example' } }, { allow: 'all' }],
      },
      modules: { register: { allowRegistration: true, registrationsPerIpPerHour: 100 } },
    }, 'localhost', { log: createLogger({ destination: { write: (l: string) => void logLines.push(l) } }) });
    for (const u of ['boss', 'op', 'kiosk', 'support', 'user', 'other']) await srv.addUser(u, DEFAULT_PASSWORD);
  });
  after(async () => {
    for (const c of open) c.destroy();
    await srv?.stop();
  });

  it('register: allowed from 127.0.0.1, forbidden from 127.0.0.2', async () => {
    async function register(localAddress: string, user: string): Promise<XNode> {
      const c = await RawClient.connect(srv.port('c2s'), { domain: srv.domain, localAddress });
      open.push(c);
      await c.openStream();
      await c.starttls();
      await c.openStream();
      c.send(`<iq type='set' id='reg1'><query xmlns='jabber:iq:register'><username>${user}</username><password>pw-${user}-123</password></query></iq>`);
      return c.waitForElement((e) => e.is('iq') && e.attrs.id === 'reg1');
    }
    expect((await register('127.0.0.1', 'newbie')).attrs.type).to.equal('result');
    const denied = await register('127.0.0.2', 'intruder');
    expect(denied.attrs.type).to.equal('error');
    expect(stanzaError(denied)).to.equal('forbidden');
  });

  it('create_room: a local user creates a room, a limited account gets not-allowed; persistent rooms only for admins', async () => {
    const user = await login('user');
    user.send(`<presence to='lobby@conference.localhost/u'><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
    const created = await user.waitForElement((e) => e.is('presence') && e.attrs.from === 'lobby@conference.localhost/u');
    expect(created.attrs.type).to.equal(undefined);
    const kiosk = await login('kiosk');
    kiosk.send(`<presence to='kioskroom@conference.localhost/k'><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
    const refused = await kiosk.waitForElement((e) => e.is('presence') && e.attrs.from === 'kioskroom@conference.localhost/k');
    expect(refused.attrs.type).to.equal('error');
    expect(stanzaError(refused)).to.equal('not-allowed');

    const form = (persistent: string) =>
      `<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field><field var='muc#roomconfig_persistentroom'><value>${persistent}</value></field></x></query>`;
    const denied = await iq(user, 'set', 'lobby@conference.localhost', form('1'));
    expect(stanzaError(denied), denied.toString()).to.equal('forbidden');
    expect((await iq(user, 'set', 'lobby@conference.localhost', form('0'))).attrs.type).to.equal('result');
    const boss = await login('boss');
    boss.send(`<presence to='hall@conference.localhost/b'><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
    await boss.waitForElement((e) => e.is('presence') && e.attrs.from === 'hall@conference.localhost/b');
    expect((await iq(boss, 'set', 'hall@conference.localhost', form('1'))).attrs.type).to.equal('result');
  });

  it('upload: a user gets a slot, a limited account is forbidden, an operator is capped at 1 KiB', async () => {
    const req = (bytes: number) => `<request xmlns='${UPLOAD}' filename='a.txt' size='${bytes}' content-type='text/plain'/>`;
    const ok = await iq(await login('user', 'up'), 'get', 'upload.localhost', req(2000));
    expect(ok.attrs.type, ok.toString()).to.equal('result');
    const no = await iq(await login('kiosk', 'up'), 'get', 'upload.localhost', req(10));
    expect(stanzaError(no)).to.equal('forbidden');
    const op = await login('op', 'up');
    expect((await iq(op, 'get', 'upload.localhost', req(1024))).attrs.type).to.equal('result');
    const big = await iq(op, 'get', 'upload.localhost', req(1025));
    expect(stanzaError(big)).to.equal('not-acceptable');
    expect(big.child('error')!.child('file-too-large', UPLOAD)!.child('max-file-size')!.text).to.equal('1024');
  });

  it('roles: an operator may disable but not delete; a user may do neither; the admin may delete', async () => {
    const op = await login('op', 'adm');
    const disable = await runCommand(op, srv.domain, 'http://jabber.org/protocol/admin#disable-user');
    expect(disable.first.status).to.equal('executing');
    const del = await iq(op, 'set', srv.domain, `<command xmlns='${COMMANDS}' node='http://jabber.org/protocol/admin#delete-user' action='execute'/>`);
    expect(stanzaError(del)).to.equal('forbidden');
    const user = await login('user', 'adm');
    const userDisable = await iq(user, 'set', srv.domain, `<command xmlns='${COMMANDS}' node='http://jabber.org/protocol/admin#disable-user' action='execute'/>`);
    expect(stanzaError(userDisable)).to.equal('forbidden');
    const boss = await login('boss', 'adm');
    const done = await runCommand(boss, srv.domain, 'http://jabber.org/protocol/admin#delete-user', { accountjids: 'other@localhost' });
    expect(done.last.status).to.equal('completed');
    // Admin actions are audit lines naming who did what to whom.
    const line = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((e) => e.audit === 'admin-action' && e.action === 'delete-user');
    expect(line).to.deep.include({ by: 'boss@localhost', targets: ['other@localhost'] });
  });

  it('send: a kiosk reaches support@ only; others are refused with policy-violation', async () => {
    const support = await login('support', 's');
    const kiosk = await login('kiosk', 'send');
    kiosk.send(`<message to='support@localhost/s' type='chat' id='m1'><body>help</body></message>`);
    const got = await support.waitForElement((e) => e.is('message') && e.attrs.id === 'm1');
    expect(got.attrs.from).to.equal('kiosk@localhost/send');
    kiosk.send(`<message to='user@localhost' type='chat' id='m2'><body>hi</body></message>`);
    const bounced = await kiosk.waitForElement((e) => e.is('message') && e.attrs.id === 'm2' && e.attrs.type === 'error');
    expect(stanzaError(bounced)).to.equal('policy-violation');
  });

  it('s2s: a denied remote domain is refused with policy-violation, an allowed one is attempted', async () => {
    const user = await login('user', 's2s');
    user.send(`<message to='someone@evil.example' type='chat' id='e1'><body>x</body></message>`);
    const refused = await user.waitForElement((e) => e.is('message') && e.attrs.id === 'e1' && e.attrs.type === 'error');
    expect(stanzaError(refused)).to.equal('policy-violation');
    user.send(`<message to='someone@nowhere.invalid' type='chat' id='e2'><body>x</body></message>`);
    const tried = await user.waitForElement((e) => e.is('message') && e.attrs.id === 'e2' && e.attrs.type === 'error', 20_000);
    expect(stanzaError(tried)).to.not.equal('policy-violation');
  });
});
