// One account on two devices, each a different third-party library: slixmpp (Debian
// python3-slixmpp, its xep_0280 and xep_0313 plugins, through spec/e2e/clients/slixmpp_multidevice.py)
// and nbxmpp (Debian python3-nbxmpp, the library under Gajim, through nbxmpp_multidevice.py); a
// third account on @xmpp/client. Message Carbons (XEP-0280 §§7-8) between the two resources, and
// the message archive (XEP-0313 v2) paged with RSM (XEP-0059) forward by slixmpp and backward by
// nbxmpp, asserted as wire facts.
//
// With PARLEY_E2E_DEBUG=1 the python drivers log their whole wire exchange on stderr.
import { expect } from 'chai';
import { fileURLToPath } from 'node:url';
import type { Element } from 'ltx';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { MucDriver, type DriverEvent } from './clients/muc-driver.js';
import { INSTALL_HINT, pythonHas, SYSTEM_PYTHON } from './clients/python-client.js';
import { xml, XjsIm } from './clients/xmppjs-im.js';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

const SLIXMPP = fileURLToPath(new URL('../../../spec/e2e/clients/slixmpp_multidevice.py', import.meta.url));
const NBXMPP = fileURLToPath(new URL('../../../spec/e2e/clients/nbxmpp_multidevice.py', import.meta.url));
const PASSWORD = 'secret-pw';
const NS_CARBONS = 'urn:xmpp:carbons:2';

interface Inner {
  from: string;
  to: string;
  id: string;
  type: string;
  body: string | null;
}

const carbon = (kind: 'sent' | 'received', id: string) => (e: DriverEvent) =>
  e.event === 'message' && e.carbon === kind && (e.inner as Inner | null)?.id === id;
const plainMessage = (id: string) => (e: DriverEvent) => e.event === 'message' && e.carbon === null && e.id === id;

describe('e2e: multi-device, slixmpp + nbxmpp on one account (Carbons, MAM paging)', function () {
  this.timeout(40_000);
  let srv: TestServer;
  let domain: string;
  const running: Array<MucDriver | XjsIm> = [];

  before(async function () {
    if (!pythonHas('slixmpp') || !pythonHas('gi', 'nbxmpp')) {
      console.log(`    (skipped: slixmpp or nbxmpp is not importable by ${SYSTEM_PYTHON}; ${INSTALL_HINT})`);
      this.skip();
    }
    srv = await startTestServer();
    domain = srv.domain;
  });
  after(async () => srv?.stop());
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      for (const c of running) {
        if (c instanceof MucDriver) console.log(`    driver saw:\n      ${c.events.map((e) => JSON.stringify({ ...e, raw: undefined }).slice(0, 400)).join('\n      ')}`);
        else console.log(`    @xmpp/client ${c.jid} saw:\n      ${c.stanzas.map((el) => el.toString().slice(0, 400)).join('\n      ')}`);
      }
    }
    await Promise.all(running.splice(0).map((c) => (c instanceof MucDriver ? c.kill() : c.stop())));
  });

  const bare = (user: string) => `${user}@${domain}`;

  async function device(script: string, user: string, resource: string): Promise<MucDriver> {
    const d = new MucDriver({ script, host: '127.0.0.1', port: srv.port('c2s'), jid: bare(user), password: PASSWORD, resource });
    running.push(d);
    expect(await d.bound()).to.equal(`${bare(user)}/${resource}`);
    return d;
  }

  async function xjs(user: string, resource = 'xjs'): Promise<XjsIm> {
    const x = await XjsIm.connect({ port: srv.port('c2s'), domain, username: user, password: PASSWORD, resource });
    running.push(x);
    // Available, so that chat to the bare JID is delivered rather than stored offline.
    await x.send(xml('presence'));
    await x.barrier(domain);
    return x;
  }

  /** sam on slixmpp (resource sli) and on nbxmpp (resource nb), both Carbons-enabled and available. */
  async function twoDevices(sam: string, prio: { sli: number; nb: number }): Promise<{ sli: MucDriver; nb: MucDriver }> {
    const sli = await device(SLIXMPP, sam, 'sli');
    const nb = await device(NBXMPP, sam, 'nb');
    expect(await sli.cmd({ cmd: 'carbons' })).to.include({ type: 'result' });
    expect(await nb.cmd({ cmd: 'carbons' })).to.include({ type: 'result' });
    await sli.cmd({ cmd: 'presence', priority: prio.sli });
    await nb.cmd({ cmd: 'presence', priority: prio.nb });
    return { sli, nb };
  }

  it('copies a chat message to the bare JID as a <received/> carbon to the resource the router did not pick, in either direction', async () => {
    for (const u of ['sam1', 'xena1']) await srv.addUser(u, PASSWORD);
    const SAM = bare('sam1');
    const { sli, nb } = await twoDevices('sam1', { sli: 5, nb: 0 });
    const x = await xjs('xena1');

    // RFC 6121 §8.5.2.1.1: the highest priority (slixmpp, 5) gets the message itself; XEP-0280 §7:
    // nbxmpp, which did not, gets a <received/> copy from the bare JID, the original forwarded.
    let [sMark, nMark] = [sli.mark(), nb.mark()];
    await x.send(xml('message', { to: SAM, type: 'chat', id: 'to-bare-1' }, xml('body', {}, 'hello sam')));
    const direct = await sli.waitFor(plainMessage('to-bare-1'), { after: sMark });
    expect(direct).to.include({ from: x.jid, to: SAM, type: 'chat', body: 'hello sam' });
    const copy = await nb.waitFor(carbon('received', 'to-bare-1'), { after: nMark });
    expect(copy).to.include({ from: SAM, to: `${SAM}/nb`, type: 'chat', body: null });
    expect(copy.inner).to.deep.equal({ from: x.jid, to: SAM, id: 'to-bare-1', type: 'chat', body: 'hello sam' });
    await sli.cmd({ cmd: 'ping' });
    await nb.cmd({ cmd: 'ping' });
    expect(sli.since(sMark, 'message', (e) => e.carbon !== null)).to.have.length(0);
    expect(nb.since(nMark, 'message', (e) => e.carbon === null)).to.have.length(0);

    // Priorities swapped: now nbxmpp gets it and slixmpp the copy.
    await nb.cmd({ cmd: 'presence', priority: 10 });
    [sMark, nMark] = [sli.mark(), nb.mark()];
    await x.send(xml('message', { to: SAM, type: 'chat', id: 'to-bare-2' }, xml('body', {}, 'hello again')));
    expect(await nb.waitFor(plainMessage('to-bare-2'), { after: nMark })).to.include({ to: SAM, body: 'hello again' });
    const copy2 = await sli.waitFor(carbon('received', 'to-bare-2'), { after: sMark });
    expect(copy2).to.include({ from: SAM, to: `${SAM}/sli`, type: 'chat' });
    expect(copy2.inner).to.include({ from: x.jid, id: 'to-bare-2', body: 'hello again' });
  });

  it('copies a message one resource sends as a <sent/> carbon to the other, whichever library sends it', async () => {
    for (const u of ['sam2', 'xena2']) await srv.addUser(u, PASSWORD);
    const [SAM, XENA] = [bare('sam2'), bare('xena2')];
    const { sli, nb } = await twoDevices('sam2', { sli: 0, nb: 0 });
    const x = await xjs('xena2');
    const isChat = (id: string) => (el: Element) => el.is('message') && el.attrs.id === id;

    // XEP-0280 §8: from slixmpp; nbxmpp sees <sent/> from the bare JID with the original inside.
    let nMark = nb.mark();
    let xMark = x.mark();
    await sli.cmd({ cmd: 'send', to: XENA, body: 'from slixmpp', id: 'sent-by-sli' });
    const got = await x.waitFor(isChat('sent-by-sli'), { after: xMark });
    expect(got.getChild('sent', NS_CARBONS)).to.equal(undefined);
    expect(got.attrs.from).to.equal(`${SAM}/sli`);
    const sent = await nb.waitFor(carbon('sent', 'sent-by-sli'), { after: nMark });
    expect(sent).to.include({ from: SAM, to: `${SAM}/nb`, type: 'chat' });
    expect(sent.inner).to.deep.equal({ from: `${SAM}/sli`, to: XENA, id: 'sent-by-sli', type: 'chat', body: 'from slixmpp' });

    // And from nbxmpp; slixmpp sees the <sent/> copy, the sender none of its own.
    const sMark = sli.mark();
    nMark = nb.mark();
    xMark = x.mark();
    await nb.cmd({ cmd: 'send', to: XENA, body: 'from nbxmpp', id: 'sent-by-nb' });
    await x.waitFor(isChat('sent-by-nb'), { after: xMark });
    const sent2 = await sli.waitFor(carbon('sent', 'sent-by-nb'), { after: sMark });
    expect(sent2).to.include({ from: SAM, to: `${SAM}/sli` });
    expect(sent2.inner).to.deep.equal({ from: `${SAM}/nb`, to: XENA, id: 'sent-by-nb', type: 'chat', body: 'from nbxmpp' });
    await nb.cmd({ cmd: 'ping' });
    expect(nb.since(nMark, 'message')).to.have.length(0);
  });

  it('pages a 25-message archive: slixmpp forward with max=10 (10, 10, 5, complete on the last), nbxmpp backward with `with` and <before/>', async () => {
    for (const u of ['sam3', 'xena3', 'yann3']) await srv.addUser(u, PASSWORD);
    const [SAM, XENA, YANN] = [bare('sam3'), bare('xena3'), bare('yann3')];
    const { sli, nb } = await twoDevices('sam3', { sli: 5, nb: 0 });
    const x = await xjs('xena3');
    const y = await xjs('yann3');

    // 25 messages exchanged with xena, in turn from each side: sam's devices alternate.
    const sent: string[] = [];
    const bodies: string[] = [];
    for (let i = 0; i < 25; i++) {
      const id = `m${String(i).padStart(2, '0')}`;
      const body = i % 3 === 0 ? `xena ${i}` : `sam ${i}`;
      sent.push(id);
      bodies.push(body);
      if (i % 3 === 0) {
        const mark = sli.mark();
        await x.send(xml('message', { to: SAM, type: 'chat', id }, xml('body', {}, body)));
        await sli.waitFor(plainMessage(id), { after: mark });
      } else {
        await (i % 3 === 1 ? sli : nb).cmd({ cmd: 'send', to: XENA, body, id });
      }
    }
    // Noise from someone else, for the `with` filter to leave out.
    const mark = sli.mark();
    await y.send(xml('message', { to: SAM, type: 'chat', id: 'noise' }, xml('body', {}, 'not xena')));
    await sli.waitFor(plainMessage('noise'), { after: mark });

    // slixmpp, xep_0313 retrieve(): forward pages of 10 with <after/>, over the conversation.
    const pages: DriverEvent[] = [];
    let after: string | undefined;
    for (let p = 0; p < 3; p++) {
      const page = await sli.cmd({ cmd: 'mam', with: XENA, max: 10, ...(after === undefined ? {} : { after }) });
      expect(page).to.include({ type: 'result' });
      pages.push(page);
      after = String(page.last);
    }
    expect(pages.map((p) => (p.msg_ids as string[]).length)).to.deep.equal([10, 10, 5]);
    expect(pages.map((p) => p.complete)).to.deep.equal([false, false, true]);
    expect(pages.flatMap((p) => p.msg_ids as string[])).to.deep.equal(sent);
    expect(pages.flatMap((p) => p.bodies as string[])).to.deep.equal(bodies);
    for (const p of pages) {
      const ids = p.ids as string[];
      expect(p.first).to.equal(ids[0]);
      expect(p.last).to.equal(ids[ids.length - 1]);
    }
    const archiveIds = pages.flatMap((p) => p.ids as string[]);
    expect(new Set(archiveIds).size).to.equal(25);

    // Without `with`, the whole archive: the noise comes last.
    const all = await sli.cmd({ cmd: 'mam', max: 30 });
    expect(all.msg_ids).to.deep.equal([...sent, 'noise']);
    expect(all.complete).to.equal(true);

    // nbxmpp: `with` xena and an empty <before/>: the last page, in chronological order.
    const last = await nb.cmd({ cmd: 'mam', with: XENA, max: 10, before: '' });
    expect(last).to.include({ type: 'result' });
    expect(last.msg_ids).to.deep.equal(sent.slice(15));
    expect(last.ids).to.deep.equal(archiveIds.slice(15));
    expect(last.bodies).to.deep.equal(bodies.slice(15));
    // Then backwards from its first: the page before it, and the first five, complete.
    const middle = await nb.cmd({ cmd: 'mam', with: XENA, max: 10, before: String(last.first) });
    expect(middle.msg_ids).to.deep.equal(sent.slice(5, 15));
    expect(middle.complete).to.equal(false);
    const first = await nb.cmd({ cmd: 'mam', with: XENA, max: 10, before: String(middle.first) });
    expect(first.msg_ids).to.deep.equal(sent.slice(0, 5));
    expect(first.complete).to.equal(true);
  });
});
