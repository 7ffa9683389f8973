import type { RaftNode } from '../consensus/raft.js';
import type { Message, ReadState } from '../consensus/types.js';
import type { CommittedEntry, DurableLog, StateMachine } from './ports.js';

/** What one turn of the loop reports to, and needs from, its server. */
export interface ReadyLoopHooks<Result> {
  send(message: Message): void;
  /** A snapshot from the leader replaced the log (and the state, unless it was already past it). */
  onSnapshotInstalled(index: number): void;
  onApplied(entries: readonly CommittedEntry[], results: ReadonlyMap<string, Result>): void;
  /** ReadIndex answers of this turn, and the applied index once the turn applied its entries. */
  onReadStates(states: readonly ReadState[], applied: number): void;
  /** Runs last in a turn, after `advance`: the place for snapshots and compaction. */
  afterTurn(): Promise<void>;
  /** The log, the state or the core failed: the loop has stopped for good. */
  onFatal(error: unknown): void;
}

/**
 * Carries out the core's `Ready` batches one at a time, never two in flight: send what needs no
 * durability, make the batch durable (one `log.save`: the group commit point — proposals that
 * arrive meanwhile pile up in the core and go into the next batch), send what waited for it,
 * restore a snapshot from the leader, apply committed entries, then `advance`.
 */
export class ReadyLoop<Result> {
  private running: Promise<void> | null = null;
  private scheduled = false;
  private stopped = false;

  constructor(
    private readonly node: RaftNode,
    private readonly log: DurableLog,
    private readonly state: StateMachine<Result>,
    private readonly hooks: ReadyLoopHooks<Result>,
  ) {}

  /** Makes sure the loop runs soon; calls made in one task share one start. */
  schedule(): void {
    if (this.stopped || this.running !== null || this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      if (this.stopped || this.running !== null) return;
      const running = this.run().finally(() => {
        this.running = null;
        // Inputs that arrived after the last hasReady() check found the loop still marked running.
        if (this.node.hasReady()) this.schedule();
      });
      this.running = running;
    });
  }

  /** Stops after the turn in progress (whose durable write is allowed to finish); resolves once idle. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  private async run(): Promise<void> {
    try {
      while (!this.stopped && this.node.hasReady()) await this.turn();
    } catch (error) {
      this.stopped = true;
      this.hooks.onFatal(error);
    }
  }

  private async turn(): Promise<void> {
    const ready = this.node.ready();
    for (const message of ready.messages) this.hooks.send(message);
    if (ready.snapshot !== null || ready.entries.length > 0 || ready.hardState !== null) {
      await this.log.save({ snapshot: ready.snapshot, entries: ready.entries, hardState: ready.hardState });
      // A stopped node leaves this Ready un-advanced: nothing past the durable write may happen.
      if (this.stopped) return;
    }
    for (const message of ready.messagesAfterPersist) this.hooks.send(message);
    if (ready.snapshot !== null) {
      if (ready.snapshot.meta.index > this.state.appliedIndex()) {
        await this.state.restoreSnapshot(ready.snapshot.data, ready.snapshot.meta.index);
        if (this.stopped) return;
      }
      this.hooks.onSnapshotInstalled(ready.snapshot.meta.index);
    }
    const applied = this.state.appliedIndex();
    // On restart the state may be ahead of the core's applied index: what it holds is never applied twice.
    const fresh = ready.committedEntries.filter((entry) => entry.index > applied);
    const last = fresh[fresh.length - 1];
    if (last !== undefined) {
      const results = await this.state.apply(fresh);
      if (this.stopped) return;
      if (this.state.appliedIndex() !== last.index) {
        throw new Error(`the state machine applied entries up to ${last.index} but reports applied index ${this.state.appliedIndex()}`);
      }
      this.hooks.onApplied(fresh, results);
    }
    this.hooks.onReadStates(ready.readStates, this.state.appliedIndex());
    this.node.advance(ready);
    await this.hooks.afterTurn();
  }
}
