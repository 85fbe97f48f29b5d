// RFC 6120 §6.4.4: <abort/> is always answered with <failure><aborted/></failure>, whether or not
// an exchange is under way (nbxmpp, hence Gajim, sends one after every failure).
import { expect } from 'chai';
import { RawClient, XMLNS } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('e2e: SASL abort', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer();
    await srv.addUser('alice', 'secret-pw');
  });
  after(async () => srv?.stop());

  async function ready(): Promise<RawClient> {
    const c = await RawClient.connect(srv.port('c2s-tls'), { directTls: true });
    await c.openStream();
    return c;
  }

  it('answers an abort after a failed attempt with aborted and keeps the stream open', async () => {
    const c = await ready();
    let from = c.elements.length;
    c.sendAuth('PLAIN', Buffer.from('\0alice\0wrong'));
    expect((await c.saslAnswer(from)).child('not-authorized')).to.not.equal(undefined);
    from = c.elements.length;
    c.send(`<abort xmlns='${XMLNS.sasl}'/>`);
    const answer = await c.saslAnswer(from);
    expect(answer.name).to.equal('failure');
    expect(answer.child('aborted')).to.not.equal(undefined);
    await c.authenticate('alice', 'secret-pw');
    c.close();
  });

  it('answers an abort with no exchange under way with aborted', async () => {
    const c = await ready();
    const from = c.elements.length;
    c.send(`<abort xmlns='${XMLNS.sasl}'/>`);
    const answer = await c.saslAnswer(from);
    expect(answer.child('aborted')).to.not.equal(undefined);
    expect(c.serverClosedStream).to.equal(false);
    c.close();
  });

  it('answers an abort in the middle of a SCRAM exchange with aborted', async () => {
    const c = await ready();
    const from = c.elements.length;
    c.sendAuth('SCRAM-SHA-256', Buffer.from('n,,n=alice,r=abcdefghijklmnop'));
    expect((await c.saslAnswer(from)).name).to.equal('challenge');
    const next = c.elements.length;
    c.send(`<abort xmlns='${XMLNS.sasl}'/>`);
    expect((await c.saslAnswer(next)).child('aborted')).to.not.equal(undefined);
    c.close();
  });
});
