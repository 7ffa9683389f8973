import { writeSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ConfigError } from '@timebox/core';
import { LogCompactedError, LogUnavailableError, RaftProtocolError } from '../consensus/errors.js';
import { limitBytes, snapshotMembers, type InitialState, type SnapshotConfiguration } from '../consensus/storage.js';
import type { Entry, HardState, Snapshot } from '../consensus/types.js';
import type { DurableLog, DurableWrite } from '../node/ports.js';
import { ByteWriter } from '../bytes/byte-writer.js';
import { ColdReader } from './cold-reader.js';
import { WalUnavailableError } from './errors.js';
import { listDir, segmentName, snapshotName, syncDir } from './file-names.js';
import { writeBatch } from './frames.js';
import { LogIndex, type Slot } from './log-index.js';
import { writeRecord, type WalRecord } from './records.js';
import { planSave, type Projection } from './plan-save.js';
import { recoverWal, type SegmentState } from './recovery.js';
import { writeSnapshotFile } from './snapshot-file.js';

/** How to open a {@link WriteAheadLog}. */
export interface WalOptions {
  /** Newest entries kept in memory; older ones are read from disk. Default 20480, at least 2048. */
  readonly tailSize?: number;
  /** At most this many bytes of those entries are kept in memory. Default 64 MiB. */
  readonly tailBytes?: number;
  /** A new segment file starts once the active one reaches this many bytes. Default 64 MiB. */
  readonly segmentBytes?: number;
}

/** Counters that show what the log did, e.g. that group commit shared syncs. */
export interface WalStats {
  /** Segment files on disk. */
  readonly segments: number;
  /** Bytes in segment files. */
  readonly bytes: number;
  /** Batches written to segments (one write call each). */
  readonly writes: number;
  /** `datasync` calls on segments (snapshot files and directories are synced too, but not counted). */
  readonly syncs: number;
  /** Bytes of the entries kept in memory (the hot tail). */
  readonly tailBytes: number;
}

/** Defaults of {@link WalOptions}. */
export const WAL_DEFAULTS = Object.freeze({ tailSize: 20480, tailBytes: 64 * 1024 * 1024, segmentBytes: 64 * 1024 * 1024 });
const MIN_TAIL_SIZE = 2048;

interface SaveJob {
  readonly kind: 'save';
  readonly write: DurableWrite;
  resolve(): void;
  reject(error: unknown): void;
}

interface OpJob {
  readonly kind: 'op';
  /** Close still runs after a failure, to release the files. */
  readonly evenAfterFailure?: boolean;
  run(): Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

type Job = SaveJob | OpJob;

/** One accepted save, planned against the log as it will be after the saves before it. */
interface PlannedSave {
  readonly job: SaveJob;
  readonly records: WalRecord[];
  readonly snapshot: Snapshot | null;
}

/**
 * The durable Raft log of a member: a segmented write-ahead log of checksummed frames holding
 * entries and term/vote/commit, snapshot files beside it, and the newest entries cached in memory.
 * Saves issued while a write is being synced are written and synced together (group commit).
 */
export class WriteAheadLog implements DurableLog {
  private readonly cold = new ColdReader();
  /** The batch being written, reused from one save to the next (the write copies it to the file). */
  private readonly batch = new ByteWriter(64 * 1024);
  private readonly jobs: Job[] = [];
  private working = false;
  private closing: Promise<void> | null = null;
  private failure: unknown = null;
  private active: fs.FileHandle;
  private needsHardState: boolean;
  /** The active segment holds a write not yet synced (a commit-index-only save). */
  private unsynced = false;
  private writes = 0;
  private syncs = 0;

  private constructor(
    private readonly dir: string,
    private readonly segmentBytes: number,
    private readonly log: LogIndex,
    private readonly segments: SegmentState[],
    private hard: HardState,
    private snap: Snapshot,
    active: fs.FileHandle,
  ) {
    this.active = active;
    this.needsHardState = !(segments[segments.length - 1] as SegmentState).hasHardState;
  }

  /**
   * Opens (creating if missing) the log in `dir` and recovers it: a torn last batch is cut off,
   * corruption anywhere else rejects with {@link WalCorruptionError} and changes nothing.
   * @throws ConfigError for a bad `dir`, `tailSize` or `segmentBytes`.
   */
  static async open(dir: string, options: WalOptions = {}): Promise<WriteAheadLog> {
    if (typeof dir !== 'string' || dir === '') throw new ConfigError('dir', 'must be a non-empty path', dir);
    const tailSize = options.tailSize ?? WAL_DEFAULTS.tailSize;
    if (!Number.isSafeInteger(tailSize) || tailSize < MIN_TAIL_SIZE) {
      throw new ConfigError('tailSize', `must be an integer ≥ ${MIN_TAIL_SIZE}`, tailSize);
    }
    const segmentBytes = options.segmentBytes ?? WAL_DEFAULTS.segmentBytes;
    if (!Number.isSafeInteger(segmentBytes) || segmentBytes <= 0)
      throw new ConfigError('segmentBytes', 'must be an integer > 0', segmentBytes);
    const tailBytes = options.tailBytes ?? WAL_DEFAULTS.tailBytes;
    if (!Number.isSafeInteger(tailBytes) || tailBytes <= 0) throw new ConfigError('tailBytes', 'must be an integer > 0', tailBytes);

    await fs.mkdir(dir, { recursive: true });
    const recovered = await recoverWal(dir, tailSize, tailBytes);
    const { segments, log } = recovered;
    let last = segments[segments.length - 1];
    if (last === undefined) {
      last = {
        seq: 1,
        firstIndex: log.last() + 1,
        path: path.join(dir, segmentName(1, log.last() + 1)),
        size: 0,
        maxIndex: 0,
        hasHardState: false,
      };
      segments.push(last);
      const created = await fs.open(last.path, 'w+');
      await created.close();
      await syncDir(dir);
    }
    const handle = await fs.open(last.path, 'r+');
    return new WriteAheadLog(dir, segmentBytes, log, segments, recovered.hardState, recovered.snapshot, handle);
  }

  initialState(): InitialState {
    return { hardState: this.hard, voters: this.snap.meta.voters };
  }

  hardState(): HardState {
    return this.hard;
  }

  firstIndex(): number {
    return this.log.first();
  }

  lastIndex(): number {
    return this.log.last();
  }

  term(index: number): number {
    if (index < this.log.base) throw new LogCompactedError(index, this.log.first());
    if (index > this.log.last()) throw new LogUnavailableError(index, this.log.last());
    return this.log.termAt(index);
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo <= this.log.base) throw new LogCompactedError(lo, this.log.first());
    if (hi > this.log.last() + 1) throw new LogUnavailableError(hi - 1, this.log.last());
    // Find the cut from the sizes kept in the index, so only entries that are returned get read.
    let end = lo;
    let total = 0;
    while (end < hi) {
      total += (this.log.slot(end) as Slot).bytes;
      if (total > maxBytes && end > lo) break;
      end++;
    }
    const out: Entry[] = [];
    for (let index = lo; index < end; index++) out.push(this.entryAt(index));
    return limitBytes(out, maxBytes);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Counters for tests and benchmarks. */
  stats(): WalStats {
    let bytes = 0;
    for (const segment of this.segments) bytes += segment.size;
    return { segments: this.segments.length, bytes, writes: this.writes, syncs: this.syncs, tailBytes: this.log.heldBytes };
  }

  /**
   * Resolves once the write is durable. One exception, as in etcd's raft (`MustSync`): a write that
   * only moves the commit index — no entries, no snapshot, the same term and vote — resolves once
   * written, without a sync of its own (a lost commit index is learned again from the leader); the
   * next synced write makes it durable too.
   */
  save(write: DurableWrite): Promise<void> {
    return new Promise((resolve, reject) => this.enqueue({ kind: 'save', write, resolve, reject }, 'save'));
  }

  createSnapshot(index: number, config: SnapshotConfiguration, data: Uint8Array): Promise<Snapshot> {
    let result: Snapshot = this.snap;
    const run = async (): Promise<void> => {
      if (!Number.isSafeInteger(index) || index < 0) throw new RaftProtocolError(`cannot snapshot at index ${index}: not a log index`);
      if (index <= this.snap.meta.index) {
        result = this.snap;
        return;
      }
      const snapshot: Snapshot = { meta: { index, term: this.term(index), ...snapshotMembers(config) }, data };
      await this.guard(() => writeSnapshotFile(this.dir, snapshot));
      this.snap = snapshot;
      await this.removeOldSnapshots();
      result = snapshot;
    };
    return new Promise<void>((resolve, reject) => this.enqueue({ kind: 'op', run, resolve, reject }, 'create a snapshot')).then(
      () => result,
    );
  }

  compact(index: number): Promise<void> {
    const run = async (): Promise<void> => {
      if (index <= this.log.base) return;
      if (index > this.snap.meta.index) {
        throw new RaftProtocolError(`cannot compact to ${index}: the latest snapshot only covers ${this.snap.meta.index}`);
      }
      this.log.compactTo(index);
      // Only a prefix of whole segments goes, and never the active one: every later segment
      // starts with a hard state record, so the newest hard state always survives.
      let removed = 0;
      while (this.segments.length > 1 && (this.segments[0] as SegmentState).maxIndex <= index) {
        const segment = this.segments.shift() as SegmentState;
        this.cold.forget(segment.path);
        await this.guard(() => fs.rm(segment.path, { force: true }));
        removed++;
      }
      if (removed > 0) await this.guard(() => syncDir(this.dir));
    };
    return new Promise((resolve, reject) => this.enqueue({ kind: 'op', run, resolve, reject }, 'compact'));
  }

  /** Finishes queued work, then closes the files. Idempotent. */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing;
    const run = async (): Promise<void> => {
      this.cold.closeAll();
      if (this.unsynced && this.failure === null) await this.active.datasync().catch(() => undefined);
      await this.active.close();
    };
    this.closing = new Promise<void>((resolve, reject) => {
      this.jobs.push({ kind: 'op', evenAfterFailure: true, run, resolve, reject });
      this.kick();
    });
    return this.closing;
  }

  private enqueue(job: Job, operation: string): void {
    if (this.closing !== null) return job.reject(new WalUnavailableError(operation, 'is closed'));
    this.jobs.push(job);
    this.kick();
  }

  private kick(): void {
    if (this.working) return;
    this.working = true;
    void this.work();
  }

  /** Runs jobs in order; consecutive saves at the head of the queue go out as one batch. */
  private async work(): Promise<void> {
    // Let every call made in the current tick join the first group.
    await Promise.resolve();
    while (this.jobs.length > 0) {
      const head = this.jobs[0] as Job;
      if (head.kind === 'save') {
        const group: SaveJob[] = [];
        while (this.jobs.length > 0 && (this.jobs[0] as Job).kind === 'save') group.push(this.jobs.shift() as SaveJob);
        try {
          await this.flush(group);
        } catch (error) {
          // flush settles every job itself; this only guards against a bug leaving callers hanging.
          for (const job of group) job.reject(error);
        }
      } else {
        this.jobs.shift();
        try {
          if (this.failure !== null && head.evenAfterFailure !== true)
            throw new WalUnavailableError('write', 'failed earlier', { cause: this.failure });
          await head.run();
          head.resolve();
        } catch (error) {
          head.reject(error);
        }
      }
    }
    this.working = false;
  }

  /** Writes a group of saves as one batch with one sync, then applies them to memory. */
  private async flush(group: SaveJob[]): Promise<void> {
    if (this.failure !== null) {
      for (const job of group) job.reject(new WalUnavailableError('save', 'failed earlier', { cause: this.failure }));
      return;
    }
    const planned: PlannedSave[] = [];
    let projection: Projection = { base: this.log.base, last: this.log.last(), snapshotIndex: this.snap.meta.index };
    for (const job of group) {
      try {
        const plan = planSave(job.write, projection);
        projection = plan.projection;
        planned.push({ job, records: plan.records, snapshot: plan.snapshot });
      } catch (error) {
        job.reject(error);
      }
    }
    if (planned.length === 0) return;

    const records = planned.flatMap((p) => p.records);
    if (records.length === 0) {
      for (const p of planned) p.job.resolve();
      return;
    }
    const mustSync = this.mustSync(records);
    try {
      let newest: Snapshot | null = null;
      for (const p of planned) if (p.snapshot !== null) newest = p.snapshot;
      // The snapshot file must be durable before the log reset that refers to it.
      if (newest !== null) await writeSnapshotFile(this.dir, newest);
      await this.rollIfFull(records);
      if (this.needsHardState) records.unshift({ type: 'hard-state', hardState: this.hard });
      const frames = writeBatch(this.batch, records.length, (out, i) => void writeRecord(out, records[i] as WalRecord));
      const bytes = this.batch.view();
      const segment = this.segments[this.segments.length - 1] as SegmentState;
      const start = segment.size;
      // A synchronous write: it only copies into the page cache (microseconds for a batch), where
      // an asynchronous one costs a thread-pool round trip; the sync below is what waits for disk.
      let written = 0;
      while (written < bytes.length) written += writeSync(this.active.fd, bytes, written, bytes.length - written, start + written);
      this.writes++;
      if (mustSync) {
        await this.active.datasync();
        this.syncs++;
        this.unsynced = false;
      } else {
        this.unsynced = true;
      }
      this.needsHardState = false;
      segment.size += bytes.length;
      for (let i = 0; i < records.length; i++) {
        const frame = frames[i] as { offset: number; length: number };
        this.applyRecord(records[i] as WalRecord, segment, start + frame.offset, frame.length);
      }
      if (newest !== null) {
        this.snap = newest;
        await this.removeOldSnapshots();
      }
    } catch (error) {
      // After a failed write or sync the file's state is unknown: refuse everything from now on.
      this.failure = error;
      for (const p of planned) p.job.reject(error);
      return;
    }
    for (const p of planned) p.job.resolve();
  }

  private applyRecord(record: WalRecord, segment: SegmentState, offset: number, length: number): void {
    switch (record.type) {
      case 'hard-state':
        this.hard = record.hardState;
        segment.hasHardState = true;
        break;
      case 'reset':
        this.log.reset(record.index, record.term);
        break;
      case 'entry':
        this.log.put(record.entry, segment.seq, offset, length);
        segment.maxIndex = Math.max(segment.maxIndex, record.entry.index);
        break;
    }
  }

  /**
   * Whether writing `records` must wait for a sync: entries, a log reset, or a term or vote that
   * differs from the last hard state written. Only a commit index may be written lazily.
   */
  private mustSync(records: readonly WalRecord[]): boolean {
    let hard = this.hard;
    for (const record of records) {
      if (record.type !== 'hard-state') return true;
      if (record.hardState.term !== hard.term || record.hardState.vote !== hard.vote) return true;
      hard = record.hardState;
    }
    return false;
  }

  /** Starts a new segment at a batch boundary once the active one is full. */
  private async rollIfFull(records: readonly WalRecord[]): Promise<void> {
    const current = this.segments[this.segments.length - 1] as SegmentState;
    if (current.size < this.segmentBytes) return;
    // Nothing syncs the old segment once it is closed: a lazily written commit index goes now.
    if (this.unsynced) {
      await this.active.datasync();
      this.syncs++;
      this.unsynced = false;
    }
    const firstEntry = records.find((r) => r.type === 'entry');
    const firstIndex = firstEntry?.type === 'entry' ? firstEntry.entry.index : this.log.last() + 1;
    const seq = current.seq + 1;
    const next: SegmentState = {
      seq,
      firstIndex,
      path: path.join(this.dir, segmentName(seq, firstIndex)),
      size: 0,
      maxIndex: 0,
      hasHardState: false,
    };
    const handle = await fs.open(next.path, 'wx+');
    await syncDir(this.dir);
    await this.active.close();
    this.active = handle;
    this.segments.push(next);
    this.needsHardState = true;
  }

  private async removeOldSnapshots(): Promise<void> {
    const keep = snapshotName(this.snap.meta.index);
    const { snapshots } = await listDir(this.dir);
    const old = snapshots.filter((s) => s.name !== keep && s.index < this.snap.meta.index);
    // A leftover older snapshot is harmless (recovery uses the newest and removes the rest).
    for (const s of old) await fs.rm(path.join(this.dir, s.name), { force: true }).catch(() => undefined);
    if (old.length > 0) await syncDir(this.dir).catch(() => undefined);
  }

  /** An entry from the hot tail, or read back from its segment file. */
  private entryAt(index: number): Entry {
    const slot = this.log.slot(index) as Slot;
    if (slot.entry !== undefined) return slot.entry;
    const segment = this.segments.find((s) => s.seq === slot.segment);
    if (segment === undefined || this.closing !== null) throw new WalUnavailableError(`read entry ${index}`, 'no longer holds its segment');
    return this.cold.read(segment.path, slot, index);
  }

  /** Runs a file operation; a failure leaves the directory in an unknown state, so the log stops. */
  private async guard<T>(action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (error) {
      this.failure = error;
      throw error;
    }
  }
}
