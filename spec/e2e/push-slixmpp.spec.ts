// XEP-0357 over real sockets: slixmpp (Debian python3-slixmpp, spec/e2e/clients/slixmpp_push.py)
// enables push with a publish-options form and goes away, by losing its connection (the session
// hibernates under stream management) or by logging out (the message goes to offline storage).
// The app server is Parley's own pubsub service (pubsub.localhost) with a node its account owns
// and listens to on a raw client: it must receive the publication with the summary.
import { expect } from 'chai';
import { Jid } from '../../lib/jid/jid.js';
import { loggedIn, nextId, type RawClient, type XNode } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { INSTALL_HINT, PythonClient, pythonHas, SYSTEM_PYTHON } from './clients/python-client.js';

const DRIVER = new URL('../../../spec/e2e/clients/slixmpp_push.py', import.meta.url);
const PUBSUB = 'http://jabber.org/protocol/pubsub';
const EVENT = 'http://jabber.org/protocol/pubsub#event';
const PUSH = 'urn:xmpp:push:0';
const DATA = 'jabber:x:data';
const APP = 'pubsub.localhost';

describe('e2e: push notifications (XEP-0357) with slixmpp', function () {
  this.timeout(40_000);
  let srv: TestServer;
  const raw: RawClient[] = [];
  const running: PythonClient[] = [];

  before(async function () {
    if (!pythonHas('slixmpp')) {
      console.log(`    (skipped: slixmpp is not importable by ${SYSTEM_PYTHON}; ${INSTALL_HINT})`);
      this.skip();
    }
    srv = await startTestServer({ modules: { pubsub: {}, sm: { resumeTimeout: '20s' }, push: { minInterval: '0s' } } });
    for (const user of ['alice', 'bob', 'appserver']) await srv.addUser(user, 'secret-pw');
  });
  after(async () => srv?.stop());
  afterEach(async () => {
    for (const c of raw.splice(0)) c.destroy();
    await Promise.all(running.splice(0).map((c) => c.kill()));
  });

  async function iq(c: RawClient, body: string): Promise<XNode> {
    const id = nextId('ps');
    const from = c.elements.length;
    c.send(`<iq type='set' id='${id}' to='${APP}'>${body}</iq>`);
    const reply = await c.waitForElement((e) => e.is('iq') && e.attrs.id === id, 5000, from);
    expect(reply.attrs.type, reply.toString()).to.equal('result');
    return reply;
  }

  /** The app server: a node for alice's device, whitelist, alice publish-only, and a listener. */
  async function appServer(node: string): Promise<RawClient> {
    const c = await loggedIn(srv, 'appserver', { resource: 'srv' });
    raw.push(c);
    c.send('<presence/>');
    const cfg = `<configure><x xmlns='${DATA}' type='submit'><field var='FORM_TYPE'><value>${PUBSUB}#node_config</value></field><field var='pubsub#access_model'><value>whitelist</value></field></x></configure>`;
    await iq(c, `<pubsub xmlns='${PUBSUB}'><create node='${node}'/>${cfg}</pubsub>`);
    await iq(c, `<pubsub xmlns='${PUBSUB}#owner'><affiliations node='${node}'><affiliation jid='alice@localhost' affiliation='publish-only'/></affiliations></pubsub>`);
    await iq(c, `<pubsub xmlns='${PUBSUB}'><subscribe node='${node}' jid='appserver@localhost'/></pubsub>`);
    return c;
  }

  function summary(event: XNode): Record<string, string> {
    const x = event.child('event', EVENT)!.child('items')!.child('item')!.child('notification', PUSH)!.child('x', DATA)!;
    return Object.fromEntries(x.children.filter((f) => f.is('field')).map((f) => [f.attrs.var!, f.child('value')?.text ?? '']));
  }

  function slixmpp(node: string, actions: string[]): PythonClient {
    const alice = new PythonClient(DRIVER, {
      host: '127.0.0.1',
      port: srv.port('c2s'),
      jid: 'alice@localhost',
      password: 'secret-pw',
      mechanism: 'SCRAM-SHA-1',
      mode: 'starttls',
      resource: 'phone',
      timeout: 30,
      extra: ['--push-jid', APP, '--push-node', node, '--option', 'pubsub#access_model=whitelist'],
      actions,
    });
    running.push(alice);
    return alice;
  }

  it('publishes a summary to the app server for a message that reaches the hibernating session', async () => {
    const app = await appServer('hibernate-node');
    const alice = slixmpp('hibernate-node', ['enable', 'drop', 'wait']);
    expect((await alice.waitFor('bound')).jid).to.equal('alice@localhost/phone');
    await alice.waitFor('push_enabled');
    await alice.waitFor('dropped');
    // The server notices the lost connection and keeps the session hibernating.
    const phone = () => srv.server.sessions.of(Jid.parse('alice@localhost')).find((s) => s.jid.resource === 'phone');
    for (let i = 0; i < 100 && phone()?.hibernating !== true; i++) await new Promise((r) => setTimeout(r, 50));
    expect(phone()?.hibernating, 'the session hibernates').to.equal(true);

    const bob = await loggedIn(srv, 'bob', { resource: 'pc' });
    raw.push(bob);
    const from = app.elements.length;
    bob.send(`<message to='alice@localhost' type='chat' id='m1'><body>ping from bob</body></message>`);
    const event = await app.waitForElement((e) => e.is('message') && e.child('event', EVENT) !== undefined, 10_000, from);
    expect(event.child('event', EVENT)!.child('items')!.attrs.node).to.equal('hibernate-node');
    expect(summary(event)).to.deep.equal({ FORM_TYPE: 'urn:xmpp:push:summary', 'message-count': '1', 'last-message-sender': 'bob@localhost/pc' });
    expect(event.toString()).to.not.include('ping from bob');
    alice.endInput();
    await alice.waitFor('done');
  });

  it('publishes for a message stored offline once the client logged out', async () => {
    const app = await appServer('offline-node');
    const alice = slixmpp('offline-node', ['enable', 'quit']);
    await alice.waitFor('push_enabled');
    await alice.waitFor('closed');
    await alice.waitFor('done');
    const alive = () => srv.server.sessions.of(Jid.parse('alice@localhost')).length;
    for (let i = 0; i < 100 && alive() > 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(alive(), 'no session left').to.equal(0);

    const bob = await loggedIn(srv, 'bob', { resource: 'pc' });
    raw.push(bob);
    const from = app.elements.length;
    bob.send(`<message to='alice@localhost' type='chat' id='m2'><body>while you were out</body></message>`);
    bob.send(`<message to='alice@localhost' type='chat' id='m3'><body>and again</body></message>`);
    const forNode = (e: XNode) => e.is('message') && e.child('event', EVENT)?.child('items')?.attrs.node === 'offline-node';
    const first = await app.waitForElement(forNode, 10_000, from);
    expect(summary(first)['message-count']).to.equal('1');
    const second = await app.waitForElement(forNode, 10_000, app.elements.indexOf(first) + 1);
    expect(summary(second)['message-count']).to.equal('2');
  });
});
