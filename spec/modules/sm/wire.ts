// XEP-0198 on the wire, for the e2e specs: a raw client (spec/helpers/raw-client.ts) that stops
// after authentication to resume, enables stream management, and counts the stanzas it received
// the way a client does.
import { DEFAULT_PASSWORD, RawClient, XMLNS, escapeAttr, escapeText, nextId, type XNode } from '../../helpers/raw-client.js';
import type { TestServer } from '../../helpers/server.js';

export const SM = 'urn:xmpp:sm:3';
export const CSI = 'urn:xmpp:csi:0';

export function isStanza(e: XNode): boolean {
  return e.ns === XMLNS.client && (e.name === 'message' || e.name === 'presence' || e.name === 'iq');
}

/** Connected, STARTTLS, authenticated, stream restarted: where bind or <resume/> comes next. */
export async function authenticated(srv: TestServer, user: string): Promise<{ c: RawClient; features: XNode }> {
  const c = await RawClient.connect(srv.port('c2s'), { domain: srv.domain });
  try {
    await c.openStream();
    await c.starttls();
    await c.openStream();
    await c.authenticate(user, DEFAULT_PASSWORD);
    const features = await c.openStream();
    return { c, features };
  } catch (err) {
    c.destroy();
    throw err;
  }
}

/** A stream management element (enabled, resumed, failed, a, r) at or after element index `from`. */
export function smElement(c: RawClient, names: readonly string[], from: number, timeoutMs = 5000): Promise<XNode> {
  return c.waitForElement((e) => e.ns === SM && names.includes(e.name), timeoutMs, from);
}

/** Sends <enable/> (with `attrs`, e.g. `resume='true'`) and returns <enabled/> or <failed/>. */
export async function enable(c: RawClient, attrs = "resume='true'"): Promise<XNode> {
  const from = c.elements.length;
  c.send(`<enable xmlns='${SM}' ${attrs}/>`);
  return smElement(c, ['enabled', 'failed'], from);
}

/** Sends <resume/> and returns <resumed/> or <failed/>. */
export async function resume(c: RawClient, previd: string, h: number | string): Promise<XNode> {
  const from = c.elements.length;
  c.send(`<resume xmlns='${SM}' previd='${escapeAttr(previd)}' h='${h}'/>`);
  return smElement(c, ['resumed', 'failed'], from);
}

/** Sends <r/> and returns the h of the server's <a/>. */
export async function requestAck(c: RawClient): Promise<number> {
  const from = c.elements.length;
  c.send(`<r xmlns='${SM}'/>`);
  const a = await smElement(c, ['a'], from);
  return Number(a.attrs.h);
}

/** The stanzas received after element index `from` (what a client counts for its 'h'). */
export function stanzasAfter(c: RawClient, from: number): XNode[] {
  return c.elements.slice(from).filter(isStanza);
}

/** The index just after the last <enabled/> or <resumed/>: where this stream's counting starts. */
export function countingFrom(c: RawClient): number {
  for (let i = c.elements.length - 1; i >= 0; i--) {
    const e = c.elements[i]!;
    if (e.ns === SM && (e.name === 'enabled' || e.name === 'resumed')) return i + 1;
  }
  throw new Error('neither <enabled/> nor <resumed/> was received');
}

/** Bodies of the messages received after index `from`, with their ids. */
export function messagesAfter(c: RawClient, from = 0): Array<{ id: string | undefined; body: string }> {
  return c.elements
    .slice(from)
    .filter((e) => e.is('message', XMLNS.client) && e.child('body'))
    .map((e) => ({ id: e.attrs.id, body: e.child('body')!.text }));
}

export function chat(to: string, id: string, body: string): string {
  return `<message to='${escapeAttr(to)}' type='chat' id='${escapeAttr(id)}'><body>${escapeText(body)}</body></message>`;
}

/** Waits until `c` has received messages with all these ids. */
export async function receivedIds(c: RawClient, ids: readonly string[], timeoutMs = 5000): Promise<void> {
  await c.waitFor(() => ids.every((id) => c.elements.some((e) => e.is('message', XMLNS.client) && e.attrs.id === id)), timeoutMs);
}

/** A ping round trip: everything sent before it has been handled by the server. */
export async function roundTrip(c: RawClient): Promise<void> {
  const id = nextId('rt');
  const from = c.elements.length;
  c.send(`<iq type='get' id='${id}' to='${escapeAttr(c.domain)}'><ping xmlns='${XMLNS.ping}'/></iq>`);
  await c.waitForElement((e) => e.is('iq', XMLNS.client) && e.attrs.id === id, 5000, from);
}

/** Mutual presence subscription between two bound clients (RFC 6121 §3.1), both then available. */
export async function befriend(a: RawClient, aJid: string, b: RawClient, bJid: string): Promise<void> {
  a.send(`<presence to='${escapeAttr(bJid)}' type='subscribe'/>`);
  await b.waitForElement((e) => e.is('presence', XMLNS.client) && e.attrs.type === 'subscribe');
  b.send(`<presence to='${escapeAttr(aJid)}' type='subscribed'/>`);
  b.send(`<presence to='${escapeAttr(aJid)}' type='subscribe'/>`);
  await a.waitForElement((e) => e.is('presence', XMLNS.client) && e.attrs.type === 'subscribe');
  a.send(`<presence to='${escapeAttr(bJid)}' type='subscribed'/>`);
  await roundTrip(a);
  await roundTrip(b);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
