// A session bound on another node of the cluster, as modules on this node see it: what it is
// sent travels to its node over Redis; its presence and shared state are the last its node
// published. Writes to its state stay on this node (the owning node is the authority).
import { Jid } from '../jid/jid.js';
import type { Element } from '../xml/element.js';
import { parseXml } from '../xml/parse.js';
import type { SessionHandle, SessionStateKey } from '../sessions/types.js';
import type { SessionEntry } from './session-entry.js';
import type { SessionClient } from '../sasl2/guard.js';

/** How a remote session reaches its node. */
export interface RemoteLink {
  send(session: RemoteSession, stanza: Element): void;
  close(session: RemoteSession, condition?: string, text?: string): void;
  /** The see-other-host address of a live node, when it has one. */
  otherHostOf(node: string): string | undefined;
}

export class RemoteSession implements SessionHandle {
  readonly id: string;
  readonly jid: Jid;
  readonly node: string;
  v: number;
  presence: Element | undefined;
  available: boolean;
  priority: number;
  interested: boolean;
  hibernating: boolean;
  secure: boolean;
  client: SessionClient | undefined;
  private state: Map<string, unknown>;

  constructor(entry: SessionEntry, private readonly link: RemoteLink) {
    this.id = entry.id;
    this.jid = Jid.parse(entry.jid);
    this.node = entry.node;
    this.v = entry.v;
    this.presence = undefined;
    this.available = false;
    this.priority = 0;
    this.interested = false;
    this.hibernating = false;
    this.secure = false;
    this.client = undefined;
    this.state = new Map();
    this.update(entry);
  }

  /** Takes a newer entry from the owning node. */
  update(entry: SessionEntry): void {
    this.v = entry.v;
    let presence: Element | undefined;
    try {
      presence = entry.presence === undefined ? undefined : parseXml(entry.presence);
    } catch {
      presence = undefined;
    }
    this.presence = presence;
    this.available = entry.available;
    this.priority = entry.priority;
    this.interested = entry.interested;
    this.hibernating = entry.hibernating;
    this.secure = entry.secure;
    this.client = entry.client;
    this.state = new Map(Object.entries(entry.state));
  }

  get host(): string { return this.jid.domain; }
  get remoteAddress(): string { return `cluster node ${this.node}`; }
  get seeOtherHost(): string | undefined { return this.link.otherHostOf(this.node); }

  send(stanza: Element): void {
    this.link.send(this, stanza);
  }

  sendFirst(stanzas: readonly Element[]): void {
    for (const s of stanzas) this.link.send(this, s);
  }

  close(condition?: string, text?: string): void {
    this.link.close(this, condition, text);
  }

  get<T>(key: SessionStateKey<T>): T {
    return this.state.has(key.name) ? (this.state.get(key.name) as T) : key.initial();
  }

  set<T>(key: SessionStateKey<T>, value: T): void {
    this.state.set(key.name, value);
  }

  setPresence(presence: Element | undefined): void {
    this.presence = presence;
    this.available = presence !== undefined;
  }

  markInterested(): void {
    this.interested = true;
  }
}
