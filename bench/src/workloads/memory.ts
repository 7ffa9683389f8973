import type { AggregateId, EventRecord } from '@timebox/core';
import { createMemoryStore, MemoryBackend } from '@timebox/memory';
import { runPool, type Comparison, type Trial, type Workload } from '../harness.js';
import type { BackendBench } from '../suite.js';
import { execWorkload, INCREMENTED_DATA, verifyLogs, type CounterEvents, type TrialStore } from './counter.js';


export interface MemorySizes {
  /** Sequential execs on the one hot aggregate. */
  readonly hotOps: number;
  /** Execs spread round-robin over `aggregates`. */
  readonly spreadOps: number;
  readonly aggregates: number;
  /** Operations in flight at once in the spread workloads. */
  readonly concurrency: number;
}

export const FULL_SIZES: MemorySizes = { hotOps: 20_000, spreadOps: 50_000, aggregates: 10_000, concurrency: 64 };
export const QUICK_SIZES: MemorySizes = { hotOps: 5_000, spreadOps: 20_000, aggregates: 10_000, concurrency: 64 };

/** The exec workloads on the memory backend, each paired with raw `MemoryBackend.append`. */
export function memoryComparisons(sizes: MemorySizes): Comparison[] {
  if (sizes.aggregates <= sizes.concurrency) {
    // The baseline computes each append's sequence from the operation index, which is only
    // right when no two operations in flight touch the same aggregate.
    throw new RangeError(`aggregates (${sizes.aggregates}) must exceed concurrency (${sizes.concurrency})`);
  }
  const hotId: AggregateId = Object.freeze(['counter', 'hot']);
  const spreadIds: AggregateId[] = Array.from({ length: sizes.aggregates }, (_, n) => Object.freeze(['counter', String(n)]));
  return [
    {
      key: 'hot-aggregate',
      title: 'one hot aggregate, sequential',
      params: { ops: sizes.hotOps, aggregates: 1, concurrency: 1 },
      subject: execWorkload('exec', openMemoryStore, { ops: sizes.hotOps, ids: [hotId], concurrency: 1 }),
      baseline: appendWorkload(sizes.hotOps, [hotId], 1),
    },
    {
      key: 'many-aggregates',
      title: `${sizes.aggregates.toLocaleString('en-US')} aggregates, ${sizes.concurrency} in flight`,
      params: { ops: sizes.spreadOps, aggregates: sizes.aggregates, concurrency: sizes.concurrency },
      subject: execWorkload('exec', openMemoryStore, { ops: sizes.spreadOps, ids: spreadIds, concurrency: sizes.concurrency }),
      baseline: appendWorkload(sizes.spreadOps, spreadIds, sizes.concurrency),
    },
  ];
}


/** A fresh memory store per trial. */
async function openMemoryStore(): Promise<TrialStore> {
  const store = createMemoryStore<CounterEvents>();
  await store.ready();
  return { store, close: () => store.close() };
}

/**
 * The minimum work the memory backend does for the same pattern: one `MemoryBackend.append` of
 * one ready-made event record per operation, at the aggregate's next sequence. No store, no
 * validation, no JSON encoding, no executor.
 */
function appendWorkload(ops: number, ids: readonly AggregateId[], concurrency: number): Workload {
  return {
    label: 'backend.append',
    ops,
    async prepare(): Promise<Trial> {
      const backend = new MemoryBackend();
      await backend.ready();
      const count = ids.length;
      const appendOne = async (i: number): Promise<void> => {
        const sequence = Math.floor(i / count);
        const event: EventRecord = { type: 'Incremented', sequence, timestamp: Date.now(), data: INCREMENTED_DATA };
        const result = await backend.append({ id: ids[i % count] as AggregateId, expectedSequence: sequence, events: [event] });
        if (!result.ok) throw new Error(`baseline append ${i} conflicted at sequence ${sequence}`);
      };
      return {
        async run() {
          if (concurrency === 1) {
            for (let i = 0; i < ops; i++) await appendOne(i);
          } else {
            await runPool(ops, concurrency, appendOne);
          }
        },
        verify: () => verifyLogs(backend, ids, ops),
        close: () => backend.close(),
      };
    },
  };
}

/** The memory backend's benchmarks: nothing to connect to. */
export const memoryBench: BackendBench = {
  name: 'memory',
  async open({ quick }) {
    return { comparisons: memoryComparisons(quick ? QUICK_SIZES : FULL_SIZES), close: async () => undefined };
  },
};
