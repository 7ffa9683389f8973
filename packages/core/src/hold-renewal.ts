/** How `holdWhile` keeps a hold alive. */
export interface HoldRenewal {
  /** How often to renew, in ms. */
  readonly intervalMs: number;
  /** Renews the hold; answers false once the hold is lost (another consumer took the record over). */
  readonly renew: () => Promise<boolean>;
  /** Renewal stops for good when this aborts (the consumer's store is closing: its process is going away). */
  readonly until?: AbortSignal | undefined;
}

/**
 * For adapters: runs `work` (an archive handler) while keeping the consumer's hold on its record
 * alive, so a slow handler in a live process is not mistaken for a dead one and its record handed
 * to a second consumer. Calls `renew` every `intervalMs`, one call at a time, until `work`
 * settles, the hold is lost, or `until` aborts; resolves or rejects as `work` does, once a renewal
 * still in flight has settled. A failed renewal (a dropped connection, a closed client) is
 * swallowed and tried again at the next tick: if renewals keep failing the hold simply lapses and
 * the record is redelivered, which at-least-once delivery allows. The timer is unreferenced, so it
 * never keeps the process alive.
 */
export async function holdWhile<T>({ intervalMs, renew, until }: HoldRenewal, work: () => Promise<T>): Promise<T> {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let inFlight: Promise<void> = Promise.resolve();
  const stop = () => {
    stopped = true;
    clearTimeout(timer);
  };
  const schedule = () => {
    if (stopped || until?.aborted === true) return;
    timer = setTimeout(tick, intervalMs);
    timer.unref();
  };
  const tick = () => {
    inFlight = renew().then(
      (held) => {
        if (held) schedule();
      },
      () => schedule(),
    );
  };
  until?.addEventListener('abort', stop, { once: true });
  schedule();
  try {
    return await work();
  } finally {
    stop();
    until?.removeEventListener('abort', stop);
    await inFlight;
  }
}
