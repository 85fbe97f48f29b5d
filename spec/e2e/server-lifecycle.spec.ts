// Shutdown tells every client why (RFC 6120 §4.9.3.22), and the HTTP listener serves metrics.
import { expect } from 'chai';
import { loggedIn } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('e2e: server lifecycle', () => {
  let srv: TestServer | undefined;
  afterEach(async () => {
    await srv?.stop();
    srv = undefined;
  });

  it('closes every stream with system-shutdown when it stops', async () => {
    srv = await startTestServer();
    await srv.addUser('alice', 'secret-pw');
    await srv.addUser('bob', 'secret-pw');
    const a = await loggedIn(srv, 'alice');
    const b = await loggedIn(srv, 'bob');
    const stopping = srv.stop();
    srv = undefined;
    for (const c of [a, b]) {
      const err = await c.streamError();
      expect(err.child('system-shutdown', 'urn:ietf:params:xml:ns:xmpp-streams')).to.not.equal(undefined);
      await c.waitClosed();
    }
    await stopping;
  });

  it('tells room occupants the service is shutting down (status 332) before closing their streams', async () => {
    srv = await startTestServer();
    await srv.addUser('alice', 'secret-pw');
    const a = await loggedIn(srv, 'alice');
    a.send(`<presence to='lobby@conference.localhost/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>`);
    await a.waitForElement((e) => e.is('presence') && e.attrs.from === 'lobby@conference.localhost/alice');
    const mark = a.elements.length;
    const stopping = srv.stop();
    srv = undefined;
    const gone = await a.waitForElement((e) => e.is('presence') && e.attrs.type === 'unavailable' && e.attrs.from === 'lobby@conference.localhost/alice', 5000, mark);
    const codes = gone.child('x', 'http://jabber.org/protocol/muc#user')?.elements().filter((c) => c.name === 'status').map((c) => c.attrs.code);
    expect(codes).to.include('332');
    const err = await a.streamError();
    expect(err.child('system-shutdown', 'urn:ietf:params:xml:ns:xmpp-streams')).to.not.equal(undefined);
    await stopping;
  });

  it('serves Prometheus metrics that count connections and logins', async () => {
    srv = await startTestServer();
    await srv.addUser('alice', 'secret-pw');
    const a = await loggedIn(srv, 'alice');
    const res = await fetch(`http://127.0.0.1:${srv.port('http')}/metrics`);
    expect(res.status).to.equal(200);
    const text = await res.text();
    expect(text).to.match(/parley_connections\{type="c2s"\} 1\b/);
    expect(text).to.match(/parley_logins_total\{mechanism="PLAIN",result="success"\} 1\b/);
    a.close();
  });

  it('refuses to start on a port in use with a one-line hint', async () => {
    srv = await startTestServer();
    let err: (Error & { code?: string; hint?: string }) | undefined;
    try {
      await startTestServer({ listeners: [{ type: 'c2s', port: srv.port('c2s'), address: '127.0.0.1' }] });
    } catch (e) {
      err = e as Error & { code?: string };
    }
    expect(err?.code).to.equal('PARLEY_ERR_PORT_IN_USE');
    expect(err?.hint).to.match(/listeners\[0\]\.port/);
  });
});
