import { entryBytes } from '../consensus/storage.js';
import type { Entry } from '../consensus/types.js';

/** Where one entry's frame lives on disk, and the entry itself while it is in the hot tail. */
export interface Slot {
  readonly term: number;
  /** Sequence number of the segment holding the frame. */
  readonly segment: number;
  /** File offset and length of the frame (header included). */
  readonly offset: number;
  readonly length: number;
  /** {@link entryBytes} of the entry, so byte limits need no disk read. */
  readonly bytes: number;
  entry: Entry | undefined;
}

/** Term of the entry just before the first slot when it is not known (its segment was deleted). */
export const UNKNOWN_TERM = -1;

/**
 * The in-memory index of the log: one slot per entry from `base + 1` to `last`, plus the term of
 * `base` (the snapshot or compaction point). Only the newest `tailSize` slots keep their entry;
 * older ones are read back from disk by the owner.
 */
export class LogIndex {
  base = 0;
  baseTerm = 0;
  private slots: Slot[] = [];

  constructor(private readonly tailSize: number) {}

  first(): number {
    return this.base + 1;
  }

  last(): number {
    return this.base + this.slots.length;
  }

  slot(index: number): Slot | undefined {
    return this.slots[index - this.base - 1];
  }

  /** Term at `index` in [base, last]; {@link UNKNOWN_TERM} for an unknown base. */
  termAt(index: number): number {
    if (index === this.base) return this.baseTerm;
    return (this.slot(index) as Slot).term;
  }

  /** Appends `entry` at its index, dropping any slot at or after it first. */
  put(entry: Entry, segment: number, offset: number, length: number): void {
    const position = entry.index - this.base - 1;
    if (position < this.slots.length) this.slots.length = position;
    this.slots.push({ term: entry.term, segment, offset, length, bytes: entryBytes(entry), entry });
    // Entries fall out of the hot tail one at a time as new ones arrive; after a truncation some
    // slots inside the window may be cold already, which only costs a disk read.
    const cold = this.slots[this.slots.length - 1 - this.tailSize];
    if (cold !== undefined) cold.entry = undefined;
  }

  /** Empties the log; the next entry goes at `base + 1`. */
  reset(base: number, baseTerm: number): void {
    this.base = base;
    this.baseTerm = baseTerm;
    this.slots = [];
  }

  /** Forgets slots up to and including `index` (base < index ≤ last). */
  compactTo(index: number): void {
    this.baseTerm = this.termAt(index);
    this.slots = this.slots.slice(index - this.base);
    this.base = index;
  }
}
