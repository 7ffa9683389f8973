import type { MemberHandle } from '../crash/member-handle.js';
import { waitFor } from '../crash/member-handle.js';

/** How long one write may take before the writer gives up on its answer (its outcome is then unknown). */
const WRITE_TIMEOUT_MS = 30_000;

/**
 * The test process as a client behind a load balancer: writes one event per fresh aggregate
 * (`write <k>`, see `protocol.ts`), one after another, each through the next member process in
 * rotation (round robin), until stopped. A member taken out of rotation (`drain`) gets no new
 * write, and `drain` resolves once the write it was serving settled, so the member can then be
 * stopped without failing a write that is not its own fault.
 *
 * Remembers the writes acknowledged (a failed write's outcome is unknown: it may have committed)
 * and the longest time between two acknowledgements (the write pause clients see).
 */
export class LoadBalancedWriter {
  readonly acknowledged: number[] = [];
  failures = 0;
  /** The longest time between two acknowledgements since the last `resetPause`. */
  longestPauseMs = 0;
  /** The member the write that ended the longest pause went through. */
  longestPauseVia: string | null = null;
  readonly #members: () => readonly (MemberHandle | undefined)[];
  readonly #outOfRotation = new Set<string>();
  #serving: { readonly id: string; readonly settled: Promise<unknown> } | null = null;
  #lastAckAt: number | null = null;
  #next = 0;
  #turn = 0;
  #stopped = false;
  #running: Promise<void> | null = null;

  /** `members` lists the member processes (a restarted one replaces its old handle there). */
  constructor(members: () => readonly (MemberHandle | undefined)[]) {
    this.#members = members;
  }

  start(): void {
    this.#running = this.#loop();
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) {
      const candidates = this.#members().filter(
        (h): h is MemberHandle => h !== undefined && h.alive && h.has('ready') && !h.has('closing') && !this.#outOfRotation.has(h.id),
      );
      const target = candidates[this.#turn++ % Math.max(candidates.length, 1)];
      if (target === undefined) {
        await sleep(20);
        continue;
      }
      const k = this.#next++;
      const write = target.call('write', [k], WRITE_TIMEOUT_MS);
      this.#serving = { id: target.id, settled: write.catch(() => undefined) };
      try {
        await write;
        this.acknowledged.push(k);
        const now = performance.now();
        if (this.#lastAckAt !== null && now - this.#lastAckAt > this.longestPauseMs) {
          this.longestPauseMs = now - this.#lastAckAt;
          this.longestPauseVia = target.id;
        }
        this.#lastAckAt = now;
      } catch {
        // Back off on a timer: a write that fails at once must not spin on microtasks.
        this.failures++;
        await sleep(20);
      } finally {
        this.#serving = null;
      }
    }
  }

  /** Takes member `id` out of rotation and waits until the write it was serving settled. */
  async drain(id: string): Promise<void> {
    this.#outOfRotation.add(id);
    const serving = this.#serving;
    if (serving?.id === id) await serving.settled;
  }

  /** Puts member `id` back into rotation. */
  readmit(id: string): void {
    this.#outOfRotation.delete(id);
  }

  /**
   * Starts a new measurement of the longest pause; a pause in progress counts in full (it is
   * measured from the last acknowledgement, which may come before this call).
   */
  resetPause(): void {
    this.longestPauseMs = 0;
    this.longestPauseVia = null;
  }

  /** Waits until `count` more writes were acknowledged. */
  async more(count: number, timeoutMs = 60_000): Promise<void> {
    const target = this.acknowledged.length + count;
    await waitFor(
      () => this.acknowledged.length >= target,
      timeoutMs,
      () => `${count} more acknowledged writes (at ${this.acknowledged.length} of ${target}, ${this.failures} failed)`,
    );
  }

  /** Stops writing and waits for the write in flight to settle. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
