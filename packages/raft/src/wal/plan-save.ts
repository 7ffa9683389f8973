import { RaftProtocolError } from '../consensus/errors.js';
import type { Entry, Snapshot } from '../consensus/types.js';
import type { DurableWrite } from '../node/ports.js';
import type { WalRecord } from './records.js';

/** The log's shape as the saves queued so far will leave it. */
export interface Projection {
  readonly base: number;
  readonly last: number;
  readonly snapshotIndex: number;
}

/**
 * Checks one save against the log as it will be once the saves queued before it are applied,
 * and turns it into records, with MemoryLogStorage's rules: a snapshot older than the current one
 * is ignored, entries must not leave a gap, entries at or below the log's base are skipped.
 */
export function planSave(
  write: DurableWrite,
  before: Projection,
): { records: WalRecord[]; snapshot: Snapshot | null; projection: Projection } {
  let { base, last, snapshotIndex } = before;
  const records: WalRecord[] = [];
  let snapshot: Snapshot | null = null;
  if (write.snapshot !== null && write.snapshot.meta.index > snapshotIndex) {
    snapshot = write.snapshot;
    const { index, term } = snapshot.meta;
    if (!Number.isSafeInteger(index) || !Number.isSafeInteger(term) || term < 0) {
      throw new RaftProtocolError(`snapshot (index ${index}, term ${term}) is not a log position`);
    }
    records.push({ type: 'reset', index, term });
    base = last = snapshotIndex = index;
  }
  const first = write.entries[0];
  if (first !== undefined) {
    if (first.index > last + 1) throw new RaftProtocolError(`storage gap: appending index ${first.index} after last index ${last}`);
    write.entries.forEach((entry, i) => {
      if (entry.index !== first.index + i || !Number.isSafeInteger(entry.index) || !Number.isSafeInteger(entry.term) || entry.term < 0) {
        throw new RaftProtocolError(
          `entries to save must be consecutive log positions (entry ${i} has index ${entry.index}, term ${entry.term})`,
        );
      }
    });
    for (const entry of write.entries) {
      if (entry.index > base) records.push({ type: 'entry', entry });
    }
    const end = (write.entries[write.entries.length - 1] as Entry).index;
    if (end > base) last = end;
  }
  if (write.hardState !== null) {
    const { term, commit, vote } = write.hardState;
    if (
      !Number.isSafeInteger(term) ||
      term < 0 ||
      !Number.isSafeInteger(commit) ||
      commit < 0 ||
      (vote !== null && typeof vote !== 'string')
    ) {
      throw new RaftProtocolError('hard state must hold a term, a commit index and a vote (string or null)');
    }
    records.push({ type: 'hard-state', hardState: write.hardState });
  }
  return { records, snapshot, projection: { base, last, snapshotIndex } };
}
