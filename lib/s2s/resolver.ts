// Where to connect for a remote domain: RFC 6120 §3.2 SRV lookup of _xmpp-server._tcp, merged
// with XEP-0368 _xmpps-server._tcp (direct TLS) as one RFC 2782 record set, ordered by priority
// and weight; with no records at all, the domain itself on port 5269. Config overrides bypass
// DNS (tests, private federations).
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { domainToASCII } from 'node:url';

export interface S2sTarget {
  host: string;
  port: number;
  /** XEP-0368: TLS from the first byte (ALPN xmpp-server), never STARTTLS. */
  directTls: boolean;
}

export interface SrvRecord {
  name: string;
  port: number;
  priority: number;
  weight: number;
}

/** What the resolver needs of DNS (node:dns/promises Resolver fits). */
export interface SrvLookup {
  resolveSrv(name: string): Promise<SrvRecord[]>;
}

export const DEFAULT_S2S_PORT = 5269;

/**
 * RFC 2782 ordering: ascending priority; within a priority, a weighted random order where a
 * record's chance to come next is proportional to its weight (weight-0 records can still be
 * picked, but rarely, since they sit at the start of the running sum).
 */
export function orderSrv<T extends SrvRecord>(records: readonly T[], random: () => number = Math.random): T[] {
  const byPriority = new Map<number, T[]>();
  for (const r of records) {
    const group = byPriority.get(r.priority);
    if (group) group.push(r);
    else byPriority.set(r.priority, [r]);
  }
  const out: T[] = [];
  for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
    // Weight-0 records first, as RFC 2782 says, then the rest in their given order.
    const left = [...byPriority.get(priority)!].sort((a, b) => (a.weight === 0 ? 0 : 1) - (b.weight === 0 ? 0 : 1));
    while (left.length > 0) {
      const total = left.reduce((sum, r) => sum + r.weight, 0);
      const pick = total === 0 ? 0 : Math.floor(random() * (total + 1));
      let running = 0;
      let index = left.length - 1;
      for (let i = 0; i < left.length; i++) {
        running += left[i]!.weight;
        if (running >= pick) {
          index = i;
          break;
        }
      }
      out.push(left.splice(index, 1)[0]!);
    }
  }
  return out;
}

type Lookup = { kind: 'records'; records: SrvRecord[] } | { kind: 'unavailable' } | { kind: 'none' };

export interface ResolverOptions {
  /** Fixed targets per domain; no DNS query is made for these. */
  hosts?: Readonly<Record<string, S2sTarget>>;
  dns?: SrvLookup;
  random?: () => number;
}

export class S2sResolver {
  private readonly overrides = new Map<string, S2sTarget>();
  private readonly dns: SrvLookup;
  private readonly random: () => number;

  constructor(opts: ResolverOptions = {}) {
    for (const [domain, target] of Object.entries(opts.hosts ?? {})) this.override(domain, target);
    this.dns = opts.dns ?? new Resolver({ timeout: 3_000, tries: 2 });
    this.random = opts.random ?? Math.random;
  }

  /** Sends `domain` to `target` instead of asking DNS; undefined removes the override. */
  override(domain: string, target: S2sTarget | undefined): void {
    const key = normalise(domain);
    if (target === undefined) this.overrides.delete(key);
    else this.overrides.set(key, { ...target });
  }

  /**
   * Candidates in the order to try them. Empty when the domain says it offers no XMPP service
   * (a lone "." SRV target, RFC 2782) or is not a valid domain name.
   */
  async resolve(domain: string): Promise<S2sTarget[]> {
    const name = normalise(domain);
    const fixed = this.overrides.get(name);
    if (fixed) return [{ ...fixed }];
    const literal = name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name;
    if (isIP(literal) !== 0) return [{ host: literal, port: DEFAULT_S2S_PORT, directTls: false }];
    const ascii = domainToASCII(name);
    if (ascii === '') return [];
    const [direct, starttls] = await Promise.all([this.lookup(`_xmpps-server._tcp.${ascii}`), this.lookup(`_xmpp-server._tcp.${ascii}`)]);
    const merged: Array<SrvRecord & { directTls: boolean }> = [];
    if (direct.kind === 'records') for (const r of direct.records) merged.push({ ...r, directTls: true });
    if (starttls.kind === 'records') for (const r of starttls.records) merged.push({ ...r, directTls: false });
    if (merged.length > 0) {
      return orderSrv(merged, this.random).map((r) => ({ host: r.name.replace(/\.$/, ''), port: r.port, directTls: r.directTls }));
    }
    // XEP-0368 §3: a "." for xmpps only rules out direct TLS; "." for xmpp-server rules out
    // XMPP altogether, and with any SRV answer there is no A/AAAA fallback.
    if (starttls.kind === 'unavailable' || direct.kind === 'unavailable') return [];
    return [{ host: ascii, port: DEFAULT_S2S_PORT, directTls: false }];
  }

  private async lookup(name: string): Promise<Lookup> {
    let records: SrvRecord[];
    try {
      records = await this.dns.resolveSrv(name);
    } catch {
      // NXDOMAIN, no records, SERVFAIL or a timeout: all mean "no SRV", and RFC 6120 §3.2.2
      // falls back to the domain itself.
      return { kind: 'none' };
    }
    if (records.length === 0) return { kind: 'none' };
    if (records.length === 1 && (records[0]!.name === '' || records[0]!.name === '.')) return { kind: 'unavailable' };
    return { kind: 'records', records: records.filter((r) => r.name !== '' && r.name !== '.') };
  }
}

function normalise(domain: string): string {
  return domain.trim().toLowerCase().replace(/\.$/, '');
}
