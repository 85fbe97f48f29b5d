// A bound client session: the state modules see (SessionHandle) plus the core's ordered,
// bounded queues. Transport details stay behind `SessionSink`.
//
// The outbound queue is shared by the outgoing filters (CSI holds stanzas there), the write taps
// (stream management counts and keeps what goes on the wire) and the stream (ARCHITECTURE §8).
// A session outlives its stream when stream management keeps it (hibernation): its sink is then
// a stand-in that writes nothing, and resumption attaches the sink of a new stream.
import type { SessionClient } from '../sasl2/guard.js';
import { randomToken } from '../util/random-pool.js';
import type { Element } from '../xml/element.js';
import type { Jid } from '../jid/jid.js';
import type { SessionHandle, SessionStateKey, SessionTap } from './types.js';

/** What the stream layer gives a session to reach the wire. */
export interface SessionSink {
  write(stanza: Element): void;
  close(condition?: string, text?: string): void;
  /**
   * The session is moving to another stream (XEP-0198 resumption while this one is still open):
   * the stream lets go of it and closes itself. Sinks without a stream need not implement it.
   */
  release?(): void;
  readonly remoteAddress: string;
  readonly secure: boolean;
}

/** Runs the outgoing filters for a stanza; resolves false when it must not be written. */
export type OutgoingFilter = (session: C2sSession, stanza: Element) => Promise<boolean> | boolean;

export interface SessionOptions {
  /** Called for every stanza written, in wire order; a live list (the host's taps). */
  writeTaps?: readonly SessionTap[];
  /** How the client authenticated (XEP-0494 client access management). */
  client?: SessionClient;
}

export function newSessionId(): string {
  return randomToken(9);
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
  private detached = false;
  private ended = false;
  private readonly writeTaps: readonly SessionTap[];
  /** Told when what other cluster nodes see of this session changes (lib/cluster). */
  observer: ((session: C2sSession) => void) | undefined;

  constructor(
    readonly jid: Jid,
    private sink: SessionSink,
    private readonly outgoing: OutgoingFilter | undefined,
    options: SessionOptions = {},
  ) {
    this.writeTaps = options.writeTaps ?? [];
    this.client = options.client;
  }

  readonly client: SessionClient | undefined;

  get host(): string { return this.jid.domain; }
  get remoteAddress(): string { return this.sink.remoteAddress; }
  get secure(): boolean { return this.sink.secure; }
  get hibernating(): boolean { return this.detached; }
  /** True once the session ended (session/closed fired or is firing). */
  get isEnded(): boolean { return this.ended; }

  /**
   * Stream resumption moves a session onto a new stream. A stream still holding the session is
   * told to let go (`release`), which closes it.
   */
  attach(sink: SessionSink): void {
    const previous = this.sink;
    this.sink = sink;
    this.detached = false;
    if (previous !== sink) previous.release?.();
    this.observer?.(this);
  }

  /** The stream is gone but the session stays bound (hibernation): `standIn` takes the writes. */
  detach(standIn: SessionSink): void {
    this.sink = standIn;
    this.detached = true;
    this.observer?.(this);
  }

  /** Marks the session ended; true the first time only, so session/closed fires once. */
  markEnded(): boolean {
    if (this.ended) return false;
    this.ended = true;
    return true;
  }

  send(stanza: Element): void {
    if (!this.outgoing) {
      this.write(stanza);
      return;
    }
    this.outQueue.push(stanza);
    if (!this.draining) void this.drain();
  }

  sendFirst(stanzas: readonly Element[]): void {
    if (stanzas.length === 0) return;
    if (!this.outgoing) {
      for (const s of stanzas) this.write(s);
      return;
    }
    this.outQueue.unshift(...stanzas);
    if (!this.draining) void this.drain();
  }

  private write(stanza: Element): void {
    this.sink.write(stanza);
    for (const tap of this.writeTaps) tap(this, stanza);
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
        if (ok) this.write(next);
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

  /** The declared state set so far, by name (what lib/cluster replicates). */
  stateEntries(): IterableIterator<[string, unknown]> {
    return this.state.entries();
  }

  get<T>(key: SessionStateKey<T>): T {
    if (!this.state.has(key.name)) this.state.set(key.name, key.initial());
    return this.state.get(key.name) as T;
  }

  set<T>(key: SessionStateKey<T>, value: T): void {
    this.state.set(key.name, value);
    this.observer?.(this);
  }

  setPresence(presence: Element | undefined): void {
    this.presence = presence;
    this.available = presence !== undefined;
    const raw = presence?.getChildText('priority');
    const n = raw === undefined || raw === null ? 0 : Number.parseInt(raw, 10);
    // RFC 6121 §4.7.2.3: an integer between -128 and +127.
    this.priority = Number.isFinite(n) ? Math.max(-128, Math.min(127, n)) : 0;
    this.observer?.(this);
  }

  markInterested(): void {
    this.interested = true;
    this.observer?.(this);
  }
}
