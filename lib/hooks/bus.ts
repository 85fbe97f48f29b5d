// Runs hook handlers in the order modules declared by name (before/after), never by number.
import { StanzaError } from '../stanza/error.js';
import type { HookEvent, HookHandler, HookName } from './types.js';

export interface HookOrder {
  /** Names of modules whose handlers must run after this one. */
  before?: readonly string[];
  /** Names of modules whose handlers must run before this one. */
  after?: readonly string[];
}

interface Registration<K extends HookName> {
  owner: string;
  handler: HookHandler<K>;
  order: HookOrder;
}

export class HookOrderError extends Error {
  readonly code = 'PARLEY_ERR_HOOK_CYCLE';
}

type Registry = { [K in HookName]?: Registration<K>[] };

export class HookBus {
  private registrations: Registry = {};
  private sorted = new Map<HookName, HookHandler<HookName>[]>();

  /** Registers a handler; returns a function that removes it. */
  on<K extends HookName>(hook: K, owner: string, handler: HookHandler<K>, order: HookOrder = {}): () => void {
    const list = (this.registrations[hook] ??= []) as Registration<K>[];
    const reg: Registration<K> = { owner, handler, order };
    list.push(reg);
    this.sorted.delete(hook);
    return () => {
      const i = list.indexOf(reg);
      if (i >= 0) list.splice(i, 1);
      this.sorted.delete(hook);
    };
  }

  has(hook: HookName): boolean {
    return (this.registrations[hook]?.length ?? 0) > 0;
  }

  /** Sorts every hook now so that an ordering cycle stops boot instead of the first stanza. */
  validate(): void {
    for (const hook of Object.keys(this.registrations) as HookName[]) this.handlers(hook);
  }

  private handlers<K extends HookName>(hook: K): HookHandler<K>[] {
    const cached = this.sorted.get(hook);
    if (cached) return cached as HookHandler<K>[];
    const regs = (this.registrations[hook] ?? []) as Registration<K>[];
    const out = topoSort(hook, regs).map((r) => r.handler);
    this.sorted.set(hook, out as HookHandler<HookName>[]);
    return out;
  }

  async notify<K extends HookName>(hook: K, event: HookEvent<K>, onError?: (err: unknown) => void): Promise<void> {
    for (const h of this.handlers(hook)) {
      try {
        await h(event);
      } catch (err) {
        onError?.(err);
      }
    }
  }

  /** Runs filter handlers until one drops or bounces. Exceptions become internal-server-error. */
  filter<K extends HookName>(hook: K, event: HookEvent<K>): Promise<Verdict> {
    const v = this.filterNow(hook, event);
    return v instanceof Promise ? v : Promise.resolve(v);
  }

  /**
   * `filter`, answered synchronously when every handler answered synchronously (a hook without
   * handlers: 'pass'). The router runs four filters per message: a promise and a turn of the
   * microtask queue for each would cost more than the handlers themselves. An exception other
   * than a StanzaError comes back as a rejected promise, as from `filter`.
   */
  filterNow<K extends HookName>(hook: K, event: HookEvent<K>): Verdict | Promise<Verdict> {
    const hs = this.handlers(hook);
    for (let i = 0; i < hs.length; i++) {
      let r: unknown;
      try {
        r = hs[i](event);
      } catch (err) {
        if (err instanceof StanzaError) return err;
        return Promise.reject(err);
      }
      if (isThenable(r)) return filterFrom(hs, i, r, event);
      if (r === 'drop') return 'drop';
      if (r instanceof StanzaError) return r;
    }
    return 'pass';
  }

  /** Runs claim handlers until one claims; true when claimed. */
  claim<K extends HookName>(hook: K, event: HookEvent<K>): Promise<boolean> {
    const v = this.claimNow(hook, event);
    return v instanceof Promise ? v : Promise.resolve(v);
  }

  /** `claim`, answered synchronously when every handler answered synchronously (see filterNow). */
  claimNow<K extends HookName>(hook: K, event: HookEvent<K>): boolean | Promise<boolean> {
    const hs = this.handlers(hook);
    for (let i = 0; i < hs.length; i++) {
      let r: unknown;
      try {
        r = hs[i](event);
      } catch (err) {
        return Promise.reject(err);
      }
      if (isThenable(r)) return claimFrom(hs, i, r, event);
      if (r === 'claimed') return true;
    }
    return false;
  }
}

/** What a filter chain decided. */
export type Verdict = 'pass' | 'drop' | StanzaError;

function isThenable(r: unknown): r is PromiseLike<unknown> {
  return typeof r === 'object' && r !== null && typeof (r as { then?: unknown }).then === 'function';
}

/** The rest of a filter chain once handler `i` answered with a promise. */
async function filterFrom<K extends HookName>(hs: HookHandler<K>[], i: number, pending: PromiseLike<unknown>, event: HookEvent<K>): Promise<Verdict> {
  let answer = pending;
  for (;;) {
    let r: unknown;
    try {
      r = await answer;
    } catch (err) {
      if (err instanceof StanzaError) return err;
      throw err;
    }
    if (r === 'drop') return 'drop';
    if (r instanceof StanzaError) return r;
    if (++i >= hs.length) return 'pass';
    try {
      answer = Promise.resolve(hs[i](event));
    } catch (err) {
      if (err instanceof StanzaError) return err;
      throw err;
    }
  }
}

/** The rest of a claim chain once handler `i` answered with a promise. */
async function claimFrom<K extends HookName>(hs: HookHandler<K>[], i: number, pending: PromiseLike<unknown>, event: HookEvent<K>): Promise<boolean> {
  if ((await pending) === 'claimed') return true;
  for (i++; i < hs.length; i++) {
    if ((await hs[i](event)) === 'claimed') return true;
  }
  return false;
}

/** Kahn's algorithm over owner names; ties break by owner name, then registration order. */
function topoSort<K extends HookName>(hook: K, regs: Registration<K>[]): Registration<K>[] {
  const owners = new Set(regs.map((r) => r.owner));
  const edges = new Map<number, Set<number>>();
  const indeg = regs.map(() => 0);
  const addEdge = (from: number, to: number) => {
    if (from === to) return;
    const set = edges.get(from) ?? new Set<number>();
    if (!set.has(to)) {
      set.add(to);
      edges.set(from, set);
      indeg[to]++;
    }
  };
  regs.forEach((r, i) => {
    for (const name of r.order.before ?? []) {
      if (!owners.has(name)) continue;
      regs.forEach((o, j) => { if (o.owner === name) addEdge(i, j); });
    }
    for (const name of r.order.after ?? []) {
      if (!owners.has(name)) continue;
      regs.forEach((o, j) => { if (o.owner === name) addEdge(j, i); });
    }
  });
  const ready = regs.map((_, i) => i).filter((i) => indeg[i] === 0);
  const out: Registration<K>[] = [];
  const cmp = (a: number, b: number) => regs[a].owner.localeCompare(regs[b].owner) || a - b;
  while (ready.length) {
    ready.sort(cmp);
    const i = ready.shift()!;
    out.push(regs[i]);
    for (const j of edges.get(i) ?? []) if (--indeg[j] === 0) ready.push(j);
  }
  if (out.length !== regs.length) {
    const stuck = regs.filter((r) => !out.includes(r)).map((r) => r.owner);
    throw new HookOrderError(`hook ${hook}: ordering cycle between modules ${[...new Set(stuck)].join(', ')}; remove one of their before/after constraints`);
  }
  return out;
}
