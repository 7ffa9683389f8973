/**
 * Restores a snapshot image into the state a few milliseconds at a time (SPEC section 16: no
 * event-loop stalls on raft). Replacing the state in one synchronous transaction held a member's
 * loop for seconds at a few hundred thousand aggregates, long enough to miss its leader's
 * heartbeats and, on a leader restoring at startup, to delay everything else.
 *
 * Crash-safe without a marker of its own: the database is emptied first, and the applied index,
 * which says the state is whole, is the last key written. A crash in between leaves a state whose
 * applied index reads 0, below the snapshot the write-ahead log already holds durably, so the
 * member restores that snapshot again when it opens (`RaftServer.open`). An emptied database
 * holds no layout stamp either; it gets one with the image's first pairs, and an empty one is
 * stamped afresh when opened.
 *
 * The caller keeps readers away until the restore resolves: in between, the database holds part
 * of the image.
 */
import { performance } from 'node:perf_hooks';
import type { RootDatabase } from 'lmdb';
import { ByteReader } from '../bytes/byte-reader.js';
import { RaftProtocolError } from '../consensus/errors.js';
import { decodeError } from './errors.js';
import { IMAGE_MAGIC } from './image-export.js';
import { LAYOUT_VERSION, Meta, metaKey } from './keys.js';
import { asBuffer, encodeU64 } from './records.js';

/** How long one synchronous step of a restore may run before it yields. */
export interface RestoreChunking {
  /** A step stops once it ran this long (checked every few hundred pairs). */
  readonly budgetMs: number;
  /** Called after each step's pairs are committed, with the pairs written so far (for progress, and tests). */
  readonly onStep?: (pairsWritten: number) => void;
}

export const DEFAULT_RESTORE_CHUNKING: RestoreChunking = { budgetMs: 4 };

/** How many pairs a step handles between looks at the clock. */
const CLOCK_EVERY = 256;

/** Lets timers, I/O and other callbacks run between two steps. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Reads the image's (key, value) pairs a step at a time: `visit` sees each pair of a step, then
 * `afterStep` runs (it may wait, e.g. for the step's commit), then the event loop turns.
 */
async function inSteps(
  data: Uint8Array,
  chunking: RestoreChunking,
  visit: (key: Buffer, value: Buffer) => void,
  afterStep: () => Promise<void> = async () => undefined,
): Promise<void> {
  const input = imageReader(data);
  while (!input.done) {
    const started = performance.now();
    for (let count = 1; !input.done; count++) {
      visit(asBuffer(input.bytes('key')), asBuffer(input.bytes('value')));
      if (count % CLOCK_EVERY === 0 && performance.now() - started >= chunking.budgetMs) break;
    }
    await afterStep();
    if (!input.done) await nextTurn();
  }
}

/**
 * Checks that `data` is a whole image of this layout, reading it a step at a time, before anything
 * is touched: a corrupt image is refused with `RaftProtocolError` and leaves the state as it was.
 */
export async function checkImage(data: Uint8Array, chunking: RestoreChunking = DEFAULT_RESTORE_CHUNKING): Promise<void> {
  try {
    await inSteps(data, chunking, () => undefined);
  } catch (error) {
    if (error instanceof RaftProtocolError) throw error;
    throw new RaftProtocolError(`corrupt raft state snapshot image: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * Replaces the whole database with the pairs of `data` (checked by `checkImage` first) and marks it
 * applied through `index`. Each step writes the pairs it read within its budget as one commit
 * (LMDB's, off this thread) and waits for it before the next.
 */
export async function restoreImage(
  db: RootDatabase<Buffer, Buffer>,
  data: Uint8Array,
  index: number,
  chunking: RestoreChunking = DEFAULT_RESTORE_CHUNKING,
): Promise<void> {
  const appliedKey = metaKey(Meta.appliedIndex);
  await db.clearAsync();
  let written = 0;
  let committed: Promise<boolean> | undefined;
  await inSteps(
    data,
    chunking,
    (key, value) => {
      // Written last, once every other pair is in.
      if (!key.equals(appliedKey)) committed = db.put(key, value);
      written++;
    },
    async () => {
      // Views of `data` stay valid until their commit: `data` is held until this resolves.
      await committed;
      chunking.onStep?.(written);
    },
  );
  await db.put(appliedKey, asBuffer(encodeU64(index)));
}

function imageReader(data: Uint8Array): ByteReader {
  if (!(data instanceof Uint8Array) || data.length < IMAGE_MAGIC.length || IMAGE_MAGIC.some((byte, i) => i < 3 && data[i] !== byte)) {
    throw new RaftProtocolError('not a raft state snapshot image (bad header)');
  }
  if (data[3] !== LAYOUT_VERSION)
    throw new RaftProtocolError(
      `a raft state snapshot image of layout version ${data[3]}; this build reads version ${LAYOUT_VERSION} only`,
    );
  return new ByteReader(data.subarray(IMAGE_MAGIC.length), decodeError);
}
