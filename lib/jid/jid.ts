// RFC 7622: JIDs, prepared with PRECIS rules (IdentifierClass with case mapping for the
// localpart, OpaqueString for the resourcepart, IDNA for the domainpart).
import { domainToASCII } from 'node:url';
import { GenerationalCache } from '../util/generational-cache.js';

export class JidError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JidError';
  }
}

const MAX_PART_BYTES = 1023;
// RFC 7622 §3.3.1: characters a localpart must not contain.
const LOCAL_FORBIDDEN = /["&'/:<>@\s]/u;
// PRECIS disallows controls everywhere; resourceparts may contain spaces.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;
const NON_ASCII_SPACE = /[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]/gu;

export function prepLocal(local: string): string {
  const out = local.normalize('NFKC').toLowerCase().normalize('NFC');
  if (out.length === 0) throw new JidError('empty localpart');
  if (Buffer.byteLength(out) > MAX_PART_BYTES) throw new JidError('localpart too long');
  if (LOCAL_FORBIDDEN.test(out) || CONTROL.test(out)) throw new JidError('localpart has a forbidden character');
  return out;
}

export function prepDomain(domain: string): string {
  let d = domain.normalize('NFC').toLowerCase();
  if (d.endsWith('.')) d = d.slice(0, -1);
  if (d.length === 0) throw new JidError('empty domainpart');
  if (Buffer.byteLength(d) > MAX_PART_BYTES) throw new JidError('domainpart too long');
  if (d.startsWith('[') && d.endsWith(']')) return d; // IPv6 literal
  if (CONTROL.test(d) || /[\s@/"&'<>]/u.test(d)) throw new JidError('domainpart has a forbidden character');
  if (domainToASCII(d) === '') throw new JidError('domainpart is not a valid domain name');
  return d;
}

export function prepResource(resource: string): string {
  const out = resource.replace(NON_ASCII_SPACE, ' ').normalize('NFC');
  if (out.length === 0) throw new JidError('empty resourcepart');
  if (Buffer.byteLength(out) > MAX_PART_BYTES) throw new JidError('resourcepart too long');
  if (CONTROL.test(out)) throw new JidError('resourcepart has a forbidden character');
  return out;
}

/**
 * JIDs parsed from strings, by the string as written. Preparation (PRECIS, IDNA) costs more than
 * the rest of routing a stanza, and the same addresses come back with every stanza (the room and
 * its occupants of a group chat, a contact's bare JID). A Jid is immutable and a pure function of
 * its string, so the cache needs no invalidation. Bounded in entries and in the length of what it
 * keeps (longer JIDs are rare and prepared each time): a few MiB at the very most.
 */
const parsed = new GenerationalCache<string, Jid>(4096);
const CACHED_JID_CHARS = 128;

/** A prepared, immutable JID. Compare with `equals` or by `toString()`. */
export class Jid {
  readonly local: string | undefined;
  readonly domain: string;
  readonly resource: string | undefined;
  private readonly str: string;
  /** bare(), made once: the directory and the router ask for it with every stanza. A #private
   * field, invisible to deep equality and JSON, so a Jid still compares by its parts. */
  #bare: Jid | undefined;

  private constructor(local: string | undefined, domain: string, resource: string | undefined) {
    this.local = local;
    this.domain = domain;
    this.resource = resource;
    this.str = (local !== undefined ? `${local}@` : '') + domain + (resource !== undefined ? `/${resource}` : '');
  }

  /** Parses and prepares a JID string; throws JidError when it is not a valid JID. */
  static parse(input: string): Jid {
    const hit = parsed.get(input);
    if (hit !== undefined) return hit;
    const jid = Jid.parseUncached(input);
    if (input.length <= CACHED_JID_CHARS) parsed.set(input, jid);
    return jid;
  }

  private static parseUncached(input: string): Jid {
    const slash = input.indexOf('/');
    const beforeResource = slash === -1 ? input : input.slice(0, slash);
    const resource = slash === -1 ? undefined : input.slice(slash + 1);
    const at = beforeResource.lastIndexOf('@');
    const local = at === -1 ? undefined : beforeResource.slice(0, at);
    const domain = at === -1 ? beforeResource : beforeResource.slice(at + 1);
    return Jid.of(local, domain, resource);
  }

  /** Parses, or returns undefined instead of throwing. */
  static tryParse(input: string | undefined): Jid | undefined {
    if (input === undefined) return undefined;
    try {
      return Jid.parse(input);
    } catch {
      return undefined;
    }
  }

  static of(local: string | undefined, domain: string, resource?: string): Jid {
    return new Jid(
      local === undefined ? undefined : prepLocal(local),
      prepDomain(domain),
      resource === undefined ? undefined : prepResource(resource),
    );
  }

  get isBare(): boolean { return this.resource === undefined; }
  get isFull(): boolean { return this.resource !== undefined; }
  /** A JID without localpart: a server or component. */
  get isDomain(): boolean { return this.local === undefined && this.resource === undefined; }

  bare(): Jid {
    if (this.resource === undefined) return this;
    return (this.#bare ??= new Jid(this.local, this.domain, undefined));
  }

  withResource(resource: string): Jid {
    return new Jid(this.local, this.domain, prepResource(resource));
  }

  equals(other: Jid | undefined): boolean {
    return other !== undefined && other.str === this.str;
  }

  toString(): string {
    return this.str;
  }
}
