// An @xmpp/client session for the instant-messaging e2e specs: it keeps every stanza it is sent,
// in order, answers roster and blocklist pushes with a result (RFC 6121 §2.1.6, XEP-0191 §3.3) and
// sends IQs whose reply, result or error, comes back as the element itself.
import { client, xml, type XmppClient } from '@xmpp/client';
import type { Element } from 'ltx';

type Predicate = (el: Element) => boolean;

interface IqCallee {
  set(ns: string, name: string, handler: () => unknown): void;
}

let ids = 0;

export class XjsIm {
  readonly stanzas: Element[] = [];
  private readonly listeners = new Set<() => void>();

  private constructor(readonly c: XmppClient) {
    c.on('stanza', (el) => {
      this.stanzas.push(el);
      for (const l of [...this.listeners]) l();
    });
    const callee = (c as unknown as { iqCallee: IqCallee }).iqCallee;
    callee.set('jabber:iq:roster', 'query', () => true);
    callee.set('urn:xmpp:blocking', 'block', () => true);
    callee.set('urn:xmpp:blocking', 'unblock', () => true);
  }

  static async connect(opts: { port: number; domain: string; username: string; password: string; resource: string }): Promise<XjsIm> {
    const c = client({ service: `xmpp://127.0.0.1:${opts.port}`, domain: opts.domain, username: opts.username, password: opts.password, resource: opts.resource });
    c.on('error', () => undefined);
    const im = new XjsIm(c);
    await c.start();
    return im;
  }

  get jid(): string {
    return String(this.c.jid);
  }

  mark(): number {
    return this.stanzas.length;
  }

  since(after: number, pred: Predicate = () => true): Element[] {
    return this.stanzas.slice(after).filter(pred);
  }

  send(el: Element): Promise<void> {
    return this.c.send(el);
  }

  /** Sends an IQ (an id is added when it has none) and returns the reply: result or error. */
  async iq(el: Element, timeoutMs = 8_000): Promise<Element> {
    if (!el.attrs.id) el.attrs.id = `xjs-${++ids}`;
    const id = String(el.attrs.id);
    const after = this.mark();
    const reply = this.waitFor(
      (s) => s.is('iq') && s.attrs.id === id && (s.attrs.type === 'result' || s.attrs.type === 'error'),
      { after, timeoutMs, what: `the reply to iq ${id}` },
    );
    await this.c.send(el);
    return reply;
  }

  /** A ping to the server: everything this session sent before has been handled once it returns. */
  async barrier(domain: string): Promise<void> {
    const r = await this.iq(xml('iq', { type: 'get', to: domain }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    if (r.attrs.type !== 'result') throw new Error(`ping failed: ${r.toString()}`);
  }

  /** The first stanza from index `after` (0 by default) matching `pred`, received or to come. */
  waitFor(pred: Predicate, opts: { after?: number; timeoutMs?: number; what?: string } = {}): Promise<Element> {
    const after = opts.after ?? 0;
    const timeoutMs = opts.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = this.stanzas.slice(after).find(pred);
        if (!hit) return false;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(hit);
        return true;
      };
      const listener = (): void => void check();
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        const seen = this.stanzas.slice(after).map((s) => s.toString().slice(0, 600)).join('\n  ');
        reject(new Error(`@xmpp/client ${this.jid}: nothing within ${timeoutMs} ms for ${opts.what ?? pred.toString()}\nstanzas:\n  ${seen || '(none)'}`));
      }, timeoutMs);
      if (!check()) this.listeners.add(listener);
    });
  }

  async stop(): Promise<void> {
    await this.c.stop().catch(() => undefined);
  }
}

/** The defined condition and application conditions of a stanza's `<error/>`. */
export function errorOf(el: Element): { type: string | undefined; condition: string | undefined; app: Array<{ name: string; ns: string }> } | undefined {
  const err = el.getChild('error');
  if (!err) return undefined;
  const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';
  let condition: string | undefined;
  const app: Array<{ name: string; ns: string }> = [];
  for (const c of err.getChildElements()) {
    if (c.getNS() === STANZAS) {
      if (c.name !== 'text') condition = c.name;
    } else app.push({ name: c.name, ns: c.getNS() ?? '' });
  }
  return { type: err.attrs.type as string | undefined, condition, app };
}

/** The items of a roster query or push, as plain objects. */
export function rosterItems(query: Element | undefined): Array<{ jid: string; subscription?: string; ask?: string; name?: string }> {
  if (!query) return [];
  return query.getChildren('item').map((i) => ({
    jid: String(i.attrs.jid),
    subscription: i.attrs.subscription as string | undefined,
    ask: i.attrs.ask as string | undefined,
    name: i.attrs.name as string | undefined,
  }));
}

export const isRosterPush = (el: Element): boolean => el.is('iq') && el.attrs.type === 'set' && !!el.getChild('query', 'jabber:iq:roster');

export { xml };
