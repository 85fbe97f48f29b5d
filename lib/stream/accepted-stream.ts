// What the streams a peer opens to us without a c2s session share (XEP-0114 components,
// inbound s2s): a bounded write path, the ways a stream ends (our stream error, our close, the
// peer's close, the connection dropping), each tearing down exactly once, and the ordered,
// back-pressured queue of stanzas on their way to the router.
import type { Element } from '../xml/element.js';
import type { Logger } from '../log.js';
import type { StreamFraming, StreamTransport } from '../transport/types.js';
import { streamErrorElement, type StreamErrorCondition } from './stream-error.js';

export interface AcceptedStreamLimits {
  /** Bytes queued for a peer that does not read before it is cut off. */
  outboundBufferBytes: number;
  /** Stanzas queued for the router before reading pauses. */
  inboundQueue: number;
}

export abstract class AcceptedStream<S extends string> {
  protected state: S | 'closing' | 'closed';
  protected headerSent = false;
  private torn = false;
  private readonly inbound: Element[] = [];
  private routing = false;
  private pausedForQueue = false;

  protected constructor(
    protected readonly transport: StreamTransport,
    protected readonly framing: StreamFraming,
    private readonly streamLimits: AcceptedStreamLimits,
    protected readonly log: Logger,
    initial: S,
  ) {
    this.state = initial;
  }

  /** Writes our stream header (setting `headerSent`); a stream error may need it first. */
  protected abstract sendHeader(): void;
  /** Releases what the stream holds (timers, registrations, metrics); called exactly once. */
  protected abstract onTeardown(): void;
  /** Hands one queued stanza to the router. */
  protected abstract route(el: Element): Promise<void>;
  /** For the log line when routing a queued stanza throws. */
  protected abstract readonly peerKind: string;

  /** True once the stream is ending or ended. */
  get closed(): boolean {
    return this.state === 'closing' || this.state === 'closed';
  }

  protected writeRaw(data: string): void {
    if (this.state === 'closed') return;
    this.transport.write(data);
    if (this.transport.bufferedBytes > this.streamLimits.outboundBufferBytes) {
      this.log.warn({ buffered: this.transport.bufferedBytes }, `${this.peerKind} is not reading; closing`);
      this.teardown();
      this.transport.destroy();
    }
  }

  /** RFC 6120 §4.9: the error, then our close tag, then the connection ends. */
  streamError(condition: StreamErrorCondition, text?: string): void {
    if (this.closed) return;
    if (!this.headerSent) this.sendHeader();
    this.log.debug({ condition, text }, 'stream error');
    this.writeRaw(streamErrorElement(condition, text).toString());
    this.endStream();
  }

  /** Our close tag (a header first would be odd, so a header-less stream ends with an error). */
  protected closeStream(): void {
    if (this.closed) return;
    if (!this.headerSent) return this.streamError('connection-timeout');
    this.endStream();
  }

  /** The peer closed its stream: RFC 6120 §4.4, we close ours unless we already had. */
  protected onStreamClose(): void {
    if (this.state === 'closed') return;
    if (this.state !== 'closing') this.writeRaw(this.framing.close());
    this.state = 'closing';
    this.teardown();
    this.transport.end();
  }

  /** The connection is gone, whoever ended it. */
  protected onTransportClosed(): void {
    this.teardown();
    this.state = 'closed';
  }

  protected teardown(): void {
    if (this.torn) return;
    this.torn = true;
    this.onTeardown();
  }

  /** Queues a checked stanza for the router, in order; reading pauses while the queue is full. */
  protected enqueue(el: Element): void {
    this.inbound.push(el);
    if (this.inbound.length >= this.streamLimits.inboundQueue && !this.pausedForQueue) {
      this.pausedForQueue = true;
      this.transport.pause();
    }
    if (!this.routing) void this.drain();
  }

  private endStream(): void {
    this.writeRaw(this.framing.close());
    this.state = 'closing';
    this.teardown();
    this.transport.end();
  }

  private async drain(): Promise<void> {
    this.routing = true;
    try {
      // Stanzas that arrived before the peer closed were checked: they are still delivered.
      while (this.inbound.length > 0) {
        const el = this.inbound.shift()!;
        try {
          await this.route(el);
        } catch (err) {
          this.log.error({ err }, `routing a stanza from a ${this.peerKind} failed`);
        }
        if (this.pausedForQueue && this.inbound.length < this.streamLimits.inboundQueue / 2) {
          this.pausedForQueue = false;
          if (this.state !== 'closed') this.transport.resume();
        }
      }
    } finally {
      this.routing = false;
    }
  }
}
