import { InvalidArgumentError, type Store } from '@timebox/core';
import { afterEach, describe, expect, it } from 'vitest';
import { LinkFaults } from '../../src/testing.js';
import { RaftBackend } from '../../src/raft-backend.js';
import { LocalCluster } from '../member/support.js';
import { storeOn } from './support.js';

// Long enough that the follower cannot have applied the write when it is read right after the acknowledgement.
const LAGGING_LINK_MS = 1_500;

describe('reads on a three-member cluster', () => {
  let cluster: LocalCluster | undefined;
  const stores: Store[] = [];

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
    await cluster?.close();
    cluster = undefined;
  });

  it(
    'a linearizable read on a lagging follower sees a write acknowledged through the leader; a local read there does not yet',
    { timeout: 60_000 },
    async () => {
      const faults = new LinkFaults();
      cluster = await LocalCluster.start(3, { faults });
      const leader = await cluster.leader();
      const lagging = [0, 1, 2].find((i) => i !== leader)!;
      const writer = storeOn(cluster, leader);
      const linearizable = storeOn(cluster, lagging);
      const local = storeOn(cluster, lagging, 'local');
      stores.push(writer, linearizable, local);
      await Promise.all(stores.map((store) => store.ready()));

      // Slow only leader → lagging follower: the leader and the third member still make a majority.
      faults.delay(cluster.member(leader).id, cluster.member(lagging).id, LAGGING_LINK_MS);
      await writer.appendEvents(['acct'], 0, [{ type: 'Opened', data: { owner: 'ada' } }]);
      const committed = cluster.member(leader).status().commit;

      // The follower has not applied the write (its append waits on the slow link), so a local read misses it…
      expect(cluster.member(lagging).status().applied).toBeLessThan(committed);
      expect(await local.getEvents(['acct'])).toEqual([]);
      // …while a linearizable read there waits until it has applied what the leader had committed.
      const read = await linearizable.getEvents(['acct']);
      expect(read.map((event) => event.payload)).toEqual([{ owner: 'ada' }]);
      expect(cluster.member(lagging).status().applied).toBeGreaterThanOrEqual(committed);
    },
  );

  it('concurrent linearizable reads share read barriers, and every one of them waits for one', { timeout: 60_000 }, async () => {
    cluster = await LocalCluster.start(3);
    const member = cluster.member(0);
    let barriers = 0;
    const backend = new RaftBackend({
      state: member.state,
      replicator: {
        propose: (command) => member.server.propose(command),
        ready: () => member.ready(),
        readBarrier: () => {
          barriers++;
          return member.server.readBarrier();
        },
        close: async () => {},
      },
    });
    await backend.ready();
    const reads = await Promise.all(Array.from({ length: 50 }, () => backend.listAggregates([], { limit: 100 })));
    expect(reads.every((page) => page.items.length === 0)).toBe(true);
    // One barrier for the first read, one shared by the 49 that arrived while it was in flight.
    expect(barriers).toBe(2);
    await backend.listAggregates([], { limit: 100 });
    expect(barriers).toBe(3);
    const local = new RaftBackend({ state: member.state, replicator: member.server, reads: 'local' });
    await local.listAggregates([], { limit: 100 });
    expect(barriers).toBe(3);
    await Promise.all([backend.close(), local.close()]);
  });

  it(
    'a local read right after a write is answered sees it, though the write was answered before its state commit',
    { timeout: 60_000 },
    async () => {
      cluster = await LocalCluster.start(1);
      const member = cluster.member(0);
      const store = storeOn(cluster, 0, 'local');
      stores.push(store);
      await store.ready();
      let heldBack = 0;
      await Promise.all(
        Array.from({ length: 16 }, async (_, writer) => {
          for (let round = 0; round < 10; round++) {
            await store.appendEvents(['w', String(writer)], round, [{ type: 'Counted', data: { round } }]);
            // Answered once its result was final: the state may still be committing it…
            if (member.state.loadEvents(['w', String(writer)], 0).length === round) heldBack++;
            // …but a read through the backend waits for that commit.
            expect((await store.getEvents(['w', String(writer)])).map((event) => event.sequence)).toEqual(
              Array.from({ length: round + 1 }, (_, i) => i),
            );
          }
        }),
      );
      // Most answers come before their commit; the backend's reads never showed that.
      expect(heldBack).toBeGreaterThan(0);
    },
  );

  it('refuses an unknown read mode, naming the option', async () => {
    cluster = await LocalCluster.start(1);
    const member = cluster.member(0);
    expect(() => new RaftBackend({ state: member.state, replicator: member.server, reads: 'eventual' as 'local' })).toThrow(
      InvalidArgumentError,
    );
    expect(() => member.backend({ reads: 'fast' as 'local' })).toThrow(/reads/);
  });
});
