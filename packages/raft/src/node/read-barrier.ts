import { randomUUID } from 'node:crypto';
import { NoLeaderError } from '../consensus/errors.js';
import type { ReadState } from '../consensus/types.js';

const MAX_CONTEXTS_PER_WAITER = 64;

interface Waiter {
  /** The context of the latest ReadIndex request, or null while waiting for a leader. */
  context: string | null;
  /**
   * Every context sent for this waiter. An answer to an earlier one is as good as to the latest
   * (each was sent after the wait began), and on a link slower than the retry interval it is the
   * only kind that ever arrives.
   */
  readonly sent: Set<string>;
  requestedAt: number;
  /** The read index the leader answered with, once it did. */
  index: number | null;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Waits for "everything committed cluster-wide when I asked is applied here": a ReadIndex request
 * (the leader confirms its leadership with a quorum and answers with its commit index), then a wait
 * until the local state machine has applied that index. A request lost to a leader change is sent
 * again with a fresh context.
 */
export class ReadBarrier {
  private readonly waiters = new Set<Waiter>();

  constructor(
    /** Sends a ReadIndex request; throws `NoLeaderError` when no leader is known. */
    private readonly request: (context: string) => void,
    private readonly retryTicks: number,
  ) {}

  /** Reads waiting (for a leader's answer or for entries to be applied). */
  get size(): number {
    return this.waiters.size;
  }

  wait(tick: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { context: null, sent: new Set(), requestedAt: tick, index: null, resolve, reject };
      this.waiters.add(waiter);
      this.send(waiter, tick);
    });
  }

  onTick(tick: number, leaderKnown: boolean, leaderChanged: boolean): void {
    if (!leaderKnown) return;
    for (const waiter of this.waiters) {
      if (waiter.index !== null) continue;
      if (waiter.context === null || leaderChanged || tick - waiter.requestedAt >= this.retryTicks) this.send(waiter, tick);
    }
  }

  onReadStates(states: readonly ReadState[]): void {
    for (const state of states) {
      for (const waiter of this.waiters) if (waiter.index === null && waiter.sent.has(state.context)) waiter.index = state.index;
    }
  }

  onApplied(applied: number): void {
    for (const waiter of [...this.waiters]) {
      if (waiter.index === null || waiter.index > applied) continue;
      this.waiters.delete(waiter);
      waiter.resolve();
    }
  }

  rejectAll(error: unknown): void {
    for (const waiter of [...this.waiters]) {
      this.waiters.delete(waiter);
      waiter.reject(error);
    }
  }

  private send(waiter: Waiter, tick: number): void {
    const context = randomUUID();
    try {
      this.request(context);
      waiter.context = context;
      waiter.sent.add(context);
      // Bounded: an answer slower than this many retries is lost, and the wait simply goes on.
      if (waiter.sent.size > MAX_CONTEXTS_PER_WAITER) waiter.sent.delete(waiter.sent.values().next().value as string);
      waiter.requestedAt = tick;
    } catch (error) {
      if (error instanceof NoLeaderError) {
        waiter.context = null;
        return;
      }
      this.waiters.delete(waiter);
      waiter.reject(error);
    }
  }
}
