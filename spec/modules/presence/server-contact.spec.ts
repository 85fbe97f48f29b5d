import { expect } from 'chai';
import { xml } from '../../../lib/module-api.js';
import { online, startWorld, type World } from './world.js';

describe('presence: the server as a contact', () => {
  let w: World;
  beforeEach(async () => {
    w = await startWorld();
  });
  afterEach(() => w.h.stop());

  it('answers a probe to the domain with available presence from the domain', async () => {
    const alice = await online(w, 'alice@example.com/phone');
    alice.clear();
    await alice.send(xml('presence', { type: 'probe', to: 'example.com' }));
    const p = await alice.next((el) => el.name === 'presence' && el.attrs.from === 'example.com');
    expect(p.attrs.type).to.equal(undefined);
  });

  it('approves a subscription to the domain, so the roster shows it subscribed', async () => {
    const alice = await online(w, 'alice@example.com/phone');
    await alice.send(xml('presence', { type: 'subscribe', to: 'example.com' }));
    const push = await alice.next((el) => el.name === 'iq' && el.getChild('query')?.getChild('item')?.attrs.subscription === 'to');
    expect(push.getChild('query')?.getChild('item')?.attrs.jid).to.equal('example.com');
  });
});
