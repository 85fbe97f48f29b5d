// reloadHost: the live-reload plan per host. Only modules whose options changed restart (with
// every module that depends on them), new ones start, removed ones stop and unregister
// everything; a bad module graph changes nothing.
import { expect } from 'chai';
import { z } from 'zod';
import { defineModule, type ModuleDefinition } from '../../../lib/modules/define.js';
import { loadHost, reloadHost, ModuleGraphError, type LoaderDeps } from '../../../lib/modules/loader.js';
import { HostRuntime } from '../../../lib/routing/host-runtime.js';
import { silentLogger } from '../../../lib/log.js';
import { xml } from '../../../lib/xml/element.js';

type AnyModule = ModuleDefinition<z.ZodType, unknown>;

describe('reloadHost', () => {
  const events: string[] = [];
  const mod = (name: string, requires: AnyModule[] = []): AnyModule =>
    defineModule({
      name,
      config: z.strictObject({ n: z.number().default(0) }),
      requires,
      setup(ctx) {
        events.push(`start ${name} ${ctx.config.n}`);
        ctx.iq.get({ ns: `urn:test:${name}`, name: 'q', to: ['host'] }, () => undefined);
        ctx.setTimeout(() => undefined, 60_000);
        return { n: ctx.config.n };
      },
    }) as AnyModule;
  const deps = { log: silentLogger(), server: { name: 'x', version: '0', hosts: ['h'], admins: [], contact: {} } } as unknown as LoaderDeps;
  const q = (name: string) => xml('q', { xmlns: `urn:test:${name}` });

  it('restarts a module with new options and its dependants, leaves the others, stops removed modules', async () => {
    const a = mod('a');
    const b = mod('b', [a]);
    const c = mod('c');
    const d = mod('d');
    const runtime = new HostRuntime('h');
    const loaded = await loadHost(runtime, [{ def: a, options: { n: 1 } }, { def: b, options: { n: 1 } }, { def: c, options: { n: 1 } }, { def: d, options: { n: 1 } }], deps);
    events.length = 0;
    const cApi = loaded.apis.get('c');

    const r = await reloadHost(runtime, loaded, [{ def: a, options: { n: 2 } }, { def: b, options: { n: 1 } }, { def: c, options: { n: 1 } }], deps);
    expect(r).to.deep.equal({ started: [], stopped: ['d'], restarted: ['a', 'b'] });
    expect(events).to.deep.equal(['start a 2', 'start b 1']);
    expect(loaded.apis.get('a')).to.deep.equal({ n: 2 });
    expect(loaded.apis.get('c')).to.equal(cApi); // untouched: the same instance
    expect(loaded.apis.has('d')).to.equal(false);
    expect(runtime.iqs.find('host', 'get', q('d'))).to.equal(undefined);
    expect(runtime.iqs.find('host', 'get', q('a'))).to.not.equal(undefined);
    expect(runtime.manifests.map((m) => m.name).sort()).to.deep.equal(['a', 'b', 'c']);

    const again = await reloadHost(runtime, loaded, [{ def: a, options: { n: 2 } }, { def: b, options: { n: 1 } }, { def: c, options: { n: 1 } }, { def: d, options: { n: 5 } }], deps);
    expect(again).to.deep.equal({ started: ['d'], stopped: [], restarted: [] });
    expect(runtime.iqs.find('host', 'get', q('d'))).to.not.equal(undefined);
    loaded.stop();
    expect(runtime.iqs.find('host', 'get', q('a'))).to.equal(undefined);
  });

  it('fires modules/reloaded with what changed, once the modules are started, and not for a reload that changes nothing', async () => {
    const heard: unknown[] = [];
    const watcher = defineModule({
      name: 'watcher',
      config: z.strictObject({}),
      setup(ctx) {
        ctx.on('modules/reloaded', (e) => { heard.push({ ...e, module: ctx.name }); });
      },
    }) as AnyModule;
    const a = mod('a');
    const runtime = new HostRuntime('h');
    const loaded = await loadHost(runtime, [{ def: watcher, options: {} }, { def: a, options: { n: 1 } }], deps);
    await reloadHost(runtime, loaded, [{ def: watcher, options: {} }, { def: a, options: { n: 1 } }], deps);
    expect(heard).to.deep.equal([]);
    await reloadHost(runtime, loaded, [{ def: watcher, options: {} }, { def: a, options: { n: 2 } }, { def: mod('c'), options: {} }], deps);
    await reloadHost(runtime, loaded, [{ def: watcher, options: {} }], deps);
    expect(heard).to.deep.equal([
      { host: 'h', started: ['c'], stopped: [], restarted: ['a'], module: 'watcher' },
      { host: 'h', started: [], stopped: ['a', 'c'], restarted: [], module: 'watcher' },
    ]);
    loaded.stop();
  });

  it('runs a module\'s onStop functions when a reload disables it, so its listeners on a dependency\'s API go', async () => {
    const listeners = new Set<() => void>();
    const provider = defineModule({
      name: 'provider',
      config: z.strictObject({}),
      setup: () => ({
        listen(fn: () => void): () => void {
          listeners.add(fn);
          return () => { listeners.delete(fn); };
        },
      }),
    });
    const consumer = defineModule({
      name: 'consumer',
      requires: [provider],
      config: z.strictObject({}),
      setup(ctx) {
        ctx.onStop(ctx.deps.get(provider).listen(() => undefined));
      },
    }) as AnyModule;
    const runtime = new HostRuntime('h');
    const loaded = await loadHost(runtime, [{ def: provider as AnyModule, options: {} }, { def: consumer, options: {} }], deps);
    expect(listeners.size).to.equal(1);
    await reloadHost(runtime, loaded, [{ def: provider as AnyModule, options: {} }], deps);
    expect(listeners.size).to.equal(0);
    expect(loaded.apis.has('provider')).to.equal(true);
    loaded.stop();
  });

  it('refuses a graph with a missing dependency before stopping anything', async () => {
    const a = mod('a');
    const b = mod('b', [a]);
    const runtime = new HostRuntime('h');
    const loaded = await loadHost(runtime, [{ def: a, options: {} }, { def: b, options: {} }], deps);
    let error: unknown;
    try {
      await reloadHost(runtime, loaded, [{ def: b, options: {} }], deps);
    } catch (err) {
      error = err;
    }
    expect(error).to.be.instanceOf(ModuleGraphError);
    expect([...loaded.apis.keys()].sort()).to.deep.equal(['a', 'b']);
    loaded.stop();
  });
});
