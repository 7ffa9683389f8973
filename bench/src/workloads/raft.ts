import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { Etcd3 } from 'etcd3';
import { startEtcdCluster } from '../etcd/cluster.js';
import { runTimedPool, type Comparison, type Trial, type Unavailable, type Workload } from '../harness.js';
import { startLocalCluster } from '@timebox/raft';
import { messageOf, SuiteUnavailableError, type BackendBench } from '../suite.js';
import { appendWorkload, counterIds, type CounterEvents, type TrialStore } from './counter.js';

export interface RaftSizes {
  /** Writes per trial, dealt round-robin over `keys`, `concurrency` in flight. */
  readonly ops: number;
  readonly keys: number;
  readonly concurrency: number;
}

export const FULL_SIZES: RaftSizes = { ops: 10_000, keys: 1_000, concurrency: 64 };
export const QUICK_SIZES: RaftSizes = { ops: 3_000, keys: 1_000, concurrency: 64 };

/** The etcd binary: `TIMEBOX_ETCD`, else `etcd` on PATH. */
function etcdBinary(): string {
  return process.env.TIMEBOX_ETCD || 'etcd';
}

/**
 * The Timebox side: a three-member `@timebox/raft` cluster in this process (each member with its
 * own WAL, LMDB state and TCP listener on loopback), appending the same pattern through a store
 * on the leader, one event per append. A fresh cluster per trial, so every trial starts empty.
 */
function timeboxRaftSide({ ops, keys, concurrency }: RaftSizes): Workload {
  const open = async (): Promise<TrialStore> => {
    const cluster = await startLocalCluster({ size: 3 });
    await cluster.ready();
    const leader = cluster.members.findIndex((member) => member?.status().role === 'leader');
    const store = cluster.openStore<CounterEvents>({}, Math.max(leader, 0));
    await store.ready();
    return { store, close: () => cluster.close() };
  };
  return appendWorkload('Timebox raft store.appendEvents (3 members)', open, { ops, ids: counterIds(keys), concurrency }, true);
}

/** etcd puts (v3 gRPC through the `etcd3` client), `concurrency` in flight over `keys` keys. */
function etcdPutWorkload(endpoints: readonly string[], { ops, keys, concurrency }: RaftSizes): Workload {
  return {
    label: 'etcd put (3 members)',
    ops,
    async prepare(): Promise<Trial> {
      const client = new Etcd3({ hosts: [...endpoints] });
      const prefix = `bench/${randomUUID()}/`;
      // Connect before timing.
      await client.put(`${prefix}warm`).value('1');
      const latencies: number[] = [];
      return {
        run: () =>
          runTimedPool(
            ops,
            concurrency,
            async (i) => {
              await client.put(`${prefix}${i % keys}`).value(String(Math.floor(i / keys)));
            },
            latencies,
          ),
        async verify() {
          const count = await client.getAll().prefix(prefix).count();
          const expected = Math.min(ops, keys) + 1;
          if (count !== expected) throw new Error(`etcd holds ${count} keys under the trial's prefix, expected ${expected}`);
        },
        async close() {
          await client.delete().prefix(prefix);
          client.close();
        },
        latencies: () => latencies,
      };
    },
  };
}

/** The raft comparisons: Timebox's raft backend against etcd, same pattern. */
export function raftComparisons(endpoints: readonly string[], sizes: RaftSizes, subject: Workload | Unavailable): Comparison[] {
  return [
    {
      key: 'append-64',
      title: `appends, ${sizes.concurrency} in flight over ${sizes.keys.toLocaleString('en-US')} keys, 3 members on this machine`,
      kind: 'latency',
      params: { ops: sizes.ops, keys: sizes.keys, concurrency: sizes.concurrency, members: 3 },
      subject,
      baselines: [etcdPutWorkload(endpoints, sizes)],
    },
  ];
}

/** The raft benchmarks: a throwaway three-member etcd cluster as the peer. */
export const raftBench: BackendBench = {
  name: 'raft',
  async open({ quick, progress }) {
    const binary = etcdBinary();
    let version: string;
    try {
      version = execFileSync(binary, ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? '';
    } catch (error) {
      throw new SuiteUnavailableError(`etcd is not installed (${binary}: ${messageOf(error)}); install etcd or set TIMEBOX_ETCD`);
    }
    const cluster = await startEtcdCluster(binary, 3);
    progress(`${version}: members at ${cluster.endpoints.join(', ')}`);
    const sizes = quick ? QUICK_SIZES : FULL_SIZES;
    const subject = timeboxRaftSide(sizes);
    return {
      warmups: quick ? 0 : 1,
      comparisons: raftComparisons(cluster.endpoints, sizes, subject),
      notes: [
        'Both clusters run their three members on this one machine (Timebox: in one process; etcd: three processes), sharing its disk and cores.',
        'Target (backend issue): Timebox raft ≥ 10,000 appends/s and ≥ 0.5 of etcd at the same pattern.',
      ],
      close: () => cluster.stop(),
    };
  },
};
