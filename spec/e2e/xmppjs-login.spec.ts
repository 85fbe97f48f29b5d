// @xmpp/client (xmpp.js) against a real server: STARTTLS and direct TLS, SCRAM and PLAIN,
// bind, ping, and a message between two accounts.
import { expect } from 'chai';
import { client, xml } from '@xmpp/client';
import { startTestServer, type TestServer } from '../helpers/server.js';

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

import type { XmppClient } from '@xmpp/client';

function connect(srv: TestServer, user: string, opts: { tls?: boolean; mechanism?: string; resource?: string } = {}): Promise<XmppClient> {
  const service = opts.tls ? `xmpps://127.0.0.1:${srv.port('c2s-tls')}` : `xmpp://127.0.0.1:${srv.port('c2s')}`;
  const c = client({ service, domain: srv.domain, username: user, password: 'secret-pw', resource: opts.resource });
  if (opts.mechanism) {
    const sasl = (c as unknown as { saslFactory: { _mechs: Array<{ name: string }> } }).saslFactory;
    sasl._mechs = sasl._mechs.filter((m) => m.name === opts.mechanism);
  }
  c.on('error', () => undefined);
  return c.start().then(() => c);
}

describe('e2e: @xmpp/client', function () {
  this.timeout(30_000);
  let srv: TestServer;

  before(async () => {
    srv = await startTestServer();
    await srv.addUser('alice', 'secret-pw');
    await srv.addUser('bob', 'secret-pw');
  });
  after(async () => srv?.stop());

  for (const mechanism of ['SCRAM-SHA-1', 'PLAIN']) {
    for (const direct of [false, true]) {
      it(`logs in with ${mechanism} over ${direct ? 'direct TLS' : 'STARTTLS'} and binds a resource`, async () => {
        const c = await connect(srv, 'alice', { tls: direct, mechanism });
        try {
          expect(c.jid?.toString()).to.match(/^alice@localhost\/.+/);
          const pong = await c.iqCaller.request(xml('iq', { type: 'get', to: 'localhost' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
          expect(pong.attrs.type).to.equal('result');
        } finally {
          await c.stop();
        }
      });
    }
  }

  it('refuses a wrong password', async () => {
    const c = client({ service: `xmpp://127.0.0.1:${srv.port('c2s')}`, domain: srv.domain, username: 'alice', password: 'wrong' });
    c.on('error', () => undefined);
    let failed: Error | undefined;
    try {
      await c.start();
    } catch (err) {
      failed = err as Error;
    }
    await c.stop().catch(() => undefined);
    expect(failed?.message ?? '').to.match(/not-authorized/);
  });

  it('delivers a chat message from alice to bob', async () => {
    const alice = await connect(srv, 'alice', { resource: 'a1' });
    const bob = await connect(srv, 'bob', { resource: 'b1' });
    try {
      await bob.send(xml('presence'));
      await alice.send(xml('presence'));
      await new Promise((r) => setTimeout(r, 100));
      const got = new Promise<import('ltx').Element>((resolve) => {
        bob.on('stanza', (s) => { if (s.is('message')) resolve(s); });
      });
      await alice.send(xml('message', { to: 'bob@localhost/b1', type: 'chat', id: 'm1' }, xml('body', {}, 'hello bob')));
      const msg = await got;
      expect(msg.attrs.from).to.equal('alice@localhost/a1');
      expect(msg.getChildText('body')).to.equal('hello bob');
    } finally {
      await alice.stop();
      await bob.stop();
    }
  });

  it('stores a message to an offline account and delivers it, delayed, at its initial presence', async () => {
    await srv.addUser('carol', 'secret-pw');
    const alice = await connect(srv, 'alice', { resource: 'a2' });
    try {
      await alice.send(xml('message', { to: 'carol@localhost', type: 'chat', id: 'off1' }, xml('body', {}, 'while you were away')));
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      await alice.stop();
    }
    const carol = await connect(srv, 'carol', { resource: 'c1' });
    try {
      const got = new Promise<import('ltx').Element>((resolve) => {
        carol.on('stanza', (s) => { if (s.is('message')) resolve(s); });
      });
      await carol.send(xml('presence'));
      const msg = await got;
      expect(msg.getChildText('body')).to.equal('while you were away');
      expect(msg.attrs.from).to.equal('alice@localhost/a2');
      const delay = msg.getChild('delay', 'urn:xmpp:delay');
      expect(delay?.attrs.from).to.equal('localhost');
    } finally {
      await carol.stop();
    }
  });

  it('delivers a message to the bare JID of an available account', async () => {
    const alice = await connect(srv, 'alice', { resource: 'a3' });
    const bob = await connect(srv, 'bob', { resource: 'b3' });
    try {
      await bob.send(xml('presence'));
      await new Promise((r) => setTimeout(r, 100));
      const got = new Promise<import('ltx').Element>((resolve) => {
        bob.on('stanza', (s) => { if (s.is('message')) resolve(s); });
      });
      await alice.send(xml('message', { to: 'bob@localhost', type: 'chat', id: 'm2' }, xml('body', {}, 'to your bare JID')));
      expect((await got).getChildText('body')).to.equal('to your bare JID');
    } finally {
      await alice.stop();
      await bob.stop();
    }
  });
});
