import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { HardState, Snapshot } from '../consensus/types.js';
import { MalformedRecordError, WalCorruptionError } from './errors.js';
import { listDir, syncDir } from './file-names.js';
import { readBatch, validBatchAfter } from './frames.js';
import { LogIndex, UNKNOWN_TERM } from './log-index.js';
import { decodeRecord } from './records.js';
import { readSnapshotFile } from './snapshot-file.js';

/** One segment file as the WAL tracks it. */
export interface SegmentState {
  readonly seq: number;
  readonly firstIndex: number;
  readonly path: string;
  /** Bytes of valid batches (the file's size after recovery). */
  size: number;
  /** Highest entry index ever written to it (0 if none): it may be deleted once compaction passes it. */
  maxIndex: number;
  /** Whether a batch in it carries a hard state, so deleting older segments cannot lose it. */
  hasHardState: boolean;
}

/** What recovery rebuilt from the directory. */
export interface RecoveredWal {
  readonly segments: SegmentState[];
  readonly log: LogIndex;
  readonly hardState: HardState;
  readonly snapshot: Snapshot;
}

const EMPTY_SNAPSHOT: Snapshot = { meta: { index: 0, term: 0, voters: [] }, data: new Uint8Array(0) };

/**
 * Rebuilds the log from `dir`. Everything is read and checked first; only when it all holds
 * together is anything changed on disk (a torn tail truncated, leftover temporary and old
 * snapshot files removed). Corruption throws {@link WalCorruptionError} with nothing changed.
 */
export async function recoverWal(dir: string, tailSize: number, tailBytes?: number): Promise<RecoveredWal> {
  const listing = await listDir(dir);
  let snapshot = EMPTY_SNAPSHOT;
  const newest = listing.snapshots[listing.snapshots.length - 1];
  if (newest !== undefined) {
    const file = path.join(dir, newest.name);
    snapshot = await readSnapshotFile(file);
    if (snapshot.meta.index !== newest.index) {
      throw new WalCorruptionError(file, 0, `snapshot index ${snapshot.meta.index} does not match the file name`);
    }
  }

  const log = new LogIndex(tailSize, tailBytes);
  let hardState: HardState = { term: 0, vote: null, commit: 0 };
  let started = false;
  let torn: { file: string; size: number } | null = null;
  const segments: SegmentState[] = [];

  for (let s = 0; s < listing.segments.length; s++) {
    const { name, seq, firstIndex } = listing.segments[s] as DirListingSegment;
    const file = path.join(dir, name);
    const bytes = await fs.readFile(file);
    const segment: SegmentState = { seq, firstIndex, path: file, size: 0, maxIndex: 0, hasHardState: false };
    segments.push(segment);
    let pos = 0;
    while (pos < bytes.length) {
      const batch = readBatch(bytes, pos);
      if (!('frames' in batch)) {
        if (s !== listing.segments.length - 1) throw new WalCorruptionError(file, batch.offset, `${batch.reason} (not the last segment)`);
        const next = validBatchAfter(bytes, pos + 1);
        if (next !== null) throw new WalCorruptionError(file, batch.offset, `${batch.reason}, followed by a valid batch at offset ${next}`);
        torn = { file, size: pos };
        break;
      }
      for (const frame of batch.frames) {
        let record;
        try {
          record = decodeRecord(frame.content);
        } catch (error) {
          if (error instanceof MalformedRecordError) throw new WalCorruptionError(file, frame.offset, `malformed record: ${error.message}`);
          throw error;
        }
        switch (record.type) {
          case 'hard-state':
            hardState = record.hardState;
            segment.hasHardState = true;
            break;
          case 'reset':
            log.reset(record.index, record.term);
            started = true;
            break;
          case 'entry': {
            const { entry } = record;
            if (entry.index > log.last() + 1 && started) {
              throw new WalCorruptionError(file, frame.offset, `entry index ${entry.index} leaves a gap after index ${log.last()}`);
            }
            // The first segments may have been deleted by compaction, so the first entry seen (or
            // one rewriting below it) starts the log with the term before it unknown.
            if (!started || entry.index <= log.base) log.reset(entry.index - 1, UNKNOWN_TERM);
            started = true;
            log.put(entry, seq, frame.offset, frame.length);
            segment.maxIndex = Math.max(segment.maxIndex, entry.index);
            break;
          }
        }
      }
      pos = batch.end;
    }
    segment.size = pos;
  }

  reconcile(log, snapshot, segments[0]?.path ?? dir);

  // Everything checked: now repair.
  if (torn !== null) {
    const handle = await fs.open(torn.file, 'r+');
    try {
      await handle.truncate(torn.size);
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
  const stale = [...listing.temps, ...listing.snapshots.slice(0, -1).map((s) => s.name)];
  for (const name of stale) await fs.rm(path.join(dir, name), { force: true });
  if (stale.length > 0) await syncDir(dir);
  return { segments, log, hardState, snapshot };
}

type DirListingSegment = { readonly name: string; readonly seq: number; readonly firstIndex: number };

/**
 * Fits the replayed log to the newest snapshot: the log then starts right after it. Entries after
 * the snapshot are kept only if the log agrees with the snapshot's (index, term); otherwise the
 * snapshot came from a leader and the process died before the log reset was written, so the old
 * log is discarded as the completed write would have done.
 */
function reconcile(log: LogIndex, snapshot: Snapshot, where: string): void {
  const { index, term } = snapshot.meta;
  if (log.last() < index) {
    log.reset(index, term);
    return;
  }
  if (index < log.base) {
    throw new WalCorruptionError(where, 0, `the log starts at index ${log.first()} but the snapshot only covers up to ${index}`);
  }
  const stored = log.termAt(index);
  if (stored === UNKNOWN_TERM && index === log.base) {
    log.baseTerm = term;
  } else if (stored !== term) {
    log.reset(index, term);
  } else if (index > log.base) {
    log.compactTo(index);
  }
}
