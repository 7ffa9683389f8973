/**
 * Shares read barriers between concurrent reads without weakening them. A read may join a barrier
 * only if that barrier was requested after the read began (a barrier answers "everything committed
 * when it was requested is applied here"), so a read that arrives while one is in flight waits
 * for the next, which every read arriving meanwhile shares: at most two barriers per round trip
 * however many reads there are.
 */
export class ReadFence {
  readonly #barrier: () => Promise<void>;
  #inFlight: Promise<void> | undefined;
  #next: Promise<void> | undefined;

  constructor(barrier: () => Promise<void>) {
    this.#barrier = barrier;
  }

  /** Resolves once a barrier requested after this call has passed. */
  wait(): Promise<void> {
    if (this.#inFlight === undefined) return this.#start();
    this.#next ??= this.#inFlight
      .catch(() => undefined)
      .then(() => {
        this.#next = undefined;
        return this.#start();
      });
    return this.#next;
  }

  #start(): Promise<void> {
    const run: Promise<void> = this.#barrier().finally(() => {
      if (this.#inFlight === run) this.#inFlight = undefined;
    });
    this.#inFlight = run;
    return run;
  }
}
