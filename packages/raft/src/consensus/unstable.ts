import type { Entry, Snapshot } from './types.js';

/**
 * The part of the log not yet known to be durable: entries (and possibly an incoming snapshot)
 * handed to the driver in a Ready but not yet acknowledged by `advance`. `offset` is the
 * index of `entries[0]`.
 */
export class UnstableLog {
  snapshot: Snapshot | null = null;
  entries: Entry[] = [];

  constructor(public offset: number) {}

  firstIndex(): number | null {
    return this.snapshot === null ? null : this.snapshot.meta.index + 1;
  }

  lastIndex(): number | null {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot === null ? null : this.snapshot.meta.index;
  }

  term(index: number): number | null {
    if (index < this.offset) {
      return this.snapshot !== null && this.snapshot.meta.index === index ? this.snapshot.meta.term : null;
    }
    const last = this.lastIndex();
    if (last === null || index > last) return null;
    return (this.entries[index - this.offset] as Entry).term;
  }

  /** The driver made entries up to (index, term) durable; forget them unless they were since replaced. */
  stableTo(index: number, term: number): void {
    if (index < this.offset) return;
    if (this.term(index) !== term) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
  }

  stableSnapshotTo(index: number): void {
    if (this.snapshot !== null && this.snapshot.meta.index === index) this.snapshot = null;
  }

  restore(snapshot: Snapshot): void {
    this.offset = snapshot.meta.index + 1;
    this.entries = [];
    this.snapshot = snapshot;
  }

  /** Appends entries, replacing whatever the unstable part holds from their first index on. */
  truncateAndAppend(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const after = first.index;
    if (after === this.offset + this.entries.length) {
      this.entries = this.entries.concat(entries);
    } else if (after <= this.offset) {
      // Replacing from before the unstable part: the driver will overwrite stored entries too.
      this.offset = after;
      this.entries = [...entries];
    } else {
      this.entries = this.entries.slice(0, after - this.offset).concat(entries);
    }
  }

  slice(lo: number, hi: number): Entry[] {
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
