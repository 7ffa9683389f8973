import type { Store } from '@timebox/core';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalCluster } from '../member/support.js';
import { contentsOf, expectIdenticalStates, storeOn } from './support.js';

const SNAPSHOT_EVERY = 20;
const COMPACTION_MARGIN = 5;
const WRITES = 120;

describe('InstallSnapshot over TCP', () => {
  let cluster: LocalCluster | undefined;
  const stores: Store[] = [];

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
    await cluster?.close();
    cluster = undefined;
  });

  it('a follower kept down past log compaction catches up from a snapshot of the leader', { timeout: 90_000 }, async () => {
    cluster = await LocalCluster.start(3, { snapshotEvery: SNAPSHOT_EVERY, compactionMargin: COMPACTION_MARGIN });
    const leader = await cluster.leader();
    const down = [0, 1, 2].find((i) => i !== leader)!;
    const up = [0, 1, 2].find((i) => i !== leader && i !== down)!;
    const store = storeOn(cluster, leader);
    stores.push(store);
    await store.ready();
    await store.appendEvents(['early'], 0, [{ type: 'Wrote', data: { n: -1 } }]);
    await cluster.converged();

    const stoppedAt = cluster.member(down).status().lastIndex;
    await cluster.stop(down);
    // Enough writes on the remaining majority for several snapshots and compactions past the stopped member.
    for (let n = 0; n < WRITES; n++) await store.appendEvents(['acct', String(n % 4)], Math.floor(n / 4), [{ type: 'Wrote', data: { n } }]);
    const compactedTo = cluster.member(leader).status().snapshotIndex - COMPACTION_MARGIN;
    expect(compactedTo).toBeGreaterThan(stoppedAt + 1);

    const member = await cluster.restart(down);
    // Subscribed before any message reached it: only a snapshot received from the leader restores the state now.
    let restores = 0;
    member.state.onRestored(() => restores++);
    const gaps: string[] = [];
    const feed = await member.backend().watch({ events: () => {}, gap: (reason) => gaps.push(reason) });
    await member.ready();
    await cluster.converged();
    await feed.close();

    expect(restores).toBeGreaterThanOrEqual(1);
    expect(gaps.length).toBe(restores);
    expect(member.status().snapshotIndex).toBeGreaterThan(stoppedAt);
    expect(contentsOf(member)).toEqual(contentsOf(cluster.member(up)));
    expect(contentsOf(member).flatMap((aggregate) => aggregate.events)).toHaveLength(WRITES + 1);
    await expectIdenticalStates(cluster);

    // It is a full member again: a write through it commits and reaches everyone.
    const through = storeOn(cluster, down);
    stores.push(through);
    await through.appendEvents(['late'], 0, [{ type: 'Wrote', data: { n: WRITES } }]);
    await cluster.converged();
    await expectIdenticalStates(cluster);
  });
});
