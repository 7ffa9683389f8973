import { randomUUID } from 'node:crypto';
import { holdWhile, StoreClosedError, WakeSignal, type ArchiveRecordData } from '@timebox/core';
import type { Replicator } from './node/ports.js';
import { encodeCommand, type Command, type CommandResult, type LeaseHandle } from './state/commands.js';
import type { MaterializedState } from './state/materialized-state.js';

/**
 * Consumes archive records through replicated lease commands. A consumer proposes `lease` with its
 * own clock's time; when nothing is free it waits until the soonest lease expiry the state
 * reported, or until this node applies a command that added or freed a record (every node applies
 * every command, so a consumer on any node wakes), or at most `recheckMs` as a safety net. While
 * the handler runs it proposes `renew` every third of the lease, then `ack`, or `release` when the
 * handler threw. Lease expiry compares proposer clocks, so nodes' clocks must agree to well within
 * the lease time.
 */
export class ArchiveConsumer {
  /** Unique per backend instance: leases name their holder with it. */
  readonly consumerId = randomUUID();
  readonly #state: MaterializedState;
  readonly #replicator: Replicator<CommandResult>;
  readonly #leaseMs: number;
  readonly #recheckMs: number;
  /** Woken when this member applies an archive or release command; its generation tells a take that one landed meanwhile. */
  readonly #wakeup = new WakeSignal();
  readonly #unsubscribe: () => void;
  /** Aborted on close: held records stop being renewed and waiting consumers stop. */
  readonly #closing = new AbortController();

  constructor(state: MaterializedState, replicator: Replicator<CommandResult>, leaseMs: number, recheckMs: number) {
    this.#state = state;
    this.#replicator = replicator;
    this.#leaseMs = leaseMs;
    this.#recheckMs = recheckMs;
    this.#unsubscribe = state.onArchiveAvailable(() => this.#wakeup.wake());
  }

  async consume(handler: (record: ArchiveRecordData) => Promise<void>, signal: AbortSignal | undefined): Promise<void> {
    const { handle, record } = await this.#take(signal);
    const renewal = {
      intervalMs: Math.max(1, Math.floor(this.#leaseMs / 3)),
      renew: async () => (await this.#propose({ type: 'renew', ...handle, at: Date.now(), leaseMs: this.#leaseMs })).type === 'ok',
      until: this.#closing.signal,
    };
    try {
      await holdWhile(renewal, () => handler(record));
    } catch (error) {
      // Free it at once for the next consumer; if this fails the lease simply lapses.
      if (!this.#closing.signal.aborted) await this.#propose({ type: 'release', ...handle }).catch(() => undefined);
      throw error;
    }
    // A lost lease means another consumer has the record now: at-least-once allows the repeat.
    await this.#propose({ type: 'ack', ...handle });
  }

  /** Stops renewals and wakes waiting consumers, which reject with `StoreClosedError`. */
  close(): void {
    this.#closing.abort();
    this.#unsubscribe();
    this.#wakeup.wake();
  }

  async #take(signal: AbortSignal | undefined): Promise<{ handle: LeaseHandle; record: ArchiveRecordData }> {
    for (;;) {
      signal?.throwIfAborted();
      this.#assertOpen();
      const generation = this.#wakeup.generation;
      const result = await this.#propose({ type: 'lease', consumer: this.consumerId, at: Date.now(), leaseMs: this.#leaseMs });
      if (result.type === 'leased') {
        const handle: LeaseHandle = { record: result.record, lease: result.lease, consumer: this.consumerId };
        if (signal?.aborted === true || this.#closing.signal.aborted) {
          await this.#propose({ type: 'release', ...handle }).catch(() => undefined);
          signal?.throwIfAborted();
          this.#assertOpen();
        }
        // The lease was answered as soon as decided: its batch (maybe the archive too) may still be committing.
        await this.#state.whenCommitted();
        const record = this.#state.readArchiveRecord(result.record);
        // Gone already (a duplicate lease answer for a record since acknowledged): look again.
        if (record !== undefined) return { handle, record };
        continue;
      }
      if (result.type !== 'nothing-available') throw new Error(`unexpected answer to an archive lease: ${result.type}`);
      if (generation !== this.#wakeup.generation) continue;
      const untilExpiry = result.earliestExpiry === null ? Infinity : result.earliestExpiry - Date.now();
      await this.#wakeup.wait(Math.min(untilExpiry, this.#recheckMs), signal, this.#closing.signal);
    }
  }

  async #propose(command: Command): Promise<CommandResult> {
    const result = await this.#replicator.propose(encodeCommand(command));
    if (result.type === 'invalid-command') throw new Error(`the raft state refused an archive command: ${result.reason}`);
    return result;
  }

  #assertOpen(): void {
    if (this.#closing.signal.aborted) throw new StoreClosedError('consume the archive');
  }
}
