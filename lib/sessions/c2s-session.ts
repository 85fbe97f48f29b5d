// A bound client session: the state modules see (SessionHandle) plus the core's ordered,
// bounded queues. Transport details stay behind `SessionSink`.
import { randomBytes } from 'node:crypto';
import type { Element } from '../xml/element.js';
import type { Jid } from '../jid/jid.js';
import type { SessionHandle, SessionStateKey } from './types.js';

/** What the stream layer gives a session to reach the wire. */
export interface SessionSink {
  write(stanza: Element): void;
  close(condition?: string, text?: string): void;
  readonly remoteAddress: string;
  readonly secure: boolean;
}

/** Runs the outgoing filters for a stanza; resolves false when it must not be written. */
export type OutgoingFilter = (session: C2sSession, stanza: Element) => Promise<boolean> | boolean;

export function newSessionId(): string {
  return randomBytes(9).toString('base64url');
}

export class C2sSession implements SessionHandle {
  readonly id = newSessionId();
  presence: Element | undefined;
  available = false;
  priority = 0;
  interested = false;
  private readonly state = new Map<string, unknown>();
  private outQueue: Element[] = [];
  private draining = false;

  constructor(
    readonly jid: Jid,
    private sink: SessionSink,
    private readonly outgoing: OutgoingFilter | undefined,
  ) {}

  get host(): string { return this.jid.domain; }
  get remoteAddress(): string { return this.sink.remoteAddress; }
  get secure(): boolean { return this.sink.secure; }

  /** Stream resumption moves a session onto a new stream. */
  attach(sink: SessionSink): void {
    this.sink = sink;
  }

  send(stanza: Element): void {
    if (!this.outgoing) {
      this.sink.write(stanza);
      return;
    }
    this.outQueue.push(stanza);
    if (!this.draining) void this.drain();
  }

  // Outgoing filters may await; the queue keeps stanzas in order while they do.
  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.outQueue.length) {
        const next = this.outQueue.shift()!;
        let ok = true;
        try {
          ok = await this.outgoing!(this, next);
        } catch {
          ok = true;
        }
        if (ok) this.sink.write(next);
      }
    } finally {
      this.draining = false;
      if (this.closeAfterDrain) {
        const [condition, text] = this.closeAfterDrain;
        this.closeAfterDrain = undefined;
        this.sink.close(condition, text);
      }
    }
  }

  private closeAfterDrain: [string | undefined, string | undefined] | undefined;

  /** Closes after the stanzas already queued for this session are written. */
  close(condition?: string, text?: string): void {
    if (this.draining || this.outQueue.length) {
      this.closeAfterDrain ??= [condition, text];
      return;
    }
    this.sink.close(condition, text);
  }

  get<T>(key: SessionStateKey<T>): T {
    if (!this.state.has(key.name)) this.state.set(key.name, key.initial());
    return this.state.get(key.name) as T;
  }

  set<T>(key: SessionStateKey<T>, value: T): void {
    this.state.set(key.name, value);
  }

  setPresence(presence: Element | undefined): void {
    this.presence = presence;
    this.available = presence !== undefined;
    const raw = presence?.getChildText('priority');
    const n = raw === undefined || raw === null ? 0 : Number.parseInt(raw, 10);
    // RFC 6121 §4.7.2.3: an integer between -128 and +127.
    this.priority = Number.isFinite(n) ? Math.max(-128, Math.min(127, n)) : 0;
  }

  markInterested(): void {
    this.interested = true;
  }
}
