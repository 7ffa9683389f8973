import { randomUUID } from 'node:crypto';
import { StoreClosedError } from '@timebox/core';
import type { CommittedEntry, Replicator, StateMachine } from './node/ports.js';

interface Pending {
  readonly entry: CommittedEntry;
  readonly resolve: (result: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * The single-process replicator: a log of one, with no network and no separate write-ahead log.
 * It numbers proposals itself and applies them straight to the state machine, gathering the
 * proposals of one event-loop turn (and those that arrive while a batch is being applied) into one
 * `apply` call, as the Raft driver does with a `Ready`. The state machine's durable applied index
 * is the log, so a restart continues from it. Useful on its own (one process, durable state) and
 * as the replicator of tests.
 *
 * If an `apply` fails, its proposals reject with that error and so does every later proposal:
 * the state is no longer known to match the log.
 */
export class LocalReplicator<Result> implements Replicator<Result> {
  readonly #state: StateMachine<Result>;
  #queue: Pending[] = [];
  #nextIndex: number;
  #nextProposal = 0;
  /** Unique per replicator, so IDs never repeat across restarts over the same state. */
  readonly #prefix = `local-${randomUUID()}-`;
  #scheduled = false;
  #running: Promise<void> | undefined;
  #failure: unknown;
  #closed = false;

  constructor(state: StateMachine<Result>) {
    this.#state = state;
    this.#nextIndex = state.appliedIndex() + 1;
  }

  propose(command: Uint8Array): Promise<Result> {
    if (this.#closed) return Promise.reject(new StoreClosedError('propose a command'));
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- the state machine's own failure, as thrown
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    if (!(command instanceof Uint8Array)) return Promise.reject(new TypeError('a command must be a Uint8Array'));
    return new Promise<Result>((resolve, reject) => {
      const entry: CommittedEntry = {
        index: this.#nextIndex++,
        kind: 'command',
        proposalId: this.#prefix + this.#nextProposal++,
        data: command,
      };
      this.#queue.push({ entry, resolve: resolve as (result: unknown) => void, reject });
      this.#schedule();
    });
  }

  async ready(): Promise<void> {
    if (this.#closed) throw new StoreClosedError('wait for readiness');
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- the state machine's own failure, as thrown
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Applies what was already proposed, then refuses new proposals. Does not close the state machine. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#running !== undefined || this.#queue.length > 0) {
      this.#schedule();
      await (this.#running ?? new Promise((resolve) => setImmediate(resolve)));
    }
  }

  #schedule(): void {
    if (this.#scheduled || this.#running !== undefined) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (this.#running === undefined && this.#queue.length > 0) this.#running = this.#drain();
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      this.#queue = [];
      if (this.#failure !== undefined) {
        for (const pending of batch) pending.reject(this.#failure);
        continue;
      }
      try {
        const results = await this.#state.apply(batch.map((pending) => pending.entry));
        for (const pending of batch) {
          const id = pending.entry.proposalId as string;
          if (results.has(id)) pending.resolve(results.get(id));
          else pending.reject(new Error(`the state machine returned no result for proposal ${id}`));
        }
      } catch (error) {
        this.#failure = error;
        for (const pending of batch) pending.reject(error);
      }
    }
    this.#running = undefined;
  }
}
