// The room's vCard (XEP-0054 on the room JID), which owners set and anyone who may see the room
// reads; its PHOTO is the room's avatar, whose SHA-1 the room announces (XEP-0486 §3-4: in its
// disco#info muc#roominfo_avatarhash and in presence from the room JID with vcard-temp:x:update).
import { createHash } from 'node:crypto';
import { NS, parseXml, StanzaError, xml } from '../../lib/module-api.js';
import type { Element, IqStanza } from '../../lib/module-api.js';
import { announceAvatar } from './presence.js';
import type { Room } from './room.js';
import type { IqAnswer, MucService } from './service.js';

const KEY = 'vcard';

async function load(svc: MucService, name: string): Promise<Element | undefined> {
  const raw = await svc.vcards.get(svc.domain, name, KEY);
  if (raw === undefined) return undefined;
  try {
    return parseXml(raw);
  } catch {
    return undefined;
  }
}

/** XEP-0153 §4.1: the hash is the SHA-1 of the image data, in hex. */
function photoHash(vcard: Element | undefined): string | undefined {
  const binval = vcard?.getChild('PHOTO')?.getChildText('BINVAL');
  if (!binval) return undefined;
  return createHash('sha1').update(Buffer.from(binval.replace(/\s+/g, ''), 'base64')).digest('hex');
}

export async function avatarHashOf(svc: MucService, name: string): Promise<string | undefined> {
  return photoHash(await load(svc, name));
}

export async function vcardGet(svc: MucService, room: Room): Promise<IqAnswer> {
  return (await load(svc, room.name)) ?? xml('vCard', { xmlns: NS.vcard });
}

export async function vcardSet(svc: MucService, room: Room, iq: IqStanza): Promise<IqAnswer> {
  if (room.affiliationOf(iq.from) !== 'owner') return StanzaError.forbidden("only owners set the room's vCard");
  const vcard = iq.payload!;
  const empty = vcard.getChildElements().length === 0 && vcard.getText().trim() === '';
  if (empty) {
    await svc.vcards.delete(svc.domain, room.name, KEY);
  } else {
    const serialised = vcard.toString();
    if (Buffer.byteLength(serialised, 'utf8') > svc.config.vcardMaxSize) {
      return StanzaError.notAcceptable(`a room vCard may have at most ${svc.config.vcardMaxSize} bytes`);
    }
    await svc.vcards.set(svc.domain, room.name, KEY, serialised);
  }
  const hash = empty ? undefined : photoHash(vcard);
  if (hash !== room.avatarHash) {
    room.avatarHash = hash;
    await announceAvatar(svc, room);
  }
  return undefined;
}
