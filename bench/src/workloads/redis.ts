import { randomUUID } from 'node:crypto';
import type { Store } from '@timebox/core';
import { createRedisStore, deleteStoreKeys } from '@timebox/redis';
import { Redis } from 'ioredis';
import { runPool, runTimedPool, type Comparison, type Trial, type Workload } from '../harness.js';
import { rssComparison } from '../rss/workload.js';
import { SuiteUnavailableError, type BackendBench } from '../suite.js';
import { coldLoadComparison, fillColdAggregates, type ColdSizes } from './coldload.js';
import { contentionWorkload, type SharedStores } from './contention.js';
import { appendWorkload, counterIds, execWorkload, type CounterEvents, type TrialStore } from './counter.js';
import {
  CATCH_UP_FULL,
  CATCH_UP_QUICK,
  filledLog,
  projectionComparisons,
  type CatchUpSizes,
  type FilledLog,
  type LagSizes,
} from './projection.js';
import { feedCostComparison, projectionCostComparison } from './feed-cost.js';
import { appendGap, gateComparison, readSideGap } from './read-side.js';

/** The baseline's script: the least a server-side script call can do. */
const TRIVIAL_SCRIPT = 'return 1';

export interface RedisSizes {
  /** Sequential operations on the one hot aggregate. */
  readonly hotOps: number;
  /** Operations spread round-robin over `aggregates`. */
  readonly spreadOps: number;
  readonly aggregates: number;
  /** Operations in flight at once in the spread workloads. */
  readonly concurrency: number;
  /** Appends per trial in the latency workload at 1 in flight (at `concurrency`: `spreadOps`). */
  readonly latencyOps: number;
  readonly cold: ColdSizes;
  readonly writers: number;
  readonly opsPerWriter: number;
  /** The log `projection-catch-up` reads. */
  readonly catchUp: CatchUpSizes;
  readonly lag: LagSizes;
}

export const FULL_SIZES: RedisSizes = {
  hotOps: 4_000,
  spreadOps: 30_000,
  aggregates: 10_000,
  concurrency: 64,
  latencyOps: 4_000,
  cold: { events: 10_000, tail: 100, loads: 10 },
  writers: 8,
  opsPerWriter: 150,
  catchUp: CATCH_UP_FULL,
  lag: { ops: 3_000, aggregates: 10_000, concurrency: 64, maxMs: 5_000 },
};
export const QUICK_SIZES: RedisSizes = {
  hotOps: 1_000,
  spreadOps: 10_000,
  aggregates: 10_000,
  concurrency: 64,
  latencyOps: 1_000,
  cold: { events: 10_000, tail: 100, loads: 3 },
  writers: 8,
  opsPerWriter: 40,
  catchUp: CATCH_UP_QUICK,
  lag: { ops: 1_000, aggregates: 10_000, concurrency: 64, maxMs: 2_000 },
};

/** Where the benchmarks find Redis: `TIMEBOX_REDIS_URL`, else the default local port. */
function redisUrl(): string {
  return process.env.TIMEBOX_REDIS_URL || 'redis://127.0.0.1:6379';
}

/** What the read-side comparisons run on: the catch-up log, and why Timebox cannot run here (if so). */
interface ReadSide {
  readonly log: FilledLog;
  /** `appendGap`: with one, every Timebox side is unavailable with it and only the baselines run. */
  readonly timeboxGap: string | undefined;
  /** `timeboxGap`, else `readSideGap`: with one, the Timebox sides of the projection rows are unavailable. */
  readonly gap: string | undefined;
}

/**
 * The redis workloads, each measured against raw ioredis EVALSHA of a trivial script at the
 * same concurrency, both with ioredis's defaults (auto-pipelining off), as a user of either
 * would run them. `coldStore` must already hold the cold aggregates. The projection workloads
 * have no baseline but the `readAll` floor: Redis itself has no projections.
 */
export function redisComparisons(
  url: string,
  admin: Redis,
  sizes: RedisSizes,
  coldStore: Store<CounterEvents>,
  readSide: ReadSide,
): Comparison[] {
  const hotId = counterIds(1);
  const spreadIds = counterIds(sizes.aggregates);
  const c = sizes.concurrency;
  const spread = `${sizes.aggregates.toLocaleString('en-US')} aggregates, ${c} in flight`;
  const open = () => openStore(url, admin, false);
  const latency = (inFlight: number, ops: number): Comparison => ({
    key: `append-latency-${inFlight}`,
    title: `store.appendEvents latency, ${inFlight} in flight over ${sizes.aggregates.toLocaleString('en-US')} aggregates`,
    kind: 'latency',
    params: { ops, aggregates: sizes.aggregates, concurrency: inFlight, autoPipelining: 'off' },
    subject: appendWorkload('store.appendEvents', open, { ops, ids: spreadIds, concurrency: inFlight, verifyParallel: 32 }, true),
    baselines: [evalshaWorkload(url, ops, inFlight, true)],
  });
  const writes: Comparison[] = [
    {
      key: 'exec-hot',
      title: 'executor.exec, one hot aggregate, sequential',
      kind: 'throughput',
      params: { ops: sizes.hotOps, aggregates: 1, concurrency: 1, autoPipelining: 'off' },
      subject: execWorkload('executor.exec', open, { ops: sizes.hotOps, ids: hotId, concurrency: 1 }),
      baselines: [evalshaWorkload(url, sizes.hotOps, 1, false)],
    },
    {
      key: 'exec-many',
      title: `executor.exec, ${spread}`,
      kind: 'throughput',
      params: { ops: sizes.spreadOps, aggregates: sizes.aggregates, concurrency: c, autoPipelining: 'off' },
      subject: execWorkload('executor.exec', open, { ops: sizes.spreadOps, ids: spreadIds, concurrency: c, verifyParallel: 32 }),
      baselines: [evalshaWorkload(url, sizes.spreadOps, c, false)],
    },
    latency(1, sizes.latencyOps),
    latency(c, sizes.spreadOps),
    feedCostComparison(open, { ops: sizes.spreadOps, ids: spreadIds, concurrency: c, verifyParallel: 32 }, {}),
    projectionCostComparison(open, { ops: sizes.spreadOps, ids: spreadIds, concurrency: c, verifyParallel: 32 }, {}),
    coldLoadComparison(coldStore, sizes.cold),
    {
      key: 'contention',
      title: `contention: ${sizes.writers} writers (stores on one prefix) on one aggregate`,
      kind: 'throughput',
      params: { writers: sizes.writers, opsPerWriter: sizes.opsPerWriter },
      subject: contentionWorkload(
        `${sizes.writers} writers`,
        () => openShared(url, admin, sizes.writers),
        sizes.writers,
        sizes.opsPerWriter,
      ),
      baselines: [execWorkload('1 writer, same total', open, { ops: sizes.writers * sizes.opsPerWriter, ids: hotId, concurrency: 1 })],
    },
    rssComparison('redis', { count: sizes.aggregates, url, cleanup: async (prefix) => void (await deleteStoreKeys(admin, { prefix })) }),
  ];
  return [
    ...writes.map((comparison) =>
      gateComparison(comparison, readSide.timeboxGap, comparison.key === 'cold-load' || comparison.key === 'contention'),
    ),
    ...projectionComparisons({
      catchUp: sizes.catchUp,
      lag: sizes.lag,
      log: readSide.log,
      lagOpen: open,
      readSide: readSide.gap,
      params: { autoPipelining: 'off' },
    }),
  ];
}

/** `writers` stores with their own connections on one fresh prefix: separate processes' view. */
async function openShared(url: string, admin: Redis, writers: number): Promise<SharedStores> {
  const prefix = `bench-${randomUUID()}`;
  const stores = Array.from({ length: writers }, () => createRedisStore<CounterEvents>({}, { url, prefix }));
  await Promise.all(stores.map((store) => store.ready()));
  return {
    stores,
    async close() {
      await Promise.all(stores.map((store) => store.close()));
      await deleteStoreKeys(admin, { prefix });
    },
  };
}

/** A store on a fresh prefix, connected; its keys are deleted on close. */
async function openStore(url: string, admin: Redis, autoPipelining: boolean): Promise<TrialStore> {
  const prefix = `bench-${randomUUID()}`;
  const store = createRedisStore<CounterEvents>({}, { url, prefix, autoPipelining });
  await store.ready();
  return {
    store,
    close: async () => {
      await store.close();
      await deleteStoreKeys(admin, { prefix });
    },
  };
}

/** The raw-driver baseline: one EVALSHA of `return 1` per operation, on a plain ioredis client. */
function evalshaWorkload(url: string, ops: number, concurrency: number, latency: boolean): Workload {
  return {
    label: 'ioredis EVALSHA',
    ops,
    async prepare(): Promise<Trial> {
      const client = new Redis(url);
      const sha = (await client.script('LOAD', TRIVIAL_SCRIPT)) as string;
      let answered = 0;
      const callOne = async () => {
        if ((await client.evalsha(sha, 0)) === 1) answered++;
      };
      const latencies: number[] = [];
      return {
        run: () => (latency ? runTimedPool(ops, concurrency, callOne, latencies) : runPool(ops, concurrency, callOne)),
        ...(latency ? { latencies: () => latencies } : {}),
        async verify() {
          if (answered !== ops) throw new Error(`${answered} of ${ops} EVALSHA calls answered 1`);
        },
        close: async () => {
          await client.quit();
        },
      };
    },
  };
}

/** The redis backend's benchmarks, against `TIMEBOX_REDIS_URL` or 127.0.0.1:6379. */
export const redisBench: BackendBench = {
  name: 'redis',
  async open({ quick, progress }) {
    const url = redisUrl();
    const admin = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 2000 });
    admin.on('error', () => undefined);
    try {
      await admin.connect();
      await admin.ping();
    } catch (error) {
      admin.disconnect();
      throw new SuiteUnavailableError(
        `no Redis answers at ${url} (${error instanceof Error ? error.message : String(error)}): start one (redis-server) or set TIMEBOX_REDIS_URL`,
      );
    }
    const sizes = quick ? QUICK_SIZES : FULL_SIZES;
    const coldPrefix = `bench-cold-${randomUUID()}`;
    const coldStore = createRedisStore<CounterEvents>({}, { url, prefix: coldPrefix });
    await coldStore.ready();
    const timeboxGap = await appendGap(coldStore, 'redis');
    const gap = timeboxGap ?? readSideGap(coldStore.backend, 'redis');
    if (timeboxGap === undefined) await fillColdAggregates(coldStore, sizes.cold);
    if (gap !== undefined) progress(`Timebox ${timeboxGap === undefined ? 'projections' : 'sides'} not measured: ${gap}`);
    const log = filledLog(() => openStore(url, admin, false), sizes.catchUp, progress);
    return {
      warmups: quick ? 0 : 1,
      comparisons: redisComparisons(url, admin, sizes, coldStore, { log, timeboxGap, gap }),
      ...(gap === undefined ? {} : { notes: [`Timebox ${timeboxGap === undefined ? 'projections' : 'sides'} not measured: ${gap}.`] }),
      close: async () => {
        await log.close();
        await coldStore.close();
        await deleteStoreKeys(admin, { prefix: coldPrefix });
        await admin.quit();
      },
    };
  },
};
