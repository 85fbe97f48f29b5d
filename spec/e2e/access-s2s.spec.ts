// The `s2s` access rule on inbound federation: b.test refuses streams from a denied domain with
// a policy-violation stream error, and accepts an allowed one.
import { expect } from 'chai';
import type { TestServer } from '../helpers/server.js';
import { DEFAULT_PASSWORD, loggedIn, type RawClient } from '../helpers/raw-client.js';
import { federatedServer, linkServers } from '../lib/s2s/federation-helpers.js';

describe('e2e: access rule s2s on inbound streams', function () {
  this.timeout(30_000);
  let denied: TestServer;
  let allowed: TestServer;
  let b: TestServer;
  const clients: RawClient[] = [];

  before(async () => {
    denied = await federatedServer('denied.test');
    allowed = await federatedServer('allowed.test');
    b = await federatedServer('b.test', {}, { access: { s2s: [{ deny: { host: 'denied.test' } }, { allow: 'all' }] } });
    linkServers(denied, b);
    linkServers(allowed, b);
    for (const s of [denied, allowed]) await s.addUser('alice', DEFAULT_PASSWORD);
    await b.addUser('bob', DEFAULT_PASSWORD);
  });
  after(async () => {
    for (const c of clients) c.destroy();
    for (const s of [denied, allowed, b]) await s?.stop();
  });

  it('delivers from an allowed domain and refuses a denied one (its sender gets an error)', async () => {
    const bob = await loggedIn(b, 'bob', { resource: 'r' });
    clients.push(bob);
    bob.send('<presence/>');
    const fromAllowed = await loggedIn(allowed, 'alice', { resource: 'r' });
    const fromDenied = await loggedIn(denied, 'alice', { resource: 'r' });
    clients.push(fromAllowed, fromDenied);

    fromAllowed.send(`<message to='bob@b.test' type='chat' id='ok1'><body>hi</body></message>`);
    const got = await bob.waitForElement((e) => e.is('message') && e.attrs.id === 'ok1', 10_000);
    expect(got.attrs.from).to.equal('alice@allowed.test/r');

    fromDenied.send(`<message to='bob@b.test' type='chat' id='no1'><body>hi</body></message>`);
    const bounce = await fromDenied.waitForElement((e) => e.is('message') && e.attrs.id === 'no1' && e.attrs.type === 'error', 15_000);
    expect(bounce.child('error')).to.not.equal(undefined);
    expect(bob.elements.some((e) => e.attrs.id === 'no1')).to.equal(false);
  });
});
