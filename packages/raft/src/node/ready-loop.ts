import type { RaftNode } from '../consensus/raft.js';
import type { Message, ReadState } from '../consensus/types.js';
import { ApplyQueue } from './apply-queue.js';
import type { CommittedEntry, DurableLog, StateMachine } from './ports.js';
import { unwrapEnvelopes } from './proposal-envelope.js';

/** What one turn of the loop reports to, and needs from, its server. */
export interface ReadyLoopHooks<Result> {
  send(message: Message): void;
  /** A snapshot (`bytes` long) from the leader replaced the log (and the state, unless it was already past it). */
  onSnapshotInstalled(index: number, bytes: number): void;
  /** The results of applied entries are final (possibly before the state's commit is durable): answer their proposals. */
  onApplied(entries: readonly CommittedEntry[], results: ReadonlyMap<string, Result>): void;
  /**
   * ReadIndex answers of a turn (with the applied index at that time), and after each applied
   * batch the new applied index (with no states).
   */
  onReadStates(states: readonly ReadState[], applied: number): void;
  /** Runs before each turn (and before the loop looks for work): the place to hand batched proposals to the core. */
  beforeTurn(): void;
  /**
   * Whether anything on this node waits for committed entries to be applied (its own proposals,
   * reads, listeners of the state). While nothing does, applying may be put off a little.
   */
  applyIsUrgent(): boolean;
  /**
   * Runs last in a turn, after `advance` (and alone when `requestAfterTurn` asked for it): the
   * place for snapshots and compaction.
   */
  afterTurn(): Promise<void>;
  /** The log, the state or the core failed: the loop has stopped for good. */
  onFatal(error: unknown): void;
}

/** Committed entries waiting to be applied, above which a turn waits for the state machine before taking more. */
const MAX_WAITING_ENTRIES = 16_384;
/** While nothing here waits for applied entries, applying waits up to this long… */
const DEFER_APPLY_MS = 20;
/** …or for this many entries. */
const DEFER_APPLY_ENTRIES = 1_024;

/**
 * Carries out the core's `Ready` batches one at a time, never two in flight: send what needs no
 * durability, make the batch durable (one `log.save`: the group commit point — proposals that
 * arrive meanwhile pile up in the core and go into the next batch), send what waited for it,
 * restore a snapshot from the leader, hand committed entries to the apply queue, then `advance`.
 *
 * Applying runs beside the loop on its own serial queue (as etcd does): the next turn's log write
 * and messages overlap the state machine's durable commit, and batches that arrive while one is
 * applying are applied together. Committed entries that were already durable in the log before
 * this turn go to the queue before its write; entries this turn writes only after it. A proposal
 * resolves only once its own entry is applied. A snapshot from the leader waits for the queue to
 * empty; a local snapshot does not (its image is exported beside the loop and says its own index).
 */
export class ReadyLoop<Result> {
  private running: Promise<void> | null = null;
  private scheduled = false;
  private stopped = false;
  /** `afterTurn` should run even if the core has nothing ready (see `requestAfterTurn`). */
  private afterTurnWanted = false;
  private readonly applier: ApplyQueue<Result>;

  constructor(
    private readonly node: RaftNode,
    private readonly log: DurableLog,
    private readonly state: StateMachine<Result>,
    private readonly hooks: ReadyLoopHooks<Result>,
  ) {
    this.applier = new ApplyQueue<Result>(
      state,
      {
        onDecided: (entries, results) => {
          if (!this.stopped) this.hooks.onApplied(entries, results);
        },
        onApplied: (_entries, _results, applied) => {
          if (!this.stopped) this.hooks.onReadStates([], applied);
        },
        onFatal: (error) => this.fatal(error),
      },
      MAX_WAITING_ENTRIES,
      { urgent: () => this.hooks.applyIsUrgent(), maxDelayMs: DEFER_APPLY_MS, maxEntries: DEFER_APPLY_ENTRIES },
    );
  }

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
        if (this.node.hasReady() || this.afterTurnWanted) this.schedule();
      });
      this.running = running;
    });
  }

  /**
   * Runs `afterTurn` soon, in a turn of its own if the core has nothing ready: work finished in
   * the background (an exported snapshot image) is to be written to the log.
   */
  requestAfterTurn(): void {
    this.afterTurnWanted = true;
    this.schedule();
  }

  /**
   * Stops after the turn in progress (whose durable write is allowed to finish) and the state
   * machine write in progress; resolves once idle.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
    await this.applier.whenIdle();
  }

  private fatal(error: unknown): void {
    if (this.stopped) return;
    this.stopped = true;
    this.hooks.onFatal(error);
  }

  private async run(): Promise<void> {
    try {
      for (;;) {
        if (this.stopped) return;
        this.hooks.beforeTurn();
        if (!this.node.hasReady()) {
          if (this.afterTurnWanted) await this.runAfterTurn();
          return;
        }
        await this.turn();
      }
    } catch (error) {
      this.fatal(error);
    }
  }

  /**
   * The entries of `committed` not yet handed to the state machine (on restart it may be ahead of
   * the core), with envelopes unpacked into the proposals they carry.
   */
  private fresh(committed: readonly CommittedEntry[]): readonly CommittedEntry[] {
    const handedOver = this.applier.lastHandedOver;
    return unwrapEnvelopes(committed.filter((entry) => entry.index > handedOver));
  }

  private async turn(): Promise<void> {
    const ready = this.node.ready();
    for (const message of ready.messages) this.hooks.send(message);
    const lastCommitted = ready.committedEntries[ready.committedEntries.length - 1]?.index ?? 0;
    const firstWritten = ready.entries[0]?.index ?? Number.POSITIVE_INFINITY;
    // Entries the log already holds durably, and this turn does not rewrite, may apply while it writes.
    const applyFirst = ready.snapshot === null && lastCommitted < firstWritten && lastCommitted <= this.log.lastIndex();
    if (applyFirst) this.applier.push(this.fresh(ready.committedEntries));
    if (ready.snapshot !== null || ready.entries.length > 0 || ready.hardState !== null) {
      await this.log.save({ snapshot: ready.snapshot, entries: ready.entries, hardState: ready.hardState });
      // A stopped node leaves this Ready un-advanced: nothing past the durable write may happen.
      if (this.stopped) return;
    }
    for (const message of ready.messagesAfterPersist) this.hooks.send(message);
    if (ready.snapshot !== null) {
      await this.applier.whenIdle();
      if (this.stopped) return;
      if (ready.snapshot.meta.index > this.state.appliedIndex()) {
        await this.state.restoreSnapshot(ready.snapshot.data, ready.snapshot.meta.index);
        if (this.stopped) return;
      }
      this.hooks.onSnapshotInstalled(ready.snapshot.meta.index, ready.snapshot.data.length);
    }
    if (!applyFirst) this.applier.push(this.fresh(ready.committedEntries));
    this.hooks.onReadStates(ready.readStates, this.state.appliedIndex());
    // A read that now waits for entries put off (or a proposal made here) has them applied at once.
    this.applier.hurryIfUrgent();
    this.node.advance(ready);
    // Backpressure: a state machine slower than the log must not let committed entries pile up without bound.
    if (!this.applier.hasRoom) await this.applier.whenRoom();
    if (this.stopped) return;
    await this.runAfterTurn();
  }

  private async runAfterTurn(): Promise<void> {
    this.afterTurnWanted = false;
    await this.hooks.afterTurn();
  }
}
