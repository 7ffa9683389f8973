import { createExecutor, type AggregateId, type Backend, type Command, type Executor, type Store } from '@timebox/core';
import { runPool } from '../harness.js';

/** The counter aggregate every workload drives: one small event per operation. */
export type CounterEvents = { Incremented: { by: number } };

export interface Counter {
  readonly count: number;
}

/** The command under test: read nothing, raise one small event. */
export const increment: Command<Counter, CounterEvents> = (_state, aggregator) => {
  aggregator.raise('Incremented', { by: 1 });
};

/** The JSON text of `increment`'s event, for baselines that store it raw. */
export const INCREMENTED_DATA = JSON.stringify({ by: 1 });

/** An executor of counters whose cache holds `cacheSize` of them. */
export function createCounterExecutor(store: Store<CounterEvents>, cacheSize: number): Executor<Counter, CounterEvents> {
  return createExecutor(store, {
    initialState: () => ({ count: 0 }),
    appliers: { Incremented: (state, data) => ({ count: state.count + data.by }) },
    cacheSize: Math.max(cacheSize, 1),
  });
}

/** `count` distinct, frozen counter IDs. */
export function counterIds(count: number): AggregateId[] {
  return Array.from({ length: count }, (_, n) => Object.freeze(['counter', String(n)]));
}

/** How many operations of `ops`, dealt round-robin, land on aggregate `n` of `count`. */
export function opsOn(n: number, ops: number, count: number): number {
  return Math.floor(ops / count) + (n < ops % count ? 1 : 0);
}

/**
 * Checks that every aggregate holds exactly its share of events, numbered without gaps, reading
 * `parallel` aggregates at a time.
 */
export async function verifyLogs(backend: Backend, ids: readonly AggregateId[], ops: number, parallel = 1): Promise<void> {
  await runPool(ids.length, parallel, async (n) => {
    const events = await backend.loadEvents(ids[n] as AggregateId, 0);
    const expected = opsOn(n, ops, ids.length);
    if (events.length !== expected || events.some((event, i) => event.sequence !== i)) {
      throw new Error(`aggregate ${n}: expected ${expected} events numbered 0…${expected - 1}, found ${events.length}`);
    }
  });
}
