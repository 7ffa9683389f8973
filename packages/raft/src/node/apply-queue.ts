import type { CommittedEntry, StateMachine } from './ports.js';

/** What the queue reports to its loop. */
export interface ApplyQueueHooks<Result> {
  /**
   * A batch's results are final: its proposals may be answered. Called once per batch, before
   * `onApplied` (when the state machine reports them early, before its commit is durable).
   */
  onDecided(entries: readonly CommittedEntry[], results: ReadonlyMap<string, Result>): void;
  /** A batch is applied and durable in the state machine (`applied` is its new applied index). */
  onApplied(entries: readonly CommittedEntry[], results: ReadonlyMap<string, Result>, applied: number): void;
  /** The state machine failed: the queue takes no more work. */
  onFatal(error: unknown): void;
}

/** How long applying may be put off while nobody on this node waits for it. */
export interface ApplyDeferral {
  /** Whether anything on this node waits for applied entries (its proposals, reads, listeners). */
  urgent(): boolean;
  /** The longest an entry waits to be applied when nothing is urgent. */
  readonly maxDelayMs: number;
  /** Waiting entries that start an apply even when nothing is urgent. */
  readonly maxEntries: number;
}

/**
 * Applies committed entries to the state machine off the ready loop's critical path, one
 * `apply` call at a time in log order (the `StateMachine` contract). Entries handed over while a
 * call is in flight wait and go into the next call together, so one durable state commit covers
 * them all (group commit, as the log does for saves), while the loop goes on writing the log and
 * exchanging messages.
 *
 * While nothing on this node waits for applied entries (a follower whose clients write through
 * another node), applying is put off for up to `maxDelayMs` or `maxEntries`, so it runs in fewer,
 * larger state commits: each commit has a fixed cost (a transaction, its syncs, a thread
 * handoff) that would otherwise be paid for every small batch. Anything urgent applies at once.
 *
 * A proposal resolves once its own entry's result is final (`onDecided`): at the latest when the
 * batch is durable, earlier when the state machine says so.
 */
export class ApplyQueue<Result> {
  private waiting: CommittedEntry[] = [];
  private running: Promise<void> | null = null;
  /** Set while an apply is put off. */
  private deferred: NodeJS.Timeout | null = null;
  /** The last index handed over (applied, in flight or waiting). */
  private handedOver: number;
  private failed = false;
  private readonly idleWaiters: (() => void)[] = [];

  constructor(
    private readonly state: StateMachine<Result>,
    private readonly hooks: ApplyQueueHooks<Result>,
    /** Above this many waiting entries the loop should wait (`hasRoom`) before handing over more. */
    private readonly maxWaiting: number,
    /** When applying may wait; without it, entries are applied as soon as they are handed over. */
    private readonly deferral?: ApplyDeferral,
  ) {
    this.handedOver = state.appliedIndex();
  }

  /** The last index handed over: entries up to it must not be handed over again. */
  get lastHandedOver(): number {
    return Math.max(this.handedOver, this.state.appliedIndex());
  }

  /** Whether nothing is applying or waiting. */
  get idle(): boolean {
    return this.running === null && this.waiting.length === 0;
  }

  /** Whether the waiting backlog is small enough to hand over more without waiting. */
  get hasRoom(): boolean {
    return this.waiting.length < this.maxWaiting;
  }

  /** Hands over committed entries (in log order, following what was handed over before). */
  push(entries: readonly CommittedEntry[]): void {
    if (this.failed || entries.length === 0) return;
    const first = entries[0] as CommittedEntry;
    if (first.index !== this.lastHandedOver + 1) {
      this.fail(new Error(`the apply queue expected log index ${this.lastHandedOver + 1}, got ${first.index}`));
      return;
    }
    for (const entry of entries) this.waiting.push(entry);
    this.handedOver = (entries[entries.length - 1] as CommittedEntry).index;
    this.startOrDefer();
  }

  /** Applies what waits now if something became urgent (a read waits, a proposal was made here). */
  hurryIfUrgent(): void {
    if (this.deferred !== null && this.deferral?.urgent() === true) this.hurry();
  }

  /** Resolves once everything handed over is applied (or the queue failed). */
  whenIdle(): Promise<void> {
    if (this.idle || this.failed) return Promise.resolve();
    this.hurry();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Starts applying what waits, unless an apply runs (it takes them next) or it may be put off. */
  private startOrDefer(): void {
    if (this.running !== null || this.waiting.length === 0 || this.failed) return;
    const deferral = this.deferral;
    if (deferral === undefined || this.waiting.length >= deferral.maxEntries || deferral.urgent()) {
      this.hurry();
      return;
    }
    this.deferred ??= setTimeout(() => this.hurry(), deferral.maxDelayMs);
  }

  private hurry(): void {
    if (this.deferred !== null) clearTimeout(this.deferred);
    this.deferred = null;
    if (this.waiting.length > 0 && !this.failed) this.running ??= this.drain();
  }

  /** Resolves once the waiting backlog is below the limit (or the queue failed). */
  async whenRoom(): Promise<void> {
    while (!this.hasRoom && !this.failed && this.running !== null) await this.running;
  }

  private async drain(): Promise<void> {
    try {
      const batch = this.waiting;
      this.waiting = [];
      let decided = false;
      const results = await this.state.apply(batch, (early) => {
        if (decided || this.failed) return;
        decided = true;
        this.hooks.onDecided(batch, early);
      });
      const last = (batch[batch.length - 1] as CommittedEntry).index;
      const applied = this.state.appliedIndex();
      if (applied !== last) throw new Error(`the state machine applied entries up to ${last} but reports applied index ${applied}`);
      if (!decided) this.hooks.onDecided(batch, results);
      this.hooks.onApplied(batch, results, applied);
    } catch (error) {
      this.fail(error);
    } finally {
      this.running = null;
      if (this.waiting.length === 0 || this.failed) this.releaseIdle();
      else if (this.idleWaiters.length > 0) this.hurry();
      else this.startOrDefer();
    }
  }

  private fail(error: unknown): void {
    if (this.failed) return;
    this.failed = true;
    if (this.deferred !== null) clearTimeout(this.deferred);
    this.deferred = null;
    this.waiting = [];
    this.releaseIdle();
    this.hooks.onFatal(error);
  }

  private releaseIdle(): void {
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
