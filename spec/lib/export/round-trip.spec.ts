// XEP-0227 export, import into an empty database, export again: the same document, and the
// accounts log in with their old passwords.
import { expect } from 'chai';
import { Readable } from 'node:stream';
import { NS, xml } from '../../../lib/module-api.js';
import { exportData } from '../../../lib/export/export.js';
import { importData } from '../../../lib/export/import.js';
import blocking from '../../../modules/blocking/index.js';
import mam from '../../../modules/mam/index.js';
import offline from '../../../modules/offline/index.js';
import pep from '../../../modules/pep/index.js';
import presence from '../../../modules/presence/index.js';
import privateXml from '../../../modules/private/index.js';
import roster from '../../../modules/roster/index.js';
import vcard from '../../../modules/vcard/index.js';
import disco from '../../../modules/disco/index.js';
import { Harness } from '../../helpers/harness.js';

const MODULES = [disco, roster, presence, vcard, privateXml, pep, offline, mam, blocking];

async function exported(h: Harness, user?: string): Promise<string> {
  let out = '';
  await exportData(h.storage, { hosts: ['example.com'], user }, (chunk) => {
    out += chunk;
  });
  return out;
}

describe('XEP-0227 export and import', function () {
  this.timeout(20_000);
  let source: Harness;
  let target: Harness;
  afterEach(async () => {
    await source?.stop();
    await target?.stop();
  });

  async function populate(): Promise<void> {
    source = await Harness.start({ modules: MODULES });
    await source.createAccount('alice', 'alice-pw');
    await source.createAccount('bob', 'bob-pw');
    await source.createAccount('carol', 'carol-pw');
    await source.accounts.setDisabled('example.com', 'carol', true, 'spam');
    const alice = await source.connect('alice@example.com/desk');
    const bob = await source.connect('bob@example.com/phone');
    await bob.sendPresence();
    const self = 'alice@example.com';
    // Roster with a group and a pending outbound request; a subscription request to bob.
    await alice.set(xml('query', { xmlns: NS.roster }, xml('item', { jid: 'romeo@montague.lit', name: 'Romeo' }, xml('group', {}, 'Friends'))), self);
    await alice.sendPresence({ to: 'bob@example.com', type: 'subscribe' });
    await alice.set(xml('vCard', { xmlns: NS.vcard }, xml('FN', {}, 'Alice Liddell')), self);
    await alice.set(xml('query', { xmlns: NS.privateXml }, xml('storage', { xmlns: 'storage:rosternotes' }, xml('note', { jid: 'x@y' }, 'hi'))), self);
    await alice.set(xml('pubsub', { xmlns: NS.pubsub }, xml('publish', { node: 'urn:xmpp:avatar:metadata' }, xml('item', { id: 'abc' }, xml('metadata', { xmlns: 'urn:xmpp:avatar:metadata' })))), self);
    await alice.set(xml('block', { xmlns: NS.blocking }, xml('item', { jid: 'spammer@evil.example' })), self);
    // Archived both sides (bob online), then an offline message to carol.
    await alice.sendMessage({ to: 'bob@example.com', type: 'chat', id: 'm1' }, xml('body', {}, 'hello bob'));
    await bob.next((s) => s.name === 'message');
    await alice.sendMessage({ to: 'carol@example.com', type: 'chat', id: 'm2' }, xml('body', {}, 'hello carol'));
    await new Promise((r) => setTimeout(r, 50));
  }

  it('round-trips every account and its data through an empty database', async () => {
    await populate();
    const first = await exported(source);
    // Everything the format covers is in the file.
    for (const piece of [
      "<scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-256'>",
      "<item jid='bob@example.com' subscription='none' ask='subscribe'/>",
      "<item jid='romeo@montague.lit' subscription='none' name='Romeo'><group>Friends</group></item>",
      "<presence xmlns='jabber:client' from='alice@example.com' to='bob@example.com' type='subscribe'/>",
      '<FN>Alice Liddell</FN>',
      "<storage xmlns='storage:rosternotes'>",
      "<items node='urn:xmpp:avatar:metadata'><item id='abc'",
      "<configure node='urn:xmpp:avatar:metadata'>",
      "<offline-messages><message to='carol@example.com' type='chat' id='m2' from='alice@example.com/desk' xmlns='jabber:client'>",
      'hello carol',
      "<archive xmlns='urn:xmpp:pie:0#mam'><result xmlns='urn:xmpp:mam:2'",
      "<blocklist xmlns='urn:xmpp:blocking'><item jid='spammer@evil.example'/>",
      "<disabled xmlns='urn:parley:pie:0'",
    ]) expect(first, piece).to.include(piece.replace(/'/g, '"'));

    target = await Harness.start({ modules: MODULES });
    const report = await importData(target.storage, target.accounts, Readable.from([first]), { hosts: ['example.com'] });
    expect(report.imported.sort()).to.deep.equal(['alice@example.com', 'bob@example.com', 'carol@example.com']);
    expect(report.skipped).to.deep.equal([]);
    const second = await exported(target);
    expect(second).to.equal(first);
    // SCRAM keys survived: the old passwords work, nothing else does; the disabled state too.
    expect(await target.accounts.verifyPassword('example.com', 'alice', 'alice-pw')).to.equal(true);
    expect(await target.accounts.verifyPassword('example.com', 'alice', 'bob-pw')).to.equal(false);
    expect(await target.accounts.isDisabled('example.com', 'carol')).to.equal(true);
    // The data is live, not just stored: the roster answers with the imported item.
    const alice = await target.connect('alice@example.com/again');
    const rosterReply = await alice.get(xml('query', { xmlns: NS.roster }), 'alice@example.com');
    expect(rosterReply.getChild('query')!.getChildren('item').map((i) => i.attrs.jid)).to.include('romeo@montague.lit');
  });

  it('exports one account alone with --user', async () => {
    await populate();
    const one = await exported(source, 'bob');
    expect(one.match(/<user /g)).to.have.length(1);
    expect(one).to.include('<user name="bob">');
  });

  it('leaves an existing account alone and reports it', async () => {
    await populate();
    const file = await exported(source, 'alice');
    target = await Harness.start({ modules: MODULES });
    await target.createAccount('alice', 'other-pw');
    const report = await importData(target.storage, target.accounts, Readable.from([file]), { hosts: ['example.com'] });
    expect(report.imported).to.deep.equal([]);
    expect(report.skipped).to.deep.equal([{ jid: 'alice@example.com', reason: 'the account exists already' }]);
    expect(await target.accounts.verifyPassword('example.com', 'alice', 'other-pw')).to.equal(true);
  });

  it('writes a large archive a page at a time, and imports it back whole', async () => {
    source = await Harness.start({ modules: MODULES });
    await source.createAccount('dora', 'dora-pw');
    const archive = source.storage.archive('mam');
    const total = 1_234;
    for (let i = 0; i < total; i++) {
      await archive.append('example.com', 'dora', { id: `a${i}`, when: 1_700_000_000_000 + i, with: 'eve@example.com', value: `<message xmlns="jabber:client" from="eve@example.com/x" to="dora@example.com" type="chat"><body>m${i}</body></message>` });
    }
    const chunks: string[] = [];
    await exportData(source.storage, { hosts: ['example.com'], user: 'dora' }, (chunk) => {
      chunks.push(chunk);
    });
    const withResults = chunks.filter((c) => c.includes('<result '));
    // 500 rows per page: three writes, none holding the whole archive.
    expect(withResults).to.have.length(3);
    for (const c of withResults) expect(c.match(/<result /g)!.length).to.be.at.most(500);
    const file = chunks.join('');
    expect(file.match(/<result /g)).to.have.length(total);

    target = await Harness.start({ modules: MODULES });
    const report = await importData(target.storage, target.accounts, Readable.from([file]), { hosts: ['example.com'] });
    expect(report.imported).to.deep.equal(['dora@example.com']);
    const back = await target.storage.archive('mam').query('example.com', 'dora', { limit: 2_000 });
    expect(back.items.map((i) => i.id)).to.deep.equal(Array.from({ length: total }, (_, i) => `a${i}`));
  });
});
