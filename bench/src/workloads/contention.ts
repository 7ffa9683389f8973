import { MaxRetriesExceededError, type AggregateId, type Command, type Store } from '@timebox/core';
import type { Trial, Workload } from '../harness.js';
import { createCounterExecutor, type Counter, type CounterEvents } from './counter.js';

/** Several stores over one backend, as separate processes would hold, and how to release them. */
export interface SharedStores {
  readonly stores: readonly Store<CounterEvents>[];
  close(): Promise<void>;
}

/** Thrown when the final log does not prove that every success, and nothing else, was stored. */
export class ContentionProofError extends Error {
  override readonly name = 'ContentionProofError';
}

const HOT: AggregateId = Object.freeze(['counter', 'contended']);

/**
 * `writers` executors, each over its own store (all stores over one backend), each running
 * `opsPerWriter` execs one after another on the same aggregate. Conflicts between them are real
 * (no in-process lock spans two stores), so the executors retry. Counts every run of the command
 * (`attempts`), every resolved exec (`successes`) and every exec that ran out of retries
 * (`gaveUp`); retries = attempts − successes.
 *
 * The proof, after every trial: the aggregate's log holds exactly `successes` events, numbered
 * 0… without gaps, and the last exec of any writer saw a count no higher than that.
 */
export function contentionWorkload(
  label: string,
  openShared: () => Promise<SharedStores>,
  writers: number,
  opsPerWriter: number,
): Workload {
  return {
    label,
    ops: writers * opsPerWriter,
    async prepare(): Promise<Trial> {
      const shared = await openShared();
      if (shared.stores.length !== writers) throw new Error(`expected ${writers} stores, got ${shared.stores.length}`);
      let attempts = 0;
      let successes = 0;
      let gaveUp = 0;
      let highest = 0;
      const command: Command<Counter, CounterEvents> = (_state, aggregator) => {
        attempts++;
        aggregator.raise('Incremented', { by: 1 });
      };
      const executors = shared.stores.map((store) => createCounterExecutor(store, 1));
      return {
        async run() {
          await Promise.all(
            executors.map(async (executor) => {
              for (let i = 0; i < opsPerWriter; i++) {
                try {
                  const state = await executor.exec(HOT, command);
                  successes++;
                  highest = Math.max(highest, state.count);
                } catch (error) {
                  if (!(error instanceof MaxRetriesExceededError)) throw error;
                  gaveUp++;
                }
              }
            }),
          );
        },
        async verify() {
          const events = await (shared.stores[0] as Store<CounterEvents>).getEvents(HOT);
          const gap = events.findIndex((event, i) => event.sequence !== i);
          if (events.length !== successes || gap !== -1 || highest > successes) {
            throw new ContentionProofError(
              `contention proof failed (${label}): ${successes} successful execs, ${gaveUp} gave up, but the log holds ` +
                `${events.length} events${gap === -1 ? '' : `, first gap at index ${gap}`}; highest count seen ${highest}`,
            );
          }
        },
        close: () => shared.close(),
        counters: () => ({ attempts, successes, retries: attempts - successes, gaveUp }),
      };
    },
  };
}
