// slixmpp 1.8 (Debian python3-slixmpp) with its XEP-0198 plugin: stream management enabled after
// bind, the connection killed mid-conversation, the stream resumed on a new connection, and every
// message received exactly once. The client runs as a child process
// (spec/e2e/clients/slixmpp_sm.py) reporting JSON lines.
import { expect } from 'chai';
import { loggedIn, type RawClient } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { INSTALL_HINT, PythonClient, pythonHas, SYSTEM_PYTHON } from './clients/python-client.js';
import { chat, roundTrip } from '../modules/sm/wire.js';

const DRIVER = new URL('../../../spec/e2e/clients/slixmpp_sm.py', import.meta.url);

describe('e2e: slixmpp stream management (XEP-0198)', function () {
  this.timeout(30_000);
  let srv: TestServer;
  let bob: RawClient | undefined;
  const running: PythonClient[] = [];

  before(async function () {
    if (!pythonHas('slixmpp')) {
      console.log(`    (skipped: slixmpp is not importable by ${SYSTEM_PYTHON}; ${INSTALL_HINT})`);
      this.skip();
    }
    srv = await startTestServer({ modules: { sm: { resumeTimeout: '10s' } } });
    for (const user of ['alice', 'bob']) await srv.addUser(user, 'secret-pw');
  });
  after(async () => srv?.stop());
  afterEach(async () => {
    bob?.destroy();
    await Promise.all(running.splice(0).map((c) => c.kill()));
  });

  it('resumes after its connection is killed, and gets every message exactly once', async () => {
    const alice = new PythonClient(DRIVER, {
      host: '127.0.0.1',
      port: srv.port('c2s'),
      jid: 'alice@localhost',
      password: 'secret-pw',
      mechanism: 'SCRAM-SHA-1',
      mode: 'starttls',
      resource: 'phone',
      timeout: 25,
      actions: ['recv', '3', 'drop', 'wait', 'reconnect', 'recv', '3'],
    });
    running.push(alice);
    expect((await alice.waitFor('bound')).jid).to.equal('alice@localhost/phone');
    const enabled = await alice.waitFor('sm_enabled');
    expect(enabled.id).to.be.a('string').with.length.above(20);

    bob = await loggedIn(srv, 'bob');
    for (const n of [1, 2, 3]) bob.send(chat('alice@localhost/phone', `s${n}`, `before ${n}`));
    await alice.waitFor('dropped');
    // Sent while the client is away: the session hibernates and keeps them.
    for (const n of [4, 5, 6]) bob.send(chat('alice@localhost/phone', `s${n}`, `while away ${n}`));
    await roundTrip(bob);
    alice.endInput();

    await alice.waitFor('resumed');
    await alice.waitFor('done');
    expect(await alice.exited).to.equal(0);
    expect(alice.events.filter((e) => e.event === 'bound')).to.have.length(1); // resumed, not bound again
    const ids = alice.events.filter((e) => e.event === 'message').map((e) => e.id);
    expect(ids).to.deep.equal(['s1', 's2', 's3', 's4', 's5', 's6']);
  });
});
