import { expect } from 'chai';
import { buildForm, Jid, NS, xml, type Element } from '../../../lib/module-api.js';
import adhoc from '../../../modules/adhoc/index.js';
import blocking from '../../../modules/blocking/index.js';
import { NODE_SPAM_REPORTS } from '../../../modules/blocking/reports-command.js';
import disco from '../../../modules/disco/index.js';
import presence from '../../../modules/presence/index.js';
import roster from '../../../modules/roster/index.js';
import { Harness, type TestClient } from '../../helpers/harness.js';
import { expectError } from '../../helpers/xml-assert.js';

const FORM_TYPE = 'urn:parley:admin#spam-reports';

describe('spam report review queue (XEP-0377 reports, XEP-0050 admin command)', () => {
  let h: Harness;
  let boss: TestClient;
  let alice: TestClient;
  let bob: TestClient;
  let spammer: TestClient;

  const report = (c: TestClient, jid: string, text: string) =>
    c.set(xml('block', { xmlns: NS.blocking }, xml('item', { jid }, xml('report', { xmlns: 'urn:xmpp:reporting:1', reason: 'urn:xmpp:reporting:spam' }, xml('text', {}, text)))), c.jid.bare().toString());

  beforeEach(async () => {
    h = await Harness.start({ modules: [disco, adhoc, blocking, roster, presence], server: { admins: [Jid.parse('boss@example.com')] } });
    for (const u of ['boss', 'alice', 'bob', 'spammer']) await h.createAccount(u);
    boss = await h.connect('boss@example.com/desk');
    alice = await h.connect('alice@example.com/phone');
    bob = await h.connect('bob@example.com/phone');
    spammer = await h.connect('spammer@example.com/bot');
    await report(alice, 'spammer@example.com', 'buy pills');
    await report(alice, 'junk@remote.example', 'spam from afar');
    await report(bob, 'spammer@example.com', 'more pills');
  });
  afterEach(() => h.stop());

  const execute = (c: TestClient) => c.set(xml('command', { xmlns: NS.commands, node: NODE_SPAM_REPORTS, action: 'execute' }));
  function options(reply: Element): Array<{ label: string; value: string }> {
    const field = reply.getChild('command')!.getChild('x', NS.dataForms)!.getChildren('field').find((f) => f.attrs.var === 'report')!;
    return field.getChildren('option').map((o) => ({ label: String(o.attrs.label), value: o.getChildText('value')! }));
  }
  async function act(pick: (o: Array<{ label: string; value: string }>) => string, action: string): Promise<Element> {
    const first = await execute(boss);
    const sessionid = first.getChild('command')!.attrs.sessionid as string;
    return boss.set(xml('command', { xmlns: NS.commands, node: NODE_SPAM_REPORTS, sessionid, action: 'complete' },
      buildForm('submit', [{ var: 'report', values: [pick(options(first))] }, { var: 'action', values: [action] }], { formType: FORM_TYPE })));
  }
  const note = (reply: Element) => reply.getChild('command')?.getChildText('note');

  it('refuses the command to a user with forbidden and does not list it for them', async () => {
    expectError(await execute(alice), 'forbidden');
    const items = await alice.get(xml('query', { xmlns: NS.discoItems, node: NS.commands }));
    expect(items.getChild('query')!.getChildren('item').map((i) => i.attrs.node)).to.not.include(NODE_SPAM_REPORTS);
    const adminItems = await boss.get(xml('query', { xmlns: NS.discoItems, node: NS.commands }));
    expect(adminItems.getChild('query')!.getChildren('item').map((i) => i.attrs.node)).to.include(NODE_SPAM_REPORTS);
  });

  it('lists every report of the host, oldest first, with who reported whom and why', async () => {
    const list = options(await execute(boss));
    expect(list).to.have.length(3);
    expect(list[0]!.label).to.match(/^alice@example\.com reported spammer@example\.com \(spam, .+ UTC\): buy pills$/);
    expect(list.map((o) => o.label.split(' ')[0])).to.have.members(['alice@example.com', 'alice@example.com', 'bob@example.com']);
    expect(await h.api(blocking).queue.count()).to.equal(3);
  });

  it('dismisses one report', async () => {
    const r = await act((o) => o.find((x) => x.label.includes('spam from afar'))!.value, 'dismiss');
    expect(note(r)).to.equal('Dismissed the report about junk@remote.example.');
    expect((await h.api(blocking).queue.list(10)).map((q) => q.report.jid)).to.deep.equal(['spammer@example.com', 'spammer@example.com']);
  });

  it('dismisses every report about a JID', async () => {
    const r = await act((o) => o[0]!.value, 'dismiss-all');
    expect(note(r)).to.equal('Dismissed 2 reports about spammer@example.com.');
    expect((await h.api(blocking).queue.list(10)).map((q) => q.report.jid)).to.deep.equal(['junk@remote.example']);
  });

  it('disables the reported local account, ends its sessions and clears its reports', async () => {
    const r = await act((o) => o[0]!.value, 'disable');
    expect(note(r)).to.equal('Disabled spammer@example.com and dismissed the reports about it.');
    expect(await h.accounts.isDisabled('example.com', 'spammer')).to.equal(true);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(spammer.closed?.condition).to.equal('not-authorized');
    expect(await h.api(blocking).queue.count()).to.equal(1);
  });

  it('refuses to disable a JID that is not a local account with not-acceptable, keeping the report', async () => {
    const r = await act((o) => o.find((x) => x.label.includes('junk@remote.example'))!.value, 'disable');
    expectError(r, 'not-acceptable');
    expect(await h.api(blocking).queue.count()).to.equal(3);
  });

  it('says so when the queue is empty', async () => {
    await h.api(blocking).queue.dismissAbout('spammer@example.com');
    await h.api(blocking).queue.dismissAbout('junk@remote.example');
    expect(note(await execute(boss))).to.equal('No spam reports are waiting.');
  });
});
