// Avatars: XEP-0084 user avatars live in PEP (urn:xmpp:avatar:data and :metadata, plain PEP
// nodes); XEP-0398 keeps the vCard PHOTO (XEP-0054/XEP-0153) in step with them both ways; and
// XEP-0153/XEP-0398 §4 put the avatar's hash into each available presence a client sends
// (broadcast and directed, so room occupants see it too) unless the client wrote a photo itself.
//
// The vCard belongs to modules/vcard: this module reads and writes it through that module's API
// and hears from it of the vCards clients set.
import { defineModule, Jid, KeyedLock, z } from '../../lib/module-api.js';
import type { Element, SessionHandle } from '../../lib/module-api.js';
import pep from '../pep/index.js';
import vcard from '../vcard/index.js';
import {
  dataOf,
  decodeBase64,
  metadataOf,
  NS_AVATAR_DATA,
  NS_AVATAR_METADATA,
  NS_PEP_VCARD_CONVERSION,
  NS_VCARD_UPDATE,
  pepInfo,
  photoOfVcard,
  sha1Hex,
  vcardWithPhoto,
  type Photo,
} from './convert.js';

export * from './convert.js';

const SOURCE = 'avatars';
/** Photos larger than this (bytes of image) stay out of the vCard: vcard's default size limit. */
const VCARD_PHOTO_LIMIT = 48 * 1024;
/** Hashes kept in memory, least recently used first. */
const HASH_CACHE = 10_000;

export default defineModule({
  name: 'avatars',
  xeps: [
    { xep: 84, version: '1.1.4', status: 'complete', note: 'PEP nodes; the server converts, clients publish' },
    { xep: 153, version: '1.1', status: 'complete', note: 'the server adds the hash to presence (XEP-0398 §4)' },
    { xep: 398, version: '0.2.1', status: 'complete' },
  ],
  features: { account: [NS_PEP_VCARD_CONVERSION] },
  defaultEnabled: true,
  requires: [pep, vcard],
  config: z.strictObject({}),
  setup(ctx) {
    const pepApi = ctx.deps.get(pep);
    const vcardApi = ctx.deps.get(vcard);
    const lock = new KeyedLock();
    /** Per user: the SHA-1 of the vCard photo, or null for none. */
    const hashes = new Map<string, string | null>();

    const run = (owner: Jid, fn: () => Promise<void>) =>
      lock.run(owner.toString(), fn).catch((err: unknown) => ctx.log.error({ err, owner: owner.toString() }, 'avatar conversion failed'));

    function rememberHash(user: string, hash: string | null): void {
      hashes.delete(user);
      hashes.set(user, hash);
      while (hashes.size > HASH_CACHE) hashes.delete(hashes.keys().next().value as string);
    }

    async function hashOf(user: string): Promise<string | null> {
      const hit = hashes.get(user);
      if (hit !== undefined) return hit;
      const photo = photoOfVcard(await vcardApi.get(user));
      const hash = photo?.id ?? null;
      rememberHash(user, hash);
      return hash;
    }

    // ------------------------------------------------------------------ XEP-0398 §3.1: PEP → vCard

    async function pepToVcard(owner: Jid, metadata: Element | undefined): Promise<void> {
      const user = owner.local!;
      const meta = await pepApi.node(owner, NS_AVATAR_METADATA);
      // The vCard is world-readable (XEP-0054); an avatar its owner keeps to a roster group or a
      // whitelist stays in PEP.
      if (meta && meta.config.accessModel !== 'open' && meta.config.accessModel !== 'presence') return;
      const info = pepInfo(metadata);
      let photo: Photo | undefined;
      if (info) {
        const id = info.attrs.id as string;
        const [item] = await pepApi.items(owner, NS_AVATAR_DATA, { ids: [id] });
        const bytes = item?.payload?.name === 'data' ? decodeBase64(item.payload.getText()) : undefined;
        // XEP-0398 §3.1: the data must be the image the metadata names.
        if (!bytes || sha1Hex(bytes) !== id.toLowerCase()) return;
        if (bytes.length > VCARD_PHOTO_LIMIT) return;
        photo = { bytes, id: id.toLowerCase(), type: (info.attrs.type as string | undefined) ?? 'image/png' };
      }
      const current = await vcardApi.get(user);
      if (photoOfVcard(current)?.id === photo?.id) return;
      if (!current && !photo) return;
      const saved = await vcardApi.set(user, vcardWithPhoto(current, photo));
      if (!saved.stored) {
        ctx.log.info({ user, reason: saved.reason }, 'avatar left out of the vCard');
        return;
      }
      rememberHash(user, photo?.id ?? null);
    }

    pepApi.on(NS_AVATAR_METADATA, {
      published: (e) => {
        if (e.source === SOURCE) return;
        return run(e.svc, () => pepToVcard(e.svc, e.item.payload));
      },
    });

    // ------------------------------------------------------------------ XEP-0398 §3.2: vCard → PEP

    async function vcardToPep(owner: Jid): Promise<void> {
      const photo = photoOfVcard(await vcardApi.get(owner.local!));
      rememberHash(owner.local!, photo?.id ?? null);
      const [current] = await pepApi.items(owner, NS_AVATAR_METADATA, { max: 1 });
      const currentId = (pepInfo(current?.payload)?.attrs.id as string | undefined)?.toLowerCase();
      if (photo) {
        if (currentId === photo.id) return;
        await pepApi.publish(owner, NS_AVATAR_DATA, { id: photo.id, payload: dataOf(photo) }, { source: SOURCE });
        await pepApi.publish(owner, NS_AVATAR_METADATA, { id: photo.id, payload: metadataOf(photo) }, { source: SOURCE });
      } else if (currentId !== undefined) {
        // XEP-0084 §4.5: an empty metadata element disables the avatar.
        await pepApi.publish(owner, NS_AVATAR_METADATA, { id: 'current', payload: metadataOf(undefined) }, { source: SOURCE });
      }
    }

    // Registered with the vcard module, so undone by hand when this module stops (live reload).
    ctx.onStop(vcardApi.onChanged(({ user }) => {
      const owner = Jid.of(user, ctx.host);
      return run(owner, () => vcardToPep(owner));
    }));

    ctx.on('stanza/inbound', ({ session, stanza }) => {
      if (stanza.kind === 'presence' && stanza.type === 'available') return addHash(session, stanza.el);
      return undefined;
    });

    // ------------------------------------------------------------------ XEP-0153 hash in presence

    /**
     * XEP-0398 §4: every available presence gets the hash, unless the client put a photo element
     * itself (empty: "no avatar", or its own hash); an update element without a photo is replaced.
     */
    async function addHash(session: SessionHandle, presence: Element): Promise<void> {
      const own = presence.getChildren('x').filter((x) => x.attrs.xmlns === NS_VCARD_UPDATE);
      if (own.some((x) => x.getChild('photo') !== undefined)) return;
      const hash = await hashOf(session.jid.local!);
      presence.children = presence.children.filter((c) => typeof c === 'string' || !own.includes(c));
      const photo = presence.c('x', { xmlns: NS_VCARD_UPDATE }).c('photo');
      if (hash !== null) photo.t(hash);
    }

    ctx.on('account/deleted', ({ host, user }) => {
      if (host === ctx.host) hashes.delete(user);
    });
  },
});
