import { randomUUID } from 'node:crypto';
import type { AggregateId } from '@timebox/core';
import { createRedisStore, deleteStoreKeys } from '@timebox/redis';
import { Redis } from 'ioredis';
import { runPool, type Comparison, type Trial, type Workload } from '../harness.js';
import { SuiteUnavailableError, type BackendBench } from '../suite.js';
import { execWorkload, verifyLogs, type CounterEvents, type TrialStore } from './counter.js';

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
}

export const FULL_SIZES: RedisSizes = { hotOps: 5_000, spreadOps: 30_000, aggregates: 1_000, concurrency: 64 };
export const QUICK_SIZES: RedisSizes = { hotOps: 1_000, spreadOps: 10_000, aggregates: 1_000, concurrency: 64 };

/** Where the benchmarks find Redis: `TIMEBOX_REDIS_URL`, else the default local port. */
function redisUrl(): string {
  return process.env.TIMEBOX_REDIS_URL || 'redis://127.0.0.1:6379';
}

/** The redis workloads, each measured against raw ioredis EVALSHA of a trivial script. */
export function redisComparisons(url: string, admin: Redis, sizes: RedisSizes): Comparison[] {
  if (sizes.aggregates <= sizes.concurrency) {
    // Appends compute each sequence from the operation index, which is only right when no two
    // operations in flight touch the same aggregate.
    throw new RangeError(`aggregates (${sizes.aggregates}) must exceed concurrency (${sizes.concurrency})`);
  }
  const hotId: AggregateId = Object.freeze(['counter', 'hot']);
  const spreadIds: AggregateId[] = Array.from({ length: sizes.aggregates }, (_, n) => Object.freeze(['counter', String(n)]));
  const spread = `${sizes.aggregates.toLocaleString('en-US')} aggregates, ${sizes.concurrency} in flight`;
  const spreadParams = { ops: sizes.spreadOps, aggregates: sizes.aggregates, concurrency: sizes.concurrency };
  return [
    {
      // The headline: both sides with ioredis's defaults (auto-pipelining off), as a user of
      // either would run them.
      key: 'append-many-aggregates',
      title: `store.appendEvents, ${spread}`,
      params: { ...spreadParams, autoPipelining: 'off' },
      subject: appendWorkload(url, admin, sizes.spreadOps, spreadIds, sizes.concurrency, false),
      baseline: evalshaWorkload(url, sizes.spreadOps, sizes.concurrency, false),
    },
    {
      key: 'append-many-aggregates-autopipelining',
      title: `store.appendEvents, ${spread}, auto-pipelining on`,
      params: { ...spreadParams, autoPipelining: 'on' },
      subject: appendWorkload(url, admin, sizes.spreadOps, spreadIds, sizes.concurrency, true),
      baseline: evalshaWorkload(url, sizes.spreadOps, sizes.concurrency, true),
    },
    {
      key: 'exec-many-aggregates',
      title: `executor.exec, ${spread}`,
      params: { ...spreadParams, autoPipelining: 'off' },
      subject: execWorkload('executor.exec', () => openStore(url, admin, false), { ops: sizes.spreadOps, ids: spreadIds, concurrency: sizes.concurrency, verifyParallel: 32 }),
      baseline: evalshaWorkload(url, sizes.spreadOps, sizes.concurrency, false),
    },
    {
      key: 'exec-hot-aggregate',
      title: 'executor.exec, one hot aggregate, sequential',
      params: { ops: sizes.hotOps, aggregates: 1, concurrency: 1, autoPipelining: 'off' },
      subject: execWorkload('executor.exec', () => openStore(url, admin, false), { ops: sizes.hotOps, ids: [hotId], concurrency: 1 }),
      baseline: evalshaWorkload(url, sizes.hotOps, 1, false),
    },
  ];
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

/** `store.appendEvents` of one event per operation, at the aggregate's next sequence. */
function appendWorkload(url: string, admin: Redis, ops: number, ids: readonly AggregateId[], concurrency: number, autoPipelining: boolean): Workload {
  return {
    label: 'store.appendEvents',
    ops,
    async prepare(): Promise<Trial> {
      const { store, close } = await openStore(url, admin, autoPipelining);
      const count = ids.length;
      const appendOne = (i: number) => store.appendEvents(ids[i % count] as AggregateId, Math.floor(i / count), [{ type: 'Incremented', data: { by: 1 } }]);
      return {
        run: () => runPool(ops, concurrency, appendOne),
        verify: () => verifyLogs(store.backend, ids, ops, 32),
        close,
      };
    },
  };
}

/** The raw-driver baseline: one EVALSHA of `return 1` per operation, on a plain ioredis client. */
function evalshaWorkload(url: string, ops: number, concurrency: number, autoPipelining: boolean): Workload {
  return {
    label: 'ioredis EVALSHA',
    ops,
    async prepare(): Promise<Trial> {
      const client = new Redis(url, { enableAutoPipelining: autoPipelining });
      const sha = (await client.script('LOAD', TRIVIAL_SCRIPT)) as string;
      let answered = 0;
      const callOne = async () => {
        if ((await client.evalsha(sha, 0)) === 1) answered++;
      };
      return {
        async run() {
          if (concurrency === 1) {
            for (let i = 0; i < ops; i++) await callOne();
          } else {
            await runPool(ops, concurrency, callOne);
          }
        },
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
  async open({ quick }) {
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
    return {
      comparisons: redisComparisons(url, admin, quick ? QUICK_SIZES : FULL_SIZES),
      close: async () => {
        await admin.quit();
      },
    };
  },
};
