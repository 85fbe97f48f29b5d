// The core extension points stream management and CSI are built on (lib/modules/define.ts).
import { expect } from 'chai';
import { defineModule, xml, z } from '../../../lib/module-api.js';
import type { ModuleContext } from '../../../lib/module-api.js';
import { Harness } from '../../helpers/harness.js';

type Setup = (ctx: ModuleContext<unknown>) => void;
const probe = (name: string, setup: Setup) => defineModule({ name, config: z.strictObject({}), setup });

describe('module extension points for stream management', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.stop();
    h = undefined;
  });

  it('refuses two owners of a namespace across nonza and streamNonza at boot, naming the namespace', async () => {
    const a = probe('a', (ctx) => ctx.nonza('urn:example:x', () => undefined));
    const b = probe('b', (ctx) => ctx.streamNonza('urn:example:x', () => undefined));
    let error: Error | undefined;
    try {
      h = await Harness.start({ modules: [a, b] });
    } catch (err) {
      error = err as Error;
    }
    expect(error?.message).to.match(/two modules handle stream elements in urn:example:x/);
  });

  it('runs a module timer once, and not after it is cancelled', async () => {
    const fired: string[] = [];
    const m = probe('timers', (ctx) => {
      ctx.setTimeout(() => fired.push('kept'), 5);
      const cancel = ctx.setTimeout(() => fired.push('cancelled'), 5);
      cancel();
    });
    h = await Harness.start({ modules: [m] });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(fired).to.deep.equal(['kept']);
  });

  it('keeps a throwing session tap from breaking the others', async () => {
    const seen: string[] = [];
    const m = probe('taps', (ctx) => {
      ctx.onSessionWrite(() => {
        throw new Error('boom');
      });
      ctx.onSessionWrite((_s, el) => seen.push(`write:${el.attrs.id}`));
      ctx.onSessionRead((_s, el) => seen.push(`read:${el.attrs.id}`));
    });
    h = await Harness.start({ modules: [m] });
    await h.createAccount('alice');
    const alice = await h.connect('alice@example.com/phone');
    const runtime = h.runtime();
    for (const tap of runtime.writeTaps) tap(alice.session, xml('message', { id: 'w' }));
    for (const tap of runtime.readTaps) tap(alice.session, xml('message', { id: 'r' }));
    expect(seen).to.deep.equal(['write:w', 'read:r']);
    await h.stop();
    expect(runtime.writeTaps).to.deep.equal([]);
    expect(runtime.readTaps).to.deep.equal([]);
  });

  it('lets a module run a claim hook and learn whether it was claimed', async () => {
    let run!: () => Promise<boolean>;
    const claimer = probe('claimer', (ctx) => {
      ctx.on('session/lost', ({ reason }) => (reason === 'keep' ? 'claimed' : undefined));
    });
    const asker = probe('asker', (ctx) => {
      run = async () => ctx.claim('session/lost', { session: ctx.sessions.all()[0]!, reason: 'keep' });
    });
    h = await Harness.start({ modules: [claimer, asker] });
    await h.createAccount('alice');
    await h.connect('alice@example.com/phone');
    expect(await run()).to.equal(true);
  });
});
