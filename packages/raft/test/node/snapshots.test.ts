import { afterEach, describe, expect, it } from 'vitest';
import { FAST, ServerCluster, waitFor } from './support/cluster.js';

const three = ['n1', 'n2', 'n3'] as const;
let cluster: ServerCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

describe('RaftServer snapshots and compaction', () => {
  it('snapshots every snapshotEvery entries, compacts behind a margin, and restores a node that was down past it', async () => {
    cluster = new ServerCluster(three, { ...FAST, snapshotEvery: 10, compactionMargin: 3 });
    // Commands large against the state image, so the size rule (commands applied since the last
    // snapshot add up to its image) holds by the time the count rule does.
    const k = 'k'.repeat(2_000);
    await cluster.startAll();
    await Promise.all(three.map((id) => cluster!.server(id).ready()));
    await cluster.propose('n1', k);
    await cluster.converged();
    await cluster.stop('n3');
    const n3Last = cluster.storage('n3').lastIndex();

    for (let i = 0; i < 40; i++) await cluster.propose(i % 2 === 0 ? 'n1' : 'n2', k);
    for (const id of ['n1', 'n2']) {
      const storage = cluster.storage(id);
      const applied = cluster.state(id).appliedIndex();
      expect(cluster.log(id).snapshotsCreated).toBeGreaterThanOrEqual(3);
      // The latest snapshot is at most snapshotEvery behind, and the log keeps compactionMargin entries behind it.
      expect(applied - storage.snapshot().meta.index).toBeLessThan(10);
      expect(storage.firstIndex()).toBe(storage.snapshot().meta.index - 3 + 1);
      // n3 needs entries that are gone from both: only a snapshot can bring it back.
      expect(storage.firstIndex()).toBeGreaterThan(n3Last + 1);
    }

    const n3 = await cluster.start('n3');
    await n3.ready();
    await cluster.converged();
    const state = cluster.state('n3');
    expect(state.restores).toBeGreaterThanOrEqual(1);
    expect(state.counters.get(k)).toBe(41);
    expect(state.order).toEqual(cluster.state('n1').order);
    expect(cluster.storage('n3').snapshot().meta.index).toBeGreaterThan(n3Last);
    expect(n3.status().snapshotIndex).toBe(cluster.storage('n3').snapshot().meta.index);

    // And it keeps up from the log afterwards.
    await cluster.propose('n3', k);
    await cluster.converged();
    expect(cluster.state('n1').counters.get(k)).toBe(42);
  });

  it('a node whose state is wiped while down comes back through the snapshot in its own log', async () => {
    cluster = new ServerCluster(three, { ...FAST, snapshotEvery: 5, compactionMargin: 0 });
    await cluster.startAll();
    await Promise.all(three.map((id) => cluster!.server(id).ready()));
    for (let i = 0; i < 12; i++) await cluster.propose('n1', 'k');
    await cluster.converged();
    await waitFor(() => cluster!.storage('n2').snapshot().meta.index > 0, 'n2 to snapshot');
    await cluster.stop('n2');
    const fresh = cluster.wipeState('n2');
    await cluster.start('n2');
    expect(fresh.restores).toBe(1);
    await cluster.server('n2').ready();
    await cluster.converged();
    expect(fresh.counters.get('k')).toBe(12);
  });
});
