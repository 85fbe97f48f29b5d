// Avatars in their two homes: XEP-0084 (PEP data + metadata nodes) and the vCard PHOTO of
// XEP-0054/XEP-0153, and what XEP-0398 needs to move one into the other.
import { createHash } from 'node:crypto';
import { xml } from '../../lib/module-api.js';
import type { Element } from '../../lib/module-api.js';

export const NS_AVATAR_DATA = 'urn:xmpp:avatar:data';
export const NS_AVATAR_METADATA = 'urn:xmpp:avatar:metadata';
export const NS_VCARD = 'vcard-temp';
export const NS_VCARD_UPDATE = 'vcard-temp:x:update';
export const NS_PEP_VCARD_CONVERSION = 'urn:xmpp:pep-vcard-conversion:0';

export interface Photo {
  /** The image bytes. */
  bytes: Buffer;
  /** MIME type. */
  type: string;
  /** XEP-0084 §4.1 / XEP-0153 §3.1: SHA-1 of the image, hex. */
  id: string;
}

export function sha1Hex(bytes: Buffer): string {
  return createHash('sha1').update(bytes).digest('hex');
}

/** Strict-enough base64: whitespace (line breaks in BINVAL) removed, other characters refused. */
export function decodeBase64(text: string): Buffer | undefined {
  const clean = text.replace(/\s+/g, '');
  if (clean === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(clean)) return undefined;
  return Buffer.from(clean, 'base64');
}

/** The avatar of a vCard (PHOTO/BINVAL), if it has one. */
export function photoOfVcard(vcard: Element | undefined): Photo | undefined {
  const photo = vcard?.getChild('PHOTO');
  const binval = photo?.getChildText('BINVAL');
  if (!photo || !binval) return undefined;
  const bytes = decodeBase64(binval);
  if (!bytes) return undefined;
  return { bytes, type: photo.getChildText('TYPE')?.trim() || 'image/png', id: sha1Hex(bytes) };
}

/** A copy of the vCard (or a new one) with this PHOTO, or without any PHOTO. */
export function vcardWithPhoto(vcard: Element | undefined, photo: Photo | undefined): Element {
  const out = xml('vCard', { xmlns: NS_VCARD });
  for (const c of vcard?.getChildElements() ?? []) if (c.name !== 'PHOTO') out.cnode(c);
  if (photo) out.cnode(xml('PHOTO', {}, xml('TYPE', {}, photo.type), xml('BINVAL', {}, photo.bytes.toString('base64'))));
  return out;
}

/** XEP-0084 §4.2: the info element that points to the data node (no url), with its id. */
export function pepInfo(metadata: Element | undefined): Element | undefined {
  return metadata?.getChildren('info').find((i) => i.attrs.url === undefined && typeof i.attrs.id === 'string');
}

export function metadataOf(photo: Photo | undefined): Element {
  return xml('metadata', { xmlns: NS_AVATAR_METADATA }, photo ? xml('info', { id: photo.id, bytes: photo.bytes.length, type: photo.type }) : null);
}

export function dataOf(photo: Photo): Element {
  return xml('data', { xmlns: NS_AVATAR_DATA }, photo.bytes.toString('base64'));
}
