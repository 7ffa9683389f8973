import { VersionConflictError, type Store } from '@timebox/core';
import { afterEach, describe, expect, it } from 'vitest';
import { LinkFaults } from '../../src/testing.js';
import { RaftUnavailableError } from '../../src/node/errors.js';
import { LocalCluster, waitFor } from '../member/support.js';
import { contentsOf, expectIdenticalStates, recordPublished, storeOn } from './support.js';

// Short enough to keep the tests quick, long enough for the majority to elect a leader meanwhile.
const PROPOSAL_TIMEOUT_MS = 3_000;

const event = (n: number) => [{ type: 'Wrote', data: { n } }];

describe('partitions through LinkFaults (three members over TCP)', () => {
  let cluster: LocalCluster | undefined;
  const stores: Store[] = [];

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
    await cluster?.close();
    cluster = undefined;
  });

  it(
    'an isolated leader stops acknowledging, the majority elects a new one and takes writes, and healing loses nothing',
    { timeout: 90_000 },
    async () => {
      const faults = new LinkFaults();
      cluster = await LocalCluster.start(3, { faults, proposalTimeoutMs: PROPOSAL_TIMEOUT_MS });
      const published = recordPublished(cluster);
      for (let i = 0; i < 3; i++) stores.push(storeOn(cluster, i));
      await Promise.all(stores.map((store) => store.ready()));

      // Acknowledged before the partition, through every member.
      const acknowledged: string[] = [];
      for (let n = 0; n < 6; n++) {
        await stores[n % 3]!.appendEvents(['acct'], n, event(n));
        acknowledged.push(`${n} Wrote {"n":${n}}`);
      }

      // Every member has applied them (a write resolves once applied where it was made, not everywhere).
      await cluster.converged();
      const old = await cluster.leader();
      const oldId = cluster.member(old).id;
      const oldTerm = cluster.member(old).status().term;
      const majority = [0, 1, 2].filter((i) => i !== old);
      faults.isolate(oldId);

      // The cut-off leader takes the write into its log but can never commit it: the proposal is
      // retried until proposalTimeoutMs and then rejects with RaftUnavailableError.
      const cutOff = stores[old]!.appendEvents(['acct'], 6, event(100)).then(
        () => 'acknowledged',
        (error: unknown) => error,
      );
      // A linearizable read there cannot confirm leadership either, while a local read answers at once.
      const cutOffRead = stores[old]!.getEvents(['acct']).then(
        () => 'answered',
        (error: unknown) => error,
      );
      const local = storeOn(cluster, old, 'local');
      stores.push(local);
      const localRead = await local.getEvents(['acct']);
      expect(localRead.map((e) => e.sequence)).toEqual([0, 1, 2, 3, 4, 5]);

      // CheckQuorum: without a majority the old leader steps down; the majority elects a newer one.
      await waitFor('the isolated leader to step down', () => cluster!.member(old).status().role !== 'leader');
      const next = await cluster.leader(20_000, majority);
      expect(cluster.member(next).status().term).toBeGreaterThan(oldTerm);

      // The majority side takes writes, from the new leader and from the other majority member.
      const other = majority.find((i) => i !== next)!;
      await stores[next]!.appendEvents(['acct'], 6, event(6));
      await stores[other]!.appendEvents(['acct'], 7, event(7));
      acknowledged.push('6 Wrote {"n":6}', '7 Wrote {"n":7}');
      await expect(stores[other]!.appendEvents(['acct'], 6, event(200))).rejects.toBeInstanceOf(VersionConflictError);

      const outcome = await cutOff;
      expect(outcome).toBeInstanceOf(RaftUnavailableError);
      expect((outcome as RaftUnavailableError).nodeId).toBe(oldId);
      expect((outcome as RaftUnavailableError).lastLeader).toBe(oldId);
      expect((outcome as RaftUnavailableError).lastTerm).toBe(oldTerm);
      expect(await cutOffRead).toBeInstanceOf(RaftUnavailableError);

      faults.heal();
      // One more write after healing, so every member learns the final commit index.
      await stores[old]!.appendEvents(['acct'], 8, event(8));
      acknowledged.push('8 Wrote {"n":8}');
      await cluster.converged();

      // Nothing acknowledged is lost; the write that timed out was never replicated, so it is gone
      // (in general a timed-out write is ambiguous: had a majority member received it, it could commit).
      for (const member of cluster.members) expect(contentsOf(member!)).toEqual([{ id: ['acct'], events: acknowledged }]);
      await expectIdenticalStates(cluster);
      // Every member published the same appends in the same order, each once.
      expect(published[0]).toHaveLength(acknowledged.length);
      expect(published[1]).toEqual(published[0]);
      expect(published[2]).toEqual(published[0]);
      // A linearizable read on the old leader now answers, with everything.
      expect((await stores[old]!.getEvents(['acct'])).map((e) => e.sequence)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    },
  );

  it('a write on a cut-off follower waits for a leader and commits once the partition heals', { timeout: 90_000 }, async () => {
    const faults = new LinkFaults();
    // Long enough that the pending write is still waiting when the partition heals.
    cluster = await LocalCluster.start(3, { faults, proposalTimeoutMs: 60_000 });
    const published = recordPublished(cluster);
    for (let i = 0; i < 3; i++) stores.push(storeOn(cluster, i));
    await Promise.all(stores.map((store) => store.ready()));
    await stores[0]!.appendEvents(['cart'], 0, event(0));

    const leader = await cluster.leader();
    const follower = [0, 1, 2].find((i) => i !== leader)!;
    const third = [0, 1, 2].find((i) => i !== leader && i !== follower)!;
    faults.partition([cluster.member(follower).id], [cluster.member(leader).id, cluster.member(third).id]);

    let settled = false;
    const pending = stores[follower]!.appendEvents(['other'], 0, event(1)).finally(() => (settled = true));
    // The majority keeps committing while the follower's write waits.
    for (let n = 1; n <= 5; n++) await stores[leader]!.appendEvents(['cart'], n, event(n));
    await waitFor('the cut-off follower to lose its leader', () => cluster!.member(follower).status().leader === null);
    expect(settled).toBe(false);
    expect(cluster.member(follower).state.loadEvents(['cart'], 0).length).toBeLessThan(6);

    faults.heal();
    await pending;
    await cluster.converged();
    expect(contentsOf(cluster.member(follower))).toEqual([
      { id: ['cart'], events: [0, 1, 2, 3, 4, 5].map((n) => `${n} Wrote {"n":${n}}`) },
      { id: ['other'], events: ['0 Wrote {"n":1}'] },
    ]);
    await expectIdenticalStates(cluster);
    expect(published[0]).toHaveLength(7);
    expect(published[1]).toEqual(published[0]);
    expect(published[2]).toEqual(published[0]);
  });
});
