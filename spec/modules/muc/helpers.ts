// Shared steps for the MUC specs: a harness with the module, joining, creating rooms, reading
// MUC presence.
import { expect } from 'chai';
import { NS, xml } from '../../../lib/module-api.js';
import type { Element, XmlAttrs } from '../../../lib/module-api.js';
import disco from '../../../modules/disco/index.js';
import muc, { type MucApi } from '../../../modules/muc/index.js';
import { Harness, type HarnessOptions, type TestClient } from '../../helpers/harness.js';

export const SERVICE = 'conference.example.com';
export const ROOMCONFIG = 'http://jabber.org/protocol/muc#roomconfig';

export interface MucWorld {
  h: Harness;
  api: MucApi;
}

/** A harness with disco and muc; messages are not rate-limited unless `options.muc` says so. */
export async function startMuc(options: Partial<HarnessOptions> = {}, mucOptions: Record<string, unknown> = {}): Promise<MucWorld> {
  const h = await Harness.start({
    modules: [disco, muc],
    ...options,
    options: { muc: { messageRate: { perSecond: 1000, burst: 1000 }, ...mucOptions }, ...options.options },
  });
  return { h, api: h.api(muc) };
}

/** Creates accounts and connects one session each (resource `r`). */
export async function users(h: Harness, ...names: string[]): Promise<TestClient[]> {
  const out: TestClient[] = [];
  for (const n of names) {
    if (!(await h.accounts.exists('example.com', n))) await h.createAccount(n);
    out.push(await h.connect(`${n}@example.com/r`));
  }
  return out;
}

export const roomJid = (room: string, nick?: string) => `${room}@${SERVICE}${nick === undefined ? '' : `/${nick}`}`;

/** The join presence of XEP-0045 §7.2.1. */
export function joinPresence(room: string, nick: string, opts: { password?: string; history?: XmlAttrs; id?: string } = {}): Element {
  return xml(
    'presence',
    { to: roomJid(room, nick), id: opts.id },
    xml('x', { xmlns: NS.muc }, opts.password !== undefined ? xml('password', {}, opts.password) : null, opts.history ? xml('history', opts.history) : null),
  );
}

export const mucX = (p: Element) => p.getChild('x', NS.mucUser);
export const statuses = (p: Element): number[] => (mucX(p)?.getChildren('status') ?? []).map((s) => Number(s.attrs.code));
export const itemOf = (p: Element): Record<string, string> => (mucX(p)?.getChild('item')?.attrs ?? {}) as Record<string, string>;
export const isSelf = (p: Element) => p.name === 'presence' && statuses(p).includes(110);
export const fromRoom = (room: string) => (s: Element) => typeof s.attrs.from === 'string' && (s.attrs.from as string).startsWith(`${room}@${SERVICE}`);
export const isSubject = (room: string) => (s: Element) => s.name === 'message' && fromRoom(room)(s) && s.getChild('subject') !== undefined && s.getChild('body') === undefined;
export const presenceFrom = (room: string, nick: string, type?: string) => (s: Element) =>
  s.name === 'presence' && s.attrs.from === roomJid(room, nick) && s.attrs.type === type;
export const bodyOf = (s: Element) => s.getChildText('body');

/** Joins and waits for the end of the join (the subject); returns the self-presence. */
export async function join(c: TestClient, room: string, nick: string, opts: { password?: string; history?: XmlAttrs } = {}): Promise<Element> {
  await c.send(joinPresence(room, nick, opts));
  const self = await c.next((s) => s.name === 'presence' && s.attrs.from === roomJid(room, nick) && ((isSelf(s) && s.attrs.type === undefined) || s.attrs.type === 'error'));
  if (self.attrs.type === 'error') return self;
  await c.next(isSubject(room));
  return self;
}

/** Joins expecting an error presence; returns it. */
export async function joinError(c: TestClient, room: string, nick: string, opts: { password?: string } = {}): Promise<Element> {
  await c.send(joinPresence(room, nick, opts));
  return c.next((s) => s.name === 'presence' && s.attrs.type === 'error');
}

export function configSubmit(fields: Record<string, string | string[]>): Element {
  return xml(
    'query',
    { xmlns: NS.mucOwner },
    xml(
      'x',
      { xmlns: NS.dataForms, type: 'submit' },
      xml('field', { var: 'FORM_TYPE' }, xml('value', {}, ROOMCONFIG)),
      Object.entries(fields).map(([k, v]) => xml('field', { var: k }, (Array.isArray(v) ? v : [v]).map((x) => xml('value', {}, x)))),
    ),
  );
}

/** Creates a room (join, then configure: instant when no fields are given); returns after the owner is in. */
export async function createRoom(owner: TestClient, room: string, nick: string, fields?: Record<string, string | string[]>): Promise<void> {
  const self = await join(owner, room, nick);
  expect(statuses(self), self.toString()).to.include(201);
  const payload = fields ? configSubmit(fields) : xml('query', { xmlns: NS.mucOwner }, xml('x', { xmlns: NS.dataForms, type: 'submit' }));
  const reply = await owner.set(payload, roomJid(room));
  expect(reply.attrs.type, reply.toString()).to.equal('result');
}

export function adminSet(...items: Element[]): Element {
  return xml('query', { xmlns: NS.mucAdmin }, items);
}

export function adminItem(attrs: XmlAttrs, reason?: string): Element {
  return xml('item', attrs, reason !== undefined ? xml('reason', {}, reason) : null);
}

export function groupchat(room: string, body: string, attrs: XmlAttrs = {}): Element {
  return xml('message', { to: roomJid(room), type: 'groupchat', id: `gc-${body}`, ...attrs }, xml('body', {}, body));
}

/** Waits for the groupchat message with this body. */
export function nextBody(c: TestClient, body: string): Promise<Element> {
  return c.next((s) => s.name === 'message' && bodyOf(s) === body);
}

export function fields(form: Element | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of form?.getChildren('field') ?? []) out.set(f.attrs.var as string, f.getChildren('value').map((v) => v.getText()));
  return out;
}
