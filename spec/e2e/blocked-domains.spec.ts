// s2s.blockedDomains over real sockets: a blocked server's stream ends with policy-violation,
// and what local users send there bounces with policy-violation before any module acts on it.
import { expect } from 'chai';
import net from 'node:net';
import { loggedIn, sleep } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

describe('e2e: blocked domains', function () {
  this.timeout(20_000);
  let srv: TestServer;
  before(async () => {
    srv = await startTestServer({
      listeners: [
        { type: 'c2s', port: 0, address: '127.0.0.1' },
        { type: 'c2s-tls', port: 0, address: '127.0.0.1' },
        { type: 'http', port: 0, address: '127.0.0.1' },
        { type: 's2s', port: 0, address: '127.0.0.1' },
      ],
      s2s: { blockedDomains: ['evil.example'], resolver: { hosts: { 'fine.example': '127.0.0.1:9' } } },
    });
    await srv.addUser('alice', 'secret-pw');
  });
  after(() => srv.stop());

  function s2sHeader(from: string): Promise<string> {
    const port = srv.server.addresses.find((a) => a.type === 's2s')!.port;
    return new Promise((resolve, reject) => {
      let got = '';
      const socket = net.connect({ host: '127.0.0.1', port }, () => {
        socket.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' xmlns:stream='http://etherx.jabber.org/streams' from='${from}' to='localhost' version='1.0'>`);
      });
      socket.on('data', (d) => (got += d.toString()));
      socket.on('error', reject);
      socket.on('close', () => resolve(got));
      setTimeout(() => socket.destroy(), 3000);
    });
  }

  it('ends the stream of a blocked server (and of its subdomains) with policy-violation', async () => {
    for (const from of ['evil.example', 'conference.evil.example']) {
      const answer = await s2sHeader(from);
      expect(answer, from).to.match(/<stream:error><policy-violation xmlns=["']urn:ietf:params:xml:ns:xmpp-streams["']\/>/);
      expect(answer).to.include('</stream:stream>');
    }
  });

  it('lets other servers open a stream', async () => {
    const answer = await s2sHeader('fine.example');
    expect(answer).to.include('<stream:features');
    expect(answer).to.not.include('policy-violation');
  });

  it('bounces a message to a blocked domain with policy-violation, and refuses a subscription without touching the roster', async () => {
    const c = await loggedIn(srv, 'alice', { password: 'secret-pw' });
    c.send(`<message to='mallory@evil.example' id='m1' type='chat'><body>hi</body></message>`);
    const bounced = await c.waitForElement((e) => e.name === 'message' && e.attrs.id === 'm1');
    expect(bounced.attrs.type).to.equal('error');
    expect(bounced.child('error')?.child('policy-violation')).to.not.equal(undefined);
    c.send(`<presence to='mallory@evil.example' type='subscribe' id='s1'/>`);
    const refused = await c.waitForElement((e) => e.name === 'presence' && e.attrs.id === 's1');
    expect(refused.attrs.type).to.equal('error');
    expect(refused.child('error')?.child('policy-violation')).to.not.equal(undefined);
    await sleep(50);
    c.send(`<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>`);
    const roster = await c.waitForElement((e) => e.name === 'iq' && e.attrs.id === 'r1');
    expect(roster.child('query')?.children ?? []).to.deep.equal([]);
    c.close();
  });
});
