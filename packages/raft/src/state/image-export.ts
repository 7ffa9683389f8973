/**
 * Exports the state's snapshot image a few milliseconds at a time (SPEC section 16: no event-loop
 * stalls on raft). The whole state read in one go held the loop for seconds at a few hundred
 * thousand aggregates, long enough for a leader to lose its followers.
 *
 * The chunks are read in one LMDB read transaction held from the first to the last, so the image
 * is one point-in-time view even though batches keep being applied between chunks; the applied
 * index the image claims is read in that same view.
 */
import { performance } from 'node:perf_hooks';
import type { RootDatabase, Transaction } from 'lmdb';
import { ByteWriter } from '../bytes/byte-writer.js';
import type { StateImage } from '../node/ports.js';
import { LAYOUT_VERSION, Meta, metaKey } from './keys.js';
import { decodeU64 } from './records.js';

/** "TBS" + the layout version: the first bytes of every image. */
export const IMAGE_MAGIC: readonly number[] = [0x54, 0x42, 0x53, LAYOUT_VERSION];

/** How an export divides its work into synchronous steps. */
export interface ExportChunking {
  /** The most (key, value) pairs one step reads. */
  readonly maxPairs: number;
  /** A step stops once it ran this long (checked every few hundred pairs). */
  readonly budgetMs: number;
}

export const DEFAULT_EXPORT_CHUNKING: ExportChunking = { maxPairs: 65_536, budgetMs: 4 };

/** How many pairs a step reads between looks at the clock. */
const CLOCK_EVERY = 256;
/** Bytes of the assembled image copied between looks at the clock. */
const COPY_SLICE_BYTES = 256 << 10;
const FIRST_KEY = Buffer.from([0]);
const PAST_LAST_KEY = Buffer.from([0xff]);

/** Lets timers, I/O and other callbacks run between two steps. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * One export in progress. It holds an LMDB read transaction (a snapshot of the database) until
 * it ends, whichever way it ends: `cancel` releases it at once (the state closing), and the
 * export then rejects with the error given.
 */
export class ImageExport {
  readonly #db: RootDatabase<Buffer, Buffer>;
  readonly #chunking: ExportChunking;
  #transaction: Transaction | null;
  #cancelled: Error | undefined = undefined;
  /** Reused by every step: each step's bytes are copied out once, at their final size. */
  readonly #out = new ByteWriter(1 << 20);

  constructor(db: RootDatabase<Buffer, Buffer>, chunking: ExportChunking) {
    this.#db = db;
    this.#chunking = chunking;
    this.#transaction = db.useReadTransaction();
  }

  /** Releases the read transaction; a step not yet run rejects with `reason`. */
  cancel(reason: Error): void {
    this.#cancelled ??= reason;
    this.#release();
  }

  /**
   * Reads the image, yielding to the event loop between steps. `signal` stops it (rejecting with
   * the signal's reason) between two steps.
   */
  async run(signal?: AbortSignal): Promise<StateImage> {
    try {
      const index = this.#appliedIndex();
      const parts: Uint8Array[] = [Uint8Array.from(IMAGE_MAGIC)];
      let after: Buffer | undefined;
      for (;;) {
        const step = this.#readStep(after);
        parts.push(step.bytes);
        if (step.last === undefined) break;
        after = step.last;
        await this.#pause(signal);
      }
      // The pairs are all read: the database snapshot can go before the copying.
      this.#release();
      return { index, data: await this.#assemble(parts, signal) };
    } finally {
      this.#release();
    }
  }

  #appliedIndex(): number {
    const stored = this.#db.get(metaKey(Meta.appliedIndex), { transaction: this.#open() });
    return stored === undefined ? 0 : decodeU64(stored);
  }

  /**
   * The pairs after key `after` (from the first key when undefined), each length-prefixed, until
   * the step's pair count or time budget is spent; `last` is the last key read when pairs may remain.
   */
  #readStep(after: Buffer | undefined): { bytes: Uint8Array; last: Buffer | undefined } {
    const out = this.#out.reset();
    const started = performance.now();
    const { maxPairs, budgetMs } = this.#chunking;
    let count = 0;
    let last: Buffer | undefined;
    const range = this.#db.getRange({
      start: after ?? FIRST_KEY,
      exclusiveStart: after !== undefined,
      end: PAST_LAST_KEY,
      transaction: this.#open(),
    });
    for (const { key, value } of range) {
      out.bytes(key).bytes(value);
      count++;
      if (count >= maxPairs || (count % CLOCK_EVERY === 0 && performance.now() - started >= budgetMs)) {
        // A copy: the next step starts after it, and the key may be a view of a reused buffer.
        last = Buffer.from(key);
        break;
      }
    }
    return { bytes: out.finish(), last };
  }

  /**
   * The parts in one buffer, copied a slice at a time within the step budget: writing fresh
   * memory costs page faults, which on some machines make a megabyte take milliseconds.
   */
  async #assemble(parts: readonly Uint8Array[], signal: AbortSignal | undefined): Promise<Uint8Array> {
    let total = 0;
    for (const part of parts) total += part.length;
    const image = Buffer.allocUnsafe(total);
    let offset = 0;
    let started = performance.now();
    for (const part of parts) {
      for (let from = 0; from < part.length; from += COPY_SLICE_BYTES) {
        const slice = part.subarray(from, from + COPY_SLICE_BYTES);
        image.set(slice, offset);
        offset += slice.length;
        if (performance.now() - started >= this.#chunking.budgetMs) {
          await this.#pause(signal);
          started = performance.now();
        }
      }
    }
    return image;
  }

  async #pause(signal: AbortSignal | undefined): Promise<void> {
    await nextTurn();
    if (this.#cancelled !== undefined) throw this.#cancelled;
    signal?.throwIfAborted();
  }

  #open(): Transaction {
    if (this.#transaction === null) throw this.#cancelled ?? new Error('the export has ended');
    return this.#transaction;
  }

  #release(): void {
    const transaction = this.#transaction;
    this.#transaction = null;
    transaction?.done();
  }
}
