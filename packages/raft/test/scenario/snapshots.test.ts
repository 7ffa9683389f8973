import { describe, expect, it } from 'vitest';
import { TestCluster } from '../support/cluster.js';

const three = ['n1', 'n2', 'n3'];
const encoder = new TextEncoder();

/** Snapshots n1's applied state (here: the list of applied IDs) and drops the log up to it. */
function compactLeader(cluster: TestCluster): number {
  const member = cluster.member('n1');
  const applied = cluster.node('n1').status().applied;
  member.storage.createSnapshot(applied, three, encoder.encode(JSON.stringify(cluster.appliedIds('n1'))));
  member.storage.compact(applied);
  return applied;
}

describe('snapshots and compaction', () => {
  it('a slow node is restored by InstallSnapshot when the entries it needs are compacted', () => {
    const cluster = new TestCluster(three);
    cluster.campaign('n1');
    cluster.crash('n3');
    for (let i = 0; i < 10; i++) cluster.propose('n1', `p${i}`);
    const snapshotIndex = compactLeader(cluster);
    cluster.propose('n1', 'after-snapshot');
    cluster.restart('n3');
    cluster.tick('n1');
    expect(cluster.member('n1').sent.some((m) => m.type === 'snapshot' && m.to === 'n3')).toBe(true);
    const n3 = cluster.member('n3');
    expect(n3.storage.snapshot().meta).toMatchObject({ index: snapshotIndex, voters: three });
    expect(cluster.node('n3').status().commit).toBe(cluster.node('n1').status().commit);
    // The compacted proposals arrive inside the snapshot, not as entries to apply.
    expect(cluster.appliedIds('n3').at(-1)).toBe('after-snapshot');
    expect(cluster.appliedIds('n3')).not.toContain('p0');
    expect(cluster.node('n1').followerProgress().get('n3')).toMatchObject({ state: 'replicate' });
  });

  it('a failed snapshot send returns the follower to probing', () => {
    const cluster = new TestCluster(three);
    cluster.campaign('n1');
    cluster.crash('n3');
    for (let i = 0; i < 5; i++) cluster.propose('n1', `p${i}`);
    compactLeader(cluster);
    cluster.restart('n3');
    cluster.drop((m) => m.type === 'snapshot');
    cluster.tick('n1');
    const leader = cluster.node('n1');
    expect(leader.followerProgress().get('n3')).toMatchObject({ state: 'snapshot' });
    leader.reportSnapshot('n3', false);
    expect(leader.followerProgress().get('n3')).toMatchObject({ state: 'probe', pendingSnapshot: 0 });
    // The next heartbeat answer unpauses the probe, which finds the gap again and retries the snapshot.
    cluster.heal();
    cluster.tick('n1');
    expect(cluster.node('n3').status().commit).toBe(leader.status().commit);
  });

  it("a follower that already holds the snapshot's last entry only moves its commit index", () => {
    const cluster = new TestCluster(three);
    cluster.campaign('n1');
    for (let i = 0; i < 3; i++) cluster.propose('n1', `p${i}`);
    const index = compactLeader(cluster);
    const n2 = cluster.node('n2');
    const before = cluster.member('n2').storage.snapshot().meta.index;
    n2.step({ type: 'snapshot', from: 'n1', to: 'n2', term: 1, snapshot: cluster.member('n1').storage.snapshot() });
    cluster.flush();
    expect(cluster.member('n2').storage.snapshot().meta.index).toBe(before);
    expect(n2.status().commit).toBeGreaterThanOrEqual(index);
  });
});
