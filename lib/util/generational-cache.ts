// A bounded cache for values that are pure functions of their key (parsed JIDs, say): two
// generations of at most `generation` entries each. A hit in the old generation moves the entry
// to the young one; when the young one is full it becomes the old one and the old one is dropped.
// What is used keeps being found, and memory stays below 2 x `generation` entries without the
// bookkeeping of an LRU list.
export class GenerationalCache<K, V> {
  private young = new Map<K, V>();
  private old = new Map<K, V>();

  constructor(private readonly generation: number) {
    if (!(generation >= 1)) throw new Error('a cache generation holds at least one entry');
  }

  get(key: K): V | undefined {
    const hit = this.young.get(key);
    if (hit !== undefined) return hit;
    const aged = this.old.get(key);
    if (aged !== undefined) this.set(key, aged);
    return aged;
  }

  set(key: K, value: V): void {
    if (this.young.size >= this.generation) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, value);
  }

  get size(): number {
    return this.young.size + this.old.size;
  }

  clear(): void {
    this.young.clear();
    this.old.clear();
  }
}
