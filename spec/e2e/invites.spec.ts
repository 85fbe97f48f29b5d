// XEP-0401 over real sockets: an invite link made offline (as `parley invite create` does) opens
// registration on a server where open registration is off; the landing page serves the link.
import { expect } from 'chai';
import { createInviteOffline } from '../../modules/invites/offline.js';
import { RawClient } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const REG = 'jabber:iq:register';
const PARS = 'urn:xmpp:pars:0';

describe('e2e: invites', function () {
  this.timeout(20_000);
  let srv: TestServer | undefined;
  afterEach(async () => {
    await srv?.stop();
    srv = undefined;
  });

  async function negotiating(s: TestServer): Promise<{ c: RawClient; features: Awaited<ReturnType<RawClient['openStream']>> }> {
    const c = await RawClient.connect(s.port('c2s'));
    await c.openStream();
    await c.starttls();
    c.restart();
    return { c, features: await c.openStream() };
  }

  async function iq(c: RawClient, id: string, xmlText: string) {
    c.send(xmlText);
    return c.waitForElement((e) => e.name === 'iq' && e.attrs.id === id);
  }

  it('registers with a contact invite while registration is off, and the two accounts are mutual contacts', async () => {
    srv = await startTestServer({ modules: { invites: {} } });
    await srv.addUser('romeo', 'romeo-pw');
    const base = `http://localhost:${srv.port('http')}`;
    const made = await createInviteOffline((s) => srv!.server.storage.keyval(s), { host: 'localhost', uses: 1, lifetimeMs: 3_600_000, contactOf: 'romeo', baseUrl: base });
    expect(made.uri).to.equal(`xmpp:romeo@localhost?roster;preauth=${made.invite.token};ibr=y`);

    // The landing page shows the xmpp: link.
    const page = await fetch(made.landingUrl!);
    expect(page.status).to.equal(200);
    expect(page.headers.get('content-type')).to.match(/^text\/html/);
    const html = await page.text();
    expect(html).to.include(`href="xmpp:romeo@localhost?roster;preauth=${made.invite.token};ibr=y"`);
    expect(html).to.include('Conversations');

    const { c, features } = await negotiating(srv);
    expect(features.child('register', 'urn:xmpp:invite')).to.not.equal(undefined);
    expect(features.child('register', 'urn:xmpp:ibr-token:0')).to.not.equal(undefined);
    // Without the token first, registration is refused.
    const refused = await iq(c, 'r0', `<iq type='set' id='r0'><query xmlns='${REG}'><username>juliet</username><password>pw-juliet</password></query></iq>`);
    expect(refused.attrs.type).to.equal('error');
    expect(refused.child('error')?.child('forbidden')).to.not.equal(undefined);
    const ok = await iq(c, 'p1', `<iq type='set' id='p1' to='localhost'><preauth xmlns='${PARS}' token='${made.invite.token}'/></iq>`);
    expect(ok.attrs.type).to.equal('result');
    const reg = await iq(c, 'r1', `<iq type='set' id='r1'><query xmlns='${REG}'><username>juliet</username><password>pw-juliet</password></query></iq>`);
    expect(reg.attrs.type, reg.toString()).to.equal('result');
    await c.authenticate('juliet', 'pw-juliet');
    await c.openStream();
    await c.bind('phone');
    const roster = await iq(c, 'g1', `<iq type='get' id='g1'><query xmlns='jabber:iq:roster'/></iq>`);
    const item = roster.child('query', 'jabber:iq:roster')?.child('item');
    expect(item?.attrs).to.include({ jid: 'romeo@localhost', subscription: 'both' });
    c.close();

    // Used up: the page and the token are gone.
    expect((await fetch(made.landingUrl!)).status).to.equal(404);
    const again = await negotiating(srv);
    const spent = await iq(again.c, 'p2', `<iq type='set' id='p2'><preauth xmlns='${PARS}' token='${made.invite.token}'/></iq>`);
    expect(spent.child('error')?.child('item-not-found')).to.not.equal(undefined);
    again.c.close();
  });
});
