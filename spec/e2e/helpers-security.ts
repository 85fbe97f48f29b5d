// Client side of the security specs: SASL2 with tasks (XEP-0388 §2.7), FAST (XEP-0484) and
// ad-hoc commands, spoken over a raw socket so that every element is the spec's own.
import { createHmac, randomUUID } from 'node:crypto';
import { RawClient, escapeAttr, escapeText, nextId, type XNode } from '../helpers/raw-client.js';
import type { TestServer } from '../helpers/server.js';

export const SASL2 = 'urn:xmpp:sasl:2';
export const FAST = 'urn:xmpp:fast:0';
export const TOTP_NS = 'urn:parley:sasl2:totp:0';
export const COMMANDS = 'http://jabber.org/protocol/commands';
export const CAM = 'urn:xmpp:cam:0';

/** A TLS-secured stream, features read, nothing authenticated yet. */
export async function securedStream(srv: TestServer): Promise<RawClient> {
  const c = await RawClient.connect(srv.port('c2s'), { domain: srv.domain });
  await c.openStream();
  await c.starttls();
  await c.openStream();
  return c;
}

export interface Sasl2Start {
  user: string;
  mechanism: 'PLAIN' | 'HT-SHA-256-NONE';
  /** PLAIN: the password; HT-SHA-256-NONE: the token. */
  secret: string;
  clientId: string;
  software?: string;
  requestToken?: boolean;
  bind?: boolean;
  /** The TOTP code to put inside `<next/>` right away when the server continues. */
}

/** Sends `<authenticate/>` and returns the server's first answer (continue, success, failure, challenge). */
export async function authenticate(c: RawClient, o: Sasl2Start): Promise<XNode> {
  const initial =
    o.mechanism === 'PLAIN'
      ? Buffer.from(`\0${o.user}\0${o.secret}`)
      : Buffer.concat([Buffer.from(`${o.user}\0`), createHmac('sha256', Buffer.from(o.secret)).update('Initiator').digest()]);
  const from = c.elements.length;
  c.send(
    `<authenticate xmlns='${SASL2}' mechanism='${o.mechanism}'><initial-response>${initial.toString('base64')}</initial-response>` +
      `<user-agent id='${escapeAttr(o.clientId)}'><software>${escapeText(o.software ?? 'security-spec')}</software><device>spec</device></user-agent>` +
      (o.requestToken ? `<request-token xmlns='${FAST}' mechanism='HT-SHA-256-NONE'/>` : '') +
      (o.bind === false ? '' : `<bind xmlns='urn:xmpp:bind:0'><tag>spec</tag></bind>`) +
      `</authenticate>`,
  );
  return sasl2Answer(c, from);
}

export function sasl2Answer(c: RawClient, from: number): Promise<XNode> {
  return c.waitForElement((e) => e.ns === SASL2 && ['continue', 'success', 'failure', 'challenge', 'task-data'].includes(e.name), 5000, from);
}

/** `<next task='TOTP'>` with the code inside (or without, to be asked for it). */
export function nextTotp(c: RawClient, code: string | undefined): Promise<XNode> {
  const from = c.elements.length;
  c.send(`<next xmlns='${SASL2}' task='TOTP'>${code === undefined ? '' : `<totp xmlns='${TOTP_NS}'>${escapeText(code)}</totp>`}</next>`);
  return sasl2Answer(c, from);
}

export function taskDataTotp(c: RawClient, code: string): Promise<XNode> {
  const from = c.elements.length;
  c.send(`<task-data xmlns='${SASL2}'><totp xmlns='${TOTP_NS}'>${escapeText(code)}</totp></task-data>`);
  return sasl2Answer(c, from);
}

export const failureCondition = (el: XNode) => el.children.find((x) => x.ns === 'urn:ietf:params:xml:ns:xmpp-sasl')?.name;

/** Sends an IQ and waits for its answer. */
export async function iq(c: RawClient, type: 'get' | 'set', to: string | undefined, payload: string): Promise<XNode> {
  const id = nextId('iq');
  c.send(`<iq type='${type}' id='${id}'${to ? ` to='${escapeAttr(to)}'` : ''}>${payload}</iq>`);
  return c.waitForElement((e) => e.is('iq') && e.attrs.id === id, 10_000);
}

export interface CommandStep {
  iq: XNode;
  sessionId: string | undefined;
  status: string | undefined;
  field(name: string): string[];
  media(name: string): string | undefined;
}

function step(reply: XNode): CommandStep {
  const cmd = reply.child('command', COMMANDS);
  const x = cmd?.child('x', 'jabber:x:data');
  const fields = x?.children.filter((f) => f.name === 'field') ?? [];
  return {
    iq: reply,
    sessionId: cmd?.attrs.sessionid,
    status: cmd?.attrs.status,
    field: (name) => fields.find((f) => f.attrs.var === name)?.children.filter((v) => v.name === 'value').map((v) => v.text) ?? [],
    media: (name) => fields.find((f) => f.attrs.var === name)?.child('media', 'urn:xmpp:media-element')?.child('uri')?.text,
  };
}

/** Runs an ad-hoc command on the server: execute, then submit `values` if given. */
export async function runCommand(c: RawClient, domain: string, node: string, values?: Record<string, string>): Promise<{ first: CommandStep; last: CommandStep }> {
  const first = step(await iq(c, 'set', domain, `<command xmlns='${COMMANDS}' node='${escapeAttr(node)}' action='execute'/>`));
  if (!values) return { first, last: first };
  const fields = Object.entries(values).map(([k, v]) => `<field var='${escapeAttr(k)}'><value>${escapeText(v)}</value></field>`).join('');
  const last = step(
    await iq(c, 'set', domain, `<command xmlns='${COMMANDS}' node='${escapeAttr(node)}' sessionid='${escapeAttr(first.sessionId ?? '')}' action='complete'><x xmlns='jabber:x:data' type='submit'>${fields}</x></command>`),
  );
  return { first, last };
}

export const newClientId = () => randomUUID();
