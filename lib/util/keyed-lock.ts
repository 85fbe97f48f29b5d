// A keyed, re-entrant async mutex: serialises read-modify-write of one key (an account, say)
// within this process; database transactions cover the rest.
import { AsyncLocalStorage } from 'node:async_hooks';

export class KeyedLock {
  private readonly tails = new Map<string, Promise<void>>();
  private readonly held = new AsyncLocalStorage<ReadonlySet<string>>();

  /** Whether someone holds or waits for this key: work that must queue behind them can tell. */
  busy(key: string): boolean {
    return this.tails.has(key);
  }

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const held = this.held.getStore();
    // Re-entrant: a holder may call code that takes the same lock.
    if (held?.has(key)) return fn();
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => { release = resolve; });
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    try {
      return await this.held.run(new Set([...(held ?? []), key]), fn);
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}
