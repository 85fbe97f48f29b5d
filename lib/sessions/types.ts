// What modules see of a client session. The core owns the session object; modules read it and
// act through these methods only (never touching transports or global tables).
import type { Element } from '../xml/element.js';
import type { Jid } from '../jid/jid.js';
import type { SessionClient } from '../sasl2/guard.js';

/** A typed key for per-session module state, declared with `ctx.sessionState`. */
export interface SessionStateKey<T> {
  readonly name: string;
  readonly initial: () => T;
}

export interface SessionHandle {
  /** Unique for the process lifetime; stable across stream resumption. */
  readonly id: string;
  /** The bound full JID. */
  readonly jid: Jid;
  readonly host: string;
  /** Set by the presence module: the last broadcast presence, undefined before initial presence. */
  readonly presence: Element | undefined;
  /** True once initial presence is sent and until unavailable. */
  readonly available: boolean;
  /** RFC 6121 §8.5: the priority of the last broadcast presence (0 when unset). */
  readonly priority: number;
  /** RFC 6121 §2.1.6: true once the client has fetched its roster. */
  readonly interested: boolean;
  readonly remoteAddress: string;
  readonly secure: boolean;
  /** How its client authenticated: user agent, credential kind (undefined for sessions not from a c2s stream). */
  readonly client: SessionClient | undefined;
  /**
   * True while the session has no stream: its connection was lost and a module claimed it
   * (`session/lost`, XEP-0198 resumption). It stays bound; what it is sent reaches only the
   * session write taps (`ctx.onSessionWrite`) until it is resumed or closed.
   */
  readonly hibernating: boolean;
  /**
   * In a cluster, for a session bound on another node: the address clients reach that node at
   * (its `cluster.seeOtherHost`), for an RFC 6120 see-other-host redirect. Undefined otherwise.
   */
  readonly seeOtherHost?: string;
  /** In a cluster, the node a session bound on another node is on; undefined for this node's. */
  readonly node?: string;
  /** Writes a stanza to this session (through the outgoing filters). */
  send(stanza: Element): void;
  /**
   * Puts stanzas at the head of this session's outbound queue, ahead of every stanza not yet
   * written, in the order given; they pass the outgoing filters again. For a module that held
   * stanzas back in `stanza/outgoing` and now releases them in their original order (CSI).
   */
  sendFirst(stanzas: readonly Element[]): void;
  /**
   * Ends the session with a stream error condition (e.g. 'conflict', 'policy-violation'). A
   * hibernating session has no stream: it ends for real (session/closed fires).
   */
  close(condition?: string, text?: string): void;
  get<T>(key: SessionStateKey<T>): T;
  set<T>(key: SessionStateKey<T>, value: T): void;
  setPresence(presence: Element | undefined): void;
  markInterested(): void;
}

/**
 * Sees a stanza of a session as it passes the per-session queues (ARCHITECTURE §8): written to
 * the session (after the outgoing filters, in wire order), or handled from its client. Called
 * synchronously; must not throw.
 */
export type SessionTap = (session: SessionHandle, stanza: Element) => void;
