/** A condition some caller waits on, checked again whenever the node's state may have moved. */
interface Waiter {
  /** True once satisfied; may throw to reject the wait. */
  readonly check: () => boolean;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * Waits on conditions over the consensus core's state (a membership change committed, another
 * node leading), re-checked by `poll()` after every input to the core and on every tick, so no
 * wait polls on a timer of its own.
 */
export class ConditionWaiters {
  private readonly waiters = new Set<Waiter>();

  /** Resolves once `check()` is true; rejects with `timeout()` after `timeoutMs`, or with what `check` throws. */
  wait(check: () => boolean, timeoutMs: number, timeout: () => Error): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        check,
        resolve,
        reject,
        timer: setTimeout(() => this.settle(waiter, () => reject(timeout())), timeoutMs),
      };
      this.waiters.add(waiter);
      this.pollOne(waiter);
    });
  }

  poll(): void {
    for (const waiter of [...this.waiters]) this.pollOne(waiter);
  }

  rejectAll(error: unknown): void {
    for (const waiter of [...this.waiters]) this.settle(waiter, () => waiter.reject(error));
  }

  private pollOne(waiter: Waiter): void {
    let done: boolean;
    try {
      done = waiter.check();
    } catch (error) {
      this.settle(waiter, () => waiter.reject(error));
      return;
    }
    if (done) this.settle(waiter, () => waiter.resolve());
  }

  private settle(waiter: Waiter, outcome: () => void): void {
    if (!this.waiters.delete(waiter)) return;
    clearTimeout(waiter.timer);
    outcome();
  }
}
