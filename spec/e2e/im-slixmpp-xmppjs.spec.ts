// The instant-messaging core between two client libraries on two accounts: one account driven by
// slixmpp (Debian python3-slixmpp, through the interactive driver spec/e2e/clients/slixmpp_im.py,
// which reports every stanza it receives as a JSON line), the other by @xmpp/client. Subscription
// handshake both ways (RFC 6121 §3), roster versioning (XEP-0237), offline delivery (XEP-0160 /
// XEP-0203), blocking (XEP-0191), last activity (XEP-0012) and the vCard (XEP-0054), asserted
// as wire facts: types, addresses, versions, error conditions.
//
// With PARLEY_E2E_DEBUG=1 the slixmpp side logs its whole wire exchange on stderr.
import { expect } from 'chai';
import type { Element } from 'ltx';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { INSTALL_HINT, pythonHas, SYSTEM_PYTHON } from './clients/python-client.js';
import { SlixIm, type DriverEvent } from './clients/slixmpp-im.js';
import { errorOf, isRosterPush, rosterItems, xml, XjsIm } from './clients/xmppjs-im.js';

// @xmpp/client meets the generated self-signed certificate (STARTTLS).
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

const PASSWORD = 'secret-pw';
const NS_ROSTER = 'jabber:iq:roster';
const NS_LAST = 'jabber:iq:last';
const NS_BLOCKING = 'urn:xmpp:blocking';
const NS_BLOCKING_ERRORS = 'urn:xmpp:blocking:errors';
/** A 1×1 PNG. */
const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A roster item as the driver reports it, with the attributes a plain item leaves out. */
const item = (jid: string, subscription: string, extra: { ask?: string; name?: string } = {}) => ({
  jid, subscription, ask: extra.ask ?? null, name: extra.name ?? null, approved: null, groups: [],
});

const isPresence = (type: string, from?: string) => (e: DriverEvent) => e.event === 'presence' && e.type === type && (from === undefined || e.from === from);
const isPush = (e: DriverEvent) => e.event === 'roster_push';
const xPresence = (type: string | undefined, from?: string) => (el: Element) =>
  el.is('presence') && el.attrs.type === type && (from === undefined || el.attrs.from === from);

describe('e2e: instant messaging, slixmpp ⇄ @xmpp/client', function () {
  this.timeout(20_000);
  let srv: TestServer;
  let domain: string;
  const running: Array<SlixIm | XjsIm> = [];

  before(async function () {
    if (!pythonHas('slixmpp')) {
      console.log(`    (skipped: slixmpp is not importable by ${SYSTEM_PYTHON}; ${INSTALL_HINT})`);
      this.skip();
    }
    srv = await startTestServer();
    domain = srv.domain;
  });
  after(async () => srv?.stop());
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      // What each client received, for the report.
      for (const c of running) {
        if (c instanceof SlixIm) console.log(`    slixmpp saw:\n      ${c.events.map((e) => JSON.stringify({ ...e, raw: undefined }).slice(0, 500)).join('\n      ')}`);
        if (c instanceof XjsIm) console.log(`    @xmpp/client ${c.jid} saw:\n      ${c.stanzas.map((el) => el.toString().slice(0, 500)).join('\n      ')}`);
      }
    }
    await Promise.all(running.splice(0).map((c) => (c instanceof SlixIm ? c.kill() : c.stop())));
  });

  const bare = (user: string) => `${user}@${domain}`;

  async function accounts(...users: string[]): Promise<void> {
    for (const u of users) await srv.addUser(u, PASSWORD);
  }

  /** A slixmpp session, logged in and bound (no presence, no roster yet). */
  async function slix(user: string, resource = 'sli'): Promise<SlixIm> {
    const s = new SlixIm({ host: '127.0.0.1', port: srv.port('c2s'), jid: bare(user), password: PASSWORD, resource });
    running.push(s);
    expect(await s.bound()).to.equal(`${bare(user)}/${resource}`);
    return s;
  }

  /** An @xmpp/client session, logged in and bound (no presence, no roster yet). */
  async function xjs(user: string, resource = 'xjs'): Promise<XjsIm> {
    const x = await XjsIm.connect({ port: srv.port('c2s'), domain, username: user, password: PASSWORD, resource });
    running.push(x);
    expect(x.jid).to.equal(`${bare(user)}/${resource}`);
    return x;
  }

  function xRosterGet(x: XjsIm, ver?: string): Promise<Element> {
    return x.iq(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_ROSTER, ver })));
  }

  function xRosterSet(x: XjsIm, jid: string, name: string): Promise<Element> {
    return x.iq(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid, name }))));
  }

  /** Both sessions interested in roster pushes and available. */
  async function online(s: SlixIm, x: XjsIm): Promise<void> {
    expect(await s.cmd({ cmd: 'roster_get' })).to.include({ type: 'result', query: true });
    expect((await xRosterGet(x)).attrs.type).to.equal('result');
    await s.cmd({ cmd: 'presence' });
    await x.send(xml('presence'));
    await x.barrier(domain);
  }

  /** Mutual subscription between the two, through the clients (the handshake of the first test, unasserted). */
  async function befriend(s: SlixIm, sUser: string, x: XjsIm, xUser: string): Promise<void> {
    const [sMark, xMark] = [s.mark(), x.mark()];
    await s.cmd({ cmd: 'subscribe', to: bare(xUser) });
    await x.waitFor(xPresence('subscribe', bare(sUser)), { after: xMark });
    await x.send(xml('presence', { type: 'subscribed', to: bare(sUser) }));
    await x.send(xml('presence', { type: 'subscribe', to: bare(sUser) }));
    await x.barrier(domain);
    await s.waitFor(isPresence('subscribe', bare(xUser)), { after: sMark });
    await s.cmd({ cmd: 'approve', jid: bare(xUser) });
    await s.waitFor((e) => isPush(e) && (e.items as Array<{ subscription: string }>)[0]?.subscription === 'both', { after: sMark });
    await x.waitFor((el) => isRosterPush(el) && rosterItems(el.getChild('query'))[0]?.subscription === 'both', { after: xMark });
  }

  // ------------------------------------------------------------------------------------------

  it('runs the subscription handshake both ways, with roster pushes none+ask → to/from → both and presence each way', async () => {
    await accounts('sam1', 'xena1');
    const [SAM, XENA] = [bare('sam1'), bare('xena1')];
    const s = await slix('sam1');
    const x = await xjs('xena1');
    const [samFull, xenaFull] = [`${SAM}/sli`, `${XENA}/xjs`];
    await online(s, x);

    // sam → subscribe. RFC 6121 §3.1.2: a push of the pending-out item to sam, and the request,
    // stamped with sam's bare JID, to xena. "None + Pending In" is no roster item: no push to xena.
    let [sMark, xMark] = [s.mark(), x.mark()];
    await s.cmd({ cmd: 'subscribe', to: XENA });
    const sPush1 = await s.waitFor(isPush, { after: sMark });
    expect(sPush1).to.include({ from: SAM, to: samFull });
    expect(sPush1.items).to.deep.equal([item(XENA, 'none', { ask: 'subscribe' })]);
    const request = await x.waitFor(xPresence('subscribe'), { after: xMark });
    expect(request.attrs).to.include({ from: SAM, to: XENA });
    await x.barrier(domain);
    expect(x.since(xMark, isRosterPush)).to.have.length(0);

    // xena approves. RFC 6121 §3.1.5/§3.1.6: xena's item becomes "from"; sam gets the approval,
    // then the push of "to", then xena's presence.
    [sMark, xMark] = [s.mark(), x.mark()];
    await x.send(xml('presence', { type: 'subscribed', to: SAM }));
    const xPush1 = await x.waitFor(isRosterPush, { after: xMark });
    expect(xPush1.attrs).to.include({ type: 'set', from: XENA, to: xenaFull });
    expect(rosterItems(xPush1.getChild('query', NS_ROSTER))).to.deep.equal([{ jid: SAM, subscription: 'from', ask: undefined, name: undefined }]);
    const approval = await s.waitFor(isPresence('subscribed'), { after: sMark });
    expect(approval).to.include({ from: XENA });
    const sPush2 = await s.waitFor(isPush, { after: sMark });
    expect(sPush2.items).to.deep.equal([item(XENA, 'to')]);
    expect(sPush2.ver).to.be.a('string').and.not.equal(sPush1.ver);
    const xenaAvailable = await s.waitFor(isPresence('available', xenaFull), { after: sMark });
    expect(s.events.indexOf(approval)).to.be.lessThan(s.events.indexOf(sPush2));
    expect(s.events.indexOf(sPush2)).to.be.lessThan(s.events.indexOf(xenaAvailable));

    // xena subscribes back: "from" + ask, and the request reaches sam.
    [sMark, xMark] = [s.mark(), x.mark()];
    await x.send(xml('presence', { type: 'subscribe', to: SAM }));
    const xPush2 = await x.waitFor(isRosterPush, { after: xMark });
    expect(rosterItems(xPush2.getChild('query', NS_ROSTER))).to.deep.equal([{ jid: SAM, subscription: 'from', ask: 'subscribe', name: undefined }]);
    const requestBack = await s.waitFor(isPresence('subscribe'), { after: sMark });
    expect(requestBack).to.include({ from: XENA });

    // sam approves: "both" on each side, and sam's presence reaches xena.
    [sMark, xMark] = [s.mark(), x.mark()];
    await s.cmd({ cmd: 'approve', jid: XENA });
    const sPush3 = await s.waitFor(isPush, { after: sMark });
    expect(sPush3.items).to.deep.equal([item(XENA, 'both')]);
    const approvalBack = await x.waitFor(xPresence('subscribed'), { after: xMark });
    expect(approvalBack.attrs.from).to.equal(SAM);
    const xPush3 = await x.waitFor(isRosterPush, { after: xMark });
    expect(rosterItems(xPush3.getChild('query', NS_ROSTER))).to.deep.equal([{ jid: SAM, subscription: 'both', ask: undefined, name: undefined }]);
    await x.waitFor(xPresence(undefined, samFull), { after: xMark });

    // The stored rosters agree.
    const sRoster = await s.cmd({ cmd: 'roster_get' });
    expect(sRoster.items).to.deep.equal([item(XENA, 'both')]);
    expect(sRoster.ver).to.equal(sPush3.ver);
    expect(rosterItems((await xRosterGet(x)).getChild('query', NS_ROSTER))).to.deep.equal([{ jid: SAM, subscription: 'both', ask: undefined, name: undefined }]);

    // sam leaves: xena gets unavailable from sam's full JID.
    xMark = x.mark();
    await s.disconnect();
    await x.waitFor(xPresence('unavailable', samFull), { after: xMark });

    // sam comes back: its initial presence reaches xena, and its probe brings xena's presence.
    xMark = x.mark();
    const s2 = await slix('sam1', 'sli2');
    await s2.cmd({ cmd: 'presence', status: 'back' });
    const back = await x.waitFor(xPresence(undefined, `${SAM}/sli2`), { after: xMark });
    expect(back.getChildText('status')).to.equal('back');
    await s2.waitFor(isPresence('available', xenaFull));

    // xena leaves: sam gets unavailable from xena's full JID.
    const s2Mark = s2.mark();
    await x.stop();
    await s2.waitFor(isPresence('unavailable', xenaFull), { after: s2Mark });
  });

  it('versions rosters (XEP-0237): the current ver gets an empty result, a change a push with a new ver, an old ver the changes as pushes', async () => {
    await accounts('sam2', 'xena2');
    const [SAM, XENA] = [bare('sam2'), bare('xena2')];
    const s = await slix('sam2');
    const x = await xjs('xena2');

    // The first fetch (ver='') is the whole roster, with a version; that version gets an empty result.
    const first = await s.cmd({ cmd: 'roster_get', ver: '' });
    expect(first).to.include({ type: 'result', query: true });
    expect(first.items).to.deep.equal([]);
    const v0 = String(first.ver);
    const same = await s.cmd({ cmd: 'roster_get', ver: v0 });
    expect(same).to.include({ type: 'result', query: false });

    // Roster sets on each side: each a push with a new version.
    let sMark = s.mark();
    expect(await s.cmd({ cmd: 'roster_set', jid: `alpha@${domain}`, name: 'Alpha' })).to.include({ type: 'result' });
    expect(await s.cmd({ cmd: 'roster_set', jid: `beta@${domain}`, name: 'Beta' })).to.include({ type: 'result' });
    const setPushes = s.since(sMark, 'roster_push');
    expect(setPushes.map((p) => p.items)).to.deep.equal([[item(`alpha@${domain}`, 'none', { name: 'Alpha' })], [item(`beta@${domain}`, 'none', { name: 'Beta' })]]);
    const [v1, v2] = setPushes.map((p) => String(p.ver));
    expect(new Set([v0, v1, v2]).size).to.equal(3);

    expect((await xRosterGet(x, '')).attrs.type).to.equal('result');
    let xMark = x.mark();
    for (const u of ['gamma', 'delta']) expect((await xRosterSet(x, `${u}@${domain}`, u)).attrs.type).to.equal('result');
    const xSetPushes = x.since(xMark, isRosterPush);
    expect(xSetPushes).to.have.length(2);
    const w2 = String(xSetPushes[1].getChild('query', NS_ROSTER)!.attrs.ver);
    const xSame = await xRosterGet(x, w2);
    expect(xSame.attrs.type).to.equal('result');
    expect(xSame.getChildElements()).to.have.length(0);

    // sam asks for a subscription: a push (ver v3); fetching with v3 is an empty result, no pushes.
    sMark = s.mark();
    await s.cmd({ cmd: 'subscribe', to: XENA });
    const askPush = await s.waitFor(isPush, { after: sMark });
    const v3 = String(askPush.ver);
    sMark = s.mark();
    expect(await s.cmd({ cmd: 'roster_get', ver: v3 })).to.include({ type: 'result', query: false });
    await s.cmd({ cmd: 'ping' });
    expect(s.since(sMark, 'roster_push')).to.have.length(0);

    // xena approves, a change to both rosters made by the other client: a push with a new version each.
    [sMark, xMark] = [s.mark(), x.mark()];
    await x.send(xml('presence', { type: 'subscribed', to: SAM }));
    const toPush = await s.waitFor(isPush, { after: sMark });
    expect(toPush.items).to.deep.equal([item(XENA, 'to')]);
    const v4 = String(toPush.ver);
    expect(v4).to.not.equal(v3);
    const xFromPush = await x.waitFor(isRosterPush, { after: xMark });
    const w3 = String(xFromPush.getChild('query', NS_ROSTER)!.attrs.ver);
    expect(w3).to.not.equal(w2);

    // Fetching with the old v3: an empty result, then the one change as a push with its version.
    sMark = s.mark();
    const stale = await s.cmd({ cmd: 'roster_get', ver: v3 });
    expect(stale).to.include({ type: 'result', query: false });
    const interim = await s.waitFor(isPush, { after: sMark });
    // The wire order (result, then pushes) is asserted in spec/modules/roster/roster.spec.ts: here
    // slixmpp reports a push it handles at once before the command result its coroutine awaits
    // when both arrive in one read, so the driver's event order says nothing about the wire.
    expect(interim).to.include({ ver: v4, from: SAM });
    expect(interim.items).to.deep.equal([item(XENA, 'to')]);
    await s.cmd({ cmd: 'ping' });
    expect(s.since(sMark, 'roster_push')).to.have.length(1);

    // From v1: the two changes since, in order, each with its own version.
    sMark = s.mark();
    expect(await s.cmd({ cmd: 'roster_get', ver: v1 })).to.include({ type: 'result', query: false });
    await s.waitFor((e) => isPush(e) && e.ver === v4, { after: sMark });
    await s.cmd({ cmd: 'ping' });
    expect(s.since(sMark, 'roster_push').map((p) => [p.ver, p.items])).to.deep.equal([
      [v2, [item(`beta@${domain}`, 'none', { name: 'Beta' })]],
      [v4, [item(XENA, 'to')]],
    ]);

    // A version the server never issued: the whole roster, at the current version.
    const full = await s.cmd({ cmd: 'roster_get', ver: 'not-a-version' });
    expect(full).to.include({ type: 'result', query: true, ver: v4 });
    expect(full.items).to.deep.equal([
      item(`alpha@${domain}`, 'none', { name: 'Alpha' }),
      item(`beta@${domain}`, 'none', { name: 'Beta' }),
      item(XENA, 'to'),
    ]);

    // The same on the @xmpp/client side: w2 is now one change behind.
    xMark = x.mark();
    const xStale = await xRosterGet(x, w2);
    expect(xStale.attrs.type).to.equal('result');
    expect(xStale.getChildElements()).to.have.length(0);
    const xInterim = await x.waitFor(isRosterPush, { after: xMark });
    expect(xInterim.getChild('query', NS_ROSTER)!.attrs.ver).to.equal(w3);
    expect(rosterItems(xInterim.getChild('query', NS_ROSTER))).to.deep.equal([{ jid: SAM, subscription: 'from', ask: undefined, name: undefined }]);
  });

  it('keeps messages for an offline slixmpp user and delivers them, delayed and in order, once, at its next initial presence', async () => {
    await accounts('sam3', 'xena3');
    const SAM = bare('sam3');
    const s = await slix('sam3');
    await s.cmd({ cmd: 'presence' });
    await s.disconnect();

    const x = await xjs('xena3');
    const sentAfter = Date.now();
    const bodies = ['first', 'second', 'third'];
    for (const [i, body] of bodies.entries()) {
      await x.send(xml('message', { to: SAM, type: 'chat', id: `off-${i + 1}` }, xml('body', {}, body)));
    }
    await x.barrier(domain);
    expect(x.since(0, (el) => el.is('message'))).to.have.length(0); // no bounce: stored

    // Reconnected, nothing comes before the initial presence; with it, all three, in order.
    const s2 = await slix('sam3', 'again');
    await s2.cmd({ cmd: 'ping' });
    expect(s2.since(0, 'message')).to.have.length(0);
    const mark = s2.mark();
    await s2.cmd({ cmd: 'presence' });
    await s2.waitFor((e) => e.event === 'message' && e.body === 'third', { after: mark });
    const got = s2.since(mark, 'message');
    expect(got.map((m) => m.body)).to.deep.equal(bodies);
    let previous = sentAfter - 1000;
    for (const [i, m] of got.entries()) {
      expect(m).to.include({ type: 'chat', from: x.jid, to: SAM, id: `off-${i + 1}` });
      expect(m.error).to.equal(null);
      const delay = m.delay as { from: string; stamp: string };
      expect(delay.from).to.equal(domain);
      const when = Date.parse(delay.stamp);
      expect(when).to.be.within(previous, Date.now());
      previous = when;
    }
    await s2.disconnect();

    // Delivered means deleted: the next session gets nothing.
    const s3 = await slix('sam3', 'third');
    await s3.cmd({ cmd: 'presence' });
    await s3.cmd({ cmd: 'ping' });
    await sleep(300);
    expect(s3.since(0, 'message')).to.have.length(0);
  });

  it('blocks (XEP-0191): presence vanishes with an unavailable, messages bounce both ways, and unblocking restores both', async () => {
    await accounts('sam4', 'xena4');
    const [SAM, XENA] = [bare('sam4'), bare('xena4')];
    const s = await slix('sam4');
    const x = await xjs('xena4');
    const [samFull, xenaFull] = [`${SAM}/sli`, `${XENA}/xjs`];
    await online(s, x);
    await befriend(s, 'sam4', x, 'xena4');
    await x.send(xml('presence', {}, xml('status', {}, 'here')));
    await s.waitFor((e) => isPresence('available', xenaFull)(e) && e.status === 'here');

    // The blocklist, asked for, makes xena's resource get the pushes.
    const list = await x.iq(xml('iq', { type: 'get' }, xml('blocklist', { xmlns: NS_BLOCKING })));
    expect(list.getChild('blocklist', NS_BLOCKING)!.getChildElements()).to.have.length(0);

    // xena blocks sam: a push to xena, and sam gets xena's unavailable presence.
    let [sMark, xMark] = [s.mark(), x.mark()];
    const blocked = await x.iq(xml('iq', { type: 'set' }, xml('block', { xmlns: NS_BLOCKING }, xml('item', { jid: SAM }))));
    expect(blocked.attrs.type).to.equal('result');
    const push = await x.waitFor((el) => el.is('iq') && el.attrs.type === 'set' && !!el.getChild('block', NS_BLOCKING), { after: xMark });
    expect(push.getChild('block', NS_BLOCKING)!.getChildren('item').map((i) => i.attrs.jid)).to.deep.equal([SAM]);
    const gone = await s.waitFor(isPresence('unavailable', xenaFull), { after: sMark });
    expect(gone.to).to.equal(SAM);

    // sam → xena: bounced to sam with service-unavailable (XEP-0191 §3.3, "blocked entity attempts
    // to send a stanza to the user"), never delivered.
    [sMark, xMark] = [s.mark(), x.mark()];
    await s.cmd({ cmd: 'send', to: XENA, body: 'can you hear me?', id: 'to-blocker' });
    const bounce = await s.waitFor((e) => e.event === 'message' && e.type === 'error', { after: sMark });
    expect(bounce).to.include({ id: 'to-blocker', from: XENA, to: samFull, body: 'can you hear me?' });
    expect(bounce.error).to.deep.include({ type: 'cancel', condition: 'service-unavailable' });

    // sam's IQ get to xena: service-unavailable too (§3.3), where before it was a last-activity answer.
    const last = await s.cmd({ cmd: 'last', jid: XENA });
    expect(last).to.include({ type: 'error', from: XENA });
    expect(last.error).to.deep.include({ condition: 'service-unavailable' });

    // xena → sam: refused to xena with not-acceptable and <blocked xmlns='urn:xmpp:blocking:errors'/>
    // (XEP-0191 §3.3, "the user attempts to send an outbound stanza to a contact ... blocked").
    const refused = await x.iq(xml('iq', { type: 'get', to: SAM }, xml('query', { xmlns: NS_LAST })));
    expect(errorOf(refused)).to.deep.include({ condition: 'not-acceptable' });
    const xRefusedAt = x.mark();
    await x.send(xml('message', { to: SAM, type: 'chat', id: 'to-blocked' }, xml('body', {}, 'you will not see this')));
    const refusal = await x.waitFor((el) => el.is('message') && el.attrs.type === 'error', { after: xRefusedAt });
    expect(refusal.attrs).to.include({ id: 'to-blocked', from: SAM, to: xenaFull });
    expect(errorOf(refusal)).to.deep.equal({ type: 'cancel', condition: 'not-acceptable', app: [{ name: 'blocked', ns: NS_BLOCKING_ERRORS }] });

    // Presence stays gone both ways: xena's new status does not reach sam, sam's not xena.
    await x.send(xml('presence', {}, xml('status', {}, 'hidden from sam')));
    await s.cmd({ cmd: 'presence', status: 'hidden from xena' });
    await x.barrier(domain);
    await s.cmd({ cmd: 'ping' });
    await sleep(200);
    expect(s.since(sMark, 'message', (e) => e.type !== 'error')).to.have.length(0);
    // (Each side's own presence comes back to it, as to any of its resources: RFC 6121 §4.2.2.)
    expect(s.since(sMark, 'presence', (e) => e.from !== samFull)).to.have.length(0);
    expect(x.since(xMark, (el) => (el.is('presence') && el.attrs.from !== xenaFull) || (el.is('message') && el.attrs.type !== 'error'))).to.have.length(0);

    // Unblocked: a push to xena, xena's current presence to sam, messages flow again.
    [sMark, xMark] = [s.mark(), x.mark()];
    const unblocked = await x.iq(xml('iq', { type: 'set' }, xml('unblock', { xmlns: NS_BLOCKING }, xml('item', { jid: SAM }))));
    expect(unblocked.attrs.type).to.equal('result');
    const unpush = await x.waitFor((el) => el.is('iq') && el.attrs.type === 'set' && !!el.getChild('unblock', NS_BLOCKING), { after: xMark });
    expect(unpush.getChild('unblock', NS_BLOCKING)!.getChildren('item').map((i) => i.attrs.jid)).to.deep.equal([SAM]);
    const restored = await s.waitFor(isPresence('available', xenaFull), { after: sMark });
    expect(restored.status).to.equal('hidden from sam');
    await s.cmd({ cmd: 'send', to: XENA, body: 'hello again', id: 'after-unblock' });
    const delivered = await x.waitFor((el) => el.is('message') && el.attrs.id === 'after-unblock', { after: xMark });
    expect(delivered.attrs).to.include({ from: samFull, type: 'chat' });
    expect(delivered.getChildText('body')).to.equal('hello again');
    await x.send(xml('message', { to: SAM, type: 'chat', id: 'back-to-sam' }, xml('body', {}, 'welcome back')));
    const reply = await s.waitFor((e) => e.event === 'message' && e.id === 'back-to-sam', { after: sMark });
    expect(reply).to.include({ from: xenaFull, type: 'chat', body: 'welcome back' });
    // sam's next presence reaches xena again.
    const xBefore = x.mark();
    await s.cmd({ cmd: 'presence', status: 'visible again' });
    const samAgain = await x.waitFor(xPresence(undefined, samFull), { after: xBefore });
    expect(samAgain.getChildText('status')).to.equal('visible again');
  });

  it('tells a subscriber the last activity (XEP-0012) of a logged-out slixmpp user, refuses a stranger, and gives the server uptime', async () => {
    await accounts('sam5', 'xena5', 'tom5');
    const [SAM, XENA] = [bare('sam5'), bare('xena5')];
    const s = await slix('sam5');
    const x = await xjs('xena5');
    await online(s, x);

    // xena subscribes to sam; sam approves: xena may see sam's presence, so its last activity.
    const [sMark, xMark] = [s.mark(), x.mark()];
    await x.send(xml('presence', { type: 'subscribe', to: SAM }));
    await s.waitFor(isPresence('subscribe', XENA), { after: sMark });
    await s.cmd({ cmd: 'approve', jid: XENA });
    await x.waitFor((el) => isRosterPush(el) && rosterItems(el.getChild('query', NS_ROSTER))[0]?.subscription === 'to', { after: xMark });

    const lastOf = () => x.iq(xml('iq', { type: 'get', to: SAM }, xml('query', { xmlns: NS_LAST })));
    const online0 = await lastOf();
    expect(online0.attrs).to.include({ type: 'result', from: SAM });
    expect(online0.getChild('query', NS_LAST)!.attrs.seconds).to.equal('0');

    // sam leaves with a status.
    const leftAt = Date.now();
    const xLeave = x.mark();
    await s.disconnect('Gone fishing');
    const unavailable = await x.waitFor(xPresence('unavailable', `${SAM}/sli`), { after: xLeave });
    expect(unavailable.getChildText('status')).to.equal('Gone fishing');

    // The logout is recorded when the session has closed; until then the answer is 0 without a status.
    let answer = await lastOf();
    for (let i = 0; i < 20 && answer.getChild('query', NS_LAST)?.getText() !== 'Gone fishing'; i++) {
      await sleep(100);
      answer = await lastOf();
    }
    expect(answer.attrs).to.include({ type: 'result', from: SAM, to: x.jid });
    const query = answer.getChild('query', NS_LAST)!;
    expect(query.getText()).to.equal('Gone fishing');
    expect(Number(query.attrs.seconds)).to.be.at.least(0).and.at.most(Math.ceil((Date.now() - leftAt) / 1000) + 1);

    // tom shares nothing with sam: forbidden.
    const t = await slix('tom5');
    const stranger = await t.cmd({ cmd: 'last', jid: SAM });
    expect(stranger).to.include({ type: 'error', from: SAM });
    expect(stranger.error).to.deep.include({ type: 'auth', condition: 'forbidden' });

    // The server's own last activity is its uptime.
    const uptime = await t.cmd({ cmd: 'last', jid: domain });
    expect(uptime).to.include({ type: 'result', from: domain });
    expect(uptime.seconds).to.be.a('number').and.at.least(0).and.below(3600);
  });

  it('round-trips a vCard (XEP-0054) set by slixmpp and read by @xmpp/client, and refuses an oversize one as not-acceptable', async () => {
    await accounts('sam6', 'xena6');
    const SAM = bare('sam6');
    const s = await slix('sam6');
    const x = await xjs('xena6');

    const set = await s.cmd({ cmd: 'vcard_set', fn: 'Sam Sixth', nickname: 'sammy', photo: { type: 'image/png', data: PNG } });
    expect(set).to.include({ type: 'result' });

    const fetch = () => x.iq(xml('iq', { type: 'get', to: SAM }, xml('vCard', { xmlns: 'vcard-temp' })));
    const got = await fetch();
    expect(got.attrs).to.include({ type: 'result', from: SAM, to: x.jid });
    const vcard = got.getChild('vCard', 'vcard-temp')!;
    expect(vcard.getChildElements().map((c) => c.name)).to.deep.equal(['FN', 'NICKNAME', 'PHOTO']);
    expect(vcard.getChildText('FN')).to.equal('Sam Sixth');
    expect(vcard.getChildText('NICKNAME')).to.equal('sammy');
    const photo = vcard.getChild('PHOTO')!;
    expect(photo.getChildText('TYPE')).to.equal('image/png');
    expect(photo.getChildText('BINVAL')!.replace(/\s+/g, '')).to.equal(PNG);

    // slixmpp reads its own back the same.
    const own = await s.cmd({ cmd: 'vcard_get' });
    expect(own).to.include({ type: 'result' });
    expect(own.vcard).to.deep.equal({ fn: 'Sam Sixth', nickname: 'sammy', photo: { type: 'image/png', binval: PNG }, children: ['FN', 'NICKNAME', 'PHOTO'] });

    // An 80 KiB photo is beyond the 64 KiB default: not-acceptable, and the stored vCard stays.
    const big = Buffer.alloc(80 * 1024, 7).toString('base64');
    const refused = await s.cmd({ cmd: 'vcard_set', fn: 'Too Big', nickname: 'huge', photo: { type: 'image/png', data: big } });
    expect(refused).to.include({ type: 'error' });
    expect(refused.error).to.deep.include({ type: 'modify', condition: 'not-acceptable' });
    expect((await fetch()).getChild('vCard', 'vcard-temp')!.getChildText('FN')).to.equal('Sam Sixth');

    // Nobody sets another account's vCard.
    const foreign = await x.iq(xml('iq', { type: 'set', to: SAM }, xml('vCard', { xmlns: 'vcard-temp' }, xml('FN', {}, 'Mallory'))));
    expect(foreign.attrs).to.include({ type: 'error', from: SAM });
    expect(errorOf(foreign)).to.deep.include({ type: 'auth', condition: 'forbidden' });
    expect((await fetch()).getChild('vCard', 'vcard-temp')!.getChildText('FN')).to.equal('Sam Sixth');
  });
});
