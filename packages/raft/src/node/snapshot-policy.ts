import type { Configuration } from '../consensus/membership.js';
import type { CommittedEntry, DurableLog, StateMachine } from './ports.js';

/** How much of the log one read takes when a restarted member counts the bytes applied since its snapshot. */
const RESTART_READ_BYTES = 1 << 20;

/**
 * When to snapshot the local state and compact the log: once at least `every` commands were
 * applied since the last snapshot (the proposals of an envelope entry count one by one) **and**
 * their bytes add up to at least the size of the
 * last image. The second rule keeps the cost of snapshotting proportional to the writes: an image
 * is a copy of the whole state, so with a fixed count alone a large state would be copied over and
 * over for a few new entries, while the log since the snapshot (what the snapshot lets go) stays
 * at most about as large as the state itself. A policy created after a restart counts what the
 * log holds since the snapshot, so restarts do not put the next snapshot off.
 *
 * Compaction keeps `margin` entries behind the snapshot so a follower that lags a little catches
 * up from the log rather than by InstallSnapshot. Runs inside a turn of the ready loop, so it
 * never interleaves with a log write, once the loop's apply queue is idle.
 */
export class SnapshotPolicy {
  private lastIndex: number;
  /** Bytes of the last image taken or installed (0 until there is one). */
  private lastImageBytes: number;
  /** Commands applied since the last snapshot, and their bytes. */
  private appliedCommands = 0;
  private appliedBytes = 0;

  constructor(
    private readonly log: DurableLog,
    private readonly state: StateMachine<unknown>,
    /** The configuration as of a log index (the core's, since membership changes). */
    private readonly configurationAt: (index: number) => Configuration,
    private readonly every: number,
    private readonly margin: number,
  ) {
    const snapshot = log.snapshot();
    this.lastIndex = snapshot.meta.index;
    this.lastImageBytes = snapshot.data.length;
    // After a restart, count what was applied since the snapshot again: starting from zero would
    // let a member that restarts more often than an image's worth of writes never compact its log.
    // At least one command per entry; the bytes read back from the log, up to the image size.
    const applied = Math.min(state.appliedIndex(), log.lastIndex());
    if (applied > this.lastIndex) {
      this.appliedCommands = applied - this.lastIndex;
      for (let next = this.lastIndex + 1; next <= applied && this.appliedBytes < this.lastImageBytes;) {
        // At least one entry per read, so this always moves on.
        const entries = log.entries(next, applied + 1, RESTART_READ_BYTES);
        for (const entry of entries) this.appliedBytes += entry.data.length;
        next += entries.length;
      }
    }
  }

  /** The index of the latest snapshot, local or installed from the leader. */
  get snapshotIndex(): number {
    return this.lastIndex;
  }

  /** Counts applied entries toward the next snapshot. */
  applied(entries: readonly CommittedEntry[]): void {
    this.appliedCommands += entries.length;
    for (const entry of entries) this.appliedBytes += entry.data.length;
  }

  /** A snapshot of `bytes` from the leader replaced the log: count from it. */
  installed(index: number, bytes: number): void {
    if (index <= this.lastIndex) return;
    this.lastIndex = index;
    this.lastImageBytes = bytes;
    this.appliedCommands = 0;
    this.appliedBytes = 0;
  }

  /** Whether enough was applied since the last snapshot to take the next. */
  due(): boolean {
    return this.appliedCommands >= this.every && this.appliedBytes >= this.lastImageBytes && this.state.appliedIndex() > this.lastIndex;
  }

  /**
   * Takes a snapshot and compacts when due; returns the snapshot's index, or null when not due.
   * Call it only while no apply is in flight: the image must be the state at `appliedIndex()`.
   */
  async maybeSnapshot(): Promise<number | null> {
    if (!this.due()) return null;
    const applied = this.state.appliedIndex();
    const data = await this.state.exportSnapshot();
    const snapshot = await this.log.createSnapshot(applied, this.configurationAt(applied), data);
    this.lastIndex = snapshot.meta.index;
    this.lastImageBytes = data.length;
    this.appliedCommands = 0;
    this.appliedBytes = 0;
    const compactTo = snapshot.meta.index - this.margin;
    if (compactTo >= this.log.firstIndex()) await this.log.compact(compactTo);
    return snapshot.meta.index;
  }
}
