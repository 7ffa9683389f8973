import { createExecutor, type Store } from '@timebox/core';
import { aggregateId, EVENT_TYPE, type WorkloadSpec } from './protocol.js';

type Events = { [EVENT_TYPE]: { op: string } };

/**
 * Concurrent exec loops over a few aggregates shared by every member process, so members
 * conflict and retry. Each run of the command raises one event with a fresh payload ID, so every
 * append attempt (retries included) is told apart in the history.
 */
export class Workload {
  readonly #store: Store<Events>;
  readonly #spec: WorkloadSpec;
  readonly #client: string;
  #next = 0;
  #stopping = false;
  #loops: Promise<void>[] = [];

  constructor(store: Store<Events>, spec: WorkloadSpec, client: string) {
    this.#store = store;
    this.#spec = spec;
    this.#client = client;
  }

  start(): void {
    const executor = createExecutor<{ count: number }, Events>(this.#store, {
      initialState: () => ({ count: 0 }),
      appliers: { [EVENT_TYPE]: (state) => ({ count: state.count + 1 }) },
      // stdout carries the control protocol; the executor's complaints go to stderr.
      logger: { error: (message, error) => process.stderr.write(`${message}: ${String(error)}\n`) },
    });
    for (let w = 0; w < this.#spec.workers; w++) {
      this.#loops.push(
        (async () => {
          while (!this.#stopping) {
            const id = aggregateId(Math.floor(Math.random() * this.#spec.aggregates));
            try {
              await executor.exec(id, (_state, aggregator) => {
                aggregator.raise(EVENT_TYPE, { op: `${this.#client}.${this.#next++}` });
              });
            } catch {
              // Recorded by the recording backend; an unavailable cluster is expected while members are down.
              await new Promise((resolve) => setTimeout(resolve, 20));
            }
          }
        })(),
      );
    }
  }

  /** Stops starting operations and resolves once those in flight have settled. */
  async stop(): Promise<void> {
    this.#stopping = true;
    await Promise.all(this.#loops);
  }
}
