import type { ArchiveRecordData } from '../backend.js';
import { holdWhile } from '../hold-renewal.js';
import { WakeSignal } from '../wake-signal.js';

interface QueuedRecord {
  readonly record: ArchiveRecordData;
  /** Epoch ms until which a consumer holds the record; 0 when free. */
  leasedUntil: number;
  /** Bumped on every lease, so a consumer whose lease lapsed cannot release another's. */
  lease: number;
}

/**
 * Archive records waiting for consumers. A consumer leases one record at a time; the record is
 * removed only when its handler resolves, released at once when the handler throws, and offered
 * to others when a lease lapses (the holder hung or died). The holder renews its lease every
 * third of `leaseMs` while its handler runs.
 */
export class ArchiveQueue {
  readonly #records: QueuedRecord[] = [];
  readonly #wakeup = new WakeSignal();
  #nextId = 0;

  constructor(readonly leaseMs: number) {}

  push(record: Omit<ArchiveRecordData, 'streamId'>): void {
    this.#records.push({ record: { ...record, streamId: `${Date.now()}-${this.#nextId++}` }, leasedUntil: 0, lease: 0 });
    this.#wakeup.wake();
  }

  get size(): number {
    return this.#records.length;
  }

  /**
   * Takes one record and runs `handler` on it. `holder` aborts when the consuming connection
   * closes (its process is going away): from then on the hold is no longer renewed, and the
   * record goes to another consumer once the lease lapses.
   */
  async consume(
    handler: (record: ArchiveRecordData) => Promise<void>,
    signal: AbortSignal | undefined,
    holder: AbortSignal,
  ): Promise<void> {
    const taken = await this.#take(signal);
    const lease = taken.lease;
    // A live consumer keeps its hold while the handler runs, however long it takes; only a
    // consumer that died (its connection closed) loses the record to another.
    const renewal = { intervalMs: Math.max(1, Math.floor(this.leaseMs / 3)), renew: async () => this.#renew(taken, lease), until: holder };
    try {
      await holdWhile(renewal, () => handler(taken.record));
    } catch (error) {
      if (taken.lease === lease) {
        taken.leasedUntil = 0;
        this.#wakeup.wake();
      }
      throw error;
    }
    const at = this.#records.indexOf(taken);
    if (at >= 0) this.#records.splice(at, 1);
  }

  /**
   * Extends the hold on `queued`, unless its lease lapsed and another consumer took it since;
   * answers whether the hold is still ours.
   */
  #renew(queued: QueuedRecord, lease: number): boolean {
    if (queued.lease !== lease) return false;
    queued.leasedUntil = Date.now() + this.leaseMs;
    return true;
  }

  async #take(signal: AbortSignal | undefined): Promise<QueuedRecord> {
    for (;;) {
      signal?.throwIfAborted();
      const now = Date.now();
      let soonest = Infinity;
      for (const queued of this.#records) {
        if (queued.leasedUntil <= now) {
          queued.leasedUntil = now + this.leaseMs;
          queued.lease++;
          return queued;
        }
        soonest = Math.min(soonest, queued.leasedUntil);
      }
      await this.#wakeup.wait(soonest === Infinity ? undefined : soonest - now, signal);
    }
  }
}
