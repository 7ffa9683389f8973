import { createStore, type AggregateId, type EventRecord } from '@timebox/core';
import { createMemoryStore, MemoryBackend, MemoryDatabase } from '@timebox/memory';
import { runPool, runTimedPool, type Comparison, type Trial, type Workload } from '../harness.js';
import { rssComparison } from '../rss/workload.js';
import type { BackendBench } from '../suite.js';
import { coldLoadComparison, fillColdAggregates, type ColdSizes } from './coldload.js';
import { contentionWorkload } from './contention.js';
import {
  appendWorkload,
  checkPattern,
  counterIds,
  execWorkload,
  INCREMENTED_DATA,
  verifyLogs,
  type CounterEvents,
  type TrialStore,
} from './counter.js';
import { emmettAppendWorkload, emmettHandlerWorkload } from './emmett-memory.js';
import { feedCostComparison, projectionCostComparison } from './feed-cost.js';
import {
  CATCH_UP_FULL,
  CATCH_UP_QUICK,
  filledLog,
  projectionComparisons,
  type CatchUpSizes,
  type FilledLog,
  type LagSizes,
} from './projection.js';

export interface MemorySizes {
  /** Sequential execs on the one hot aggregate. */
  readonly hotOps: number;
  /** Commands per trial of Emmett's handler on its one hot stream (it replays the stream each time). */
  readonly emmettHotOps: number;
  /** Execs spread round-robin over `aggregates`. */
  readonly spreadOps: number;
  readonly aggregates: number;
  /** Operations in flight at once in the spread workloads. */
  readonly concurrency: number;
  /** Appends per trial in the latency workloads, at 1 and at `concurrency` in flight. */
  readonly latencyOps: number;
  readonly cold: ColdSizes;
  readonly writers: number;
  readonly opsPerWriter: number;
  /** The log `projection-catch-up` reads. */
  readonly catchUp: CatchUpSizes;
  readonly lag: LagSizes;
}

export const FULL_SIZES: MemorySizes = {
  hotOps: 20_000,
  emmettHotOps: 1_000,
  spreadOps: 50_000,
  aggregates: 10_000,
  concurrency: 64,
  latencyOps: 20_000,
  cold: { events: 10_000, tail: 100, loads: 20 },
  writers: 8,
  opsPerWriter: 500,
  catchUp: CATCH_UP_FULL,
  lag: { ops: 5_000, aggregates: 10_000, concurrency: 64, maxMs: 5_000 },
};
export const QUICK_SIZES: MemorySizes = {
  hotOps: 5_000,
  emmettHotOps: 500,
  spreadOps: 20_000,
  aggregates: 10_000,
  concurrency: 64,
  latencyOps: 5_000,
  cold: { events: 10_000, tail: 100, loads: 5 },
  writers: 8,
  opsPerWriter: 200,
  catchUp: CATCH_UP_QUICK,
  lag: { ops: 2_000, aggregates: 10_000, concurrency: 64, maxMs: 2_000 },
};

/**
 * The memory backend's comparisons; `coldStore` must already hold the cold aggregates, and
 * `catchUpLog` is filled on first use.
 */
export function memoryComparisons(sizes: MemorySizes, coldStore: TrialStore['store'], catchUpLog: FilledLog): Comparison[] {
  const hotId: AggregateId[] = counterIds(1);
  const spreadIds = counterIds(sizes.aggregates);
  const c = sizes.concurrency;
  const spread = `${sizes.aggregates.toLocaleString('en-US')} aggregates, ${c} in flight`;
  const latency = (inFlight: number): Comparison => ({
    key: `append-latency-${inFlight}`,
    title: `store.appendEvents latency, ${inFlight} in flight over ${sizes.aggregates.toLocaleString('en-US')} aggregates`,
    kind: 'latency',
    params: { ops: sizes.latencyOps, aggregates: sizes.aggregates, concurrency: inFlight },
    subject: appendWorkload('store.appendEvents', openMemoryStore, { ops: sizes.latencyOps, ids: spreadIds, concurrency: inFlight }, true),
    baselines: [
      rawAppendWorkload(sizes.latencyOps, spreadIds, inFlight, true),
      emmettAppendWorkload(sizes.latencyOps, sizes.aggregates, inFlight, true),
    ],
  });
  return [
    {
      key: 'exec-hot',
      title: 'executor.exec, one hot aggregate, sequential',
      kind: 'throughput',
      params: { ops: sizes.hotOps, aggregates: 1, concurrency: 1 },
      subject: execWorkload('executor.exec', openMemoryStore, { ops: sizes.hotOps, ids: hotId, concurrency: 1 }),
      baselines: [rawAppendWorkload(sizes.hotOps, hotId, 1, false), emmettHandlerWorkload(sizes.emmettHotOps, 1, 1)],
    },
    {
      key: 'exec-many',
      title: `executor.exec, ${spread}`,
      kind: 'throughput',
      params: { ops: sizes.spreadOps, aggregates: sizes.aggregates, concurrency: c },
      subject: execWorkload('executor.exec', openMemoryStore, { ops: sizes.spreadOps, ids: spreadIds, concurrency: c }),
      baselines: [rawAppendWorkload(sizes.spreadOps, spreadIds, c, false), emmettHandlerWorkload(sizes.spreadOps, sizes.aggregates, c)],
    },
    latency(1),
    latency(c),
    feedCostComparison(openMemoryStore, { ops: sizes.spreadOps, ids: spreadIds, concurrency: c }, {}),
    projectionCostComparison(openMemoryStore, { ops: sizes.spreadOps, ids: spreadIds, concurrency: c }, {}),
    coldLoadComparison(coldStore, sizes.cold),
    {
      key: 'contention',
      title: `contention: ${sizes.writers} writers (stores over one MemoryDatabase) on one aggregate`,
      kind: 'throughput',
      params: { writers: sizes.writers, opsPerWriter: sizes.opsPerWriter },
      subject: contentionWorkload(`${sizes.writers} writers`, openShared(sizes.writers), sizes.writers, sizes.opsPerWriter),
      baselines: [
        execWorkload('1 writer, same total', openMemoryStore, { ops: sizes.writers * sizes.opsPerWriter, ids: hotId, concurrency: 1 }),
      ],
    },
    rssComparison('memory', { count: sizes.aggregates, emmett: true }),
    ...projectionComparisons({ catchUp: sizes.catchUp, lag: sizes.lag, log: catchUpLog, lagOpen: openMemoryStore, readSide: undefined }),
  ];
}

/** A fresh memory store per trial. */
async function openMemoryStore(): Promise<TrialStore> {
  const store = createMemoryStore<CounterEvents>();
  await store.ready();
  return { store, close: () => store.close() };
}

/** `writers` stores, each over its own `MemoryBackend`, all over one `MemoryDatabase`. */
function openShared(writers: number) {
  return async () => {
    const database = new MemoryDatabase();
    const stores = Array.from({ length: writers }, () => createStore<CounterEvents>(new MemoryBackend({ database })));
    await Promise.all(stores.map((store) => store.ready()));
    return { stores, close: async () => void (await Promise.all(stores.map((store) => store.close()))) };
  };
}

/**
 * The minimum work the memory backend does for the same pattern: one `MemoryBackend.append` of
 * one ready-made event record per operation, at the aggregate's next sequence. No store, no
 * validation, no JSON encoding, no executor.
 */
function rawAppendWorkload(ops: number, ids: readonly AggregateId[], concurrency: number, latency: boolean): Workload {
  checkPattern({ ids, concurrency });
  return {
    label: 'MemoryBackend.append',
    ops,
    async prepare(): Promise<Trial> {
      const backend = new MemoryBackend();
      await backend.ready();
      const count = ids.length;
      const latencies: number[] = [];
      const appendOne = async (i: number): Promise<void> => {
        const sequence = Math.floor(i / count);
        const event: EventRecord = { type: 'Incremented', sequence, timestamp: Date.now(), data: INCREMENTED_DATA };
        const result = await backend.append({ id: ids[i % count] as AggregateId, expectedSequence: sequence, events: [event] });
        if (!result.ok) throw new Error(`baseline append ${i} conflicted at sequence ${sequence}`);
      };
      return {
        run: () => (latency ? runTimedPool(ops, concurrency, appendOne, latencies) : runPool(ops, concurrency, appendOne)),
        verify: () => verifyLogs(backend, ids.slice(0, Math.min(ids.length, ops)), ops),
        close: () => backend.close(),
        ...(latency ? { latencies: () => latencies } : {}),
      };
    },
  };
}

/** The memory backend's benchmarks: nothing to connect to. */
export const memoryBench: BackendBench = {
  name: 'memory',
  async open({ quick, progress }) {
    const sizes = quick ? QUICK_SIZES : FULL_SIZES;
    const coldStore = createMemoryStore<CounterEvents>();
    await coldStore.ready();
    await fillColdAggregates(coldStore, sizes.cold);
    const catchUpLog = filledLog(openMemoryStore, sizes.catchUp, progress);
    return {
      comparisons: memoryComparisons(sizes, coldStore, catchUpLog),
      notes: [
        `Emmett's handler keeps no projection cache and replays its stream on every command; its hot trials stop at ${sizes.emmettHotOps.toLocaleString('en-US')} commands.`,
        'Memory rows: the memory backend process also holds the 10,000 events themselves, not only the projections.',
      ],
      close: async () => {
        await catchUpLog.close();
        await coldStore.close();
      },
    };
  },
};
