import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { Etcd3 } from 'etcd3';
import { startEtcdCluster, type EtcdCluster } from '../etcd/cluster.js';
import { runTimedPool, type Comparison, type Trial, type Workload } from '../harness.js';
import { RaftBackend, startLocalCluster, type LocalMemberSettings } from '@timebox/raft';
import { messageOf, type BackendBench } from '../suite.js';
import { appendWorkload, counterIds, type CounterEvents, type TrialStore } from './counter.js';
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
import { gateComparison, timeboxGate } from './read-side.js';
import { benchCertificates, type BenchCertificates } from './raft-tls.js';
import { rollingRestartComparison } from './rolling-restart.js';

export interface RaftSizes {
  /** Writes per trial, dealt round-robin over `keys`, `concurrency` in flight. */
  readonly ops: number;
  readonly keys: number;
  readonly concurrency: number;
  /** The log `projection-catch-up` reads. */
  readonly catchUp: CatchUpSizes;
  readonly lag: LagSizes;
}

export const FULL_SIZES: RaftSizes = {
  ops: 10_000,
  keys: 1_000,
  concurrency: 64,
  catchUp: CATCH_UP_FULL,
  lag: { ops: 3_000, aggregates: 10_000, concurrency: 64, maxMs: 5_000 },
};
export const QUICK_SIZES: RaftSizes = {
  ops: 3_000,
  keys: 1_000,
  concurrency: 64,
  catchUp: CATCH_UP_QUICK,
  lag: { ops: 1_000, aggregates: 10_000, concurrency: 64, maxMs: 2_000 },
};

/** The etcd binary: `TIMEBOX_ETCD`, else `etcd` on PATH. */
function etcdBinary(): string {
  return process.env.TIMEBOX_ETCD || 'etcd';
}

/** Which member a side talks to: the leader, or a follower that forwards every write to it. */
type Via = 'leader' | 'follower';

/**
 * A fresh three-member `@timebox/raft` cluster in this process (each member with its own WAL,
 * LMDB state and TCP listener on loopback) and a store on its leader, or on a follower;
 * closing it stops the cluster.
 */
async function openCluster(via: Via = 'leader', member?: LocalMemberSettings): Promise<TrialStore> {
  const cluster = await startLocalCluster({ size: 3, member });
  await cluster.ready();
  const roles = cluster.members.map((member) => member?.status().role);
  const index = via === 'leader' ? roles.indexOf('leader') : roles.findIndex((role) => role !== undefined && role !== 'leader');
  if (index < 0) {
    await cluster.close();
    throw new Error(`no ${via} among the members of a ready cluster (roles: ${roles.join(', ')})`);
  }
  const store = cluster.openStore<CounterEvents>({}, index);
  await store.ready();
  return { store, close: () => cluster.close() };
}

/**
 * A Timebox side: appending the same pattern through a store on the leader (or a follower) of a
 * three-member cluster, one event per append. A fresh cluster per trial, so every trial starts empty.
 */
function timeboxRaftSide({ ops, keys, concurrency }: RaftSizes, via: Via, tls?: BenchCertificates): Workload {
  return appendWorkload(
    `Timebox raft store.appendEvents (3 members, store on the ${via}${tls === undefined ? '' : ', mutual TLS between members'})`,
    () => openCluster(via, tls === undefined ? undefined : { tls: tls.tls }),
    { ops, ids: counterIds(keys), concurrency },
    true,
  );
}

/**
 * The client endpoint of etcd's leader, or of one follower: each member's `Status` names the
 * leader's member ID and its own. Asked per trial, since leadership can move between trials.
 */
async function etcdEndpoint(endpoints: readonly string[], via: Via): Promise<string> {
  const roles: string[] = [];
  for (const endpoint of endpoints) {
    const client = new Etcd3({ hosts: endpoint });
    try {
      const status = await client.maintenance.status();
      const leads = status.leader === status.header.member_id;
      roles.push(`${endpoint} ${leads ? 'leader' : 'follower'}`);
      if (leads === (via === 'leader')) return endpoint;
    } finally {
      client.close();
    }
  }
  throw new Error(`no etcd ${via} found (${roles.join(', ')})`);
}

/**
 * etcd puts (v3 gRPC through the `etcd3` client), `concurrency` in flight over `keys` keys, sent
 * to etcd's leader (as its docs advise for write throughput: a follower forwards each put to the
 * leader) or, for the follower row, to a follower.
 */
function etcdPutWorkload(endpoints: readonly string[], { ops, keys, concurrency }: RaftSizes, via: Via): Workload {
  return {
    label: `etcd put (3 members, client on the ${via})`,
    ops,
    async prepare(): Promise<Trial> {
      const client = new Etcd3({ hosts: await etcdEndpoint(endpoints, via) });
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

/**
 * The raft comparisons: Timebox's raft backend against etcd, same pattern; then the projection
 * workloads (no peer: etcd has no projections), on one cluster filled once for the catch-up and a
 * fresh cluster per lag trial.
 */
export function raftComparisons(
  endpoints: readonly string[] | string,
  sizes: RaftSizes,
  readSide: { readonly log: FilledLog; readonly gap: string | undefined },
  tls: BenchCertificates | string,
): Comparison[] {
  const append = (via: Via): Comparison => ({
    key: via === 'leader' ? 'append-64' : 'append-64-follower',
    title:
      `appends, ${sizes.concurrency} in flight over ${sizes.keys.toLocaleString('en-US')} keys, 3 members on this machine, ` +
      `writes sent to the ${via}`,
    kind: 'latency',
    params: { ops: sizes.ops, keys: sizes.keys, concurrency: sizes.concurrency, members: 3, via },
    subject: timeboxGate(readSide.gap)(timeboxRaftSide(sizes, via)),
    baselines: [
      typeof endpoints === 'string'
        ? { label: `etcd put (3 members, client on the ${via})`, unavailable: endpoints }
        : etcdPutWorkload(endpoints, sizes, via),
    ],
    // Issue 19: at least twice etcd's rate with the fair baseline (each put sent to etcd's leader).
    targets: { [`etcd put (3 members, client on the ${via})`]: { atLeast: 2 } },
  });
  const gate = timeboxGate(readSide.gap);
  // The cost of TLS: the same appends with mutual TLS between the members, against plain TCP.
  const withTls: Comparison = {
    key: 'append-64-tls',
    title: `appends as in append-64, mutual TLS between the members against plain TCP (the ratio is TLS's cost)`,
    kind: 'latency',
    params: { ops: sizes.ops, keys: sizes.keys, concurrency: sizes.concurrency, members: 3, via: 'leader', tls: 'TLSv1.3, EC P-256' },
    subject:
      typeof tls === 'string'
        ? { label: 'Timebox raft store.appendEvents (3 members, mutual TLS)', unavailable: tls }
        : gate(timeboxRaftSide(sizes, 'leader', tls)),
    baselines: [gate(timeboxRaftSide(sizes, 'leader'))],
  };
  // What a live subscriber or projection on the leader's store costs the appends there.
  const consumerCost = (comparison: typeof feedCostComparison) =>
    gateComparison(
      comparison(
        () => openCluster('leader'),
        { ops: sizes.ops, ids: counterIds(sizes.keys), concurrency: sizes.concurrency },
        { members: 3 },
      ),
      readSide.gap,
      true,
    );
  return [
    append('leader'),
    append('follower'),
    withTls,
    consumerCost(feedCostComparison),
    consumerCost(projectionCostComparison),
    rollingRestartComparison(),
    ...projectionComparisons({
      catchUp: sizes.catchUp,
      lag: sizes.lag,
      log: readSide.log,
      lagOpen: () => openCluster('leader'),
      readSide: readSide.gap,
      params: { members: 3 },
    }),
  ];
}

/**
 * A throwaway three-member etcd cluster, or why there is none: without etcd the etcd baselines
 * are marked not measured and the Timebox rows (and the TLS row, whose baseline is Timebox
 * itself) still run. An etcd that is installed but cannot start fails the run, as a broken setup.
 */
async function openEtcd(binary: string, progress: (line: string) => void): Promise<EtcdCluster | string> {
  let version: string;
  try {
    version = execFileSync(binary, ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? '';
  } catch (error) {
    const missing = `etcd is not installed (${binary}: ${messageOf(error)}); install etcd or set TIMEBOX_ETCD`;
    progress(`etcd baselines not measured: ${missing}`);
    return missing;
  }
  const cluster = await startEtcdCluster(binary, 3);
  progress(`${version}: members at ${cluster.endpoints.join(', ')}`);
  return cluster;
}

/** The raft benchmarks: a throwaway three-member etcd cluster as the peer. */
export const raftBench: BackendBench = {
  name: 'raft',
  async open({ quick, progress }) {
    const binary = etcdBinary();
    // Without etcd the etcd baselines are marked not measured; the Timebox rows (and the TLS
    // row, whose baseline is Timebox itself) still run.
    const etcd = await openEtcd(binary, progress);
    const sizes = quick ? QUICK_SIZES : FULL_SIZES;
    // Checked on the class, without starting a cluster: a raft backend from before its read side
    // has no readLog, and its appends return no log positions, which core's store now requires.
    const gap =
      typeof (RaftBackend.prototype as { readLog?: unknown }).readLog === 'function'
        ? undefined
        : "this build's raft backend predates core's read side (no readLog; its appends return no log positions, which core's store now requires): no Timebox side can run until read-side-raft lands";
    if (gap !== undefined) progress(`Timebox sides not measured: ${gap}`);
    const log = filledLog(() => openCluster('leader'), sizes.catchUp, progress);
    const tls = await benchCertificates();
    return {
      warmups: quick ? 0 : 1,
      comparisons: raftComparisons(typeof etcd === 'string' ? etcd : etcd.endpoints, sizes, { log, gap }, tls),
      notes: [
        'Both clusters run their three members on this one machine (Timebox: in one process; etcd: three processes), sharing its disk and cores.',
        "Fair baseline: the etcd client of `append-64` sends every put to etcd's leader, as the Timebox store there sits on the leader; `append-64-follower` has both sides write through a follower, which forwards to the leader.",
        'Target: Timebox raft ≥ 10,000 appends/s and ≥ 2 × etcd in `append-64`, and ≥ 10,000 appends/s with TLS in `append-64-tls`.',
        ...(gap === undefined ? [] : [`Timebox not measured: ${gap}.`]),
        ...(typeof etcd === 'string' ? [`etcd not measured: ${etcd}.`] : []),
      ],
      close: async () => {
        await log.close();
        if (typeof etcd !== 'string') await etcd.stop();
        if (typeof tls !== 'string') await tls.remove();
      },
    };
  },
};
