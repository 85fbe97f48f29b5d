// Files shaped as other servers export them (built from the XEP-0227 examples): Prosody's
// mod_storage_xep0227 (SCRAM-SHA-1 keys, PEP as pubsub + pubsub#owner, a MAM archive) and
// ejabberd's export_piefxis (plaintext password attribute, the older root namespace).
import { expect } from 'chai';
import { Readable } from 'node:stream';
import { NS, xml } from '../../../lib/module-api.js';
import { deriveScramCredential } from '../../../lib/accounts/scram-keys.js';
import { importData } from '../../../lib/export/import.js';
import { PieFormatError } from '../../../lib/export/reader.js';
import disco from '../../../modules/disco/index.js';
import mam from '../../../modules/mam/index.js';
import offline from '../../../modules/offline/index.js';
import pep from '../../../modules/pep/index.js';
import presence from '../../../modules/presence/index.js';
import privateXml from '../../../modules/private/index.js';
import roster from '../../../modules/roster/index.js';
import vcard from '../../../modules/vcard/index.js';
import { Harness } from '../../helpers/harness.js';

async function prosodyFile(): Promise<string> {
  const c = await deriveScramCredential('SHA-1', 'juliet-pw', Buffer.from('0123456789abcdef'), 4096);
  return `<?xml version='1.0' encoding='UTF-8'?>
<server-data xmlns='urn:xmpp:pie:0'>
  <host jid='example.com'>
    <user name='juliet'>
      <scram-credentials xmlns='urn:xmpp:pie:0#scram' mechanism='SCRAM-SHA-1'>
        <server-key>${c.serverKey.toString('base64')}</server-key>
        <stored-key>${c.storedKey.toString('base64')}</stored-key>
        <iter-count>4096</iter-count>
        <salt>${c.salt.toString('base64')}</salt>
      </scram-credentials>
      <query xmlns='jabber:iq:roster'>
        <item jid='romeo@montague.net' name='Romeo' subscription='both'><group>Friends</group></item>
        <item jid='nurse@example.com' subscription='none' ask='subscribe'/>
      </query>
      <presence xmlns='jabber:client' from='benvolio@montague.net' to='juliet@example.com' type='subscribe'/>
      <vCard xmlns='vcard-temp'><FN>Juliet Capulet</FN></vCard>
      <query xmlns='jabber:iq:private'><storage xmlns='storage:rosternotes'><note jid='romeo@montague.net'>a Montague</note></storage></query>
      <pubsub xmlns='http://jabber.org/protocol/pubsub#owner'>
        <configure node='urn:xmpp:microblog:0'>
          <x xmlns='jabber:x:data' type='submit'>
            <field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field>
            <field var='pubsub#access_model'><value>open</value></field>
            <field var='pubsub#max_items'><value>10</value></field>
            <field var='pubsub#itemreply'><value>owner</value></field>
          </x>
        </configure>
      </pubsub>
      <pubsub xmlns='http://jabber.org/protocol/pubsub'>
        <items node='urn:xmpp:microblog:0'>
          <item id='post1'><entry xmlns='http://www.w3.org/2005/Atom'><title>O Romeo</title></entry></item>
          <item id='post2'><entry xmlns='http://www.w3.org/2005/Atom'><title>Wherefore</title></entry></item>
        </items>
      </pubsub>
      <archive xmlns='urn:xmpp:pie:0#mam'>
        <result xmlns='urn:xmpp:mam:2' id='arch1'>
          <forwarded xmlns='urn:xmpp:forward:0'>
            <delay xmlns='urn:xmpp:delay' stamp='2020-01-01T10:00:00Z'/>
            <message xmlns='jabber:client' from='romeo@montague.net/orchard' to='juliet@example.com' type='chat'><body>Shall I hear more?</body></message>
          </forwarded>
        </result>
      </archive>
    </user>
  </host>
</server-data>
`;
}

const EJABBERD = `<?xml version='1.0' encoding='UTF-8'?>
<server-data xmlns='http://www.xmpp.org/extensions/xep-0227.html#ns'>
  <host jid='example.com'>
    <user name='romeo' password='r0m30-pw'>
      <offline-messages>
        <message xmlns='jabber:client' from='juliet@capulet.lit/balcony' to='romeo@example.com' type='chat'>
          <delay xmlns='urn:xmpp:delay' from='capulet.lit' stamp='2021-05-05T12:00:00Z'/>
          <body>Wherefore art thou?</body>
        </message>
      </offline-messages>
    </user>
    <user name='nopassword'/>
  </host>
  <host jid='elsewhere.example'>
    <user name='mercutio' password='x'/>
  </host>
</server-data>
`;

describe('XEP-0227 import of other servers\' exports', function () {
  this.timeout(20_000);
  let h: Harness;
  beforeEach(async () => {
    h = await Harness.start({ modules: [disco, roster, presence, vcard, privateXml, pep, offline, mam] });
  });
  afterEach(() => h.stop());

  const load = (text: string, chunk = 37) => {
    // Small chunks: element boundaries fall anywhere, as they do when reading a file.
    const parts: string[] = [];
    for (let i = 0; i < text.length; i += chunk) parts.push(text.slice(i, i + chunk));
    return importData(h.storage, h.accounts, Readable.from(parts), { hosts: ['example.com'] });
  };

  it("imports a Prosody-shaped account: SCRAM-SHA-1 keys, roster, pending request, vCard, private XML, PEP and archive", async () => {
    const report = await load(await prosodyFile());
    expect(report).to.deep.equal({ imported: ['juliet@example.com'], skipped: [] });
    expect(await h.accounts.verifyPassword('example.com', 'juliet', 'juliet-pw')).to.equal(true);
    expect(await h.accounts.verifyPassword('example.com', 'juliet', 'wrong')).to.equal(false);

    const juliet = await h.connect('juliet@example.com/balcony');
    const self = 'juliet@example.com';
    const items = (await juliet.get(xml('query', { xmlns: NS.roster }), self)).getChild('query')!.getChildren('item');
    expect(items.map((i) => [i.attrs.jid, i.attrs.subscription, i.attrs.ask, i.getChildText('group')])).to.deep.equal([
      ['nurse@example.com', 'none', 'subscribe', null],
      ['romeo@montague.net', 'both', undefined, 'Friends'],
    ]);
    const card = (await juliet.get(xml('vCard', { xmlns: NS.vcard }), self)).getChild('vCard', NS.vcard);
    expect(card?.getChildText('FN')).to.equal('Juliet Capulet');
    const priv = (await juliet.get(xml('query', { xmlns: NS.privateXml }, xml('storage', { xmlns: 'storage:rosternotes' })), self)).getChild('query')!;
    expect(priv.getChild('storage')!.getChildText('note')).to.equal('a Montague');
    const pubsub = await juliet.get(xml('pubsub', { xmlns: NS.pubsub }, xml('items', { node: 'urn:xmpp:microblog:0' })), self);
    expect(pubsub.getChild('pubsub')!.getChild('items')!.getChildren('item').map((i) => i.attrs.id).sort()).to.deep.equal(['post1', 'post2']);
    const config = await juliet.get(xml('pubsub', { xmlns: NS.pubsubOwner }, xml('configure', { node: 'urn:xmpp:microblog:0' })), self);
    const access = config.getChild('pubsub')!.getChild('configure')!.getChild('x')!.getChildren('field').find((f) => f.attrs.var === 'pubsub#access_model');
    expect(access?.getChildText('value')).to.equal('open');
    const archived = await h.storage.archive('mam').query('example.com', 'juliet', { limit: 10 });
    expect(archived.items.map((i) => [i.id, i.with, new Date(i.when).toISOString()])).to.deep.equal([['arch1', 'romeo@montague.net', '2020-01-01T10:00:00.000Z']]);
    expect(await h.storage.db.selectFrom('presence_pending').select('contact').where('user', '=', 'juliet').execute()).to.deep.equal([{ contact: 'benvolio@montague.net' }]);
  });

  it("imports an ejabberd-shaped file: a plaintext password and offline messages; skips what it cannot import, saying why", async () => {
    const report = await load(EJABBERD);
    expect(report.imported).to.deep.equal(['romeo@example.com']);
    expect(report.skipped).to.deep.equal([
      { jid: 'nopassword@example.com', reason: 'it has no credentials (neither SCRAM keys nor a password)' },
      { jid: 'mercutio@elsewhere.example', reason: 'elsewhere.example is not a host of this server' },
    ]);
    expect(await h.accounts.verifyPassword('example.com', 'romeo', 'r0m30-pw')).to.equal(true);
    const queued = await h.storage.archive('offline').query('example.com', 'romeo', { limit: 10 });
    expect(queued.items).to.have.length(1);
    expect(queued.items[0]!.with).to.equal('juliet@capulet.lit');
    expect(new Date(queued.items[0]!.when).toISOString()).to.equal('2021-05-05T12:00:00.000Z');
    expect(queued.items[0]!.value).to.include('Wherefore art thou?');
  });

  it('refuses a file that is not XEP-0227, or carries a DOCTYPE', async () => {
    let err: unknown;
    try {
      await load('<roster xmlns="jabber:iq:roster"/>');
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(PieFormatError);
    err = undefined;
    try {
      await load('<!DOCTYPE x [<!ENTITY a "b">]><server-data xmlns="urn:xmpp:pie:0"/>');
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(PieFormatError);
  });
});
