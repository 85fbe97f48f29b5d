import { expect } from 'chai';
import { defineModule, Jid, NS, StanzaError, xml, z } from '../../../lib/module-api.js';
import type { Element } from '../../../lib/module-api.js';
import disco, { ANY_NODE, type DiscoApi, type DiscoQuery } from '../../../modules/disco/index.js';
import ping from '../../../modules/ping/index.js';
import time from '../../../modules/time/index.js';
import version from '../../../modules/version/index.js';
import { Harness, type TestClient } from '../../helpers/harness.js';
import { expectError, expectXml } from '../../helpers/xml-assert.js';

const INFO = NS.discoInfo;
const ITEMS = NS.discoItems;
const info = (node?: string) => xml('query', { xmlns: INFO, node });
const items = (node?: string) => xml('query', { xmlns: ITEMS, node });

/** A module declaring identities and features in its manifest only. */
const declared = defineModule({
  name: 'declared',
  features: { host: ['urn:test:host', NS.ping], account: ['urn:test:account'] },
  identities: { host: [{ category: 'pubsub', type: 'service' }], account: [{ category: 'pubsub', type: 'pep' }] },
  config: z.strictObject({}),
  setup() {},
});

/** A module that claims a service domain, as MUC or upload do. */
const service = defineModule({
  name: 'service',
  config: z.strictObject({}),
  setup(ctx) {
    ctx.service(`conference.${ctx.host}`, () => undefined);
  },
});

describe('disco (XEP-0030)', () => {
  describe('on the host', () => {
    let h: Harness;
    let alice: TestClient;

    beforeEach(async () => {
      h = await Harness.start({ hosts: ['example.com'], modules: [disco, ping, time, version] });
      await h.createAccount('alice', 'pw');
      alice = await h.connect('alice@example.com/phone');
    });
    afterEach(() => h.stop());

    it('answers disco#info with server/im named Parley and every enabled module\'s host features, sorted', async () => {
      const reply = await alice.iq(xml('iq', { type: 'get', to: 'example.com', id: 'q1' }, info()));
      expectXml(reply, `
        <iq type='result' id='q1' from='example.com' to='alice@example.com/phone'>
          <query xmlns='${INFO}'>
            <identity category='server' type='im' name='Parley'/>
            <feature var='http://jabber.org/protocol/disco#info'/>
            <feature var='http://jabber.org/protocol/disco#items'/>
            <feature var='jabber:iq:version'/>
            <feature var='urn:xmpp:ping'/>
            <feature var='urn:xmpp:time'/>
          </query>
        </iq>`);
    });

    it('answers disco#items with no items when no module claims a service domain', async () => {
      const reply = await alice.iq(xml('iq', { type: 'get', to: 'example.com', id: 'i1' }, items()));
      expectXml(reply, `<iq type='result' id='i1' from='example.com' to='alice@example.com/phone'><query xmlns='${ITEMS}'/></iq>`);
    });

    it('answers item-not-found for disco#info on a node it does not know, echoing the query', async () => {
      const reply = await alice.iq(xml('iq', { type: 'get', to: 'example.com', id: 'n1' }, info('urn:nothing')));
      expectXml(reply, `
        <iq type='error' id='n1' from='example.com' to='alice@example.com/phone'>
          <query xmlns='${INFO}' node='urn:nothing'/>
          <error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>
        </iq>`);
    });

    it('answers item-not-found for disco#items on a node it does not know', async () => {
      expectError(await alice.get(items('urn:nothing')), 'item-not-found', 'cancel');
    });

    it('treats an empty node attribute as no node', async () => {
      const reply = await alice.get(info(''));
      expect(reply.attrs.type).to.equal('result');
      expect(reply.getChild('query')?.getChild('identity')?.attrs.type).to.equal('im');
    });

    it('leaves a disco#info set to the core, which answers service-unavailable', async () => {
      expectError(await alice.set(info()), 'service-unavailable');
    });

    it('does not answer for a full JID: the IQ goes to that client', async () => {
      await h.createAccount('bob', 'pw');
      const bob = await h.connect('bob@example.com/laptop');
      await alice.send(xml('iq', { type: 'get', to: 'bob@example.com/laptop', id: 'full' }, info()));
      const got = await bob.next();
      expectXml(got, `<iq type='get' to='bob@example.com/laptop' id='full' from='alice@example.com/phone'><query xmlns='${INFO}'/></iq>`);
    });
  });

  describe('features, identities and items from manifests and services', () => {
    let h: Harness;
    let alice: TestClient;

    beforeEach(async () => {
      h = await Harness.start({ modules: [disco, ping, declared, service], options: { disco: { name: 'Example Chat' } } });
      await h.createAccount('alice', 'pw');
      alice = await h.connect('alice@example.com/phone');
    });
    afterEach(() => h.stop());

    it('names the server identity from config, adds manifest identities and lists a feature two modules declare once', async () => {
      const reply = await alice.get(info());
      expectXml(reply.getChild('query'), `
        <query xmlns='${INFO}'>
          <identity category='server' type='im' name='Example Chat'/>
          <identity category='pubsub' type='service'/>
          <feature var='http://jabber.org/protocol/disco#info'/>
          <feature var='http://jabber.org/protocol/disco#items'/>
          <feature var='urn:test:host'/>
          <feature var='urn:xmpp:ping'/>
        </query>`);
    });

    it('lists claimed service domains as disco#items of the host', async () => {
      const reply = await alice.get(items());
      expectXml(reply.getChild('query'), `<query xmlns='${ITEMS}'><item jid='conference.example.com'/></query>`);
    });

    it('gives the account its manifest identities and account features', async () => {
      const reply = await alice.get(info(), 'alice@example.com');
      expectXml(reply.getChild('query'), `
        <query xmlns='${INFO}'>
          <identity category='account' type='registered'/>
          <identity category='pubsub' type='pep'/>
          <feature var='http://jabber.org/protocol/disco#info'/>
          <feature var='http://jabber.org/protocol/disco#items'/>
          <feature var='urn:test:account'/>
          <feature var='urn:xmpp:ping'/>
        </query>`);
    });

    it('refuses unknown options', async () => {
      let error: unknown;
      await Harness.start({ modules: [disco], options: { disco: { nmae: 'typo' } } }).catch((e: unknown) => { error = e; });
      expect(error).to.be.instanceOf(Error);
    });
  });

  describe('on an account\'s bare JID', () => {
    let h: Harness;
    let alice: TestClient;
    let bob: TestClient;
    const accountInfo = (from: string, to: string, id: string) => `
      <iq type='result' id='${id}' from='${to}' to='${from}'>
        <query xmlns='${INFO}'>
          <identity category='account' type='registered'/>
          <feature var='http://jabber.org/protocol/disco#info'/>
          <feature var='http://jabber.org/protocol/disco#items'/>
          <feature var='urn:xmpp:ping'/>
        </query>
      </iq>`;

    beforeEach(async () => {
      h = await Harness.start({ modules: [disco, ping, version] });
      await h.createAccount('alice', 'pw');
      await h.createAccount('bob', 'pw');
      await h.createAccount('carol', 'pw');
      alice = await h.connect('alice@example.com/phone');
      bob = await h.connect('bob@example.com/laptop');
    });
    afterEach(() => h.stop());

    it('answers the account itself with account/registered and the account features', async () => {
      const reply = await alice.iq(xml('iq', { type: 'get', to: 'alice@example.com', id: 's1' }, info()));
      expectXml(reply, accountInfo('alice@example.com/phone', 'alice@example.com', 's1'));
    });

    it('answers a query without to as a query to the account itself', async () => {
      const reply = await alice.iq(xml('iq', { type: 'get', id: 's2' }, info()));
      expectXml(reply, accountInfo('alice@example.com/phone', 'alice@example.com', 's2'));
    });

    it('answers another user about an existing account', async () => {
      const reply = await bob.iq(xml('iq', { type: 'get', to: 'alice@example.com', id: 'o1' }, info()));
      expectXml(reply, accountInfo('bob@example.com/laptop', 'alice@example.com', 'o1'));
    });

    it('answers another user about an existing account that is offline', async () => {
      const reply = await bob.iq(xml('iq', { type: 'get', to: 'carol@example.com', id: 'o2' }, info()));
      expectXml(reply, accountInfo('bob@example.com/laptop', 'carol@example.com', 'o2'));
    });

    it('answers service-unavailable about an account that does not exist', async () => {
      const reply = await bob.iq(xml('iq', { type: 'get', to: 'nobody@example.com', id: 'x1' }, info()));
      expectXml(reply, `
        <iq type='error' id='x1' from='nobody@example.com' to='bob@example.com/laptop'>
          <query xmlns='${INFO}'/>
          <error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>
        </iq>`);
      expectError(await bob.get(items(), 'nobody@example.com'), 'service-unavailable');
    });

    it('answers service-unavailable about an account once it is deleted', async () => {
      await h.deleteAccount('carol');
      expectError(await bob.get(info(), 'carol@example.com'), 'service-unavailable');
    });

    it('answers empty disco#items to the account itself and to others', async () => {
      expectXml(await alice.iq(xml('iq', { type: 'get', to: 'alice@example.com', id: 'i1' }, items())),
        `<iq type='result' id='i1' from='alice@example.com' to='alice@example.com/phone'><query xmlns='${ITEMS}'/></iq>`);
      expectXml(await bob.iq(xml('iq', { type: 'get', to: 'alice@example.com', id: 'i2' }, items())),
        `<iq type='result' id='i2' from='alice@example.com' to='bob@example.com/laptop'><query xmlns='${ITEMS}'/></iq>`);
    });

    it('answers item-not-found for an unknown node on the account', async () => {
      expectError(await alice.get(info('urn:xmpp:avatar:data'), 'alice@example.com'), 'item-not-found');
      expectError(await bob.get(items('urn:xmpp:avatar:data'), 'alice@example.com'), 'item-not-found');
    });

    it('does not show host-only features on accounts', async () => {
      const reply = await alice.get(info(), 'alice@example.com');
      const features = reply.getChild('query')!.getChildren('feature').map((f) => f.attrs.var as string);
      expect(features).to.not.include(NS.version);
    });
  });

  describe('API for other modules', () => {
    let h: Harness;
    let api: DiscoApi;
    let alice: TestClient;
    let bob: TestClient;

    const form = (formType: string, ...fields: Element[]) =>
      xml('x', { xmlns: NS.dataForms, type: 'result' }, xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, formType)), ...fields);

    beforeEach(async () => {
      h = await Harness.start({ modules: [disco, service] });
      api = h.api(disco);
      await h.createAccount('alice', 'pw');
      await h.createAccount('bob', 'pw');
      alice = await h.connect('alice@example.com/phone');
      bob = await h.connect('bob@example.com/laptop');
    });
    afterEach(() => h.stop());

    it('adds a provider\'s identities, features (sorted in) and forms (after features) to the host', async () => {
      api.addInfoProvider({ target: 'host' }, () => ({
        identities: [{ category: 'store', type: 'file', name: 'Uploads' }],
        features: ['urn:a:feature'],
        forms: [form('urn:test:form', xml('field', { var: 'max' }, xml('value', {}, '10')))],
      }));
      const reply = await alice.get(info());
      expectXml(reply.getChild('query'), `
        <query xmlns='${INFO}'>
          <identity category='server' type='im' name='Parley'/>
          <identity category='store' type='file' name='Uploads'/>
          <feature var='http://jabber.org/protocol/disco#info'/>
          <feature var='http://jabber.org/protocol/disco#items'/>
          <feature var='urn:a:feature'/>
          <x xmlns='jabber:x:data' type='result'>
            <field var='FORM_TYPE' type='hidden'><value>urn:test:form</value></field>
            <field var='max'><value>10</value></field>
          </x>
        </query>`);
    });

    it('gives the same form element to every answer without losing it', async () => {
      const shared = form('urn:test:form');
      api.addInfoProvider({ target: 'host' }, () => ({ forms: [shared] }));
      const first = await alice.get(info());
      const second = await bob.get(info());
      expect(first.getChild('query')!.getChildren('x', NS.dataForms)).to.have.length(1);
      expect(second.getChild('query')!.getChildren('x', NS.dataForms)).to.have.length(1);
    });

    it('waits for async providers', async () => {
      api.addInfoProvider({ target: 'account' }, async () => {
        await new Promise((r) => setTimeout(r, 5));
        return { features: ['urn:xmpp:mam:2'] };
      });
      const reply = await bob.get(info(), 'alice@example.com');
      expect(reply.getChild('query')!.getChildren('feature').map((f) => f.attrs.var)).to.include('urn:xmpp:mam:2');
    });

    it('tells account providers who asks and about whom', async () => {
      const seen: DiscoQuery[] = [];
      api.addInfoProvider({ target: 'account' }, (q) => {
        seen.push(q);
        return q.from?.bare().equals(q.jid) ? { features: ['urn:test:self-only'] } : undefined;
      });
      const own = await alice.get(info(), 'alice@example.com');
      const other = await bob.get(info(), 'alice@example.com');
      expect(own.getChild('query')!.getChildren('feature').map((f) => f.attrs.var)).to.include('urn:test:self-only');
      expect(other.getChild('query')!.getChildren('feature').map((f) => f.attrs.var)).to.not.include('urn:test:self-only');
      expect(seen.map((q) => [q.target, q.jid.toString(), q.from?.toString(), q.node])).to.deep.equal([
        ['account', 'alice@example.com', 'alice@example.com/phone', undefined],
        ['account', 'alice@example.com', 'bob@example.com/laptop', undefined],
      ]);
    });

    it('answers a node registered by a provider, with the node attribute on the answer', async () => {
      api.addInfoProvider({ target: 'host', node: 'http://jabber.org/protocol/commands' }, () => ({
        identities: [{ category: 'automation', type: 'command-list' }],
      }));
      const reply = await alice.get(info('http://jabber.org/protocol/commands'));
      expectXml(reply.getChild('query'), `
        <query xmlns='${INFO}' node='http://jabber.org/protocol/commands'>
          <identity category='automation' type='command-list'/>
        </query>`);
    });

    it('keeps node providers out of the root answer and root providers out of node answers', async () => {
      api.addInfoProvider({ target: 'host', node: 'urn:node' }, () => ({ features: ['urn:only-node'] }));
      api.addInfoProvider({ target: 'host' }, () => ({ features: ['urn:only-root'] }));
      const root = (await alice.get(info())).getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
      const node = (await alice.get(info('urn:node'))).getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
      expect(root).to.include('urn:only-root').and.not.include('urn:only-node');
      expect(node).to.deep.equal(['urn:only-node']);
    });

    it('answers a node registered for the host only on the host, not on accounts', async () => {
      api.addInfoProvider({ target: 'host', node: 'urn:node' }, () => ({ features: ['urn:x'] }));
      expectError(await alice.get(info('urn:node'), 'alice@example.com'), 'item-not-found');
    });

    it('serves dynamic nodes through ANY_NODE providers and answers item-not-found for nodes they do not know', async () => {
      const nodes = new Set(['urn:xmpp:avatar:data']);
      api.addInfoProvider({ target: 'account', node: ANY_NODE }, (q) =>
        q.node !== undefined && nodes.has(q.node) ? { identities: [{ category: 'pubsub', type: 'leaf' }] } : undefined);
      api.addItemsProvider({ target: 'account', node: ANY_NODE }, (q) =>
        q.node !== undefined && nodes.has(q.node) ? [{ jid: q.jid.toString(), name: 'abc123' }] : undefined);
      expectXml((await bob.get(info('urn:xmpp:avatar:data'), 'alice@example.com')).getChild('query'),
        `<query xmlns='${INFO}' node='urn:xmpp:avatar:data'><identity category='pubsub' type='leaf'/></query>`);
      expectXml((await bob.get(items('urn:xmpp:avatar:data'), 'alice@example.com')).getChild('query'),
        `<query xmlns='${ITEMS}' node='urn:xmpp:avatar:data'><item jid='alice@example.com' name='abc123'/></query>`);
      expectError(await bob.get(info('urn:xmpp:nope'), 'alice@example.com'), 'item-not-found');
      expectError(await bob.get(items('urn:xmpp:nope'), 'alice@example.com'), 'item-not-found');
      // ANY_NODE providers never add to the root answer.
      const root = await bob.get(info(), 'alice@example.com');
      expect(root.getChild('query')!.getChildren('identity').map((i) => i.attrs.type)).to.deep.equal(['registered']);
    });

    it('answers a provider\'s StanzaError as the error reply', async () => {
      api.addInfoProvider({ target: 'account', node: 'urn:private' }, (q) => {
        if (!q.from?.bare().equals(q.jid)) throw StanzaError.forbidden();
        return { features: ['urn:x'] };
      });
      expectError(await bob.get(info('urn:private'), 'alice@example.com'), 'forbidden', 'auth');
      expect((await alice.get(info('urn:private'), 'alice@example.com')).attrs.type).to.equal('result');
    });

    it('answers internal-server-error when a provider fails', async () => {
      api.addItemsProvider({ target: 'host' }, () => { throw new Error('bug'); });
      expectError(await alice.get(items()), 'internal-server-error');
    });

    it('adds provider items after the service domains, a named entry replacing the bare one', async () => {
      api.addItemsProvider({ target: 'host' }, () => [
        { jid: 'conference.example.com', name: 'Chatrooms' },
        { jid: 'upload.example.com', name: 'File upload' },
      ]);
      expectXml((await alice.get(items())).getChild('query'), `
        <query xmlns='${ITEMS}'>
          <item jid='conference.example.com' name='Chatrooms'/>
          <item jid='upload.example.com' name='File upload'/>
        </query>`);
    });

    it('adds items with nodes to an account, as PEP does', async () => {
      api.addItemsProvider({ target: 'account' }, async (q) => [{ jid: q.jid.toString(), node: 'urn:xmpp:bookmarks:1' }]);
      expectXml((await alice.get(items(), 'alice@example.com')).getChild('query'),
        `<query xmlns='${ITEMS}'><item jid='alice@example.com' node='urn:xmpp:bookmarks:1'/></query>`);
    });

    it('answers a node that has only items providers: disco#items known, disco#info unknown', async () => {
      api.addItemsProvider({ target: 'host', node: 'http://jabber.org/protocol/commands' }, () => [
        { jid: 'example.com', node: 'urn:xmpp:invite#invite', name: 'Invite a user' },
      ]);
      expectXml((await alice.get(items('http://jabber.org/protocol/commands'))).getChild('query'), `
        <query xmlns='${ITEMS}' node='http://jabber.org/protocol/commands'>
          <item jid='example.com' node='urn:xmpp:invite#invite' name='Invite a user'/>
        </query>`);
      expectError(await alice.get(info('http://jabber.org/protocol/commands')), 'item-not-found');
    });

    it('stops using a provider once it is removed', async () => {
      const remove = api.addInfoProvider({ target: 'host' }, () => ({ features: ['urn:gone'] }));
      remove();
      const features = (await alice.get(info())).getChild('query')!.getChildren('feature').map((f) => f.attrs.var);
      expect(features).to.not.include('urn:gone');
    });

    it('deduplicates identities and features across providers', async () => {
      api.addInfoProvider({ target: 'host' }, () => ({ identities: [{ category: 'server', type: 'im', name: 'Parley' }], features: [NS.discoInfo, 'urn:x'] }));
      api.addInfoProvider({ target: 'host' }, () => ({ features: ['urn:x'] }));
      const q = (await alice.get(info())).getChild('query')!;
      expect(q.getChildren('identity')).to.have.length(1);
      expect(q.getChildren('feature').map((f) => f.attrs.var)).to.deep.equal([NS.discoInfo, NS.discoItems, 'urn:x']);
    });

    it('writes a localised identity with xml:lang', async () => {
      api.addInfoProvider({ target: 'host' }, () => ({ identities: [{ category: 'server', type: 'im', name: 'Parleur', lang: 'fr' }] }));
      const ids = (await alice.get(info())).getChild('query')!.getChildren('identity');
      expectXml(ids[1], `<identity category='server' type='im' name='Parleur' xml:lang='fr'/>`);
    });

    it('returns the same answer from info() and items() as over XMPP', async () => {
      api.addInfoProvider({ target: 'host' }, () => ({ features: ['urn:x'] }));
      const jid = Jid.parse('example.com');
      const viaApi = await api.info({ target: 'host', jid, node: undefined, from: undefined });
      const viaIq = (await alice.get(info())).getChild('query')!;
      expect(viaApi?.features).to.deep.equal(viaIq.getChildren('feature').map((f) => f.attrs.var));
      expect(viaApi?.identities).to.deep.equal([{ category: 'server', type: 'im', name: 'Parley' }]);
      expect(await api.info({ target: 'host', jid, node: 'urn:none', from: undefined })).to.equal(undefined);
      expect(await api.items({ target: 'host', jid, node: undefined, from: undefined })).to.deep.equal([{ jid: 'conference.example.com' }]);
    });

    it('tells change listeners once, after a batch of provider changes', async () => {
      let calls = 0;
      api.onChange(() => { calls++; });
      api.addInfoProvider({ target: 'host' }, () => undefined);
      const remove = api.addItemsProvider({ target: 'host' }, () => undefined);
      remove();
      expect(calls).to.equal(0);
      await h.settle();
      expect(calls).to.equal(1);
      api.changed();
      await h.settle();
      expect(calls).to.equal(2);
    });
  });
});
