// Latency samples and their percentiles. Every sample is kept (8 bytes each): a 10-second run
// at tens of thousands of messages a second is a few MB, and exact percentiles beat buckets.

export class Samples {
  private data = new Float64Array(1 << 16);
  private n = 0;

  add(value: number): void {
    if (this.n === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2);
      bigger.set(this.data);
      this.data = bigger;
    }
    this.data[this.n++] = value;
  }

  get count(): number {
    return this.n;
  }

  /** Nearest-rank percentiles (p in 0..100) of the samples so far; undefined when empty. */
  percentiles(...ps: number[]): Array<number | undefined> {
    if (this.n === 0) return ps.map(() => undefined);
    const sorted = this.data.slice(0, this.n).sort();
    return ps.map((p) => sorted[Math.min(this.n - 1, Math.max(0, Math.ceil((p / 100) * this.n) - 1))]);
  }

  mean(): number | undefined {
    if (this.n === 0) return undefined;
    let sum = 0;
    for (let i = 0; i < this.n; i++) sum += this.data[i]!;
    return sum / this.n;
  }
}

export function median(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1]! + s[mid]!) / 2;
}
