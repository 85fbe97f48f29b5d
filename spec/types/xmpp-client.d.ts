// Minimal typings for the parts of @xmpp/client the specs use.
declare module '@xmpp/client' {
  import type { Element } from 'ltx';
  export interface XmppClient {
    jid: { toString(): string } | null;
    start(): Promise<unknown>;
    stop(): Promise<unknown>;
    send(el: Element): Promise<void>;
    on(event: 'stanza', fn: (el: Element) => void): void;
    on(event: 'error' | 'offline' | 'online' | 'status', fn: (...args: unknown[]) => void): void;
    iqCaller: { request(el: Element, timeout?: number): Promise<Element> };
  }
  export function client(opts: { service: string; domain: string; username?: string; password?: string; resource?: string }): XmppClient;
  export function xml(name: string, attrs?: Record<string, string | undefined>, ...children: Array<Element | string>): Element;
}
