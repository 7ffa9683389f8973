import { StoreClosedError } from './errors.js';

/**
 * For adapters' archive consumers: a consumer that found nothing to take sleeps until something
 * may have changed (`wake`: a record arrived or was released), a timeout passes (the soonest
 * lease expiry), its signal aborts, or the consumer closes.
 */
export class WakeSignal {
  readonly #waiters = new Set<() => void>();
  #generation = 0;

  /** Counts wakes: read it before looking for a record and compare after, so a wake in between is not lost. */
  get generation(): number {
    return this.#generation;
  }

  /** Wakes every sleeper. */
  wake(): void {
    this.#generation++;
    for (const waiter of [...this.#waiters]) waiter();
  }

  /**
   * Resolves on the next wake or after `timeoutMs` (at least 1 ms; no timeout when undefined);
   * rejects with the signal's reason when `signal` aborts, or with `StoreClosedError` when
   * `closing` aborts. Settles at once when either already has.
   */
  wait(timeoutMs: number | undefined, signal?: AbortSignal, closing?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const settle = () => {
        this.#waiters.delete(settle);
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener('abort', settle);
        closing?.removeEventListener('abort', settle);
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- documented: rejects with the signal's own reason
        if (signal?.aborted === true) reject(signal.reason);
        else if (closing?.aborted === true) reject(new StoreClosedError('consume the archive'));
        else resolve();
      };
      const timer = timeoutMs === undefined ? undefined : setTimeout(settle, Math.max(1, timeoutMs));
      this.#waiters.add(settle);
      signal?.addEventListener('abort', settle, { once: true });
      closing?.addEventListener('abort', settle, { once: true });
      if (signal?.aborted === true || closing?.aborted === true) settle();
    });
  }
}
