// limits.newConnectionsPerIpPerMinute over real sockets: the connection beyond the allowance is
// refused with the stream error policy-violation; connections already open are not touched.
import { expect } from 'chai';
import { RawClient } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('e2e: new connections per address', function () {
  this.timeout(20_000);
  let srv: TestServer;
  afterEach(() => srv.stop());

  it('refuses a client address its 6th connection within a minute when the limit is 5', async () => {
    srv = await startTestServer({ limits: { newConnectionsPerIpPerMinute: 5 } });
    const kept = await RawClient.connect(srv.port('c2s'));
    await kept.openStream();
    for (let i = 0; i < 4; i++) {
      const c = await RawClient.connect(srv.port('c2s'));
      await c.openStream();
      c.close();
      await c.closed;
    }
    const refused = await RawClient.connect(srv.port('c2s'));
    const err = await refused.streamError();
    expect(err.child('policy-violation', 'urn:ietf:params:xml:ns:xmpp-streams')).to.not.equal(undefined);
    await refused.closed;
    // Direct TLS shares the allowance.
    const tlsRefused = await RawClient.connect(srv.port('c2s-tls'), { directTls: true });
    expect((await tlsRefused.streamError()).child('policy-violation', 'urn:ietf:params:xml:ns:xmpp-streams')).to.not.equal(undefined);
    // The open one still works.
    expect(kept.isClosed).to.equal(false);
    await kept.starttls();
    kept.close();
  });
});
