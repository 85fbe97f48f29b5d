import { expect } from 'chai';
import { Jid, NS, xml } from '../../../lib/module-api.js';
import type { Element } from '../../../lib/module-api.js';
import carbons from '../../../modules/carbons/index.js';
import disco from '../../../modules/disco/index.js';
import mam, { NS_MAM_EXTENDED } from '../../../modules/mam/index.js';
import offline from '../../../modules/offline/index.js';
import roster, { emptyItem } from '../../../modules/roster/index.js';
import { Harness, type HarnessOptions, type TestClient } from '../../helpers/harness.js';
import { expectError, expectXml } from '../../helpers/xml-assert.js';
import { available, carbonKind, enableCarbons, forwardedMessage, getSelf, presenceStub, setSelf } from '../carbons/support.js';

const MAM = NS.mam;
const body = (text: string) => xml('body', {}, text);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const DAY = 86_400_000;

type Fields = Record<string, string | string[]>;
interface Rsm {
  max?: number;
  after?: string;
  before?: string;
}

function form(fields: Fields, formType: string | null = MAM): Element {
  return xml(
    'x',
    { xmlns: NS.dataForms, type: 'submit' },
    formType === null ? null : xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, formType)),
    Object.entries(fields).map(([name, v]) => xml('field', { var: name }, (Array.isArray(v) ? v : [v]).map((x) => xml('value', {}, x)))),
  );
}

function rsmSet(rsm: Rsm): Element {
  return xml(
    'set',
    { xmlns: NS.rsm },
    rsm.max === undefined ? null : xml('max', {}, String(rsm.max)),
    rsm.after === undefined ? null : xml('after', {}, rsm.after),
    rsm.before === undefined ? null : xml('before', {}, rsm.before),
  );
}

interface QueryOutcome {
  reply: Element;
  results: Element[];
  /** Archive ids of the results, in the order they were sent. */
  ids: string[];
  /** Bodies of the archived messages, in the order they were sent. */
  bodies: Array<string | null>;
  fin: Element | undefined;
  complete: string | undefined;
  first: string | undefined;
  index: string | undefined;
  last: string | undefined;
  count: string | undefined;
}

let queryNumber = 0;

async function mamQuery(client: TestClient, opts: { fields?: Fields; rsm?: Rsm; flip?: boolean; to?: string } = {}): Promise<QueryOutcome> {
  const queryid = `q${++queryNumber}`;
  const payload = xml(
    'query',
    { xmlns: MAM, queryid },
    opts.fields ? form(opts.fields) : null,
    opts.rsm ? rsmSet(opts.rsm) : null,
    opts.flip ? xml('flip-page') : null,
  );
  const reply = await client.iq(xml('iq', { type: 'set', to: opts.to }, payload));
  const results = client.received.filter((s) => s.name === 'message' && s.getChild('result', MAM)?.attrs.queryid === queryid);
  const set = reply.getChild('fin', MAM)?.getChild('set', NS.rsm);
  return {
    reply,
    results,
    ids: results.map((r) => r.getChild('result', MAM)!.attrs.id as string),
    bodies: results.map((r) => r.getChild('result', MAM)!.getChild('forwarded', NS.forward)!.getChild('message')?.getChildText('body') ?? null),
    fin: reply.getChild('fin', MAM),
    complete: reply.getChild('fin', MAM)?.attrs.complete as string | undefined,
    first: set?.getChildText('first') ?? undefined,
    index: set?.getChild('first')?.attrs.index as string | undefined,
    last: set?.getChildText('last') ?? undefined,
    count: set?.getChildText('count') ?? undefined,
  };
}

const stanzaIds = (el: Element) => el.getChildren('stanza-id', NS.sid);

describe('mam (XEP-0313, XEP-0359, XEP-0441, XEP-0424)', () => {
  let h: Harness;
  let laptop: TestClient;
  let bob: TestClient;

  async function start(options: Partial<HarnessOptions> = {}): Promise<void> {
    h = await Harness.start({ modules: [mam, roster, offline, presenceStub, disco], ...options });
    await h.createAccount('alice');
    await h.createAccount('bob');
    await h.createAccount('carol');
    laptop = await h.connect('alice@example.com/laptop');
    bob = await h.connect('bob@example.com/pc');
  }

  /** bob → alice/laptop, a chat message with this body and id; resolves when alice has it. */
  async function fromBob(text: string, extra: Element[] = []): Promise<Element> {
    await bob.sendMessage({ to: 'alice@example.com/laptop', type: 'chat', id: `b-${text}` }, body(text), ...extra);
    return laptop.next((s) => s.attrs.id === `b-${text}`);
  }

  afterEach(() => h.stop());

  describe('discovery', () => {
    beforeEach(() => start());

    it('advertises mam:2, #extended, sid:0 and message retraction with tombstones on the account', async () => {
      const reply = await laptop.iq(xml('iq', { type: 'get', to: 'alice@example.com' }, xml('query', { xmlns: NS.discoInfo })));
      const features = reply.getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
      expect(features).to.include.members([MAM, NS_MAM_EXTENDED, NS.sid, NS.retract, `${NS.retract}#tombstone`]);
    });

    it('answers a form request with the supported fields, ids as an open list', async () => {
      const reply = await getSelf(laptop, xml('query', { xmlns: MAM }));
      expectXml(reply, `
        <iq type='result' id='*' from='alice@example.com' to='alice@example.com/laptop'>
          <query xmlns='urn:xmpp:mam:2'>
            <x xmlns='jabber:x:data' type='form'>
              <field type='hidden' var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field>
              <field type='jid-single' var='with'/>
              <field type='text-single' var='start'/>
              <field type='text-single' var='end'/>
              <field type='text-single' var='before-id'/>
              <field type='text-single' var='after-id'/>
              <field type='list-multi' var='ids'>
                <validate xmlns='http://jabber.org/protocol/xdata-validate' datatype='xs:string'><open/></validate>
              </field>
            </x>
          </query>
        </iq>`);
    });
  });

  describe('archiving', () => {
    beforeEach(() => start());

    it('archives a chat message in the recipient\'s archive and returns it as XEP-0313 §4.2 shows', async () => {
      await fromBob('hello');
      const q = await mamQuery(laptop);
      expect(q.results).to.have.length(1);
      expectXml(q.results[0], `
        <message to='alice@example.com/laptop' from='alice@example.com' id='*'>
          <result xmlns='urn:xmpp:mam:2' queryid='*' id='*'>
            <forwarded xmlns='urn:xmpp:forward:0'>
              <delay xmlns='urn:xmpp:delay' stamp='*'/>
              <message xmlns='jabber:client' from='bob@example.com/pc' to='alice@example.com/laptop' type='chat' id='b-hello'>
                <body>hello</body>
              </message>
            </forwarded>
          </result>
        </message>`);
      const stamp = q.results[0].getChild('result', MAM)!.getChild('forwarded', NS.forward)!.getChild('delay', NS.delay)!.attrs.stamp as string;
      expect(Math.abs(Date.parse(stamp) - Date.now())).to.be.below(5000);
      expectXml(q.reply, `
        <iq type='result' id='*' from='alice@example.com' to='alice@example.com/laptop'>
          <fin xmlns='urn:xmpp:mam:2' complete='true'>
            <set xmlns='http://jabber.org/protocol/rsm'>
              <first index='0'>${q.ids[0]}</first>
              <last>${q.ids[0]}</last>
              <count>1</count>
            </set>
          </fin>
        </iq>`);
    });

    it('archives what a client sends in the sender\'s archive too', async () => {
      await fromBob('outgoing');
      const q = await mamQuery(bob);
      expect(q.bodies).to.deep.equal(['outgoing']);
      const archived = q.results[0].getChild('result', MAM)!.getChild('forwarded', NS.forward)!.getChild('message')!;
      expect(archived.attrs.from).to.equal('bob@example.com/pc');
      expect(archived.attrs.to).to.equal('alice@example.com/laptop');
    });

    it('archives a message for a recipient with no resource online, and offline delivery carries its stanza-id', async () => {
      await laptop.disconnect();
      await bob.sendMessage({ to: 'alice@example.com', type: 'chat', id: 'off' }, body('while you were out'));
      const phone = await h.connect('alice@example.com/phone');
      const q = await mamQuery(phone);
      expect(q.bodies).to.deep.equal(['while you were out']);
      await available(phone);
      const delivered = await phone.next((s) => s.attrs.id === 'off');
      expect(stanzaIds(delivered).map((s) => s.attrs)).to.deep.equal([{ xmlns: NS.sid, by: 'alice@example.com', id: q.ids[0] }]);
    });

    it('adds <stanza-id by=\'<bare JID>\'/> with the archive id to the delivered message (XEP-0313 §3.5)', async () => {
      const delivered = await fromBob('with id');
      const q = await mamQuery(laptop);
      expectXml(stanzaIds(delivered)[0], `<stanza-id xmlns='urn:xmpp:sid:0' by='alice@example.com' id='${q.ids[0]}'/>`);
      expect(q.ids[0]).to.match(/^[0-9a-f-]{36}$/);
    });

    it('does not give the recipient the stanza-id of the sender\'s archive', async () => {
      const delivered = await fromBob('private ids');
      expect(stanzaIds(delivered).map((s) => s.attrs.by)).to.deep.equal(['alice@example.com']);
    });

    it('removes a stanza-id claiming to be by the recipient before archiving and delivery (XEP-0359 §3)', async () => {
      await h.route(xml('message', { from: 'mallory@remote.example/x', to: 'alice@example.com/laptop', type: 'chat', id: 'spoof' },
        body('trust me'), xml('stanza-id', { xmlns: NS.sid, by: 'alice@example.com', id: 'forged-id' })));
      const delivered = await laptop.next((s) => s.attrs.id === 'spoof');
      const q = await mamQuery(laptop);
      expect(stanzaIds(delivered).map((s) => s.attrs.id)).to.deep.equal([q.ids[0]]);
      const archived = q.results[0].getChild('result', MAM)!.getChild('forwarded', NS.forward)!.getChild('message')!;
      expect(stanzaIds(archived)).to.deep.equal([]);
    });

    it('removes stanza-ids by any JID of this server, and keeps those by other servers', async () => {
      await h.route(xml('message', { from: 'mallory@remote.example/x', to: 'alice@example.com/laptop', type: 'chat', id: 'spoof2' },
        body('trust me'),
        xml('stanza-id', { xmlns: NS.sid, by: 'carol@example.com', id: 'a' }),
        xml('stanza-id', { xmlns: NS.sid, by: 'example.com', id: 'b' }),
        xml('stanza-id', { xmlns: NS.sid, by: 'room@muc.remote.example', id: 'c' })));
      const delivered = await laptop.next((s) => s.attrs.id === 'spoof2');
      expect(stanzaIds(delivered).map((s) => s.attrs.by)).to.deep.equal(['room@muc.remote.example', 'alice@example.com']);
    });

    it('removes a stanza-id by this server\'s JIDs from what a client sends, so its own archive never holds one', async () => {
      await laptop.sendMessage({ to: 'bob@example.com/pc', type: 'chat', id: 'own' }, body('hi'),
        xml('stanza-id', { xmlns: NS.sid, by: 'alice@example.com', id: 'forged-id' }));
      const archived = (await mamQuery(laptop)).results[0]!.getChild('result', MAM)!.getChild('forwarded', NS.forward)!.getChild('message')!;
      expect(stanzaIds(archived)).to.deep.equal([]);
    });

    it('archives normal messages with a body but not headlines, groupchat, errors or bodyless chat states', async () => {
      await bob.sendMessage({ to: 'alice@example.com/laptop', type: 'headline', id: 'x1' }, body('news'));
      await h.route(xml('message', { from: 'room@muc.remote.example/nick', to: 'alice@example.com/laptop', type: 'groupchat', id: 'x2' }, body('room talk')));
      await bob.sendMessage({ to: 'alice@example.com/laptop', type: 'error', id: 'x3' }, body('oops'), xml('error', { type: 'cancel' }, xml('item-not-found', { xmlns: NS.stanzaErrors })));
      await bob.sendMessage({ to: 'alice@example.com/laptop', type: 'chat', id: 'x4' }, xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' }));
      await bob.sendMessage({ to: 'alice@example.com/laptop', id: 'x5' }, body('normal'));
      await laptop.next((s) => s.attrs.id === 'x5');
      expect((await mamQuery(laptop)).bodies).to.deep.equal(['normal']);
    });

    it('keeps messages with <no-store/> or <no-permanent-store/> out, and takes a bodyless one with <store/> (XEP-0334)', async () => {
      await fromBob('no-store', [xml('no-store', { xmlns: NS.hints })]);
      await fromBob('no-permanent', [xml('no-permanent-store', { xmlns: NS.hints })]);
      await bob.sendMessage({ to: 'alice@example.com/laptop', type: 'chat', id: 'enc' }, xml('encrypted', { xmlns: 'eu.siacs.conversations.axolotl' }), xml('store', { xmlns: NS.hints }));
      const q = await mamQuery(laptop);
      expect(q.results.map((r) => r.getChild('result', MAM)!.getChild('forwarded', NS.forward)!.getChild('message')!.attrs.id)).to.deep.equal(['enc']);
      expect(await h.api(mam).count('bob')).to.equal(1);
    });

    it('stores a message to oneself once, and delivers it with that archive id', async () => {
      const phone = await h.connect('alice@example.com/phone');
      await laptop.sendMessage({ to: 'alice@example.com/phone', type: 'chat', id: 'note' }, body('note to self'));
      const delivered = await phone.next((s) => s.attrs.id === 'note');
      const q = await mamQuery(laptop, { fields: { with: 'alice@example.com' } });
      expect(q.bodies).to.deep.equal(['note to self']);
      expect(stanzaIds(delivered).map((s) => s.attrs.id)).to.deep.equal(q.ids);
    });
  });

  describe('with carbons', () => {
    let phone: TestClient;

    beforeEach(async () => {
      await start({ modules: [mam, carbons, presenceStub, disco] });
      phone = await h.connect('alice@example.com/phone');
      await enableCarbons(phone);
    });

    it('puts the sender\'s archive id in sent carbons, never in the message the peer gets', async () => {
      await laptop.sendMessage({ to: 'bob@example.com/pc', type: 'chat', id: 'c1' }, body('hi bob'));
      const copy = await phone.next((s) => carbonKind(s) === 'sent');
      const q = await mamQuery(laptop);
      expect(stanzaIds(forwardedMessage(copy)!).map((s) => s.attrs)).to.deep.equal([{ xmlns: NS.sid, by: 'alice@example.com', id: q.ids[0] }]);
      const atBob = await bob.next((s) => s.attrs.id === 'c1');
      expect(stanzaIds(atBob).map((s) => s.attrs.by)).to.deep.equal(['bob@example.com']);
    });

    it('keeps the recipient\'s stanza-id in received carbons', async () => {
      await bob.sendMessage({ to: 'alice@example.com/laptop', type: 'chat', id: 'c2' }, body('hi alice'));
      const copy = await phone.next((s) => carbonKind(s) === 'received');
      const q = await mamQuery(laptop);
      expect(stanzaIds(forwardedMessage(copy)!).map((s) => s.attrs.id)).to.deep.equal(q.ids);
    });

    it('does not archive a forged carbon', async () => {
      await h.route(xml('message', { from: 'tybalt@remote.example/x', to: 'alice@example.com/laptop', type: 'chat', id: 'forged' },
        xml('received', { xmlns: NS.carbons }, xml('forwarded', { xmlns: NS.forward }, xml('message', { xmlns: NS.client, type: 'chat' }, body('lies')))),
        body('fallback')));
      await fromBob('real');
      expect((await mamQuery(laptop)).bodies).to.deep.equal(['real']);
    });
  });

  describe('queries', () => {
    beforeEach(() => start());

    it('filters by with (bare JID): messages to and from that contact, any resource', async () => {
      const carol = await h.connect('carol@example.com/home');
      await fromBob('b1');
      await carol.sendMessage({ to: 'alice@example.com/laptop', type: 'chat', id: 'c1' }, body('c1'));
      await laptop.sendMessage({ to: 'bob@example.com/other', type: 'chat', id: 'a1' }, body('a1'));
      expect((await mamQuery(laptop, { fields: { with: 'bob@example.com' } })).bodies).to.deep.equal(['b1', 'a1']);
      expect((await mamQuery(laptop, { fields: { with: 'carol@example.com' } })).bodies).to.deep.equal(['c1']);
    });

    it('filters by with (full JID): only messages to or from that resource', async () => {
      await fromBob('from-pc');
      await laptop.sendMessage({ to: 'bob@example.com/other', type: 'chat', id: 'a1' }, body('to-other'));
      await laptop.sendMessage({ to: 'bob@example.com/pc', type: 'chat', id: 'a2' }, body('to-pc'));
      const q = await mamQuery(laptop, { fields: { with: 'bob@example.com/pc' } });
      expect(q.bodies).to.deep.equal(['from-pc', 'to-pc']);
      expect(q.complete).to.equal('true');
      // The whole result set in one page: its count is known without counting.
      expect([q.count, q.index]).to.deep.equal(['2', '0']);
    });

    it('filters by start and end, both inclusive', async () => {
      for (const t of ['one', 'two', 'three']) {
        await fromBob(t);
        await sleep(3);
      }
      const all = await mamQuery(laptop);
      const stamps = all.results.map((r) => r.getChild('result', MAM)!.getChild('forwarded', NS.forward)!.getChild('delay', NS.delay)!.attrs.stamp as string);
      expect((await mamQuery(laptop, { fields: { start: stamps[1]! } })).bodies).to.deep.equal(['two', 'three']);
      expect((await mamQuery(laptop, { fields: { end: stamps[1]! } })).bodies).to.deep.equal(['one', 'two']);
      const both = await mamQuery(laptop, { fields: { start: stamps[1]!, end: stamps[1]! } });
      expect(both.bodies).to.deep.equal(['two']);
      expect(both.count).to.equal('1');
    });

    it('accepts XEP-0082 times with a zone offset', async () => {
      await fromBob('zoned');
      const q = await mamQuery(laptop, { fields: { start: '2000-01-01T02:00:00+02:00', end: '2999-12-31T23:59:59.999-05:00' } });
      expect(q.bodies).to.deep.equal(['zoned']);
    });

    it('returns exactly the messages named in ids (#extended)', async () => {
      for (const t of ['one', 'two', 'three']) await fromBob(t);
      const all = await mamQuery(laptop);
      const q = await mamQuery(laptop, { fields: { ids: [all.ids[2]!, all.ids[0]!] } });
      expect(q.bodies).to.deep.equal(['one', 'three']);
      expect(q.count).to.equal('2');
    });

    it('returns the messages between after-id and before-id (#extended), counting only those', async () => {
      for (const t of ['one', 'two', 'three', 'four']) await fromBob(t);
      const all = await mamQuery(laptop);
      const q = await mamQuery(laptop, { fields: { 'after-id': all.ids[0]!, 'before-id': all.ids[3]! } });
      expect(q.bodies).to.deep.equal(['two', 'three']);
      expect(q.count).to.equal('2');
      expect(q.index).to.equal('0');
    });

    describe('paging (XEP-0059)', () => {
      const texts = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7'];
      let all: QueryOutcome;

      beforeEach(async () => {
        for (const t of texts) await fromBob(t);
        all = await mamQuery(laptop);
      });

      // A page of a larger set carries no count or index: working them out is a scan (XEP-0059 §2.1).
      it('pages forwards through three pages with after, with first, last and complete, and no count or index', async () => {
        const p1 = await mamQuery(laptop, { rsm: { max: 3 } });
        expect([p1.bodies, p1.first, p1.index, p1.last, p1.count, p1.complete]).to.deep.equal([['m1', 'm2', 'm3'], all.ids[0], undefined, all.ids[2], undefined, 'false']);
        const p2 = await mamQuery(laptop, { rsm: { max: 3, after: p1.last! } });
        expect([p2.bodies, p2.first, p2.index, p2.last, p2.count, p2.complete]).to.deep.equal([['m4', 'm5', 'm6'], all.ids[3], undefined, all.ids[5], undefined, 'false']);
        const p3 = await mamQuery(laptop, { rsm: { max: 3, after: p2.last! } });
        expect([p3.bodies, p3.first, p3.index, p3.last, p3.count, p3.complete]).to.deep.equal([['m7'], all.ids[6], undefined, all.ids[6], undefined, 'true']);
      });

      it('pages backwards from the last page (empty <before/>), each page in chronological order', async () => {
        const p1 = await mamQuery(laptop, { rsm: { max: 3, before: '' } });
        expect([p1.bodies, p1.first, p1.index, p1.last, p1.count, p1.complete]).to.deep.equal([['m5', 'm6', 'm7'], all.ids[4], undefined, all.ids[6], undefined, 'false']);
        const p2 = await mamQuery(laptop, { rsm: { max: 3, before: p1.first! } });
        expect([p2.bodies, p2.first, p2.index, p2.last, p2.count, p2.complete]).to.deep.equal([['m2', 'm3', 'm4'], all.ids[1], undefined, all.ids[3], undefined, 'false']);
        const p3 = await mamQuery(laptop, { rsm: { max: 3, before: p2.first! } });
        expect([p3.bodies, p3.first, p3.index, p3.last, p3.count, p3.complete]).to.deep.equal([['m1'], all.ids[0], undefined, all.ids[0], undefined, 'true']);
      });

      it('pages inside a with filter, and counts to that filter when asked for the count alone', async () => {
        const carol = await h.connect('carol@example.com/home');
        await carol.sendMessage({ to: 'alice@example.com/laptop', type: 'chat', id: 'c' }, body('from carol'));
        const p = await mamQuery(laptop, { fields: { with: 'bob@example.com' }, rsm: { max: 2, after: all.ids[4]! } });
        expect([p.bodies, p.index, p.count, p.complete]).to.deep.equal([['m6', 'm7'], undefined, undefined, 'true']);
        const counted = await mamQuery(laptop, { fields: { with: 'bob@example.com' }, rsm: { max: 0 } });
        expect(counted.count).to.equal('7');
      });

      it('gives count and index 0 when the page holds the whole result set', async () => {
        const p = await mamQuery(laptop, { rsm: { max: 10 } });
        expect([p.bodies, p.index, p.count, p.complete]).to.deep.equal([texts, '0', '7', 'true']);
        const none = await mamQuery(laptop, { fields: { with: 'carol@example.com' } });
        expect([none.results.length, none.index, none.count, none.complete]).to.deep.equal([0, undefined, '0', 'true']);
      });

      it('sends a flipped page newest first, without changing what it holds (#extended)', async () => {
        const p = await mamQuery(laptop, { rsm: { max: 3, before: '' }, flip: true });
        expect(p.bodies).to.deep.equal(['m7', 'm6', 'm5']);
        expect([p.first, p.last]).to.deep.equal([all.ids[4], all.ids[6]]);
      });

      it('caps the page at maxPageSize whatever <max/> asks', async () => {
        await h.stop();
        await start({ options: { mam: { maxPageSize: 2 } } });
        for (const t of texts) await fromBob(t);
        const p = await mamQuery(laptop, { rsm: { max: 50 } });
        expect(p.bodies).to.deep.equal(['m1', 'm2']);
        expect(p.complete).to.equal('false');
      });

      it('answers <max>0</max> with the count alone', async () => {
        const p = await mamQuery(laptop, { rsm: { max: 0 } });
        expect(p.results).to.deep.equal([]);
        expect([p.first, p.last, p.count]).to.deep.equal([undefined, undefined, '7']);
      });

      it('answers item-not-found for an unknown RSM after or before id', async () => {
        expectError((await mamQuery(laptop, { rsm: { max: 3, after: 'no-such-id' } })).reply, 'item-not-found');
        expectError((await mamQuery(laptop, { rsm: { max: 3, before: 'no-such-id' } })).reply, 'item-not-found');
      });

      it('answers item-not-found for unknown after-id, before-id or ids (#extended)', async () => {
        expectError((await mamQuery(laptop, { fields: { 'after-id': 'nope' } })).reply, 'item-not-found');
        expectError((await mamQuery(laptop, { fields: { 'before-id': 'nope' } })).reply, 'item-not-found');
        expectError((await mamQuery(laptop, { fields: { ids: [all.ids[0]!, 'nope'] } })).reply, 'item-not-found');
      });

      it('returns 20 messages when the client gives no <max/>', async () => {
        for (let i = 8; i <= 25; i++) await fromBob(`m${i}`);
        const p = await mamQuery(laptop);
        expect(p.results).to.have.length(20);
        expect([p.count, p.complete]).to.deep.equal([undefined, 'false']);
      });
    });

    it('pages and counts exactly when several messages share one millisecond', async () => {
      // Stored directly, as the archive would have stored a burst: t, then five at t+1, then t+2.
      const archive = h.storage.archive('mam');
      const t = Date.parse('2024-05-01T12:00:00.000Z');
      const whens = [t, t + 1, t + 1, t + 1, t + 1, t + 1, t + 2];
      for (const [i, when] of whens.entries()) {
        const peer = i % 2 === 0 ? 'bob@example.com' : 'carol@example.com';
        await archive.append('example.com', 'alice', {
          id: `id${i}`, when, with: peer,
          value: xml('message', { from: `${peer}/x`, to: 'alice@example.com/laptop', type: 'chat', id: `m${i}` }, body(`m${i}`)).toString(),
        });
      }
      const p2 = await mamQuery(laptop, { rsm: { max: 2, after: 'id2' } });
      expect([p2.ids, p2.index, p2.count]).to.deep.equal([['id3', 'id4'], undefined, undefined]);
      const count = async (fields: Fields) => (await mamQuery(laptop, { fields, rsm: { max: 0 } })).count;
      expect(await count({ 'after-id': 'id2' })).to.equal('4');
      expect(await count({ 'before-id': 'id4' })).to.equal('4');
      expect(await count({ 'after-id': 'id1', 'before-id': 'id5' })).to.equal('3');
      expect(await count({ with: 'bob@example.com', 'before-id': 'id4' })).to.equal('2');
      expect(await count({ start: '2024-05-01T12:00:00.001Z', end: '2024-05-01T12:00:00.001Z', 'after-id': 'id3' })).to.equal('2');
      // The tighter bound wins when the form and RSM both give one.
      const folded = await mamQuery(laptop, { fields: { 'after-id': 'id4' }, rsm: { max: 5, after: 'id2' } });
      expect([folded.ids, folded.complete]).to.deep.equal([['id5', 'id6'], 'true']);
      const foldedBack = await mamQuery(laptop, { fields: { 'before-id': 'id2' }, rsm: { max: 5, before: 'id4' } });
      expect(foldedBack.ids).to.deep.equal(['id0', 'id1']);
      const inside = await mamQuery(laptop, { fields: { 'after-id': 'id2', 'before-id': 'id5' } });
      expect([inside.ids, inside.index, inside.count]).to.deep.equal([['id3', 'id4'], '0', '2']);
      const bobs = await mamQuery(laptop, { fields: { with: 'bob@example.com' }, rsm: { max: 1, before: 'id4' } });
      expect([bobs.ids, bobs.complete]).to.deep.equal([['id2'], 'false']);
      const window = await mamQuery(laptop, { fields: { start: '2024-05-01T12:00:00.001Z', end: '2024-05-01T12:00:00.001Z' }, rsm: { max: 2, after: 'id3' } });
      expect([window.ids, window.complete]).to.deep.equal([['id4', 'id5'], 'true']);
    });

    it('answers bad-request for a malformed start, end or with, or a foreign FORM_TYPE', async () => {
      expectError((await mamQuery(laptop, { fields: { start: 'yesterday' } })).reply, 'bad-request');
      expectError((await mamQuery(laptop, { fields: { end: '2024-02-30T00:00:00Z' } })).reply, 'bad-request');
      expectError((await mamQuery(laptop, { fields: { with: 'not a@jid@x' } })).reply, 'bad-request');
      const foreign = await setSelf(laptop, xml('query', { xmlns: MAM }, form({}, 'urn:xmpp:mam:1')));
      expectError(foreign, 'bad-request');
    });

    it('answers feature-not-implemented for a form field it does not know (§4.1.5)', async () => {
      expectError((await mamQuery(laptop, { fields: { '{urn:example}full-text': 'x' } })).reply, 'feature-not-implemented');
    });

    it('refuses to let one account query another\'s archive', async () => {
      await fromBob('secret');
      expectError((await mamQuery(bob, { to: 'alice@example.com' })).reply, 'forbidden');
    });

    it('answers metadata with the first and last archived messages, or an empty element (#extended §5)', async () => {
      expectXml(await getSelf(laptop, xml('metadata', { xmlns: MAM })), `
        <iq type='result' id='*' from='alice@example.com' to='alice@example.com/laptop'><metadata xmlns='urn:xmpp:mam:2'/></iq>`);
      for (const t of ['first', 'middle', 'last']) await fromBob(t);
      const all = await mamQuery(laptop);
      const stamp = (i: number) => all.results[i]!.getChild('result', MAM)!.getChild('forwarded', NS.forward)!.getChild('delay', NS.delay)!.attrs.stamp;
      expectXml(await getSelf(laptop, xml('metadata', { xmlns: MAM })), `
        <iq type='result' id='*' from='alice@example.com' to='alice@example.com/laptop'>
          <metadata xmlns='urn:xmpp:mam:2'>
            <start id='${all.ids[0]}' timestamp='${stamp(0)}'/>
            <end id='${all.ids[2]}' timestamp='${stamp(2)}'/>
          </metadata>
        </iq>`);
    });
  });

  describe('preferences (XEP-0441)', () => {
    beforeEach(() => start());

    const prefs = (dflt: string, always: string[] = [], never: string[] = []) =>
      xml('prefs', { xmlns: MAM, default: dflt },
        xml('always', {}, always.map((j) => xml('jid', {}, j))),
        xml('never', {}, never.map((j) => xml('jid', {}, j))));

    it('answers default=always with both lists empty before any are set', async () => {
      expectXml(await getSelf(laptop, xml('prefs', { xmlns: MAM })), `
        <iq type='result' id='*' from='alice@example.com' to='alice@example.com/laptop'>
          <prefs xmlns='urn:xmpp:mam:2' default='always'><always/><never/></prefs>
        </iq>`);
    });

    it('stores preferences and answers with the applied ones, JIDs prepared', async () => {
      const reply = await setSelf(laptop, prefs('roster', ['Bob@Example.com'], ['carol@example.com/Home']));
      expectXml(reply.getChild('prefs', MAM), `
        <prefs xmlns='urn:xmpp:mam:2' default='roster'>
          <always><jid>bob@example.com</jid></always>
          <never><jid>carol@example.com/Home</jid></never>
        </prefs>`);
      expectXml((await getSelf(laptop, xml('prefs', { xmlns: MAM }))).getChild('prefs', MAM), reply.getChild('prefs', MAM)!.toString());
    });

    it('answers bad-request for an unknown default or an invalid JID', async () => {
      expectError(await setSelf(laptop, prefs('sometimes')), 'bad-request');
      expectError(await setSelf(laptop, prefs('always', ['@bad'])), 'bad-request');
    });

    it('does not archive, in either direction, messages with a JID on the never list; they carry no stanza-id', async () => {
      await setSelf(laptop, prefs('always', [], ['bob@example.com']));
      const delivered = await fromBob('unrecorded');
      await laptop.sendMessage({ to: 'bob@example.com/pc', type: 'chat', id: 'r' }, body('reply'));
      await h.route(xml('message', { from: 'dave@remote.example/x', to: 'alice@example.com/laptop', type: 'chat', id: 'd' }, body('recorded')));
      expect((await mamQuery(laptop)).bodies).to.deep.equal(['recorded']);
      expect(stanzaIds(delivered)).to.deep.equal([]);
    });

    it('applies changed preferences from the next message on, though the ones before were cached', async () => {
      await fromBob('before');
      await setSelf(laptop, prefs('always', [], ['bob@example.com']));
      const unrecorded = await fromBob('while-never');
      await setSelf(laptop, prefs('always'));
      const recorded = await fromBob('after');
      expect((await mamQuery(laptop)).bodies).to.deep.equal(['before', 'after']);
      expect([stanzaIds(unrecorded).length, stanzaIds(recorded).length]).to.deep.equal([0, 1]);
    });

    it('forgets the preferences of a deleted account: one made again with its name archives by default', async () => {
      await setSelf(laptop, prefs('never'));
      await fromBob('unrecorded');
      await h.deleteAccount('alice');
      await h.createAccount('alice');
      laptop = await h.connect('alice@example.com/laptop');
      await fromBob('recorded');
      expect((await mamQuery(laptop)).bodies).to.deep.equal(['recorded']);
    });

    it('archives only the always list when the default is never', async () => {
      await setSelf(laptop, prefs('never', ['bob@example.com']));
      await fromBob('kept');
      await h.route(xml('message', { from: 'dave@remote.example/x', to: 'alice@example.com/laptop', type: 'chat', id: 'd' }, body('dropped')));
      expect((await mamQuery(laptop)).bodies).to.deep.equal(['kept']);
    });

    it('matches a listed full JID only against that resource', async () => {
      await setSelf(laptop, prefs('always', [], ['bob@example.com/pc']));
      await fromBob('from-pc');
      const other = await h.connect('bob@example.com/tablet');
      await other.sendMessage({ to: 'alice@example.com/laptop', type: 'chat', id: 't' }, body('from-tablet'));
      expect((await mamQuery(laptop)).bodies).to.deep.equal(['from-tablet']);
    });

    it('with default=roster, archives contacts in the roster and not strangers', async () => {
      await setSelf(laptop, prefs('roster'));
      const alice = Jid.parse('alice@example.com');
      const bobJid = Jid.parse('bob@example.com');
      await h.api(roster).update(alice, bobJid, () => emptyItem(bobJid));
      await fromBob('contact');
      await h.route(xml('message', { from: 'dave@remote.example/x', to: 'alice@example.com/laptop', type: 'chat', id: 'd' }, body('stranger')));
      expect((await mamQuery(laptop)).bodies).to.deep.equal(['contact']);
    });
  });

  describe('retention', () => {
    it('purges messages older than the retention period from every archive and keeps newer ones', async () => {
      await start({ options: { mam: { retention: '2d' } } });
      await fromBob('old');
      await sleep(5);
      await fromBob('new');
      const archivedAt = async (client: TestClient) =>
        Date.parse((await mamQuery(client)).results[0]!.getChild('result', MAM)!.getChild('forwarded', NS.forward)!.getChild('delay', NS.delay)!.attrs.stamp as string);
      // Bob's archive took it first (on sending), Alice's a moment later (on receipt).
      const sentAt = await archivedAt(bob);
      const receivedAt = await archivedAt(laptop);
      expect(await h.api(mam).purgeExpired(sentAt + 2 * DAY)).to.equal(0);
      // One millisecond past the retention period the old message goes, from both archives.
      expect(await h.api(mam).purgeExpired(receivedAt + 2 * DAY + 1)).to.equal(2);
      expect((await mamQuery(laptop)).bodies).to.deep.equal(['new']);
      expect((await mamQuery(bob)).bodies).to.deep.equal(['new']);
    });

    it('keeps everything with retention: never', async () => {
      await start({ options: { mam: { retention: 'never' } } });
      await fromBob('forever');
      expect(await h.api(mam).purgeExpired(Date.now() + 10_000 * DAY)).to.equal(0);
      expect(await h.api(mam).count('alice')).to.equal(1);
    });

    it('rejects a retention that is not a duration', () => {
      const message = (value: unknown) => mam.config.safeParse({ retention: value }).error?.issues[0]?.message;
      expect(message('a while')).to.match(/is not a duration.*or "never"/);
      expect(message('0s')).to.match(/longer than 0/);
      expect(mam.config.parse({ retention: '8w' }).retention).to.equal(56 * DAY);
      expect(mam.config.parse({}).retention).to.equal(365 * DAY);
    });
  });

  describe('retraction (XEP-0424)', () => {
    beforeEach(() => start());

    const retraction = (id: string, target: string) =>
      xml('message', { to: 'alice@example.com/laptop', type: 'chat', id },
        xml('retract', { xmlns: NS.retract, id: target }),
        xml('fallback', { xmlns: 'urn:xmpp:fallback:0', for: NS.retract }),
        body('/me retracted a previous message'),
        xml('store', { xmlns: NS.hints }));

    const archivedMessages = async (client: TestClient) =>
      (await mamQuery(client)).results.map((r) => r.getChild('result', MAM)!.getChild('forwarded', NS.forward)!.getChild('message')!);

    it('replaces the retracted message with a tombstone in both archives, and archives the retraction', async () => {
      await fromBob('oops');
      await bob.send(retraction('retract-1', 'b-oops'));
      await laptop.next((s) => s.attrs.id === 'retract-1');
      for (const client of [laptop, bob]) {
        const [tomb, retract] = await archivedMessages(client);
        expect(tomb!.getChildText('body')).to.equal(null);
        expectXml(tomb, `
          <message xmlns='jabber:client' from='bob@example.com/pc' to='alice@example.com/laptop' type='chat' id='b-oops'>
            <retracted xmlns='urn:xmpp:message-retract:1' id='retract-1' stamp='*'/>
          </message>`);
        expect(retract!.getChild('retract', NS.retract)!.attrs.id).to.equal('b-oops');
      }
    });

    it('finds the message by its XEP-0359 origin-id and keeps the origin-id in the tombstone', async () => {
      await fromBob('oops', [xml('origin-id', { xmlns: NS.sid, id: 'origin-1' })]);
      await bob.send(retraction('retract-2', 'origin-1'));
      await laptop.next((s) => s.attrs.id === 'retract-2');
      const [tomb] = await archivedMessages(laptop);
      expect(tomb!.getChild('retracted', NS.retract)).to.not.equal(undefined);
      expect(tomb!.getChild('origin-id', NS.sid)!.attrs.id).to.equal('origin-1');
    });

    it('keeps the id, time and order of the retracted message', async () => {
      await fromBob('first');
      await fromBob('second');
      const before = await mamQuery(laptop);
      await bob.send(retraction('retract-3', 'b-first'));
      await laptop.next((s) => s.attrs.id === 'retract-3');
      const after = await mamQuery(laptop);
      expect(after.ids.slice(0, 2)).to.deep.equal(before.ids);
      const stamp = (q: QueryOutcome) => q.results[0]!.getChild('result', MAM)!.getChild('forwarded', NS.forward)!.getChild('delay', NS.delay)!.attrs.stamp;
      expect(stamp(after)).to.equal(stamp(before));
    });

    it('does not let a contact retract the account\'s own message, even by its archive id', async () => {
      await laptop.sendMessage({ to: 'bob@example.com/pc', type: 'chat', id: 'a-mine' }, body('mine'));
      const [archiveId] = (await mamQuery(laptop)).ids;
      await bob.send(retraction('retract-5', archiveId!));
      await laptop.next((s) => s.attrs.id === 'retract-5');
      const [original] = await archivedMessages(laptop);
      expect(original!.getChildText('body')).to.equal('mine');
    });

    it('does not apply a retraction sent in another conversation', async () => {
      await laptop.sendMessage({ to: 'bob@example.com/pc', type: 'chat', id: 'a-same' }, body('for bob'));
      const carol = await h.connect('carol@example.com/home');
      const [archiveId] = (await mamQuery(laptop)).ids;
      for (const target of ['a-same', archiveId!]) {
        await laptop.sendMessage({ to: 'carol@example.com/home', type: 'chat', id: `retract-${target}` }, xml('retract', { xmlns: NS.retract, id: target }), body('retracted'));
        await carol.next((s) => s.attrs.id === `retract-${target}`);
      }
      const [original] = await archivedMessages(laptop);
      expect(original!.getChildText('body')).to.equal('for bob');
    });

    it('finds the message by its archive id, and keeps its place among messages of the same millisecond', async () => {
      const archive = h.storage.archive('mam');
      const when = Date.parse('2024-05-01T12:00:00.000Z');
      for (const i of [0, 1, 2]) {
        await archive.append('example.com', 'alice', {
          id: `id${i}`, when, with: 'bob@example.com',
          value: xml('message', { from: 'bob@example.com/pc', to: 'alice@example.com/laptop', type: 'chat', id: `m${i}` }, body(`m${i}`)).toString(),
        });
      }
      await bob.send(retraction('retract-7', 'id0'));
      await laptop.next((s) => s.attrs.id === 'retract-7');
      const q = await mamQuery(laptop);
      expect(q.ids.slice(0, 3)).to.deep.equal(['id0', 'id1', 'id2']);
      expect(q.bodies.slice(0, 3)).to.deep.equal([null, 'm1', 'm2']);
    });

    it('rewrites only the retracted row in place: the other rows of that millisecond are untouched', async () => {
      const archive = h.storage.archive('mam');
      const when = Date.parse('2024-05-01T12:00:00.000Z');
      for (const i of [0, 1, 2, 3, 4]) {
        await archive.append('example.com', 'alice', {
          id: `row${i}`, when, with: 'bob@example.com',
          value: xml('message', { from: 'bob@example.com/pc', to: 'alice@example.com/laptop', type: 'chat', id: `r${i}` }, body(`r${i}`)).toString(),
        });
      }
      // The rows as stored, insertion numbers included: a delete and re-append would renumber them.
      const rows = async () =>
        (await h.storage.db.selectFrom('archive').select(['seq', 'id', 'ts', 'with_jid', 'value'])
          .where('host', '=', 'example.com').where('user', '=', 'alice').where('store', '=', 'mam')
          .where('ts', '=', when).orderBy('seq').execute())
          .map((r: { seq: unknown; id: string; ts: unknown; with_jid: string | null; value: string }) => ({ ...r, seq: Number(r.seq), ts: Number(r.ts) }));
      const before = await rows();
      await bob.send(retraction('retract-10', 'row2'));
      await laptop.next((s) => s.attrs.id === 'retract-10');
      const after = await rows();
      expect(after.filter((r) => r.id !== 'row2')).to.deep.equal(before.filter((r) => r.id !== 'row2'));
      const [was, now] = [before.find((r) => r.id === 'row2')!, after.find((r) => r.id === 'row2')!];
      expect({ ...now, value: undefined }).to.deep.equal({ ...was, value: undefined });
      expect(now.value).to.contain('retracted').and.not.contain('<body>');
    });

    it('keeps a retraction in the archive even when it is itself the target of one (XEP-0424 §5)', async () => {
      await fromBob('oops');
      await bob.send(retraction('retract-8', 'b-oops'));
      await laptop.next((s) => s.attrs.id === 'retract-8');
      await bob.send(retraction('retract-9', 'retract-8'));
      await laptop.next((s) => s.attrs.id === 'retract-9');
      const [, first, second] = await archivedMessages(laptop);
      expect(first!.getChild('retract', NS.retract)!.attrs.id).to.equal('b-oops');
      expect(second!.getChild('retract', NS.retract)!.attrs.id).to.equal('retract-8');
    });

    it('ignores a retraction from anyone but the original sender', async () => {
      await fromBob('mine');
      const carol = await h.connect('carol@example.com/home');
      const forged = retraction('retract-4', 'b-mine');
      await carol.send(forged);
      await laptop.next((s) => s.attrs.id === 'retract-4');
      const [original] = await archivedMessages(laptop);
      expect(original!.getChildText('body')).to.equal('mine');
    });
  });

  describe('account deletion', () => {
    beforeEach(() => start());

    it('purges the archive and the preferences of a deleted account', async () => {
      await fromBob('bye');
      await setSelf(laptop, xml('prefs', { xmlns: MAM, default: 'never' }));
      expect(await h.api(mam).count('alice')).to.equal(1);
      await h.deleteAccount('alice');
      expect(await h.api(mam).count('alice')).to.equal(0);
      await h.createAccount('alice');
      const again = await h.connect('alice@example.com/new');
      const reply = await getSelf(again, xml('prefs', { xmlns: MAM }));
      expect(reply.getChild('prefs', MAM)!.attrs.default).to.equal('always');
    });
  });
});
