import { createStore, type Store } from '@timebox/core';
import { startLocalCluster, type LocalRaftCluster } from '@timebox/raft';
import type { Comparison, Trial, Workload } from '../harness.js';

/** Writes per trial are not fixed: the trial lasts one rolling restart. This bounds the count. */
const MAX_WRITES = 1_000_000;

/**
 * One rolling restart of a three-member cluster under a steady stream of writes (one at a time,
 * each to a new aggregate): each member in turn is closed and reopened from its data folder, the
 * leader last, waiting for each to be ready before the next. Every write's duration is recorded;
 * the longest is the longest write pause the restart caused (the `longestPauseMs` counter).
 * With `transfer`, closing the leader first hands leadership over (the default); without it the
 * others elect a leader after an election timeout.
 */
function rollingRestartSide(transfer: boolean): Workload {
  return {
    label: `rolling restart, leadership transfer ${transfer ? 'on (default)' : 'off'}`,
    ops: MAX_WRITES,
    async prepare(): Promise<Trial> {
      const cluster = await startLocalCluster({ size: 3 });
      await cluster.ready();
      const latencies: number[] = [];
      let acknowledged = 0;
      let stores: (Store | undefined)[] = cluster.members.map((member) =>
        member === undefined ? undefined : createStore(member.backend()),
      );
      return {
        async run() {
          let writer = 0;
          let stopped = false;
          let current: Promise<void> = Promise.resolve();
          const writing = (async () => {
            for (let n = 0; !stopped; n++) {
              const store = stores[writer];
              if (store === undefined) {
                // No store to write through yet: wait a turn of the event loop rather than spin.
                await new Promise((resolve) => setImmediate(resolve));
                continue;
              }
              const started = performance.now();
              current = store.appendEvents(['rolling', String(n)], 0, [{ type: 'Wrote', data: { n } }]).then(() => undefined);
              await current;
              latencies.push(performance.now() - started);
              acknowledged++;
            }
          })();
          for (const i of restartOrder(cluster)) {
            // Clients move to another member (as behind a load balancer that drains this one):
            // the write in flight on it finishes, the next ones go elsewhere.
            writer = (i + 1) % 3;
            await current;
            await stores[i]?.close();
            stores[i] = undefined;
            await cluster.stop(i, { transferLeadership: transfer });
            const member = await cluster.restart(i);
            await member.ready();
            stores[i] = createStore(member.backend());
          }
          stopped = true;
          await writing;
        },
        async verify() {
          if (acknowledged === 0) throw new Error('no write was acknowledged during the rolling restart');
          const store = stores.find((candidate) => candidate !== undefined)!;
          let written = 0;
          for await (const _id of store.iterateAggregates(['rolling'])) written++;
          if (written !== acknowledged) throw new Error(`${written} aggregates written, ${acknowledged} writes acknowledged`);
        },
        async close() {
          for (const store of stores) await store?.close();
          stores = [];
          await cluster.close();
        },
        latencies: () => latencies,
        counters: () => ({ longestPauseMs: Math.max(0, ...latencies) }),
        done: () => acknowledged,
      };
    },
  };
}

/** Followers first, the leader last: leadership moves once. */
function restartOrder(cluster: LocalRaftCluster): number[] {
  const roles = cluster.members.map((member) => member?.status().role);
  const leader = roles.indexOf('leader');
  return [0, 1, 2].filter((i) => i !== leader).concat(leader < 0 ? [] : [leader]);
}

/** The longest write pause of a rolling restart, with leadership transfer against without. */
export function rollingRestartComparison(): Comparison {
  return {
    key: 'rolling-restart',
    title: 'rolling restart of 3 members under writes (one at a time): longest write pause, with leadership transfer vs without',
    kind: 'latency',
    params: { members: 3, concurrency: 1 },
    subject: rollingRestartSide(true),
    baselines: [rollingRestartSide(false)],
  };
}
