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

  describe('answered synchronously (filterNow, claimNow)', () => {
    it('passes at once when a filter hook has no handler', () => {
      expect(new HookBus().filterNow('message/inbound', msgEvent)).to.equal('pass');
    });

    it('answers at once when every handler answers at once', () => {
      const bus = new HookBus();
      bus.on('message/inbound', 'a', () => undefined);
      bus.on('message/inbound', 'b', () => 'drop');
      expect(bus.filterNow('message/inbound', msgEvent)).to.equal('drop');
      bus.on('message/undeliverable', 'offline', () => 'claimed');
      expect(bus.claimNow('message/undeliverable', {} as HookEvent<'message/undeliverable'>)).to.equal(true);
      expect(new HookBus().claimNow('message/undeliverable', {} as HookEvent<'message/undeliverable'>)).to.equal(false);
    });

    it('runs a chain with an asynchronous handler in the middle in order, to the same verdict', async () => {
      const bus = new HookBus();
      const seen: string[] = [];
      bus.on('message/inbound', 'a', () => { seen.push('a'); });
      bus.on('message/inbound', 'b', async () => { await new Promise((r) => setTimeout(r, 5)); seen.push('b'); });
      bus.on('message/inbound', 'c', () => { seen.push('c'); return StanzaError.forbidden(); });
      bus.on('message/inbound', 'd', () => { seen.push('d'); });
      const pending = bus.filterNow('message/inbound', msgEvent);
      expect(pending).to.be.instanceOf(Promise);
      expect(seen).to.deep.equal(['a']);
      const r = await pending;
      expect(seen).to.deep.equal(['a', 'b', 'c']);
      expect((r as StanzaError).condition).to.equal('forbidden');
    });

    it('turns a thrown StanzaError into the verdict, before or after an asynchronous handler', async () => {
      const bus = new HookBus();
      bus.on('message/inbound', 'a', () => { throw StanzaError.forbidden(); });
      expect((bus.filterNow('message/inbound', msgEvent) as StanzaError).condition).to.equal('forbidden');
      const later = new HookBus();
      later.on('message/inbound', 'a', async () => undefined);
      later.on('message/inbound', 'b', async () => { throw StanzaError.notAllowed(); });
      expect(((await later.filterNow('message/inbound', msgEvent)) as StanzaError).condition).to.equal('not-allowed');
    });

    it('rejects, never throws, when a handler fails with another error', async () => {
      const bus = new HookBus();
      bus.on('message/inbound', 'a', () => { throw new Error('boom'); });
      const r = bus.filterNow('message/inbound', msgEvent);
      expect(r).to.be.instanceOf(Promise);
      let caught: unknown;
      await (r as Promise<unknown>).catch((e: unknown) => { caught = e; });
      expect((caught as Error).message).to.equal('boom');
      bus.on('message/undeliverable', 'a', () => { throw new Error('bang'); });
      const c = bus.claimNow('message/undeliverable', {} as HookEvent<'message/undeliverable'>);
      await (c as Promise<unknown>).then(() => { throw new Error('resolved'); }, (e: Error) => expect(e.message).to.equal('bang'));
      await bus.filter('message/inbound', msgEvent).then(() => { throw new Error('resolved'); }, (e: Error) => expect(e.message).to.equal('boom'));
    });

    it('continues a claim chain after an asynchronous handler that did not claim', async () => {
      const bus = new HookBus();
      bus.on('message/undeliverable', 'a', async () => undefined);
      bus.on('message/undeliverable', 'b', () => 'claimed');
      expect(await bus.claimNow('message/undeliverable', {} as HookEvent<'message/undeliverable'>)).to.equal(true);
    });
  });
});
