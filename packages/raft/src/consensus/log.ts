import { LogCompactedError, LogUnavailableError, RaftProtocolError } from './errors.js';
import { limitBytes, type LogStorage } from './storage.js';
import { UnstableLog } from './unstable.js';
import type { Entry, Snapshot } from './types.js';

/**
 * The node's view of the replicated log: durable entries in `storage`, newer ones in `unstable`,
 * and the commit and apply positions.
 */
export class RaftLog {
  readonly unstable: UnstableLog;
  committed: number;
  applied: number;

  constructor(readonly storage: LogStorage) {
    const first = storage.firstIndex();
    this.unstable = new UnstableLog(storage.lastIndex() + 1);
    this.committed = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    return this.unstable.firstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.lastIndex() ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.termOrThrow(this.lastIndex());
  }

  /** The term at `index`, or null when the index is compacted away or beyond the log. */
  term(index: number): number | null {
    const dummy = this.firstIndex() - 1;
    if (index < dummy || index > this.lastIndex()) return null;
    const fromUnstable = this.unstable.term(index);
    if (fromUnstable !== null) return fromUnstable;
    try {
      return this.storage.term(index);
    } catch (error) {
      if (error instanceof LogCompactedError || error instanceof LogUnavailableError) return null;
      throw error;
    }
  }

  termOrThrow(index: number): number {
    const term = this.term(index);
    if (term === null) throw new LogCompactedError(index, this.firstIndex());
    return term;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /**
   * The index of the first entry that is new or whose term differs from ours, or 0 when we
   * already hold all of them. Only a real term conflict may lead to truncation.
   */
  findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * For a rejected append at (index, term): the largest index ≤ `index` whose term is ≤ `term`,
   * so the leader can skip every entry of a term the follower cannot have.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let probe = Math.min(index, this.lastIndex());
    for (;;) {
      const probeTerm = this.term(probe);
      if (probeTerm === null) return { index: probe, term: 0 };
      if (probeTerm <= term) return { index: probe, term: probeTerm };
      probe--;
    }
  }

  /**
   * The follower side of AppendEntries. Returns the last index this message proves we share
   * with the leader, or null when the consistency check fails.
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, entries: readonly Entry[], conflictAt: number): number | null {
    if (!this.matchTerm(prevIndex, prevTerm)) return null;
    const lastNew = prevIndex + entries.length;
    if (conflictAt !== 0) {
      if (conflictAt <= this.committed) {
        throw new RaftProtocolError(`entry ${conflictAt} conflicts with the committed log (commit ${this.committed})`);
      }
      this.append(entries.slice(conflictAt - (prevIndex + 1)));
    }
    // Only what this message verified may be committed: a stale message proves less than our log holds.
    this.commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  append(entries: readonly Entry[]): number {
    const first = entries[0];
    if (first === undefined) return this.lastIndex();
    if (first.index - 1 < this.committed) {
      throw new RaftProtocolError(`appending at ${first.index} would rewrite the committed log (commit ${this.committed})`);
    }
    this.unstable.truncateAndAppend(entries);
    return this.lastIndex();
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    if (index > this.lastIndex()) {
      throw new RaftProtocolError(`commit index ${index} is beyond the last index ${this.lastIndex()}`);
    }
    this.committed = index;
  }

  appliedTo(index: number): void {
    if (index === 0) return;
    if (index > this.committed || index < this.applied) {
      throw new RaftProtocolError(`applied index ${index} is outside [${this.applied}, ${this.committed}]`);
    }
    this.applied = index;
  }

  /** True when (lastIndex, lastTerm) is at least as up to date as our log (Raft §5.4.1). */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Whether a log ending at (`lastIndex`, `lastTerm`) is strictly more up to date than this one. */
  isAheadOfUs(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex > this.lastIndex());
  }

  /** Committed entries the driver has not applied yet, limited to `maxBytes`. */
  nextCommittedEntries(maxBytes: number): Entry[] {
    const lo = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed < lo) return [];
    return this.slice(lo, this.committed + 1, maxBytes);
  }

  hasNextCommittedEntries(): boolean {
    return this.committed > Math.max(this.applied, this.firstIndex() - 1);
  }

  /** Entries in [lo, hi) drawn from storage and the unstable part, within `maxBytes`. */
  slice(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo >= hi) return [];
    const first = this.firstIndex();
    if (lo < first) throw new LogCompactedError(lo, first);
    if (hi > this.lastIndex() + 1) throw new LogUnavailableError(hi - 1, this.lastIndex());
    let result: Entry[] = [];
    const offset = this.unstable.offset;
    if (lo < offset) {
      result = this.storage.entries(lo, Math.min(hi, offset), maxBytes);
      // Storage stopped early because of the byte limit: do not reach into the unstable part.
      if (result.length < Math.min(hi, offset) - lo) return result;
    }
    if (hi > offset) {
      result = result.concat(this.unstable.slice(Math.max(lo, offset), hi));
    }
    return limitBytes(result, maxBytes);
  }

  /** The snapshot to send a follower that is too far behind. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Replaces the log with a snapshot received from the leader. */
  restore(snapshot: Snapshot): void {
    this.committed = snapshot.meta.index;
    this.unstable.restore(snapshot);
  }

  stableTo(index: number, term: number): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapshotTo(index: number): void {
    this.unstable.stableSnapshotTo(index);
  }
}
