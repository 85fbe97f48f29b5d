// PEP with real clients: slixmpp 1.8 (Debian python3-slixmpp) through its own XEP-0060/0163/0084
// and XEP-0048 plugins (spec/e2e/clients/slixmpp_pep.py), and @xmpp/client with hand-written
// pubsub requests, against a server with the default modules.
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { client, xml, type XmppClient } from '@xmpp/client';
import type { Element } from 'ltx';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { INSTALL_HINT, pythonHas, SYSTEM_PYTHON } from './clients/python-client.js';
import { SlixPep } from './clients/slixmpp-pep.js';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

const PUBSUB = 'http://jabber.org/protocol/pubsub';
const OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';
let ids = 0;

/** An @xmpp/client session that keeps what it receives and sends IQs, returning the reply. */
class Xjs {
  readonly stanzas: Element[] = [];
  private readonly listeners = new Set<() => void>();
  private constructor(readonly c: XmppClient) {
    c.on('stanza', (el) => {
      this.stanzas.push(el);
      for (const l of [...this.listeners]) l();
    });
  }

  static async connect(srv: TestServer, username: string, resource: string): Promise<Xjs> {
    const c = client({ service: `xmpp://127.0.0.1:${srv.port('c2s')}`, domain: srv.domain, username, password: 'secret-pw', resource });
    c.on('error', () => undefined);
    const x = new Xjs(c);
    await c.start();
    return x;
  }

  send(el: Element): Promise<void> {
    return this.c.send(el);
  }

  async iq(type: 'get' | 'set', to: string | undefined, payload: Element): Promise<Element> {
    const id = `x${++ids}`;
    const after = this.stanzas.length;
    const reply = this.waitFor((s) => s.is('iq') && s.attrs.id === id && (s.attrs.type === 'result' || s.attrs.type === 'error'), after);
    await this.c.send(xml('iq', { type, id, to }, payload));
    return reply;
  }

  waitFor(pred: (el: Element) => boolean, after = 0, timeoutMs = 10_000): Promise<Element> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = this.stanzas.slice(after).find(pred);
        if (!hit) return false;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(hit);
        return true;
      };
      const listener = (): void => void check();
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`@xmpp/client: nothing matching within ${timeoutMs} ms; got:\n  ${this.stanzas.slice(after).map((s) => s.toString().slice(0, 400)).join('\n  ')}`));
      }, timeoutMs);
      if (!check()) this.listeners.add(listener);
    });
  }

  async stop(): Promise<void> {
    await this.c.stop().catch(() => undefined);
  }
}

function publishOptions(fields: Record<string, string>): Element {
  return xml('publish-options', {}, xml('x', { xmlns: 'jabber:x:data', type: 'submit' },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, OPTIONS)),
    ...Object.entries(fields).map(([k, v]) => xml('field', { var: k }, xml('value', {}, v)))));
}

describe('e2e: PEP with slixmpp and @xmpp/client', function () {
  this.timeout(60_000);
  let srv: TestServer;
  const sessions: Array<{ stop(): Promise<void> }> = [];
  const drivers: SlixPep[] = [];

  before(async function () {
    if (!pythonHas('slixmpp')) {
      console.log(`    (skipped: slixmpp is not importable by ${SYSTEM_PYTHON}; ${INSTALL_HINT})`);
      this.skip();
    }
    srv = await startTestServer();
    for (const u of ['sam', 'xena', 'stan', 'bea']) await srv.addUser(u, 'secret-pw');
  });
  after(async () => srv?.stop());
  afterEach(async () => {
    await Promise.all(drivers.splice(0).map((d) => d.disconnect()));
    await Promise.all(sessions.splice(0).map((s) => s.stop()));
  });

  function slix(user: string, resource = 'sli'): SlixPep {
    const d = new SlixPep({ host: '127.0.0.1', port: srv.port('c2s'), jid: `${user}@${srv.domain}`, password: 'secret-pw', resource });
    drivers.push(d);
    return d;
  }

  async function xjs(user: string, resource = 'xjs'): Promise<Xjs> {
    const x = await Xjs.connect(srv, user, resource);
    sessions.push(x);
    return x;
  }

  it('lets a non-contact (@xmpp/client) fetch the OMEMO device list slixmpp published with access_model=open', async () => {
    const sam = slix('sam');
    await sam.bound();
    const pub = await sam.cmd({
      cmd: 'publish', node: 'eu.siacs.conversations.axolotl.devicelist', id: 'current',
      payload: "<list xmlns='eu.siacs.conversations.axolotl'><device id='31415'/><device id='27182'/></list>",
      options: { 'pubsub#access_model': 'open' },
    });
    expect(pub).to.include({ type: 'result', id: 'current' });
    // A node under the default (presence) model stays closed to the stranger.
    expect(await sam.cmd({ cmd: 'publish', node: 'http://jabber.org/protocol/tune', payload: "<tune xmlns='http://jabber.org/protocol/tune'/>" })).to.include({ type: 'result' });

    const stan = await xjs('stan');
    const reply = await stan.iq('get', `sam@${srv.domain}`, xml('pubsub', { xmlns: PUBSUB }, xml('items', { node: 'eu.siacs.conversations.axolotl.devicelist' })));
    expect(reply.attrs.type).to.equal('result');
    const list = reply.getChild('pubsub')!.getChild('items')!.getChild('item')!.getChild('list', 'eu.siacs.conversations.axolotl')!;
    expect(list.getChildren('device').map((d) => d.attrs.id)).to.deep.equal(['31415', '27182']);
    const closed = await stan.iq('get', `sam@${srv.domain}`, xml('pubsub', { xmlns: PUBSUB }, xml('items', { node: 'http://jabber.org/protocol/tune' })));
    expect(closed.attrs.type).to.equal('error');
    expect(closed.getChild('error')!.getChild('not-authorized')).to.not.equal(undefined);

    // And slixmpp reads it back through its own plugin.
    const own = await sam.cmd({ cmd: 'items', jid: `sam@${srv.domain}`, node: 'eu.siacs.conversations.axolotl.devicelist' });
    expect(own.type).to.equal('result');
    expect((own.items as Array<{ id: string; xml: string }>).map((i) => i.id)).to.deep.equal(['current']);
  });

  it('delivers an avatar published by @xmpp/client to a slixmpp contact through its +notify caps', async () => {
    const xena = await xjs('xena');
    const sam = slix('sam');
    await sam.bound();
    // Available, so that the subscription request reaches it now (RFC 6121 §3.1.3).
    await sam.cmd({ cmd: 'presence' });
    // A mutual presence subscription: slixmpp approves and subscribes back by itself. xena asks
    // for its roster first, so that subscription approvals reach it (RFC 6121 §2.1.6).
    await xena.iq('get', undefined, xml('query', { xmlns: 'jabber:iq:roster' }));
    await xena.send(xml('presence'));
    await xena.send(xml('presence', { type: 'subscribe', to: `sam@${srv.domain}` }));
    await xena.waitFor((s) => s.is('presence') && s.attrs.type === 'subscribe' && String(s.attrs.from).startsWith('sam@'));
    await xena.send(xml('presence', { type: 'subscribed', to: `sam@${srv.domain}` }));
    await xena.waitFor((s) => s.is('presence') && s.attrs.type === 'subscribed' && String(s.attrs.from).startsWith('sam@'));
    // slixmpp's XEP-0084 plugin already asks for urn:xmpp:avatar:metadata+notify; announce it now that
    // the subscription is mutual.
    const interest = await sam.cmd({ cmd: 'interest', nodes: ['urn:xmpp:avatar:metadata'] });
    expect(interest.ver).to.be.a('string');
    const image = Buffer.from('not really a png, but bytes all the same');
    const id = createHash('sha1').update(image).digest('hex');
    const data = await xena.iq('set', undefined, xml('pubsub', { xmlns: PUBSUB },
      xml('publish', { node: 'urn:xmpp:avatar:data' }, xml('item', { id }, xml('data', { xmlns: 'urn:xmpp:avatar:data' }, image.toString('base64'))))));
    expect(data.attrs.type).to.equal('result');
    // The server learns slixmpp's interest from a disco#info query about its caps, answered and
    // verified in the background: publish the metadata until the notification comes (normally at once).
    let ev: Awaited<ReturnType<SlixPep['waitFor']>> | undefined;
    for (let attempt = 0; attempt < 5 && !ev; attempt++) {
      const after = sam.mark();
      const meta = await xena.iq('set', undefined, xml('pubsub', { xmlns: PUBSUB },
        xml('publish', { node: 'urn:xmpp:avatar:metadata' }, xml('item', { id },
          xml('metadata', { xmlns: 'urn:xmpp:avatar:metadata' }, xml('info', { id, bytes: String(image.length), type: 'image/png' }))))));
      expect(meta.attrs.type).to.equal('result');
      ev = await sam.waitFor((e) => e.event === 'pubsub_publish' && e.node === 'urn:xmpp:avatar:metadata', { after, timeoutMs: 1_500 }).catch(() => undefined);
    }
    if (!ev) throw sam.failure('no avatar metadata notification');
    expect(ev).to.include({ from: `xena@${srv.domain}`, id });
    expect(String(ev.xml)).to.contain(id);
    // XEP-0398: the avatar is in xena's vCard too.
    const vcard = await xena.iq('get', `xena@${srv.domain}`, xml('vCard', { xmlns: 'vcard-temp' }));
    expect(vcard.getChild('vCard')!.getChild('PHOTO')!.getChildText('BINVAL')).to.equal(image.toString('base64'));
  });

  it('shows a XEP-0402 bookmark set by @xmpp/client to slixmpp over XEP-0048, and back', async () => {
    const modern = await xjs('bea', 'modern');
    const sam = slix('bea', 'legacy');
    await sam.bound();
    const set = await modern.iq('set', undefined, xml('pubsub', { xmlns: PUBSUB },
      xml('publish', { node: 'urn:xmpp:bookmarks:1' }, xml('item', { id: 'theplay@conference.localhost' },
        xml('conference', { xmlns: 'urn:xmpp:bookmarks:1', name: "The Play's the Thing", autojoin: 'true' }, xml('nick', {}, 'JC')))),
      publishOptions({ 'pubsub#persist_items': 'true', 'pubsub#max_items': 'max', 'pubsub#send_last_published_item': 'never', 'pubsub#access_model': 'whitelist' })));
    expect(set.attrs.type).to.equal('result');

    for (const method of ['xep_0049', 'xep_0223']) {
      const got = await sam.cmd({ cmd: 'bookmarks_get', method });
      expect(got.type, method).to.equal('result');
      expect(got.conferences, method).to.deep.equal([{ jid: 'theplay@conference.localhost', name: "The Play's the Thing", autojoin: 'true', nick: 'JC' }]);
    }

    const back = await sam.cmd({
      cmd: 'bookmarks_set', method: 'xep_0049',
      conferences: [
        { jid: 'theplay@conference.localhost', name: "The Play's the Thing", autojoin: true, nick: 'JC' },
        { jid: 'orchard@conference.localhost', name: 'The Orchard', autojoin: false, nick: 'Romeo' },
      ],
    });
    expect(back.type).to.equal('result');
    // The conversion follows the private-XML result.
    let items: Element[] = [];
    for (let i = 0; i < 20 && items.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const r = await modern.iq('get', undefined, xml('pubsub', { xmlns: PUBSUB }, xml('items', { node: 'urn:xmpp:bookmarks:1' })));
      items = r.getChild('pubsub')!.getChild('items')!.getChildren('item');
    }
    expect(items.map((i) => i.attrs.id).sort()).to.deep.equal(['orchard@conference.localhost', 'theplay@conference.localhost']);
    const orchard = items.find((i) => i.attrs.id === 'orchard@conference.localhost')!.getChild('conference', 'urn:xmpp:bookmarks:1')!;
    expect(orchard.attrs.name).to.equal('The Orchard');
    expect(orchard.getChildText('nick')).to.equal('Romeo');
    expect(orchard.attrs.autojoin).to.equal(undefined);
  });
});
