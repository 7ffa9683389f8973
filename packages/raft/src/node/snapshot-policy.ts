import type { NodeId } from '../consensus/types.js';
import type { DurableLog, StateMachine } from './ports.js';

/**
 * When to snapshot the local state and compact the log: every `every` applied entries, keeping
 * `margin` entries behind the snapshot so a follower that lags a little catches up from the log
 * rather than by InstallSnapshot. Runs inside a turn of the ready loop, so it never interleaves
 * with a log write, once the loop's apply queue is idle.
 */
export class SnapshotPolicy {
  private lastIndex: number;

  constructor(
    private readonly log: DurableLog,
    private readonly state: StateMachine<unknown>,
    private readonly voters: readonly NodeId[],
    private readonly every: number,
    private readonly margin: number,
  ) {
    this.lastIndex = log.snapshot().meta.index;
  }

  /** The index of the latest snapshot, local or installed from the leader. */
  get snapshotIndex(): number {
    return this.lastIndex;
  }

  /** A snapshot from the leader replaced the log: count from it. */
  installed(index: number): void {
    if (index > this.lastIndex) this.lastIndex = index;
  }

  /** Whether enough entries were applied since the last snapshot to take the next. */
  due(): boolean {
    return this.state.appliedIndex() - this.lastIndex >= this.every;
  }

  /**
   * Takes a snapshot and compacts when due; returns the snapshot's index, or null when not due.
   * Call it only while no apply is in flight: the image must be the state at `appliedIndex()`.
   */
  async maybeSnapshot(): Promise<number | null> {
    const applied = this.state.appliedIndex();
    if (applied - this.lastIndex < this.every) return null;
    const data = await this.state.exportSnapshot();
    const snapshot = await this.log.createSnapshot(applied, this.voters, data);
    this.lastIndex = snapshot.meta.index;
    const compactTo = snapshot.meta.index - this.margin;
    if (compactTo >= this.log.firstIndex()) await this.log.compact(compactTo);
    return snapshot.meta.index;
  }
}
