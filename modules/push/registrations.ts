// The push registrations of each account (XEP-0357 §5): one per (app server JID, node), kept in the
// module's key-value store so that they survive restarts. All of an account's registrations are
// one JSON value: a message needs one read, and the common case (no registration) is cached for
// a short while (per process: in a cluster another node may see an enable or disable up to
// CACHE_TTL_MS late).
import type { KeyValStore } from '../../lib/module-api.js';

export interface Registration {
  /** The app server's XMPP push service. */
  readonly jid: string;
  readonly node: string;
  /** The publish-options form to send with each publication (XML), as the client gave it minus our own fields. */
  readonly options: string | undefined;
  /** The client asked for message bodies and the admin allows it. */
  readonly includeBody: boolean;
  /** The resource of the session that enabled it: that device's session after a restart. */
  readonly resource: string | undefined;
  readonly created: number;
}

export const registrationKey = (r: { jid: string; node: string }): string => JSON.stringify([r.jid, r.node]);

const KEY = 'registrations';
const CACHE_MAX = 10_000;
const CACHE_TTL_MS = 30_000;

function parse(raw: string | undefined): Registration[] {
  if (raw === undefined) return [];
  try {
    const v = JSON.parse(raw) as unknown;
    return Array.isArray(v) ? (v as Registration[]).filter((r) => typeof r?.jid === 'string' && typeof r?.node === 'string') : [];
  } catch {
    return [];
  }
}

export class RegistrationStore {
  private readonly cache = new Map<string, { at: number; list: readonly Registration[] }>();

  constructor(
    private readonly kv: KeyValStore,
    private readonly host: string,
    private readonly max: number,
  ) {}

  async list(user: string): Promise<readonly Registration[]> {
    const hit = this.cache.get(user);
    if (hit && Date.now() - hit.at < CACHE_TTL_MS) return hit.list;
    const list = parse(await this.kv.get(this.host, user, KEY));
    this.remember(user, list);
    return list;
  }

  /** Adds or replaces (same JID and node: the last request's options win, §5); the oldest go beyond the limit. */
  async put(user: string, reg: Registration): Promise<void> {
    const key = registrationKey(reg);
    const others = (await this.fresh(user)).filter((r) => registrationKey(r) !== key);
    const list = [...others, reg].slice(-this.max);
    await this.write(user, list);
  }

  /** Removes the registrations of a service (one node, or all of its nodes); returns those removed. */
  async remove(user: string, jid: string, node?: string): Promise<Registration[]> {
    const list = await this.fresh(user);
    const gone = list.filter((r) => r.jid === jid && (node === undefined || r.node === node));
    if (gone.length) await this.write(user, list.filter((r) => !gone.includes(r)));
    return gone;
  }

  async deleteAccount(user: string): Promise<void> {
    this.cache.delete(user);
    await this.kv.delete(this.host, user, KEY);
  }

  private async fresh(user: string): Promise<Registration[]> {
    this.cache.delete(user);
    return parse(await this.kv.get(this.host, user, KEY));
  }

  private async write(user: string, list: readonly Registration[]): Promise<void> {
    if (list.length) await this.kv.set(this.host, user, KEY, JSON.stringify(list));
    else await this.kv.delete(this.host, user, KEY);
    this.remember(user, list);
  }

  private remember(user: string, list: readonly Registration[]): void {
    this.cache.delete(user);
    if (this.cache.size >= CACHE_MAX) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(user, { at: Date.now(), list });
  }
}
