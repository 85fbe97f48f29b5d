import { expect } from 'chai';
import { HookBus, HookOrderError } from '../../../lib/hooks/bus.js';
import { StanzaError } from '../../../lib/stanza/error.js';
import type { HookEvent } from '../../../lib/hooks/types.js';

const ev = { host: 'example.com', user: 'alice' } as HookEvent<'account/deleted'>;
const msgEvent = {} as HookEvent<'message/inbound'>;

describe('HookBus', () => {
  it('runs handlers in the order declared by name, not registration', async () => {
    const bus = new HookBus();
    const seen: string[] = [];
    bus.on('account/deleted', 'mam', () => { seen.push('mam'); }, { after: ['carbons'] });
    bus.on('account/deleted', 'carbons', () => { seen.push('carbons'); });
    bus.on('account/deleted', 'offline', () => { seen.push('offline'); }, { before: ['carbons'] });
    await bus.notify('account/deleted', ev);
    expect(seen).to.deep.equal(['offline', 'carbons', 'mam']);
  });

  it('breaks ties by module name', async () => {
    const bus = new HookBus();
    const seen: string[] = [];
    bus.on('account/deleted', 'zeta', () => { seen.push('zeta'); });
    bus.on('account/deleted', 'alpha', () => { seen.push('alpha'); });
    await bus.notify('account/deleted', ev);
    expect(seen).to.deep.equal(['alpha', 'zeta']);
  });

  it('refuses an ordering cycle with both module names', () => {
    const bus = new HookBus();
    bus.on('account/deleted', 'a', () => undefined, { after: ['b'] });
    bus.on('account/deleted', 'b', () => undefined, { after: ['a'] });
    expect(() => bus.validate()).to.throw(HookOrderError, /a, b|b, a/);
  });

  it('stops a filter chain at the first drop', async () => {
    const bus = new HookBus();
    let later = false;
    bus.on('message/inbound', 'a', () => 'drop');
    bus.on('message/inbound', 'b', () => { later = true; });
    expect(await bus.filter('message/inbound', msgEvent)).to.equal('drop');
    expect(later).to.equal(false);
  });

  it('returns a StanzaError returned or thrown by a filter as a bounce', async () => {
    const bus = new HookBus();
    bus.on('message/inbound', 'a', () => { throw StanzaError.forbidden(); });
    const r = await bus.filter('message/inbound', msgEvent);
    expect(r).to.be.instanceOf(StanzaError);
    expect((r as StanzaError).condition).to.equal('forbidden');
  });

  it('ends a claim chain at the first claim', async () => {
    const bus = new HookBus();
    let second = false;
    bus.on('message/undeliverable', 'offline', () => 'claimed');
    bus.on('message/undeliverable', 'zzz', () => { second = true; return 'claimed'; });
    expect(await bus.claim('message/undeliverable', {} as HookEvent<'message/undeliverable'>)).to.equal(true);
    expect(second).to.equal(false);
  });

  it('keeps running notify handlers after one throws', async () => {
    const bus = new HookBus();
    const errors: unknown[] = [];
    let ran = false;
    bus.on('account/deleted', 'a', () => { throw new Error('boom'); });
    bus.on('account/deleted', 'b', () => { ran = true; });
    await bus.notify('account/deleted', ev, (e) => errors.push(e));
    expect(ran).to.equal(true);
    expect(errors).to.have.length(1);
  });

  it('forgets a handler after its remover runs', async () => {
    const bus = new HookBus();
    let n = 0;
    const off = bus.on('account/deleted', 'a', () => { n++; });
    off();
    await bus.notify('account/deleted', ev);
    expect(n).to.equal(0);
    expect(bus.has('account/deleted')).to.equal(false);
  });
});
