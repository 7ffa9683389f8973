import { randomUUID } from 'node:crypto';
import { createRedisStore, deleteStoreKeys } from '@timebox/redis';
import { Cluster } from 'ioredis';
import type { Comparison } from '../harness.js';
import type { BackendBench } from '../suite.js';
import { appendWorkload, counterIds, type CounterEvents, type TrialStore } from './counter.js';
import { startCluster } from './redis-cluster-server.js';

/** Shards of the sharded store: four per master of the three. */
const SHARDS = Number(process.env.BENCH_SHARDS ?? 12);

const ONE_SLOT = 'one slot (shard)';

interface ClusterSizes {
  readonly ops: number;
  readonly aggregates: number;
  readonly concurrency: number;
}

const FULL: ClusterSizes = { ops: 30_000, aggregates: 10_000, concurrency: 64 };
const QUICK: ClusterSizes = { ops: 10_000, aggregates: 10_000, concurrency: 64 };

/** A store on a fresh prefix over `client`, sharded or in one slot; its keys are deleted on close. */
async function openStore(client: Cluster, shards: number | undefined): Promise<TrialStore> {
  const prefix = `bench-${randomUUID()}`;
  const placement = shards === undefined ? { shard: 'bench' } : { shards };
  const store = createRedisStore<CounterEvents>({}, { client, prefix, ...placement });
  await store.ready();
  return {
    store,
    close: async () => {
      await store.close();
      await deleteStoreKeys(client, { prefix, ...placement });
    },
  };
}

/**
 * A sharded store against a one-slot store (`shard`) on the same throwaway three-master cluster,
 * through one ioredis Cluster client: appends at 64 in flight over 10,000 aggregates. Target: the
 * sharded store at ≥ 0.9 of the one-slot store's throughput (SPEC section 16, issue 18).
 */
export const redisClusterBench: BackendBench = {
  name: 'redis-cluster',
  async open({ quick, progress }) {
    const cluster = await startCluster(3);
    progress(`three-master cluster on ports ${cluster.ports.join(', ')}`);
    const client = new Cluster(cluster.ports.map((port) => ({ host: '127.0.0.1', port })));
    client.on('error', () => undefined);
    const sizes = quick ? QUICK : FULL;
    const ids = counterIds(sizes.aggregates);
    const pattern = { ops: sizes.ops, ids, concurrency: sizes.concurrency, verifyParallel: 32 };
    const comparisons: Comparison[] = [
      {
        key: 'sharded-append-64',
        title:
          `store.appendEvents, ${sizes.aggregates.toLocaleString('en-US')} aggregates, ${sizes.concurrency} in flight, ` +
          `three-master cluster: shards: ${SHARDS} vs one slot`,
        kind: 'throughput',
        params: { ops: sizes.ops, aggregates: sizes.aggregates, concurrency: sizes.concurrency, shards: SHARDS, masters: 3 },
        subject: appendWorkload(`shards: ${SHARDS}`, () => openStore(client, SHARDS), pattern, false),
        baselines: [appendWorkload(ONE_SLOT, () => openStore(client, undefined), pattern, false)],
        targets: { [ONE_SLOT]: { atLeast: 0.9 } },
      },
    ];
    return {
      warmups: quick ? 0 : 1,
      comparisons,
      notes: [`The sharded store spreads over ${SHARDS} hash tags; the one-slot store lives on one master of the same cluster.`],
      close: async () => {
        client.disconnect();
        await cluster.stop();
      },
    };
  },
};
