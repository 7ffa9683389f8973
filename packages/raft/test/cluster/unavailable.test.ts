import type { Store } from '@timebox/core';
import { afterEach, describe, expect, it } from 'vitest';
import { RaftUnavailableError } from '../../src/node/errors.js';
import { LinkFaults } from '../../src/testing.js';
import { LocalCluster, waitFor } from '../member/support.js';
import { storeOn } from './support.js';

const PROPOSAL_TIMEOUT_MS = 1_500;
const event = (n: number) => [{ type: 'Wrote', data: { n } }];

/** What `call` rejected with, failing the test if it resolved. */
async function rejection(call: Promise<unknown>): Promise<RaftUnavailableError> {
  const outcome = await call.then(
    () => 'resolved',
    (error: unknown) => error,
  );
  expect(outcome).toBeInstanceOf(RaftUnavailableError);
  return outcome as RaftUnavailableError;
}

describe('RaftUnavailableError says which case it is (three members over TCP)', () => {
  let cluster: LocalCluster | undefined;
  const stores: Store[] = [];

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
    await cluster?.close();
    cluster = undefined;
  });

  it("a member cut off in a minority knows no leader: reason 'no-leader'", { timeout: 60_000 }, async () => {
    const faults = new LinkFaults();
    cluster = await LocalCluster.start(3, { faults, proposalTimeoutMs: PROPOSAL_TIMEOUT_MS });
    for (let i = 0; i < 3; i++) stores.push(storeOn(cluster, i));
    await Promise.all(stores.map((store) => store.ready()));
    const leader = await cluster.leader();
    const leaderId = cluster.member(leader).id;
    const term = cluster.member(leader).status().term;
    const cutOff = (leader + 1) % 3;
    faults.isolate(cluster.member(cutOff).id);
    // Its election timeout runs out long before the proposal's: it drops the leader it knew.
    await waitFor('the cut-off member to forget its leader', () => cluster!.member(cutOff).status().leader === null);

    const write = await rejection(stores[cutOff]!.appendEvents(['acct'], 0, event(0)));
    expect(write.reason).toBe('no-leader');
    expect(write.message).toContain(`no leader known within ${PROPOSAL_TIMEOUT_MS} ms`);
    expect(write.message).toContain(`last known leader "${leaderId}" in term ${term}`);
    expect(write.leader).toBeNull();
    expect(write.lastLeader).toBe(leaderId);
    const read = await rejection(stores[cutOff]!.getEvents(['acct']));
    expect(read.reason).toBe('no-leader');

    // The majority is unaffected, and the member catches up once healed.
    await stores[leader]!.appendEvents(['acct'], 0, event(1));
    faults.healAll();
    expect((await stores[cutOff]!.getEvents(['acct'])).length).toBeGreaterThanOrEqual(1);
  });

  it(
    "a leader that lost its majority but has not stepped down is known yet cannot commit: reason 'not-committed'",
    { timeout: 60_000 },
    async () => {
      const faults = new LinkFaults();
      // Without CheckQuorum an isolated leader never steps down on its own: it stays known, and stuck.
      cluster = await LocalCluster.start(3, { faults, proposalTimeoutMs: PROPOSAL_TIMEOUT_MS, consensus: { checkQuorum: false } });
      for (let i = 0; i < 3; i++) stores.push(storeOn(cluster, i));
      await Promise.all(stores.map((store) => store.ready()));
      const leader = await cluster.leader();
      const leaderId = cluster.member(leader).id;
      faults.isolate(leaderId);

      const write = await rejection(stores[leader]!.appendEvents(['acct'], 0, event(0)));
      expect(write.reason).toBe('not-committed');
      expect(write.leader).toBe(leaderId);
      expect(write.message).toContain(`leader "${leaderId}" is known but did not commit within ${PROPOSAL_TIMEOUT_MS} ms`);
      expect(cluster.member(leader).status().role).toBe('leader');
      const read = await rejection(stores[leader]!.getEvents(['acct']));
      expect(read.reason).toBe('not-committed');
    },
  );
});
