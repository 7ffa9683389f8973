import { createExecutor, type AggregateId, type Backend, type Command, type Executor, type Store } from '@timebox/core';
import { runPool, type Trial, type Workload } from '../harness.js';

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

/** A store for one trial, and how to release it (close it, delete its data). */
export interface TrialStore {
  readonly store: Store<CounterEvents>;
  close(): Promise<void>;
}

/**
 * `executor.exec(id, increment)` `ops` times, op i on aggregate i mod ids.length, `concurrency`
 * at a time, on a fresh store from `open` per trial. The executor's cache holds every aggregate,
 * so this measures the exec path (lock, command, validation, JSON, append, telemetry), not cold
 * loads. Verification reads `verifyParallel` aggregates at a time.
 */
export function execWorkload(
  label: string,
  open: () => Promise<TrialStore>,
  { ops, ids, concurrency, verifyParallel = 1 }: { ops: number; ids: readonly AggregateId[]; concurrency: number; verifyParallel?: number },
): Workload {
  return {
    label,
    ops,
    async prepare(): Promise<Trial> {
      const { store, close } = await open();
      const executor = createCounterExecutor(store, ids.length);
      const hot = concurrency === 1 && ids.length === 1;
      let hotCount = 0;
      return {
        async run() {
          if (hot) {
            const id = ids[0] as AggregateId;
            for (let i = 0; i < ops; i++) hotCount = (await executor.exec(id, increment)).count;
          } else {
            await runPool(ops, concurrency, (i) => executor.exec(ids[i % ids.length] as AggregateId, increment));
          }
        },
        async verify() {
          if (hot && hotCount !== ops) throw new Error(`exec returned count ${hotCount}, expected ${ops}`);
          await verifyLogs(store.backend, ids, ops, verifyParallel);
        },
        close,
      };
    },
  };
}
