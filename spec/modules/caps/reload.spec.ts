// After a live reload enables or disables a module whose features are only in its manifest,
// the server's disco#info changes, and so must its caps hash (XEP-0115 §6.3: a client caches the
// server's features by `ver`).
import { expect } from 'chai';
import { Jid, z } from '../../../lib/module-api.js';
import { defineModule, type ModuleDefinition } from '../../../lib/modules/define.js';
import { loadHost, reloadHost, type EnabledModule, type LoaderDeps } from '../../../lib/modules/loader.js';
import { HostRuntime } from '../../../lib/routing/host-runtime.js';
import { silentLogger } from '../../../lib/log.js';
import caps, { capsVer } from '../../../modules/caps/index.js';
import disco from '../../../modules/disco/index.js';

type AnyModule = ModuleDefinition<z.ZodType, unknown>;

const FEATURE = 'urn:test:manifest-only';
/** A module that adds a server feature through its manifest alone (no disco provider). */
const manifestOnly = defineModule({
  name: 'manifest-only',
  features: { host: [FEATURE] },
  config: z.strictObject({}),
  setup() {
    return undefined;
  },
}) as AnyModule;

const deps = { log: silentLogger(), server: { name: 'x', version: '0', hosts: ['h.example'], admins: [], contact: {} } } as unknown as LoaderDeps;
const enabled = (...defs: AnyModule[]): EnabledModule[] => defs.map((def) => ({ def, options: def.config.parse({}) }));

async function until<T>(what: string, read: () => T | undefined, ok: (v: T | undefined) => boolean): Promise<T | undefined> {
  const deadline = Date.now() + 3000;
  for (;;) {
    const v = read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value ${String(v)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('caps: the server hash after a live reload', () => {
  it('recomputes the hash and disco features when a reload enables, then disables, a manifest-only module', async () => {
    const runtime = new HostRuntime('h.example');
    const loaded = await loadHost(runtime, enabled(disco as AnyModule, caps as AnyModule), deps);
    try {
      const capsApi = loaded.apis.get('caps') as { ver(): string | undefined };
      const info = async () => {
        const api = loaded.apis.get('disco') as { info: (q: object) => Promise<Parameters<typeof capsVer>[0] | undefined> };
        return (await api.info({ target: 'host', jid: Jid.parse('h.example'), node: undefined, from: undefined }))!;
      };
      const before = (await until('the first hash', () => capsApi.ver(), (v) => v !== undefined))!;
      expect((await info()).features).to.not.include(FEATURE);
      expect(before).to.equal(capsVer(await info()));

      const on = await reloadHost(runtime, loaded, enabled(disco as AnyModule, caps as AnyModule, manifestOnly), deps);
      expect(on).to.deep.equal({ started: ['manifest-only'], stopped: [], restarted: [] });
      // disco and caps were not restarted: the same caps instance must learn of the change.
      expect(loaded.apis.get('caps')).to.equal(capsApi);
      expect((await info()).features).to.include(FEATURE);
      const withFeature = await until('a new hash', () => capsApi.ver(), (v) => v !== undefined && v !== before);
      expect(withFeature).to.equal(capsVer(await info()));

      const off = await reloadHost(runtime, loaded, enabled(disco as AnyModule, caps as AnyModule), deps);
      expect(off).to.deep.equal({ started: [], stopped: ['manifest-only'], restarted: [] });
      const after = await until('the hash without the feature', () => capsApi.ver(), (v) => v !== undefined && v !== withFeature);
      expect(after).to.equal(before);
      expect((await info()).features).to.not.include(FEATURE);
    } finally {
      loaded.stop();
    }
  });
});
