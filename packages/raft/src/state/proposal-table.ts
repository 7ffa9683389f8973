/**
 * The table of applied proposal IDs: a proposal forwarded twice, or offered again
 * after a leader change, reaches the log more than once, and every copy after the first must be
 * answered with the first one's result instead of being applied again.
 *
 * Every applied proposal gets the next **ordinal** (0, 1, 2 … over all proposals ever applied,
 * counted the same way on every node; the next one is kept in the meta table). Stored in LMDB, in
 * the state's own write transaction, as buckets of `BUCKET_SPAN` consecutive ordinals: key [0x09,
 * bucket number] → the records (ordinal, proposal ID, encoded result) in order. A batch rewrites
 * the bucket(s) it touched: one put per bucket instead of a row per proposal. Ordinals depend only
 * on the log, so equal logs give equal bytes however the entries were batched. (Ordinals rather
 * than log indexes, because one log entry may carry many proposals: an envelope.)
 *
 * In memory, every remembered ID maps to its ordinal, so the common case — a proposal seen for
 * the first time — costs one Map lookup; a duplicate reads its bucket back to decode the result.
 *
 * An ID recorded with ordinal o is remembered while fewer than `window` proposals were recorded
 * after it (next ordinal − o ≤ window, checked per proposal, so it does not depend on batching
 * either); at the end of each batch the buckets no proposal can remember any more are deleted.
 *
 * The in-memory part follows the committed transaction: after a failed batch or a restored
 * snapshot the owner calls `reload()`.
 */
import { createHash } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { RootDatabase } from 'lmdb';
import { ByteReader } from '../bytes/byte-reader.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import { utf8Text } from '../bytes/utf8.js';
import { decodeError } from './errors.js';
import { decodeResult, writeResult, type CommandResult } from './commands.js';
import { KeyReader, Meta, metaKey, proposalBucketKey, Table } from './keys.js';
import { decodeU64, encodeU64 } from './records.js';

const PAST_BUCKETS = Buffer.from([Table.proposal + 1]);

/** The in-memory part of a table, as read from its stored buckets, oldest first. */
class LoadedBuckets {
  readonly known = new Map<string, number>();
  readonly buckets = new Map<number, string[]>();
  open: { bucket: number; bytes: ByteWriter } | null = null;

  add(key: Buffer, value: Buffer): void {
    const bucket = new KeyReader(key).u64();
    const ids: string[] = [];
    for (const record of readRecords(value)) {
      this.known.set(record.id, record.ordinal);
      ids.push(record.id);
    }
    this.buckets.set(bucket, ids);
    // The newest bucket is the open one: copied, as `value` may be a view LMDB reuses.
    this.open = { bucket, bytes: new ByteWriter(value.length + 1024).raw(value) };
  }
}

/** Ordinals per bucket. */
export const BUCKET_SPAN = 64;

// Proposal IDs longer than this are remembered by their SHA-256, so memory per ID stays bounded.
const MAX_PLAIN_PROPOSAL_ID_BYTES = 512;

/** The ID under which a proposal is remembered. */
function tableId(proposalId: string): string {
  // At most 3 UTF-8 bytes per UTF-16 unit: a short ID needs no byte count.
  if (proposalId.length * 3 <= MAX_PLAIN_PROPOSAL_ID_BYTES || Buffer.byteLength(proposalId, 'utf8') <= MAX_PLAIN_PROPOSAL_ID_BYTES)
    return proposalId;
  return `sha256:${createHash('sha256').update(proposalId).digest('hex')}`;
}

function bucketOf(ordinal: number): number {
  return Math.floor(ordinal / BUCKET_SPAN);
}

/** The writes the table makes inside the state's transaction. */
export interface ProposalTableWrites {
  put(key: Buffer, value: Uint8Array): void;
  remove(key: Buffer): void;
}

export class ProposalTable {
  readonly #db: RootDatabase<Buffer, Buffer>;
  readonly #window: number;
  /** Remembered ID → its ordinal. */
  #known = new Map<string, number>();
  /** The ordinal the next recorded proposal gets. */
  #next = 0;
  /** `#next` as last written by `flush`. */
  #flushedNext = 0;
  /** Bucket number → the IDs recorded in it (to forget them with it), oldest bucket first. */
  #buckets = new Map<number, string[]>();
  /** The newest bucket's records as stored, kept so a batch appends to it without reading it back. */
  #open: { bucket: number; bytes: ByteWriter } | null = null;
  /** Whether the open bucket changed since the last `flush`. */
  #openDirty = false;
  /** Buckets the current batch changed and then moved past, written by `flush`. */
  #unwritten: { bucket: number; bytes: ByteWriter }[] = [];
  readonly #resultScratch = new ByteWriter(256);

  constructor(db: RootDatabase<Buffer, Buffer>, window: number) {
    this.#db = db;
    this.#window = window;
    this.reload();
  }

  /** Rebuilds the in-memory part from the committed buckets. */
  reload(): void {
    const loaded = new LoadedBuckets();
    for (const { key, value } of this.#db.getRange({ start: proposalBucketKey(0), end: PAST_BUCKETS })) loaded.add(key, value);
    this.#resetTo(loaded);
  }

  /**
   * `reload`, a few milliseconds at a time with the event loop free in between (a full window is
   * about 100,000 IDs, tens of milliseconds to read in one go). Nothing may use or change the
   * table until it resolves: the state's restore runs it, with every other write waiting behind it.
   */
  async reloadInSteps(budgetMs: number): Promise<void> {
    const loaded = new LoadedBuckets();
    let after: Buffer | undefined;
    for (;;) {
      const started = performance.now();
      let more = false;
      for (const { key, value } of this.#db.getRange({
        start: after ?? proposalBucketKey(0),
        exclusiveStart: after !== undefined,
        end: PAST_BUCKETS,
      })) {
        loaded.add(key, value);
        if (performance.now() - started >= budgetMs) {
          // A copy: the key may be a view of a buffer LMDB reuses.
          after = Buffer.from(key);
          more = true;
          break;
        }
      }
      if (!more) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.#resetTo(loaded);
  }

  #resetTo(loaded: LoadedBuckets): void {
    this.#known = loaded.known;
    this.#buckets = loaded.buckets;
    this.#open = loaded.open;
    this.#openDirty = false;
    this.#unwritten = [];
    const stored = this.#db.get(metaKey(Meta.nextProposalOrdinal));
    this.#next = this.#flushedNext = stored === undefined ? 0 : decodeU64(stored);
  }

  /**
   * The first result of `proposalId` while it is remembered (see the module comment), else
   * undefined: a new proposal, to be applied and then recorded.
   */
  remembered(proposalId: string): CommandResult | undefined {
    const id = tableId(proposalId);
    const ordinal = this.#known.get(id);
    if (ordinal === undefined || this.#next - ordinal > this.#window) return undefined;
    return this.#read(id, ordinal);
  }

  /** The result `proposalId` was first answered with, however long ago, while its bucket is kept. */
  resultOf(proposalId: string): CommandResult | undefined {
    const id = tableId(proposalId);
    const ordinal = this.#known.get(id);
    return ordinal === undefined ? undefined : this.#read(id, ordinal);
  }

  /** Records that `proposalId` was applied and answered `result`, under the next ordinal (written by the next `flush`). */
  record(proposalId: string, result: CommandResult): void {
    const id = tableId(proposalId);
    const ordinal = this.#next++;
    const bucket = bucketOf(ordinal);
    if (this.#open === null || this.#open.bucket !== bucket) {
      // Ordinals only grow, so a bucket is never reopened once a later one started.
      if (this.#open !== null && this.#openDirty) this.#unwritten.push(this.#open);
      this.#open = { bucket, bytes: new ByteWriter(4096) };
      this.#buckets.set(bucket, []);
    }
    const encoded = writeResult(this.#resultScratch.reset(), result).view();
    this.#open.bytes.varuint(ordinal).string(id).bytes(encoded);
    this.#known.set(id, ordinal);
    (this.#buckets.get(bucket) as string[]).push(id);
    this.#openDirty = true;
  }

  /** Writes what this batch changed (buckets, the next ordinal) and deletes the buckets nothing can remember any more. */
  flush(writes: ProposalTableWrites): void {
    for (const { bucket, bytes } of this.#unwritten) writes.put(proposalBucketKey(bucket), bytes.view());
    this.#unwritten = [];
    if (this.#open !== null && this.#openDirty) writes.put(proposalBucketKey(this.#open.bucket), this.#open.bytes.view());
    this.#openDirty = false;
    if (this.#next !== this.#flushedNext) {
      writes.put(metaKey(Meta.nextProposalOrdinal), encodeU64(this.#next));
      this.#flushedNext = this.#next;
    }
    // Ordinals below this are forgotten for good: the next ordinal only grows.
    const oldestRemembered = this.#next - this.#window;
    for (const [bucket, ids] of this.#buckets) {
      // A Map iterates in insertion order, which is bucket order: stop at the first one kept.
      if ((bucket + 1) * BUCKET_SPAN - 1 >= oldestRemembered) break;
      writes.remove(proposalBucketKey(bucket));
      for (const id of ids) {
        const ordinal = this.#known.get(id);
        if (ordinal !== undefined && bucketOf(ordinal) === bucket) this.#known.delete(id);
      }
      this.#buckets.delete(bucket);
      if (this.#open?.bucket === bucket) this.#open = null;
    }
  }

  /** Number of IDs remembered (for tests). */
  get size(): number {
    return this.#known.size;
  }

  #read(id: string, ordinal: number): CommandResult | undefined {
    const bucket = bucketOf(ordinal);
    // A bucket this batch changed is not in LMDB yet (buckets are put by `flush`).
    const pending = this.#open?.bucket === bucket ? this.#open : this.#unwritten.find((written) => written.bucket === bucket);
    const bytes = pending !== undefined ? pending.bytes.view() : this.#db.get(proposalBucketKey(bucket));
    if (bytes === undefined) return undefined;
    for (const record of readRecords(bytes)) if (record.ordinal === ordinal && record.id === id) return decodeResult(record.result);
    return undefined;
  }
}

function* readRecords(bytes: Uint8Array): Generator<{ ordinal: number; id: string; result: Uint8Array }> {
  const input = new ByteReader(bytes, decodeError);
  while (!input.done) {
    const ordinal = input.varuint();
    const id = utf8Text(input.bytes(), decodeError);
    yield { ordinal, id, result: input.bytes() };
  }
}
