/** Stops renewing; resolves once a renewal still in flight has settled. */
export type StopRenewing = () => Promise<void>;

/**
 * For adapters: keeps a consumer's hold on an archive record alive while its handler runs, so a
 * slow handler in a live process is not mistaken for a dead one and its record handed to a second
 * consumer. Calls `renew` every `intervalMs`, one call at a time, until stopped or until `renew` answers
 * that the hold is lost (another consumer took the record over). A failed call (a dropped
 * connection, a closed client) is swallowed and tried again at the next tick: if renewals keep
 * failing the hold simply lapses and the record is redelivered, which at-least-once delivery
 * allows. The timer is unreferenced, so it never keeps the process alive.
 */
export function renewHold(intervalMs: number, renew: () => Promise<boolean>): StopRenewing {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let inFlight: Promise<void> = Promise.resolve();
  const schedule = () => {
    timer = setTimeout(tick, intervalMs);
    timer.unref();
  };
  const tick = () => {
    inFlight = renew().then(
      (held) => {
        if (held && !stopped) schedule();
      },
      () => {
        if (!stopped) schedule();
      },
    );
  };
  schedule();
  return () => {
    stopped = true;
    clearTimeout(timer);
    return inFlight;
  };
}
