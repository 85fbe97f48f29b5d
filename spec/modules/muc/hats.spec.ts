import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { expect } from 'chai';
import { NS, xml } from '../../../lib/module-api.js';
import type { Element } from '../../../lib/module-api.js';
import type { TestClient } from '../../helpers/harness.js';
import { expectError } from '../../helpers/xml-assert.js';
import { createRoom, fields, join, presenceFrom, roomJid, startMuc, users, type MucWorld } from './helpers.js';

const ROOM = roomJid('coven');
const NS_HATS = 'urn:xmpp:hats:0';
const DON = 'urn:xmpp:hats:commands:don';
const DOFF = 'urn:xmpp:hats:commands:doff';
const TEACHER = { uri: 'http://tech.example.edu/hats#Teacher', title: 'Teacher' };
const ASSISTANT = { uri: 'http://tech.example.edu/hats#TeacherAssistant', title: "Teacher's Assistant" };

const hatsOf = (p: Element) => (p.getChild('hats', NS_HATS)?.getChildren('hat') ?? []).map((h) => ({ uri: h.attrs.uri, title: h.attrs.title }));

function command(node: string, opts: { action?: string; form?: Record<string, string>; sessionid?: string } = {}): Element {
  return xml(
    'command',
    { xmlns: NS.commands, node, action: opts.action, sessionid: opts.sessionid },
    opts.form
      ? xml(
          'x',
          { xmlns: NS.dataForms, type: 'submit' },
          xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, 'urn:xmpp:hats:commands')),
          Object.entries(opts.form).map(([k, v]) => xml('field', { var: k }, xml('value', {}, v))),
        )
      : null,
  );
}

describe('muc: hats (XEP-0317)', () => {
  let w: MucWorld;
  let alice: TestClient; // owner, "crone"
  let bob: TestClient; // "hecate"
  let carol: TestClient; // "third"
  let dir: string | undefined;

  async function start(storagePath?: string): Promise<void> {
    w = await startMuc(storagePath ? { storagePath } : {}, { hats: [TEACHER, ASSISTANT] });
    [alice, bob, carol] = await users(w.h, 'alice', 'bob', 'carol');
  }

  beforeEach(async () => {
    await start();
    await createRoom(alice, 'coven', 'crone');
    await join(bob, 'coven', 'hecate');
  });
  afterEach(async () => {
    await w.h.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  const don = (c: TestClient, jid: string, hat: string) => c.set(command(DON, { action: 'complete', form: { accountjid: jid, hat } }), ROOM);

  it('advertises the feature and, to admins and owners only, its two commands', async () => {
    const info = await bob.get(xml('query', { xmlns: NS.discoInfo }), ROOM);
    const features = info.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
    expect(features).to.include.members([NS_HATS, NS.commands]);
    const items = (c: TestClient) => c.get(xml('query', { xmlns: NS.discoItems, node: NS.commands }), ROOM);
    expect((await items(alice)).getChild('query')!.getChildren('item').map((i) => i.attrs.node)).to.deep.equal([DON, DOFF]);
    expect((await items(bob)).getChild('query')!.getChildren('item')).to.deep.equal([]);
  });

  it('gives a hat in two steps: the form with the service’s hats, then its submission; the room sees it', async () => {
    const first = await alice.set(command(DON, { action: 'execute' }), ROOM);
    const cmd = first.getChild('command', NS.commands)!;
    expect(cmd.attrs).to.include({ node: DON, status: 'executing' });
    const form = cmd.getChild('x', NS.dataForms)!;
    expect(fields(form).get('FORM_TYPE')).to.deep.equal(['urn:xmpp:hats:commands']);
    const hatField = form.getChildren('field').find((f) => f.attrs.var === 'hat')!;
    expect(hatField.attrs.type).to.equal('list-single');
    expect(hatField.getChildren('option').map((o) => o.getChildText('value'))).to.deep.equal([TEACHER.uri, ASSISTANT.uri]);
    expect(form.getChildren('field').find((f) => f.attrs.var === 'accountjid')!.attrs.type).to.equal('jid-single');

    const done = await alice.set(command(DON, { sessionid: cmd.attrs.sessionid as string, form: { accountjid: 'bob@example.com', hat: ASSISTANT.uri } }), ROOM);
    expect(done.getChild('command', NS.commands)!.attrs).to.include({ status: 'completed', sessionid: cmd.attrs.sessionid });
    const seen = await alice.next((s) => presenceFrom('coven', 'hecate')(s) && s.getChild('hats', NS_HATS) !== undefined);
    expect(hatsOf(seen)).to.deep.equal([ASSISTANT]);
    const self = await bob.next((s) => presenceFrom('coven', 'hecate')(s) && s.getChild('hats', NS_HATS) !== undefined);
    expect(hatsOf(self)).to.deep.equal([ASSISTANT]);
    // A newcomer sees it in the room's presences.
    await join(carol, 'coven', 'third');
    expect(hatsOf(carol.received.find(presenceFrom('coven', 'hecate'))!)).to.deep.equal([ASSISTANT]);
  });

  it('lets one wear several hats, and takes one off (doff)', async () => {
    await don(alice, 'bob@example.com', TEACHER.uri);
    await don(alice, 'bob@example.com', ASSISTANT.uri);
    await alice.next((s) => presenceFrom('coven', 'hecate')(s) && hatsOf(s).length === 2);
    alice.clear();
    const off = await alice.set(command(DOFF, { form: { accountjid: 'bob@example.com', hat: TEACHER.uri } }), ROOM);
    expect(off.getChild('command', NS.commands)!.attrs.status).to.equal('completed');
    const now = await alice.next((s) => presenceFrom('coven', 'hecate')(s) && hatsOf(s).length === 1);
    expect(hatsOf(now)).to.deep.equal([ASSISTANT]);
    await alice.set(command(DOFF, { form: { accountjid: 'bob@example.com', hat: ASSISTANT.uri } }), ROOM);
    const bare = await alice.next((s) => presenceFrom('coven', 'hecate')(s) && s.getChild('hats', NS_HATS) === undefined);
    expect(bare.getChild('x', NS.mucUser)).to.not.equal(undefined);
  });

  it('forbids the commands to those who are not admins or owners, and refuses unknown hats, nodes and actions', async () => {
    expectError(await don(bob, 'bob@example.com', TEACHER.uri), 'forbidden');
    const unknownHat = await don(alice, 'bob@example.com', 'http://example.com/hats#Nope');
    expectError(unknownHat, 'bad-request');
    expect(unknownHat.getChild('error')!.getChild('bad-payload', NS.commands)).to.not.equal(undefined);
    expectError(await don(alice, 'not a jid@', TEACHER.uri), 'bad-request');
    expectError(await alice.set(command('urn:xmpp:hats:commands:juggle', { action: 'execute' }), ROOM), 'item-not-found');
    const prev = await alice.set(command(DON, { action: 'prev' }), ROOM);
    expectError(prev, 'bad-request');
    expect(prev.getChild('error')!.getChild('bad-action', NS.commands)).to.not.equal(undefined);
    const cancel = await alice.set(command(DON, { action: 'cancel', sessionid: 's1' }), ROOM);
    expect(cancel.getChild('command', NS.commands)!.attrs).to.include({ status: 'canceled', sessionid: 's1' });
    expect(w.api.room('coven')!.occupants.length).to.equal(2);
  });

  it('strips hats a client claims in its own presence', async () => {
    await bob.send(xml('presence', { to: roomJid('coven', 'hecate') }, xml('show', {}, 'away'), xml('hats', { xmlns: NS_HATS }, xml('hat', TEACHER))));
    const seen = await alice.next((s) => presenceFrom('coven', 'hecate')(s) && s.getChildText('show') === 'away');
    expect(seen.getChild('hats', NS_HATS)).to.equal(undefined);
  });

  it('keeps the hats of a persistent room across a restart', async () => {
    await w.h.stop();
    dir = mkdtempSync(joinPath(tmpdir(), 'parley-muc-hats-'));
    const path = joinPath(dir, 'parley.db');
    await start(path);
    await createRoom(alice, 'keep', 'crone', { 'muc#roomconfig_persistentroom': '1' });
    expect((await alice.set(command(DON, { form: { accountjid: 'bob@example.com', hat: TEACHER.uri } }), roomJid('keep'))).attrs.type).to.equal('result');
    await w.h.stop();
    await start(path);
    await join(alice, 'keep', 'crone');
    await join(bob, 'keep', 'hecate');
    expect(hatsOf(await alice.next(presenceFrom('keep', 'hecate')))).to.deep.equal([TEACHER]);
  });
});
