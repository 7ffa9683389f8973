import { createExecutor, type AggregateId, type Backend, type Command, type Executor, type Store } from '@timebox/core';
import { runPool, runTimedPool, type Trial, type Workload } from '../harness.js';

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
  /**
   * Checks that `ops` operations dealt round-robin over `ids` left each aggregate exactly its
   * share, gap-free. Defaults to `verifyLogs` through the backend; a backend may answer with
   * one query instead.
   */
  verify?(ids: readonly AggregateId[], ops: number): Promise<void>;
}

/** Pattern of a spread workload: op i on `ids[i mod ids.length]`, `concurrency` at a time. */
export interface SpreadPattern {
  readonly ops: number;
  readonly ids: readonly AggregateId[];
  readonly concurrency: number;
  /** Aggregates read at once when verifying through the backend. */
  readonly verifyParallel?: number;
}

function verifyTrial(trial: TrialStore, ids: readonly AggregateId[], ops: number, parallel: number): Promise<void> {
  // Only the aggregates the ops reached: the others are empty by construction (fresh store).
  const touched = ids.slice(0, Math.min(ids.length, ops));
  return trial.verify ? trial.verify(touched, ops) : verifyLogs(trial.store.backend, touched, ops, parallel);
}

/**
 * `executor.exec(id, increment)` `ops` times on a fresh store per trial. The executor's cache
 * holds every aggregate and is filled before timing (one load per aggregate), so this measures
 * the exec path (lock, command, validation, JSON, append, telemetry), not cold loads.
 */
export function execWorkload(label: string, open: () => Promise<TrialStore>, pattern: SpreadPattern): Workload {
  const { ops, ids, concurrency, verifyParallel = 1 } = pattern;
  return {
    label,
    ops,
    async prepare(): Promise<Trial> {
      const trial = await open();
      const executor = createCounterExecutor(trial.store, ids.length);
      const touched = Math.min(ids.length, ops);
      await runPool(touched, Math.max(concurrency, 16), (n) => executor.get(ids[n] as AggregateId));
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
          await verifyTrial(trial, ids, ops, verifyParallel);
        },
        close: () => trial.close(),
      };
    },
  };
}

/**
 * `store.appendEvents(id, sequence, [one event])` `ops` times on a fresh store per trial, at
 * each aggregate's next sequence, recording every append's duration when `latency` is set.
 */
export function appendWorkload(label: string, open: () => Promise<TrialStore>, pattern: SpreadPattern, latency: boolean): Workload {
  const { ops, ids, concurrency, verifyParallel = 1 } = pattern;
  checkPattern(pattern);
  return {
    label,
    ops,
    async prepare(): Promise<Trial> {
      const trial = await open();
      const count = ids.length;
      const latencies: number[] = [];
      const appendOne = (i: number) =>
        trial.store.appendEvents(ids[i % count] as AggregateId, Math.floor(i / count), [{ type: 'Incremented', data: { by: 1 } }]);
      return {
        run: () => (latency ? runTimedPool(ops, concurrency, appendOne, latencies) : runPool(ops, concurrency, appendOne)),
        verify: () => verifyTrial(trial, ids, ops, verifyParallel),
        close: () => trial.close(),
        ...(latency ? { latencies: () => latencies } : {}),
      };
    },
  };
}

/**
 * Appends that compute each sequence from the operation index are only right when no two
 * operations in flight touch the same aggregate.
 */
export function checkPattern({ ids, concurrency }: { ids: readonly unknown[]; concurrency: number }): void {
  if (concurrency > 1 && ids.length <= concurrency) {
    throw new RangeError(`aggregates (${ids.length}) must exceed concurrency (${concurrency})`);
  }
}
