// What the other nodes of a cluster know of a session: enough to route to it and to answer for
// it (presence, priority, the module state that fits in JSON, such as Carbons being enabled).
import type { C2sSession } from '../sessions/c2s-session.js';
import type { SessionClient } from '../sasl2/guard.js';

export interface SessionEntry {
  readonly id: string;
  readonly jid: string;
  readonly node: string;
  /** Increases with every change a node publishes, so that an older snapshot never wins. */
  readonly v: number;
  readonly available: boolean;
  readonly priority: number;
  readonly presence?: string;
  readonly interested: boolean;
  readonly hibernating: boolean;
  readonly secure: boolean;
  /** Module state (`ctx.sessionState`) whose value is a boolean, number, string or list of strings. */
  readonly state: Record<string, SharedValue>;
  /** How its client logged in (XEP-0494 lists sessions on every node). */
  readonly client?: SessionClient;
}

export type SharedValue = boolean | number | string | readonly string[];

function shareable(value: unknown): value is SharedValue {
  const t = typeof value;
  if (t === 'boolean' || t === 'string' || (t === 'number' && Number.isFinite(value))) return true;
  return Array.isArray(value) && value.length <= 1000 && value.every((x) => typeof x === 'string');
}

export function entryOf(session: C2sSession, node: string, v: number): SessionEntry {
  const state: Record<string, SharedValue> = {};
  for (const [name, value] of session.stateEntries()) if (shareable(value)) state[name] = value;
  return {
    id: session.id,
    jid: session.jid.toString(),
    node,
    v,
    available: session.available,
    priority: session.priority,
    presence: session.presence?.toString(),
    interested: session.interested,
    hibernating: session.hibernating,
    secure: session.secure,
    state,
    client: session.client,
  };
}

/** Parses an entry read from Redis; undefined when it is not one. */
export function parseEntry(text: string): SessionEntry | undefined {
  try {
    const e = JSON.parse(text) as Partial<SessionEntry>;
    if (typeof e.id !== 'string' || typeof e.jid !== 'string' || typeof e.node !== 'string' || typeof e.v !== 'number') return undefined;
    return {
      id: e.id,
      jid: e.jid,
      node: e.node,
      v: e.v,
      available: e.available === true,
      priority: typeof e.priority === 'number' ? e.priority : 0,
      presence: typeof e.presence === 'string' ? e.presence : undefined,
      interested: e.interested === true,
      hibernating: e.hibernating === true,
      secure: e.secure === true,
      state: typeof e.state === 'object' && e.state !== null ? e.state : {},
      client: clientOf(e.client),
    };
  } catch {
    return undefined;
  }
}

const CREDENTIALS: ReadonlySet<string> = new Set(['password', 'app-password', 'token']);

/** A client description read from Redis, or undefined when it is not a well-formed one. */
function clientOf(value: unknown): SessionClient | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const c = value as Record<string, unknown>;
  const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  if (typeof c.mechanism !== 'string' || typeof c.credential !== 'string' || !CREDENTIALS.has(c.credential)) return undefined;
  return {
    id: text(c.id),
    software: text(c.software),
    device: text(c.device),
    credential: c.credential as SessionClient['credential'],
    appPasswordId: text(c.appPasswordId),
    mechanism: c.mechanism,
  };
}
