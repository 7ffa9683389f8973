import type { Configuration } from '../consensus/membership.js';
import type { CommittedEntry, DurableLog, StateImage, StateMachine } from './ports.js';

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
 * up from the log rather than by InstallSnapshot. The image is exported in the background, a few
 * milliseconds at a time, while the loop goes on (an export that held the event loop made a leader
 * lose its followers); writing it to the log and compacting run inside a turn of the ready loop,
 * so they never interleave with a log write.
 */
export class SnapshotPolicy {
  private lastIndex: number;
  /** Bytes of the last image taken or installed (0 until there is one). */
  private lastImageBytes: number;
  /** Commands applied since the last snapshot, and their bytes. */
  private appliedCommands = 0;
  private appliedBytes = 0;
  /** The export running in the background, if any. */
  private exporting: Promise<void> | null = null;
  /** An image exported in the background, waiting for `writeExported`. */
  private exported: { image: StateImage; counted: AppliedCount } | null = null;
  /** Aborted by `stop`: abandons the export under way. */
  private readonly stopping = new AbortController();

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
   * Starts exporting an image in the background when one is due and none is under way or waiting;
   * returns whether it started. The export yields to the event loop as it goes, and entries keep
   * being applied meanwhile (the image says which index it is the state at). `onExported` is
   * called once the image is ready: have the ready loop call `writeExported` then. `onFailed`
   * gets the error of a failed export (not after `stop`).
   */
  startExportIfDue(onExported: () => void, onFailed: (error: unknown) => void): boolean {
    if (this.exporting !== null || this.exported !== null || this.stopping.signal.aborted || !this.due()) return false;
    const counted = { commands: this.appliedCommands, bytes: this.appliedBytes };
    this.exporting = this.state.exportImage({ signal: this.stopping.signal }).then(
      (image) => {
        this.exporting = null;
        if (this.stopping.signal.aborted) return;
        this.exported = { image, counted };
        onExported();
      },
      (error: unknown) => {
        this.exporting = null;
        if (!this.stopping.signal.aborted) onFailed(error);
      },
    );
    return true;
  }

  /**
   * Writes the image a background export made to the log and compacts; returns the snapshot's
   * index, or null when no image waits (or a snapshot from the leader already covers it). Call it
   * from a turn of the ready loop, so it never interleaves with the loop's log writes.
   */
  async writeExported(): Promise<number | null> {
    const waiting = this.exported;
    if (waiting === null) return null;
    this.exported = null;
    return this.write(waiting.image, waiting.counted);
  }

  /**
   * Takes a snapshot and compacts when due, waiting for the export; returns the snapshot's index,
   * or null when not due. Like `writeExported`, call it from a turn of the ready loop.
   */
  async maybeSnapshot(): Promise<number | null> {
    if (!this.due()) return null;
    const counted = { commands: this.appliedCommands, bytes: this.appliedBytes };
    return this.write(await this.state.exportImage(), counted);
  }

  /** Abandons the export under way, if any, and resolves once it has ended. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.exported = null;
    await this.exporting;
  }

  private async write(image: StateImage, counted: AppliedCount): Promise<number | null> {
    // A snapshot installed from the leader while the image was read covers more of the log.
    if (image.index <= this.lastIndex) return null;
    const snapshot = await this.log.createSnapshot(image.index, this.configurationAt(image.index), image.data);
    this.lastIndex = snapshot.meta.index;
    this.lastImageBytes = image.data.length;
    // Entries applied since the export started stay counted toward the next snapshot (the first
    // few may be in this image too: the count only decides when to snapshot).
    this.appliedCommands = Math.max(0, this.appliedCommands - counted.commands);
    this.appliedBytes = Math.max(0, this.appliedBytes - counted.bytes);
    const compactTo = snapshot.meta.index - this.margin;
    if (compactTo >= this.log.firstIndex()) await this.log.compact(compactTo);
    return snapshot.meta.index;
  }
}

/** What `applied` had counted when an export started. */
interface AppliedCount {
  readonly commands: number;
  readonly bytes: number;
}
