import type { CommittedEntry, StateMachine } from './ports.js';

/** What the queue reports to its loop. */
export interface ApplyQueueHooks<Result> {
  /** A batch is applied and durable in the state machine (`applied` is its new applied index). */
  onApplied(entries: readonly CommittedEntry[], results: ReadonlyMap<string, Result>, applied: number): void;
  /** The state machine failed: the queue takes no more work. */
  onFatal(error: unknown): void;
}

/**
 * Applies committed entries to the state machine off the ready loop's critical path, one
 * `apply` call at a time in log order (the `StateMachine` contract). Entries handed over while a
 * call is in flight wait and go into the next call together, so one durable state commit covers
 * them all (group commit, as the log does for saves), while the loop goes on writing the log and
 * exchanging messages.
 *
 * A proposal still resolves only once its own entry is applied (`onApplied`).
 */
export class ApplyQueue<Result> {
  private waiting: CommittedEntry[] = [];
  private running: Promise<void> | null = null;
  /** The last index handed over (applied, in flight or waiting). */
  private handedOver: number;
  private failed = false;
  private readonly idleWaiters: (() => void)[] = [];

  constructor(
    private readonly state: StateMachine<Result>,
    private readonly hooks: ApplyQueueHooks<Result>,
    /** Above this many waiting entries the loop should wait (`hasRoom`) before handing over more. */
    private readonly maxWaiting: number,
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
    this.running ??= this.drain();
  }

  /** Resolves once everything handed over is applied (or the queue failed). */
  whenIdle(): Promise<void> {
    if (this.idle || this.failed) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Resolves once the waiting backlog is below the limit (or the queue failed). */
  async whenRoom(): Promise<void> {
    while (!this.hasRoom && !this.failed && this.running !== null) await this.running;
  }

  private async drain(): Promise<void> {
    try {
      while (this.waiting.length > 0 && !this.failed) {
        const batch = this.waiting;
        this.waiting = [];
        const results = await this.state.apply(batch);
        const last = (batch[batch.length - 1] as CommittedEntry).index;
        const applied = this.state.appliedIndex();
        if (applied !== last) throw new Error(`the state machine applied entries up to ${last} but reports applied index ${applied}`);
        this.hooks.onApplied(batch, results, applied);
      }
    } catch (error) {
      this.fail(error);
    } finally {
      this.running = null;
      if (this.waiting.length === 0 || this.failed) this.releaseIdle();
      else this.running = this.drain();
    }
  }

  private fail(error: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.waiting = [];
    this.releaseIdle();
    this.hooks.onFatal(error);
  }

  private releaseIdle(): void {
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
