/**
 * Holds items for a while and releases them in the order they entered, even when the delay
 * changes or ends meanwhile (an item never overtakes one that entered before it), as a slow but
 * ordered link would.
 */
export class DelayLine<T> {
  private readonly items: { due: number; item: T }[] = [];
  private head = 0;
  private lastDue = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly release: (item: T) => void) {}

  /** True while items wait: later items must queue behind them to keep the order. */
  get busy(): boolean {
    return this.head < this.items.length;
  }

  push(item: T, delayMs: number): void {
    const due = Math.max(Date.now() + delayMs, this.lastDue);
    this.lastDue = due;
    this.items.push({ due, item });
    if (this.timer === null) this.arm();
  }

  /** Forgets everything still waiting. */
  close(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.items.length = 0;
    this.head = 0;
  }

  private arm(): void {
    const next = this.items[this.head];
    if (next === undefined) return;
    this.timer = setTimeout(() => this.fire(), Math.max(0, next.due - Date.now()));
  }

  private fire(): void {
    this.timer = null;
    const now = Date.now();
    for (let next = this.items[this.head]; next !== undefined && next.due <= now; next = this.items[this.head]) {
      this.head++;
      this.release(next.item);
    }
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head > 1024) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
    this.arm();
  }
}
