import { expect } from 'chai';
import { NS, xml } from '../../../lib/module-api.js';
import type { Element, XmlAttrs } from '../../../lib/module-api.js';
import type { TestClient } from '../../helpers/harness.js';
import { expectError, expectXml } from '../../helpers/xml-assert.js';
import {
  adminItem,
  adminSet,
  bodyOf,
  configSubmit,
  createRoom,
  fields,
  groupchat,
  join,
  joinPresence,
  isSubject,
  nextBody,
  roomJid,
  SERVICE,
  startMuc,
  users,
  type MucWorld,
} from './helpers.js';

const ROOM = roomJid('coven');
const MAM_FORM = (f: Record<string, string | string[]>) =>
  xml(
    'x',
    { xmlns: NS.dataForms, type: 'submit' },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, NS.mam)),
    Object.entries(f).map(([k, v]) => xml('field', { var: k }, (Array.isArray(v) ? v : [v]).map((x) => xml('value', {}, x)))),
  );

interface Page {
  fin: Element;
  results: Element[];
  bodies: Array<string | null>;
  ids: string[];
}

let queries = 0;

/** Runs a MAM query on the room and collects the result messages that arrive before the fin. */
async function mam(c: TestClient, opts: { form?: Record<string, string | string[]>; rsm?: Element[]; flip?: boolean; to?: string } = {}): Promise<Page | Element> {
  const queryid = `q${++queries}`;
  const reply = await c.set(
    xml(
      'query',
      { xmlns: NS.mam, queryid },
      opts.form ? MAM_FORM(opts.form) : null,
      opts.rsm ? xml('set', { xmlns: NS.rsm }, opts.rsm) : null,
      opts.flip ? xml('flip-page') : null,
    ),
    opts.to ?? ROOM,
  );
  if (reply.attrs.type === 'error') return reply;
  const results: Element[] = [];
  for (;;) {
    const i = c.received.findIndex((s) => s.name === 'message' && s.getChild('result', NS.mam)?.attrs.queryid === queryid);
    if (i < 0) break;
    results.push(c.received.splice(i, 1)[0]);
  }
  const inner = (r: Element) => r.getChild('result', NS.mam)!.getChild('forwarded', NS.forward)!.getChild('message')!;
  return {
    fin: reply.getChild('fin', NS.mam)!,
    results,
    bodies: results.map((r) => inner(r).getChildText('body')),
    ids: results.map((r) => r.getChild('result', NS.mam)!.attrs.id as string),
  };
}

function page(p: Page | Element): Page {
  if (!('fin' in p)) throw new Error(`the query failed: ${p.toString()}`);
  return p;
}

const rsm = (max?: number, extra: Element[] = []) => [max !== undefined ? xml('max', {}, String(max)) : null, ...extra].filter((e): e is Element => e !== null);

describe('muc: history and the room archive (XEP-0045 §7.2.13, XEP-0313, XEP-0425)', () => {
  let w: MucWorld;
  let alice: TestClient;
  let bob: TestClient;
  let carol: TestClient;

  async function say(c: TestClient, n: number, prefix = 'm'): Promise<void> {
    for (let i = 1; i <= n; i++) {
      await c.send(groupchat('coven', `${prefix}${i}`));
      await nextBody(c, `${prefix}${i}`);
    }
  }

  async function historyOf(c: TestClient, attrs?: XmlAttrs): Promise<Element[]> {
    c.clear();
    await c.send(joinPresence('coven', 'third', { history: attrs }));
    await c.next(isSubject('coven'));
    return c.received.filter((s) => s.name === 'message' && s.getChild('body') !== undefined);
  }

  beforeEach(async () => {
    w = await startMuc();
    [alice, bob, carol] = await users(w.h, 'alice', 'bob', 'carol');
    await createRoom(alice, 'coven', 'crone');
    await join(bob, 'coven', 'hecate');
  });
  afterEach(() => w.h.stop());

  describe('history on entering', () => {
    it('sends the last 20 messages by default, stamped from the room, with their stanza-id', async () => {
      await say(alice, 25);
      const history = await historyOf(carol);
      expect(history.map(bodyOf)).to.deep.equal(Array.from({ length: 20 }, (_, i) => `m${i + 6}`));
      expectXml(
        history[0],
        `<message type='groupchat' from='coven@${SERVICE}/crone' to='carol@example.com/r' id='gc-m6'>
           <body>m6</body>
           <occupant-id xmlns='${NS.occupantId}' id='*'/>
           <delay xmlns='${NS.delay}' from='coven@${SERVICE}' stamp='*'/>
           <stanza-id xmlns='${NS.sid}' id='*' by='coven@${SERVICE}'/>
         </message>`,
      );
    });

    it('honours maxstanzas, within the room’s maxhistoryfetch', async () => {
      await say(alice, 6);
      expect((await historyOf(carol, { maxstanzas: '3' })).map(bodyOf)).to.deep.equal(['m4', 'm5', 'm6']);
      await alice.set(configSubmit({ 'muc#maxhistoryfetch': '2' }), ROOM);
      expect((await historyOf(carol, { maxstanzas: '5' })).map(bodyOf)).to.deep.equal(['m5', 'm6']);
    });

    it('sends nothing for maxchars 0, and the largest tail of whole stanzas within maxchars', async () => {
      await say(alice, 4);
      expect(await historyOf(carol, { maxchars: '0' })).to.deep.equal([]);
      const all = await historyOf(carol);
      const lastTwo = all.slice(-2).reduce((n, s) => n + s.toString().length, 0);
      expect((await historyOf(carol, { maxchars: String(lastTwo + 5) })).map(bodyOf)).to.deep.equal(['m3', 'm4']);
    });

    it('honours seconds and since', async () => {
      const store = w.h.storage.archive('muc');
      const old = xml('message', { type: 'groupchat', from: roomJid('coven', 'crone'), id: 'old' }, xml('body', {}, 'an hour ago'));
      await store.append(SERVICE, 'coven', { id: 'old-1', when: Date.now() - 3_600_000, value: old.toString() });
      await say(alice, 1, 'now');
      expect((await historyOf(carol)).map(bodyOf)).to.deep.equal(['an hour ago', 'now1']);
      expect((await historyOf(carol, { seconds: '600' })).map(bodyOf)).to.deep.equal(['now1']);
      expect((await historyOf(carol, { since: new Date(Date.now() - 7_200_000).toISOString() })).map(bodyOf)).to.deep.equal(['an hour ago', 'now1']);
      expect((await historyOf(carol, { since: new Date(Date.now() - 60_000).toISOString() })).map(bodyOf)).to.deep.equal(['now1']);
    });

    it('leaves private messages out of the history and the archive', async () => {
      await bob.send(xml('message', { to: roomJid('coven', 'crone'), type: 'chat' }, xml('body', {}, 'secret')));
      await nextBody(alice, 'secret');
      expect(await historyOf(carol)).to.deep.equal([]);
      expect(page(await mam(alice)).bodies).to.deep.equal([]);
    });

    it('keeps only the join history of a room that does not log, and offers it no archive', async () => {
      await alice.set(configSubmit({ 'muc#roomconfig_enablelogging': '0', 'muc#maxhistoryfetch': '3' }), ROOM);
      await say(alice, 5);
      expect((await historyOf(carol)).map(bodyOf)).to.deep.equal(['m3', 'm4', 'm5']);
      expect(await w.h.storage.archive('muc').count(SERVICE, 'coven')).to.equal(3);
      expectError((await mam(alice)) as Element, 'feature-not-implemented');
    });
  });

  describe('MAM on the room JID', () => {
    it('returns the archive from the room, each message as the room sent it (no to), then a fin with RSM', async () => {
      await say(alice, 2);
      await bob.send(groupchat('coven', 'from bob'));
      await nextBody(alice, 'from bob');
      const p = page(await mam(carol));
      expect(p.bodies).to.deep.equal(['m1', 'm2', 'from bob']);
      expectXml(
        p.results[2],
        `<message from='coven@${SERVICE}' to='carol@example.com/r' id='*'>
           <result xmlns='${NS.mam}' queryid='*' id='${p.ids[2]}'>
             <forwarded xmlns='${NS.forward}'>
               <delay xmlns='${NS.delay}' stamp='*'/>
               <message xmlns='jabber:client' type='groupchat' from='coven@${SERVICE}/hecate' id='gc-from bob'>
                 <body>from bob</body>
                 <occupant-id xmlns='${NS.occupantId}' id='*'/>
               </message>
             </forwarded>
           </result>
         </message>`,
      );
      expectXml(
        p.fin,
        `<fin xmlns='${NS.mam}' complete='true'>
           <set xmlns='${NS.rsm}'><first index='0'>${p.ids[0]}</first><last>${p.ids[2]}</last><count>3</count></set>
         </fin>`,
      );
    });

    it('archives a subject change under the stanza-id the room stamps on it, and never sends it as history', async () => {
      await say(alice, 1);
      await alice.send(xml('message', { to: ROOM, type: 'groupchat', id: 'subj-1' }, xml('subject', {}, 'Fire Burn')));
      const live = await bob.next((s) => s.name === 'message' && s.getChildText('subject') === 'Fire Burn');
      const sid = live.getChild('stanza-id', NS.sid);
      expect(sid?.attrs.by, live.toString()).to.equal(ROOM);
      await say(alice, 1, 'after');
      const p = page(await mam(carol));
      expect(p.ids).to.have.length(3);
      expect(p.ids[1]).to.equal(sid!.attrs.id);
      const archived = p.results[1].getChild('result', NS.mam)!.getChild('forwarded', NS.forward)!.getChild('message')!;
      expect(archived.attrs).to.include({ from: roomJid('coven', 'crone'), type: 'groupchat', id: 'subj-1' });
      expect(archived.getChildText('subject')).to.equal('Fire Burn');
      expect(archived.getChild('body')).to.equal(undefined);
      // On entering: the history is discussion only; the subject comes once, after it.
      const history = await historyOf(carol);
      expect(history.map(bodyOf)).to.deep.equal(['m1', 'after1']);
      const subjects = carol.received.filter(isSubject('coven'));
      expect(subjects.map((s) => s.getChildText('subject'))).to.deep.equal(['Fire Burn']);
      expect(subjects[0].getChild('delay', NS.delay)).to.not.equal(undefined);
    });

    it('keeps no record of subject changes in a room that does not log', async () => {
      await alice.set(configSubmit({ 'muc#roomconfig_enablelogging': '0' }), ROOM);
      await alice.send(xml('message', { to: ROOM, type: 'groupchat' }, xml('subject', {}, 'Unlogged')));
      const live = await bob.next((s) => s.name === 'message' && s.getChildText('subject') === 'Unlogged');
      expect(live.getChild('stanza-id', NS.sid)).to.equal(undefined);
      await say(alice, 1);
      // Entering reads the archive, after the room's writes: only the message is there.
      expect((await historyOf(carol)).map(bodyOf)).to.deep.equal(['m1']);
      expect(await w.h.storage.archive('muc').count(SERVICE, 'coven')).to.equal(1);
    });

    it('uses the stanza-id of the live message as the archive id', async () => {
      await bob.send(groupchat('coven', 'tracked'));
      const live = await nextBody(alice, 'tracked');
      const p = page(await mam(alice));
      expect(p.ids).to.deep.equal([live.getChild('stanza-id', NS.sid)!.attrs.id]);
    });

    it('pages forwards with after, backwards with before, and from the end with an empty before', async () => {
      await say(alice, 25);
      const first = page(await mam(alice, { rsm: rsm(10) }));
      expect(first.bodies).to.deep.equal(Array.from({ length: 10 }, (_, i) => `m${i + 1}`));
      expect(first.fin.attrs.complete).to.equal(undefined);
      // A page of a larger set carries no count: that would be a scan (XEP-0059 §2.1; modules/mam/paging.ts).
      expect(first.fin.getChild('set')!.getChild('count')).to.equal(undefined);
      const second = page(await mam(alice, { rsm: rsm(10, [xml('after', {}, first.ids[9])]) }));
      expect(second.bodies[0]).to.equal('m11');
      const third = page(await mam(alice, { rsm: rsm(10, [xml('after', {}, second.ids[9])]) }));
      expect(third.bodies).to.deep.equal(['m21', 'm22', 'm23', 'm24', 'm25']);
      expect(third.fin.attrs.complete).to.equal('true');
      const last = page(await mam(alice, { rsm: rsm(5, [xml('before')]) }));
      expect(last.bodies).to.deep.equal(['m21', 'm22', 'm23', 'm24', 'm25']);
      expect(last.fin.attrs.complete).to.equal(undefined);
      const before = page(await mam(alice, { rsm: rsm(5, [xml('before', {}, last.ids[0])]) }));
      expect(before.bodies).to.deep.equal(['m16', 'm17', 'm18', 'm19', 'm20']);
      const flipped = page(await mam(alice, { rsm: rsm(3, [xml('before')]), flip: true }));
      expect(flipped.bodies).to.deep.equal(['m25', 'm24', 'm23']);
      const counted = page(await mam(alice, { rsm: rsm(0) }));
      expect(counted.results).to.deep.equal([]);
      expect(counted.fin.getChild('set')!.getChildText('count')).to.equal('25');
    });

    it('filters by start/end, after-id/before-id and ids; an unknown id is item-not-found', async () => {
      await say(alice, 5);
      const all = page(await mam(alice));
      expect(page(await mam(alice, { form: { 'after-id': all.ids[1], 'before-id': all.ids[4] } })).bodies).to.deep.equal(['m3', 'm4']);
      expect(page(await mam(alice, { form: { ids: [all.ids[0], all.ids[3]] } })).bodies).to.deep.equal(['m1', 'm4']);
      expect(page(await mam(alice, { form: { start: new Date(Date.now() + 60_000).toISOString() } })).bodies).to.deep.equal([]);
      expect(page(await mam(alice, { form: { end: new Date(Date.now() + 60_000).toISOString() } })).bodies).to.have.length(5);
      expectError((await mam(alice, { form: { ids: ['nope'] } })) as Element, 'item-not-found');
      expectError((await mam(alice, { rsm: rsm(5, [xml('after', {}, 'nope')]) })) as Element, 'item-not-found');
      expectError((await mam(alice, { form: { 'after-id': 'nope' } })) as Element, 'item-not-found');
      expectError((await mam(alice, { form: { start: 'yesterday' } })) as Element, 'bad-request');
      expectError((await mam(alice, { form: { 'include-groupchat': 'true' } })) as Element, 'feature-not-implemented');
    });

    it('filters by occupant JID for anyone, by real JID for those who may see it', async () => {
      await say(alice, 2);
      await bob.send(groupchat('coven', 'bob speaks'));
      await nextBody(alice, 'bob speaks');
      await join(carol, 'coven', 'third');
      expect(page(await mam(carol, { form: { with: roomJid('coven', 'hecate') } })).bodies).to.deep.equal(['bob speaks']);
      expect(page(await mam(carol, { form: { with: roomJid('coven', 'nobody') } })).bodies).to.deep.equal([]);
      expectError((await mam(carol, { form: { with: 'bob@example.com' } })) as Element, 'forbidden');
      expect(page(await mam(alice, { form: { with: 'bob@example.com' } })).bodies).to.deep.equal(['bob speaks']);
    });

    it('shows the real JID of senders to those allowed to see it (non-anonymous rooms, moderators)', async () => {
      await bob.send(groupchat('coven', 'who am I'));
      await nextBody(alice, 'who am I');
      const inner = (p: Page) => p.results[0].getChild('result', NS.mam)!.getChild('forwarded', NS.forward)!.getChild('message')!;
      expect(inner(page(await mam(alice))).getChild('x', NS.mucUser)?.getChild('item')?.attrs.jid).to.equal('bob@example.com');
      expect(inner(page(await mam(carol))).getChild('x', NS.mucUser)).to.equal(undefined);
      await alice.set(configSubmit({ 'muc#roomconfig_whois': 'anyone' }), ROOM);
      expect(inner(page(await mam(carol))).getChild('x', NS.mucUser)?.getChild('item')?.attrs.jid).to.equal('bob@example.com');
    });

    it('lets only those who may enter read the archive', async () => {
      await say(alice, 1);
      // An open room: anyone but outcasts, even without entering.
      expect(page(await mam(carol)).bodies).to.deep.equal(['m1']);
      await alice.set(adminSet(adminItem({ affiliation: 'outcast', jid: 'carol@example.com' })), ROOM);
      expectError((await mam(carol)) as Element, 'forbidden');
      await alice.set(adminSet(adminItem({ affiliation: 'member', jid: 'bob@example.com' })), ROOM);
      await alice.set(configSubmit({ 'muc#roomconfig_membersonly': '1' }), ROOM);
      const [dave] = await users(w.h, 'dave');
      expectError((await mam(dave)) as Element, 'forbidden');
      expect(page(await mam(bob)).bodies).to.deep.equal(['m1']);
      expectError((await mam(dave, { to: roomJid('nowhere') })) as Element, 'item-not-found');
    });

    it('describes its query form and metadata', async () => {
      const form = await alice.get(xml('query', { xmlns: NS.mam }), ROOM);
      const f = fields(form.getChild('query', NS.mam)!.getChild('x', NS.dataForms));
      expect([...f.keys()]).to.deep.equal(['FORM_TYPE', 'with', 'start', 'end', 'before-id', 'after-id', 'ids']);
      const empty = await alice.get(xml('metadata', { xmlns: NS.mam }), ROOM);
      expectXml(empty, `<iq type='result' id='*' from='${ROOM}' to='alice@example.com/r'><metadata xmlns='${NS.mam}'/></iq>`);
      await say(alice, 3);
      const all = page(await mam(alice));
      const meta = (await alice.get(xml('metadata', { xmlns: NS.mam }), ROOM)).getChild('metadata')!;
      expect(meta.getChild('start')!.attrs.id).to.equal(all.ids[0]);
      expect(meta.getChild('end')!.attrs.id).to.equal(all.ids[2]);
    });
  });

  describe('moderation (XEP-0425)', () => {
    async function spam(): Promise<string> {
      await bob.send(groupchat('coven', 'DM me for free magic potions!'));
      const got = await nextBody(alice, 'DM me for free magic potions!');
      return got.getChild('stanza-id', NS.sid)!.attrs.id as string;
    }

    it('lets a moderator retract a message for everyone (message-moderate:1) and keeps a tombstone', async () => {
      const id = await spam();
      await join(carol, 'coven', 'third');
      const reply = await alice.set(
        xml('moderate', { xmlns: 'urn:xmpp:message-moderate:1', id }, xml('retract', { xmlns: 'urn:xmpp:message-retract:1' }), xml('reason', {}, 'spam')),
        ROOM,
      );
      expect(reply.attrs.type).to.equal('result');
      for (const c of [alice, bob, carol]) {
        const m = await c.next((s) => s.name === 'message' && s.getChild('retract', NS.retract) !== undefined);
        expect(m.attrs).to.include({ type: 'groupchat', from: ROOM });
        const retract = m.getChild('retract', NS.retract)!;
        expect(retract.attrs.id).to.equal(id);
        expect(retract.getChild('moderated', 'urn:xmpp:message-moderate:1')!.attrs.by).to.equal(roomJid('coven', 'crone'));
        expect(retract.getChild('moderated', 'urn:xmpp:message-moderate:1')!.getChild('occupant-id', NS.occupantId)).to.not.equal(undefined);
        expect(retract.getChildText('reason')).to.equal('spam');
        // 0.x clients read the fastening form.
        expect(m.getChild('apply-to', 'urn:xmpp:fasten:0')!.attrs.id).to.equal(id);
      }
      const p = page(await mam(alice));
      const tomb = p.results[p.ids.indexOf(id)].getChild('result', NS.mam)!.getChild('forwarded', NS.forward)!.getChild('message')!;
      expect(tomb.getChild('body')).to.equal(undefined);
      const retracted = tomb.getChild('retracted', NS.retract)!;
      expect(retracted.attrs.stamp).to.be.a('string');
      expect(retracted.getChild('moderated', 'urn:xmpp:message-moderate:1')!.attrs.by).to.equal(roomJid('coven', 'crone'));
      expect(tomb.getChild('occupant-id', NS.occupantId)).to.not.equal(undefined);
      // The archive keeps the id and its place; the announcement is archived after it.
      expect(p.ids[0]).to.equal(id);
      expect(p.results).to.have.length(2);
      // A newcomer's history does not show the retracted message.
      expect((await historyOf(w.h.clients.find((c) => c.jid.local === 'carol')!)).map(bodyOf)).to.deep.equal([]);
    });

    it('rewrites only the moderated row in place: the other rows of that millisecond are untouched', async () => {
      const archive = w.h.storage.archive('muc');
      const when = Date.now() - 60_000;
      for (const i of [0, 1, 2, 3, 4]) {
        await archive.append(SERVICE, 'coven', {
          id: `row${i}`, when, with: 'bob@example.com',
          value: xml('message', { type: 'groupchat', from: roomJid('coven', 'hecate'), id: `r${i}` }, xml('body', {}, `r${i}`)).toString(),
        });
      }
      // The rows as stored, insertion numbers included: a delete and re-append would renumber them.
      const rows = async () =>
        (await w.h.storage.db.selectFrom('archive').select(['seq', 'id', 'ts', 'with_jid', 'value'])
          .where('host', '=', SERVICE).where('user', '=', 'coven').where('store', '=', 'muc')
          .where('ts', '=', when).orderBy('seq').execute())
          .map((r: { seq: unknown; id: string; ts: unknown; with_jid: string | null; value: string }) => ({ ...r, seq: Number(r.seq), ts: Number(r.ts) }));
      const before = await rows();
      const reply = await alice.set(xml('moderate', { xmlns: 'urn:xmpp:message-moderate:1', id: 'row2' }, xml('retract', { xmlns: 'urn:xmpp:message-retract:1' })), ROOM);
      expect(reply.attrs.type).to.equal('result');
      const after = await rows();
      expect(after.filter((r) => r.id !== 'row2')).to.deep.equal(before.filter((r) => r.id !== 'row2'));
      const [was, now] = [before.find((r) => r.id === 'row2')!, after.find((r) => r.id === 'row2')!];
      expect({ ...now, value: undefined }).to.deep.equal({ ...was, value: undefined });
      expect(now.value).to.contain('retracted').and.not.contain('<body>');
    });

    it('understands the 0.x request (apply-to with message-moderate:0)', async () => {
      const id = await spam();
      const reply = await alice.set(
        xml('apply-to', { xmlns: 'urn:xmpp:fasten:0', id }, xml('moderate', { xmlns: 'urn:xmpp:message-moderate:0' }, xml('retract', { xmlns: 'urn:xmpp:message-retract:0' }))),
        ROOM,
      );
      expect(reply.attrs.type).to.equal('result');
      await bob.next((s) => s.name === 'message' && s.getChild('apply-to', 'urn:xmpp:fasten:0') !== undefined);
    });

    it('forbids it to non-moderators and answers item-not-found for an unknown id', async () => {
      const id = await spam();
      const req = (stanzaId: string) => xml('moderate', { xmlns: 'urn:xmpp:message-moderate:1', id: stanzaId }, xml('retract', { xmlns: 'urn:xmpp:message-retract:1' }));
      expectError(await bob.set(req(id), ROOM), 'forbidden');
      expectError(await alice.set(req('nope'), ROOM), 'item-not-found');
    });
  });
});
