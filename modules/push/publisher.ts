// Publishes notifications to app servers (XEP-0357 §7): one pubsub publish per device at a time,
// at most one per `minInterval` (what arrives meanwhile is folded into the next summary), retried
// with exponential backoff on transient errors, and the registration disabled on permanent ones
// (§7.1) or after too many failures in a row.
import { randomBytes } from 'node:crypto';
import { buildForm, NS, parseXml, StanzaError, xml } from '../../lib/module-api.js';
import type { Element, Logger, StanzaErrorCondition } from '../../lib/module-api.js';
import { registrationKey, type Registration } from './registrations.js';
import type { PushEvent } from './important.js';

export const NS_PUSH = 'urn:xmpp:push:0';
export const NS_SUMMARY = 'urn:xmpp:push:summary';

export interface PublisherOptions {
  readonly minInterval: number;
  readonly retries: number;
  readonly retryDelay: number;
  readonly timeout: number;
  readonly includeSender: boolean;
  readonly disableAfterFailures: number;
}

export interface PublisherDeps {
  readonly host: string;
  readonly log: Logger;
  request(iq: Element, timeoutMs: number): Promise<Element>;
  setTimeout(fn: () => void, ms: number): () => void;
  /** Removes a registration the app server refused for good. */
  disable(user: string, reg: Registration, reason: string): Promise<void>;
}

/**
 * Errors that say the registration is wrong for good (the node is gone, the user may not publish,
 * the publish options do not match). Anything else, and no answer at all, is worth retrying: the
 * app server or the route to it may be down for a while (RFC 6120 §8.3.2 type 'wait' and the
 * remote-server conditions).
 */
const PERMANENT: ReadonlySet<StanzaErrorCondition> = new Set<StanzaErrorCondition>([
  'item-not-found', 'not-authorized', 'forbidden', 'registration-required', 'subscription-required', 'not-allowed',
  'bad-request', 'not-acceptable', 'feature-not-implemented', 'conflict', 'gone', 'jid-malformed',
  'policy-violation', 'redirect',
]);

export function isPermanent(err: StanzaError): boolean {
  return err.type !== 'wait' && PERMANENT.has(err.condition);
}

interface Device {
  readonly user: string;
  reg: Registration;
  /** Notifications since the device was last online (the summary's message-count). */
  count: number;
  last: PushEvent | undefined;
  /** Something happened that no publication has told yet. */
  dirty: boolean;
  inFlight: boolean;
  lastSent: number;
  cancelTimer: (() => void) | undefined;
  failures: number;
}

const MAX_DEVICES = 100_000;

export class Publisher {
  private readonly devices = new Map<string, Device>();

  constructor(private readonly deps: PublisherDeps, private readonly opts: PublisherOptions) {}

  /** `count` things for this device happened, `event` the last: it will be told, now or when its rate allows. */
  notify(user: string, reg: Registration, event: PushEvent, count = 1): void {
    const key = this.key(user, reg);
    let d = this.devices.get(key);
    if (!d) {
      if (this.devices.size >= MAX_DEVICES) this.evictIdle();
      d = { user, reg, count: 0, last: undefined, dirty: false, inFlight: false, lastSent: 0, cancelTimer: undefined, failures: 0 };
      this.devices.set(key, d);
    }
    d.reg = reg;
    d.count += count;
    d.last = event;
    d.dirty = true;
    this.schedule(d);
  }

  /** The device is online again: its count starts over. */
  reset(user: string, reg: Registration): void {
    const d = this.devices.get(this.key(user, reg));
    if (d && !d.inFlight && !d.cancelTimer) this.devices.delete(this.key(user, reg));
    else if (d) d.count = 0;
  }

  /** The registration is gone: nothing more is sent to it. */
  forget(user: string, reg: Registration): void {
    const key = this.key(user, reg);
    this.devices.get(key)?.cancelTimer?.();
    this.devices.delete(key);
  }

  /** Sends now, or arms one timer for when the rate allows; a publication in flight sends again when it ends. */
  private schedule(d: Device): void {
    if (d.inFlight || d.cancelTimer) return;
    const wait = d.lastSent + this.opts.minInterval - Date.now();
    if (wait <= 0) {
      void this.send(d, 0);
      return;
    }
    d.cancelTimer = this.deps.setTimeout(() => {
      d.cancelTimer = undefined;
      void this.send(d, 0);
    }, wait);
  }

  private async send(d: Device, attempt: number): Promise<void> {
    if (this.devices.get(this.key(d.user, d.reg)) !== d) return;
    d.inFlight = true;
    d.dirty = false;
    d.lastSent = Date.now();
    const iq = buildPublish(`${d.user}@${this.deps.host}`, d.reg, d.count, d.last, this.opts.includeSender);
    let err: StanzaError | undefined;
    try {
      const reply = await this.deps.request(iq, this.opts.timeout);
      if (reply.attrs.type === 'error') err = StanzaError.fromElement(reply) ?? new StanzaError('undefined-condition', { type: 'cancel' });
    } catch (e) {
      err = e instanceof StanzaError ? e : new StanzaError('remote-server-timeout', { text: String(e) });
    }
    if (this.devices.get(this.key(d.user, d.reg)) !== d) return;
    const log = { user: d.user, service: d.reg.jid, attempt };
    if (!err) {
      d.failures = 0;
      d.inFlight = false;
      this.deps.log.debug(log, 'push notification published');
      if (d.dirty) this.schedule(d);
      return;
    }
    if (isPermanent(err)) {
      this.deps.log.info({ ...log, condition: err.condition }, 'push service refused the notification: registration disabled');
      this.forget(d.user, d.reg);
      await this.deps.disable(d.user, d.reg, err.condition);
      return;
    }
    if (attempt < this.opts.retries) {
      this.deps.log.debug({ ...log, condition: err.condition }, 'push notification failed; retrying');
      d.cancelTimer = this.deps.setTimeout(() => {
        d.cancelTimer = undefined;
        void this.send(d, attempt + 1);
      }, this.opts.retryDelay * 2 ** attempt);
      return;
    }
    d.inFlight = false;
    d.failures++;
    if (d.failures >= this.opts.disableAfterFailures) {
      this.deps.log.info({ ...log, condition: err.condition, failures: d.failures }, 'push service kept failing: registration disabled');
      this.forget(d.user, d.reg);
      await this.deps.disable(d.user, d.reg, err.condition);
      return;
    }
    this.deps.log.info({ ...log, condition: err.condition }, 'push notification failed after retries');
    if (d.dirty) this.schedule(d);
  }

  private key(user: string, reg: Registration): string {
    return `${user}\u0000${registrationKey(reg)}`;
  }

  private evictIdle(): void {
    for (const [k, d] of this.devices) {
      if (!d.inFlight && !d.cancelTimer) {
        this.devices.delete(k);
        return;
      }
    }
  }
}

/** The pubsub publish of one notification (XEP-0357 §7), from the account's bare JID. */
export function buildPublish(from: string, reg: Registration, count: number, last: PushEvent | undefined, includeSender: boolean): Element {
  const fields = [{ var: 'message-count', values: [String(count)] }];
  if (last && includeSender) fields.push({ var: 'last-message-sender', values: [last.sender] });
  if (last?.body !== undefined && reg.includeBody) fields.push({ var: 'last-message-body', values: [last.body] });
  const summary = buildForm('submit', fields, { formType: NS_SUMMARY });
  const options = reg.options === undefined ? undefined : parseXml(reg.options);
  return xml(
    'iq',
    { type: 'set', from, to: reg.jid, id: `push-${randomBytes(6).toString('hex')}` },
    xml(
      'pubsub',
      { xmlns: NS.pubsub },
      xml('publish', { node: reg.node }, xml('item', {}, xml('notification', { xmlns: NS_PUSH }, summary))),
      options ? xml('publish-options', {}, options) : null,
    ),
  );
}
