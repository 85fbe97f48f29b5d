import { expect } from 'chai';
import { Jid, NS, xml, buildForm, type Element } from '../../../lib/module-api.js';
import { Harness, type TestClient } from '../../helpers/harness.js';
import { expectError } from '../../helpers/xml-assert.js';
import disco from '../../../modules/disco/index.js';
import adhoc from '../../../modules/adhoc/index.js';
import admin from '../../../modules/admin/index.js';
import presence from '../../../modules/presence/index.js';
import roster from '../../../modules/roster/index.js';

const ADMIN = 'http://jabber.org/protocol/admin';
const node = (a: string) => `${ADMIN}#${a}`;

describe('admin commands (XEP-0050 + XEP-0133)', () => {
  let h: Harness;
  let boss: TestClient;
  let alice: TestClient;

  beforeEach(async () => {
    h = await Harness.start({ modules: [disco, adhoc, admin, presence, roster], server: { admins: [Jid.parse('boss@example.com')] } });
    await h.createAccount('boss');
    await h.createAccount('alice');
    boss = await h.connect('boss@example.com/desk');
    alice = await h.connect('alice@example.com/phone');
  });
  afterEach(() => h.stop());

  const execute = (c: TestClient, action: string) => c.set(xml('command', { xmlns: NS.commands, node: node(action), action: 'execute' }));
  async function submit(c: TestClient, action: string, fields: Array<{ var: string; values: string[] }>): Promise<Element> {
    const first = await execute(c, action);
    const sessionid = first.getChild('command')!.attrs.sessionid as string;
    return c.set(xml('command', { xmlns: NS.commands, node: node(action), sessionid, action: 'complete' }, buildForm('submit', fields, { formType: ADMIN })));
  }
  const noteOf = (iq: Element) => iq.getChild('command')?.getChildText('note');

  it('lists the admin commands to an admin and nothing to a user', async () => {
    const items = await boss.get(xml('query', { xmlns: NS.discoItems, node: NS.commands }));
    const nodes = items.getChild('query')!.getChildren('item').map((i) => i.attrs.node);
    expect(nodes).to.include.members([node('add-user'), node('delete-user'), node('announce'), node('get-online-users-list')]);
    const none = await alice.get(xml('query', { xmlns: NS.discoItems, node: NS.commands }));
    expect(none.getChild('query')!.getChildren('item')).to.have.length(0);
  });

  it('refuses a command to a non-admin with forbidden', async () => {
    expectError(await execute(alice, 'add-user'), 'forbidden');
  });

  it('answers an unknown command node with item-not-found', async () => {
    expectError(await boss.set(xml('command', { xmlns: NS.commands, node: 'urn:nope', action: 'execute' })), 'item-not-found');
  });

  it('shows a form first, then adds the user on completion', async () => {
    const first = await execute(boss, 'add-user');
    expect(first.getChild('command')!.attrs.status).to.equal('executing');
    expect(first.getChild('command')!.getChild('x', NS.dataForms)).to.not.equal(undefined);
    const r = await submit(boss, 'add-user', [{ var: 'accountjid', values: ['carol@example.com'] }, { var: 'password', values: ['pw'] }, { var: 'password-verify', values: ['pw'] }]);
    expect(r.getChild('command')!.attrs.status).to.equal('completed');
    expect(await h.accounts.exists('example.com', 'carol')).to.equal(true);
  });

  it('refuses an unknown session id with not-allowed and bad-sessionid', async () => {
    const r = await boss.set(xml('command', { xmlns: NS.commands, node: node('add-user'), sessionid: 'bogus', action: 'complete' }));
    expectError(r, 'not-allowed');
    expect(r.getChild('error')!.getChild('bad-sessionid', NS.commands)).to.not.equal(undefined);
  });

  it('disables a user: sessions end and login is refused, and re-enables', async () => {
    await submit(boss, 'disable-user', [{ var: 'accountjids', values: ['alice@example.com'] }]);
    expect(await h.accounts.isDisabled('example.com', 'alice')).to.equal(true);
    await h.settle();
    expect(h.sessions.of(Jid.parse('alice@example.com'))).to.have.length(0);
    await submit(boss, 'reenable-user', [{ var: 'accountjids', values: ['alice@example.com'] }]);
    expect(await h.accounts.isDisabled('example.com', 'alice')).to.equal(false);
  });

  it('deletes a user', async () => {
    const r = await submit(boss, 'delete-user', [{ var: 'accountjids', values: ['alice@example.com'] }]);
    expect(noteOf(r)).to.match(/deleted: alice@example.com/);
    expect(await h.accounts.exists('example.com', 'alice')).to.equal(false);
  });

  it('changes a password', async () => {
    await submit(boss, 'change-user-password', [{ var: 'accountjid', values: ['alice@example.com'] }, { var: 'password', values: ['new-pw'] }]);
    expect(await h.accounts.verifyPassword('example.com', 'alice', 'new-pw')).to.equal(true);
  });

  it('lists online users and counts them', async () => {
    const list = await execute(boss, 'get-online-users-list');
    const values = list.getChild('command')!.getChild('x', NS.dataForms)!.getChildren('field').find((f) => f.attrs.var === 'onlineuserjids')!.getChildren('value').map((v) => v.getText());
    expect(values).to.deep.equal(['alice@example.com', 'boss@example.com']);
    const num = await execute(boss, 'get-registered-users-num');
    expect(num.toString()).to.contain('<value>2</value>');
  });

  it('announces a headline to every available session', async () => {
    await alice.sendPresence();
    await submit(boss, 'announce', [{ var: 'subject', values: ['Maintenance'] }, { var: 'body', values: ['down at 5'] }]);
    const m = await alice.next((s) => s.name === 'message');
    expect(m.attrs.type).to.equal('headline');
    expect(m.attrs.from).to.equal('example.com');
    expect(m.getChildText('body')).to.equal('down at 5');
  });

  it('sends the message of the day at initial presence once set', async () => {
    await submit(boss, 'set-motd', [{ var: 'body', values: ['welcome'] }]);
    await alice.sendPresence();
    const m = await alice.next((s) => s.name === 'message');
    expect(m.getChildText('body')).to.equal('welcome');
  });

  it('ends the sessions of an account', async () => {
    await submit(boss, 'end-user-session', [{ var: 'accountjids', values: ['alice@example.com'] }]);
    await h.settle();
    expect(h.sessions.of(Jid.parse('alice@example.com'))).to.have.length(0);
  });

  it('cancels a session', async () => {
    const first = await execute(boss, 'add-user');
    const sessionid = first.getChild('command')!.attrs.sessionid as string;
    const r = await boss.set(xml('command', { xmlns: NS.commands, node: node('add-user'), sessionid, action: 'cancel' }));
    expect(r.getChild('command')!.attrs.status).to.equal('canceled');
  });
});
