/**
 * Appends sent to one follower and not yet acknowledged, bounded by count and bytes so a slow
 * follower cannot make the leader buffer without limit.
 */
export class Inflights {
  private readonly items: { index: number; bytes: number }[] = [];
  private bytes = 0;

  constructor(
    readonly maxCount: number,
    readonly maxBytes: number,
  ) {}

  add(index: number, bytes: number): void {
    this.items.push({ index, bytes });
    this.bytes += bytes;
  }

  /** Frees every message whose last index is ≤ `index` (acknowledged). */
  freeLE(index: number): void {
    let freed = 0;
    while (freed < this.items.length && (this.items[freed] as { index: number }).index <= index) {
      this.bytes -= (this.items[freed] as { bytes: number }).bytes;
      freed++;
    }
    this.items.splice(0, freed);
  }

  /** Frees the oldest message, so a heartbeat response can unblock a stalled pipeline. */
  freeFirst(): void {
    const first = this.items.shift();
    if (first !== undefined) this.bytes -= first.bytes;
  }

  full(): boolean {
    return this.items.length >= this.maxCount || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  count(): number {
    return this.items.length;
  }

  reset(): void {
    this.items.length = 0;
    this.bytes = 0;
  }
}
