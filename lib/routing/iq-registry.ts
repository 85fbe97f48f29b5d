// Each (host, target, type, namespace, element) has exactly one owner (ARCHITECTURE.md §4).
import type { Element } from '../xml/element.js';
import type { StanzaError } from '../stanza/error.js';
import type { IqStanza } from '../stanza/envelope.js';
import type { SessionHandle } from '../sessions/types.js';

/**
 * Where an IQ is addressed, seen from the server: `host` (the domain itself), `self` (the
 * sender's own bare JID, or no `to`), `bare` (another local account's bare JID), `full`
 * (a local full JID).
 */
export type IqTarget = 'host' | 'self' | 'bare' | 'full';

export interface IqOrigin {
  /** The local session that sent it; undefined for stanzas from other servers or modules. */
  session?: SessionHandle;
  /**
   * Runs `fn` once the reply to this IQ has been routed (written to the session, for a local
   * one), for work that must follow the reply on the wire (XEP-0237 interim roster pushes).
   */
  afterReply?(fn: () => void): void;
}

export type IqResult = Element | void | undefined | StanzaError;
export type IqHandler = (iq: IqStanza, origin: IqOrigin) => IqResult | Promise<IqResult>;

export interface IqSpec {
  ns: string;
  name: string;
  to: readonly IqTarget[];
}

export class IqOwnershipError extends Error {
  readonly code = 'PARLEY_ERR_IQ_OWNER';
}

interface Owner {
  module: string;
  handler: IqHandler;
}

export class IqRegistry {
  private owners = new Map<string, Owner>();

  private static key(target: IqTarget, type: 'get' | 'set', ns: string, name: string): string {
    return `${target}\u0000${type}\u0000${ns}\u0000${name}`;
  }

  register(module: string, type: 'get' | 'set', spec: IqSpec, handler: IqHandler): () => void {
    const keys: string[] = [];
    for (const target of spec.to) {
      const key = IqRegistry.key(target, type, spec.ns, spec.name);
      const existing = this.owners.get(key);
      if (existing) {
        for (const k of keys) this.owners.delete(k);
        throw new IqOwnershipError(
          `modules ${existing.module} and ${module} both handle iq ${type} <${spec.name} xmlns='${spec.ns}'/> to ${target}; disable one of them`,
        );
      }
      this.owners.set(key, { module, handler });
      keys.push(key);
    }
    return () => { for (const k of keys) this.owners.delete(k); };
  }

  find(target: IqTarget, type: 'get' | 'set', payload: Element): IqHandler | undefined {
    const ns = payload.attrs.xmlns as string | undefined ?? '';
    const exact = this.owners.get(IqRegistry.key(target, type, ns, payload.name));
    if (exact) return exact.handler;
    // A handler for `bare` also serves the account itself unless a `self` owner exists.
    if (target === 'self') return this.owners.get(IqRegistry.key('bare', type, ns, payload.name))?.handler;
    return undefined;
  }
}
