import { expect } from 'chai';
import { Jid } from '../../../lib/module-api.js';
import presence from '../../../modules/presence/index.js';
import roster from '../../../modules/roster/index.js';
import { SubscriptionRequestLimit } from '../../../modules/presence/subscription-limit.js';
import { Harness } from '../../helpers/harness.js';
import { expectError } from '../../helpers/xml-assert.js';

describe('presence: subscription request limit', () => {
  let h: Harness;
  afterEach(() => h.stop());

  it('bounces new subscription requests beyond the hourly limit with policy-violation, leaving the roster alone', async () => {
    h = await Harness.start({ modules: [roster, presence], options: { presence: { subscriptionRequestsPerHour: 3 } } });
    await h.createAccount('spammy');
    const c = await h.connect('spammy@example.com/bot');
    for (let i = 0; i < 3; i++) await c.sendPresence({ to: `target${i}@remote.example`, type: 'subscribe' });
    // Sending a pending request again asks nothing new: not counted, not refused.
    await c.sendPresence({ to: 'target0@remote.example', type: 'subscribe', id: 'again' });
    await c.sendPresence({ to: 'target3@remote.example', type: 'subscribe', id: 'over' });
    const err = await c.next((s) => s.name === 'presence' && s.attrs.type === 'error');
    expect(err.attrs.id).to.equal('over');
    expectError(err, 'policy-violation');
    const items = await h.api(roster).items(Jid.parse('spammy@example.com'));
    expect(items.map((i) => i.jid.toString()).sort()).to.deep.equal(['target0@remote.example', 'target1@remote.example', 'target2@remote.example']);
    // Another account has its own allowance.
    await h.createAccount('other');
    const o = await h.connect('other@example.com/x');
    await o.sendPresence({ to: 'target9@remote.example', type: 'subscribe' });
    expect(await h.api(roster).items(Jid.parse('other@example.com'))).to.have.length(1);
  });

  it('counts in a sliding hour', () => {
    let now = 0;
    const limit = new SubscriptionRequestLimit(2, 100, () => now);
    expect([limit.take('a'), limit.take('a'), limit.take('a')]).to.deep.equal([true, true, false]);
    now += 3_600_001;
    expect(limit.take('a')).to.equal(true);
  });
});
