import { LogCompactedError, LogUnavailableError, RaftProtocolError } from './errors.js';
import type { Entry, HardState, NodeId, Snapshot, SnapshotMeta } from './types.js';

/** What a node finds in its storage when it starts. */
export interface InitialState {
  readonly hardState: HardState;
  /** The voter set recorded with the latest snapshot, or empty if there is none. */
  readonly voters: readonly NodeId[];
}

/**
 * The durable log as the consensus core reads it. The core never writes through this
 * interface: the driver writes what each `Ready` asks for, then calls `advance`. Everything it
 * returns must already be durable. Reads are synchronous, so an implementation keeps the hot
 * tail in memory (the member's write-ahead log does).
 */
export interface LogStorage {
  initialState(): InitialState;
  /** Index of the first entry still held (snapshot index + 1). */
  firstIndex(): number;
  /** Index of the last entry held, or the snapshot index when no entry follows it. */
  lastIndex(): number;
  /**
   * The term of the entry at `index`; valid for snapshot index ≤ index ≤ lastIndex.
   * @throws LogCompactedError below that range, LogUnavailableError above it.
   */
  term(index: number): number;
  /**
   * Entries in [lo, hi), at least one even when it alone exceeds `maxBytes`.
   * @throws LogCompactedError when lo < firstIndex, LogUnavailableError when hi > lastIndex + 1.
   */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
  /** The latest snapshot (an empty one at index 0 if none was taken). */
  snapshot(): Snapshot;
}

/** The configuration a snapshot records: a full configuration, or just the voters. */
export type SnapshotConfiguration = readonly NodeId[] | Pick<SnapshotMeta, 'voters' | 'learners' | 'addresses'>;

/** The membership fields of a snapshot's meta, from either form of {@link SnapshotConfiguration}. */
export function snapshotMembers(config: SnapshotConfiguration): Pick<SnapshotMeta, 'voters' | 'learners' | 'addresses'> {
  if (isVoterList(config)) return { voters: [...config] };
  const learners = config.learners ?? [];
  const addresses = config.addresses ?? {};
  return {
    voters: [...config.voters],
    ...(learners.length > 0 ? { learners: [...learners] } : {}),
    ...(Object.keys(addresses).length > 0 ? { addresses: { ...addresses } } : {}),
  };
}

function isVoterList(config: SnapshotConfiguration): config is readonly NodeId[] {
  return Array.isArray(config);
}

/** Bytes an entry is charged for in message and uncommitted-tail limits. */
export function entryBytes(entry: Entry): number {
  return entry.data.byteLength + 24 + (entry.proposalId?.length ?? 0);
}

/** Entries from the start of `entries` whose summed size stays within `maxBytes` (at least one). */
export function limitBytes(entries: Entry[], maxBytes: number): Entry[] {
  let total = 0;
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i] as Entry;
    total += entryBytes(entry);
    if (total > maxBytes && i > 0) return entries.slice(0, i);
  }
  return entries;
}

const EMPTY = new Uint8Array(0);

/**
 * A `LogStorage` held in memory, with the write side a driver needs. Used by tests and the
 * simulation as the node's "disk": what is in here is what survives a crash.
 */
export class MemoryLogStorage implements LogStorage {
  private hard: HardState = { term: 0, vote: null, commit: 0 };
  private snap: Snapshot = { meta: { index: 0, term: 0, voters: [] }, data: EMPTY };
  /** entries[0] is a placeholder carrying the snapshot's index and term. */
  private log: Entry[] = [{ term: 0, index: 0, kind: 'empty', proposalId: null, data: EMPTY }];

  initialState(): InitialState {
    return { hardState: this.hard, voters: this.snap.meta.voters };
  }

  hardState(): HardState {
    return this.hard;
  }

  firstIndex(): number {
    return this.offset() + 1;
  }

  lastIndex(): number {
    return this.offset() + this.log.length - 1;
  }

  term(index: number): number {
    const offset = this.offset();
    if (index < offset) throw new LogCompactedError(index, offset + 1);
    if (index > this.lastIndex()) throw new LogUnavailableError(index, this.lastIndex());
    return (this.log[index - offset] as Entry).term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    const offset = this.offset();
    if (lo <= offset) throw new LogCompactedError(lo, offset + 1);
    if (hi > this.lastIndex() + 1) throw new LogUnavailableError(hi - 1, this.lastIndex());
    return limitBytes(this.log.slice(lo - offset, hi - offset), maxBytes);
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Records term, vote and commit. */
  setHardState(hardState: HardState): void {
    this.hard = hardState;
  }

  /**
   * Appends entries, first dropping any stored entry at or after `entries[0].index` (the core
   * only asks for that when the terms conflict). Returns the indexes it dropped.
   */
  append(entries: readonly Entry[]): { truncatedFrom: number | null } {
    const first = entries[0];
    if (first === undefined) return { truncatedFrom: null };
    const offset = this.offset();
    if (first.index > this.lastIndex() + 1) {
      throw new RaftProtocolError(`storage gap: appending index ${first.index} after last index ${this.lastIndex()}`);
    }
    // Entries already folded into the snapshot are skipped, not rewritten.
    const fresh = entries.filter((entry) => entry.index > offset);
    const start = fresh[0];
    if (start === undefined) return { truncatedFrom: null };
    const keep = start.index - offset;
    const truncatedFrom = keep < this.log.length ? start.index : null;
    this.log = this.log.slice(0, keep).concat(fresh);
    return { truncatedFrom };
  }

  /** Replaces the whole log with a snapshot received from the leader. */
  applySnapshot(snapshot: Snapshot): void {
    if (snapshot.meta.index <= this.snap.meta.index) return;
    this.snap = snapshot;
    this.log = [{ term: snapshot.meta.term, index: snapshot.meta.index, kind: 'empty', proposalId: null, data: EMPTY }];
  }

  /**
   * Records a snapshot of the local state machine taken at `index` (which must be applied), with
   * the configuration as of `index` (a bare voter list means no learners).
   */
  createSnapshot(index: number, config: SnapshotConfiguration, data: Uint8Array): Snapshot {
    if (index <= this.snap.meta.index) return this.snap;
    this.snap = { meta: { index, term: this.term(index), ...snapshotMembers(config) }, data };
    return this.snap;
  }

  /** Drops entries up to and including `index` (which a snapshot must cover). */
  compact(index: number): void {
    const offset = this.offset();
    if (index <= offset) return;
    if (index > this.snap.meta.index) {
      throw new RaftProtocolError(`cannot compact to ${index}: the latest snapshot only covers ${this.snap.meta.index}`);
    }
    this.log = this.log.slice(index - offset);
  }

  private offset(): number {
    return (this.log[0] as Entry).index;
  }
}
