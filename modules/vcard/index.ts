// XEP-0054 vcard-temp: each account keeps one vCard, which it sets and anyone may read
// (XEP-0054 §5: the vCard is world-readable).
import { cloneElement, defineModule, NS, StanzaError, xml, z } from '../../lib/module-api.js';
import type { Element, IqStanza } from '../../lib/module-api.js';
import type { VcardApi, VcardChangedListener, VcardSetResult } from './api.js';
import { parseStored } from './stored.js';

export type { VcardApi, VcardChanged, VcardChangedListener, VcardSetResult } from './api.js';

const KEY = 'vcard';

function isEmpty(vcard: Element): boolean {
  return vcard.getChildElements().length === 0 && vcard.getText().trim() === '';
}

export default defineModule({
  name: 'vcard',
  xeps: [{ xep: 54, version: '1.3.0', status: 'complete' }],
  features: { host: [NS.vcard], account: [NS.vcard] },
  defaultEnabled: true,
  config: z.strictObject({
    /** Largest vCard accepted, in bytes of XML (photos are the big part). */
    maxSize: z.number().int().min(1024).max(16 * 1024 * 1024).default(64 * 1024),
  }),
  setup(ctx): VcardApi {
    const store = ctx.keyval('vcard');
    const listeners = new Set<VcardChangedListener>();

    async function load(user: string): Promise<Element | undefined> {
      const raw = await store.get(ctx.host, user, KEY);
      if (raw === undefined) return undefined;
      const el = parseStored(raw);
      if (!el) ctx.log.warn({ user }, 'stored vCard no longer parses; treating it as absent');
      return el;
    }

    const owner = (iq: IqStanza): string => iq.to!.local!;

    // XEP-0054 §3.1: one's own vCard; none yet is an empty vCard (the XEP allows that or
    // item-not-found; clients show an empty profile either way, without an error).
    ctx.iq.get({ ns: NS.vcard, name: 'vCard', to: ['self'] }, async (iq) => (await load(owner(iq))) ?? xml('vCard', { xmlns: NS.vcard }));

    // XEP-0054 §3.3: another account's vCard. No vCard answers like no account
    // (service-unavailable), so the reply does not reveal which accounts exist.
    ctx.iq.get({ ns: NS.vcard, name: 'vCard', to: ['bare'] }, async (iq) => (await load(owner(iq))) ?? StanzaError.serviceUnavailable());

    /** Stores (or, empty, removes) a vCard; the reason when it is over the size limit. */
    async function save(user: string, vcard: Element): Promise<VcardSetResult> {
      // There are no partial updates (XEP-0054 §3.2): an empty vCard removes it.
      if (isEmpty(vcard)) {
        await store.delete(ctx.host, user, KEY);
        return { stored: true };
      }
      const serialised = vcard.toString();
      if (Buffer.byteLength(serialised, 'utf8') > ctx.config.maxSize) {
        return { stored: false, reason: `a vCard may have at most ${ctx.config.maxSize} bytes` };
      }
      await store.set(ctx.host, user, KEY, serialised);
      return { stored: true };
    }

    function tell(user: string, vcard: Element): void {
      for (const listener of listeners) {
        const event = { user, vcard: isEmpty(vcard) ? undefined : cloneElement(vcard) };
        // A listener's failure is its own, not the client's set.
        Promise.resolve()
          .then(() => listener(event))
          .catch((err: unknown) => ctx.log.error({ err, user }, 'vCard listener failed'));
      }
    }

    ctx.iq.set({ ns: NS.vcard, name: 'vCard', to: ['self'] }, async (iq) => {
      const user = owner(iq);
      const saved = await save(user, iq.payload!);
      if (!saved.stored) return StanzaError.notAcceptable(saved.reason);
      tell(user, iq.payload!);
      return undefined;
    });

    // XEP-0054 §3.2: setting another account's vCard is forbidden.
    ctx.iq.set({ ns: NS.vcard, name: 'vCard', to: ['bare'] }, () => StanzaError.forbidden('you can only set your own vCard'));

    ctx.on('account/deleted', async ({ host, user }) => {
      if (host === ctx.host) await store.deleteAccount(host, user);
    });

    return {
      get: load,
      set: save,
      onChanged(listener) {
        listeners.add(listener);
        return () => { listeners.delete(listener); };
      },
    };
  },
});
