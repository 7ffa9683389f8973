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
 * `base` (the snapshot or compaction point). Only the newest slots keep their entry — at most
 * `tailSize` of them, holding at most `tailBytes` (an entry may carry many proposals, so a count
 * alone does not bound the memory); older ones are read back from disk by the owner.
 */
export class LogIndex {
  base = 0;
  baseTerm = 0;
  private slots: Slot[] = [];
  /** Slots before this position hold no entry. */
  private hotStart = 0;
  /** Bytes of the entries the slots hold. */
  private hotBytes = 0;

  constructor(
    private readonly tailSize: number,
    private readonly tailBytes = Number.POSITIVE_INFINITY,
  ) {}

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
    if (position < this.slots.length) this.drop(position, this.slots.length);
    const bytes = entryBytes(entry);
    this.slots.push({ term: entry.term, segment, offset, length, bytes, entry });
    this.hotBytes += bytes;
    // The oldest entries fall out of the hot tail as new ones arrive (the newest always stays).
    while (this.hotStart < this.slots.length - 1 && (this.slots.length - this.hotStart > this.tailSize || this.hotBytes > this.tailBytes)) {
      this.cool(this.slots[this.hotStart++] as Slot);
    }
  }

  /** Empties the log; the next entry goes at `base + 1`. */
  reset(base: number, baseTerm: number): void {
    this.base = base;
    this.baseTerm = baseTerm;
    this.slots = [];
    this.hotStart = 0;
    this.hotBytes = 0;
  }

  /** Forgets slots up to and including `index` (base < index ≤ last). */
  compactTo(index: number): void {
    this.baseTerm = this.termAt(index);
    const count = index - this.base;
    this.drop(0, count);
    this.base = index;
  }

  /** Bytes of the entries held in memory (for tests). */
  get heldBytes(): number {
    return this.hotBytes;
  }

  /** Removes slots [from, to), keeping the hot-tail accounting. */
  private drop(from: number, to: number): void {
    for (let i = Math.max(from, this.hotStart); i < to; i++) this.cool(this.slots[i] as Slot);
    this.slots.splice(from, to - from);
    if (from === 0) this.hotStart = Math.max(0, this.hotStart - to);
    else this.hotStart = Math.min(this.hotStart, from);
  }

  private cool(slot: Slot): void {
    if (slot.entry === undefined) return;
    slot.entry = undefined;
    this.hotBytes -= slot.bytes;
  }
}
