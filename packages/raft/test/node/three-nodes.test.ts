import { afterEach, describe, expect, it } from 'vitest';
import { RaftUnavailableError } from '../../src/node/errors.js';
import { FAST, ServerCluster, waitFor } from './support/cluster.js';

const three = ['n1', 'n2', 'n3'] as const;
let cluster: ServerCluster | null = null;
afterEach(async () => {
  await cluster?.close();
  cluster = null;
});

function others(id: string): string[] {
  return three.filter((other) => other !== id);
}

describe('RaftServer, three nodes', () => {
  it('applies proposals made on any node (followers forward) once on every node, in one order', async () => {
    cluster = new ServerCluster(three);
    await cluster.startAll();
    await Promise.all(three.map((id) => cluster!.server(id).ready()));
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => cluster!.propose(three[i % 3] as string, 'hits')));
    // Every proposal got its own increment: the values are exactly 1..30.
    expect(results.map((r) => r.value).sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    await cluster.converged();
    for (const id of three) {
      const state = cluster.state(id);
      expect(state.counters.get('hits')).toBe(30);
      expect(state.order).toHaveLength(30);
      expect(new Set(state.order).size).toBe(30);
    }
    expect(cluster.state('n2').order).toEqual(cluster.state('n1').order);
    expect(cluster.state('n3').order).toEqual(cluster.state('n1').order);
  });

  it('ready() waits for a leader, and a late joiner has applied what was committed before it', async () => {
    cluster = new ServerCluster(three);
    const n1 = await cluster.start('n1');
    let n1Ready = false;
    const ready = n1.ready().then(() => {
      n1Ready = true;
    });
    // Alone, n1 cannot elect anyone: many election timeouts pass and it is still not ready.
    await waitFor(() => n1.status().term === 0 && n1.status().role === 'pre-candidate', 'n1 to try a pre-vote');
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(n1Ready).toBe(false);
    expect(n1.status().leader).toBeNull();

    await cluster.start('n2');
    await ready;
    expect(n1.status().leader).not.toBeNull();
    for (let i = 0; i < 20; i++) await cluster.propose(i % 2 === 0 ? 'n1' : 'n2', 'before');

    const n3 = await cluster.start('n3');
    await n3.ready();
    // Checked right as ready() resolves: everything committed before n3 asked is applied on n3.
    expect(cluster.state('n3').counters.get('before')).toBe(20);
  });

  it('rejects with RaftUnavailableError naming the last leader when two of three nodes are gone', async () => {
    cluster = new ServerCluster(three, { ...FAST, proposalTimeoutMs: 600 });
    await cluster.startAll();
    await Promise.all(three.map((id) => cluster!.server(id).ready()));
    const leader = await cluster.leader();
    const term = cluster.server(leader).status().term;
    await cluster.propose('n1', 'k');
    const survivor = leader === 'n1' ? 'n2' : 'n1';
    for (const id of others(survivor)) await cluster.stop(id);
    const error = await cluster.propose(survivor, 'k').then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RaftUnavailableError);
    const unavailable = error as RaftUnavailableError;
    expect(unavailable.message).toContain('within 600 ms');
    expect(unavailable.lastLeader).toBe(leader);
    expect(unavailable.lastTerm).toBe(term);
    // Which case depends on whether the survivor's election timeout ran out before the deadline.
    if (unavailable.reason === 'no-leader') expect(unavailable.message).toContain(`last known leader "${leader}" in term ${term}`);
    else expect(unavailable.message).toContain(`leader "${leader}" is known but did not commit`);
    expect(cluster.state(survivor).counters.get('k')).toBe(1);
  });

  it('a leader refusing proposals (uncommitted tail full) makes them wait, then RaftUnavailableError', async () => {
    // Without CheckQuorum the cut-off leader stays leader, so its refusals come from the full tail, not from a missing leader.
    cluster = new ServerCluster(three, { ...FAST, proposalTimeoutMs: 500, consensus: { checkQuorum: false, maxUncommittedBytes: 100 } });
    await cluster.startAll();
    await Promise.all(three.map((id) => cluster!.server(id).ready()));
    const leader = await cluster.leader();
    cluster.network.isolate(leader, three);
    const first = cluster.propose(leader, 'a').catch((e: unknown) => e);
    const second = cluster.propose(leader, 'b').catch((e: unknown) => e);
    expect(await second).toBeInstanceOf(RaftUnavailableError);
    expect(await first).toBeInstanceOf(RaftUnavailableError);
    expect(cluster.server(leader).status().role).toBe('leader');
  });

  it('a partitioned leader is replaced: the majority commits, the old leader cannot, all converge after healing', async () => {
    cluster = new ServerCluster(three, { ...FAST, proposalTimeoutMs: 1_500 });
    await cluster.startAll();
    await Promise.all(three.map((id) => cluster!.server(id).ready()));
    await cluster.propose('n1', 'before');
    await cluster.converged();
    const old = await cluster.leader();
    const majority = others(old);
    cluster.network.isolate(old, three);

    // Proposed at once: the followers still forward to the old leader, so these are lost and must be retried.
    const onMajority = majority.map((id) => cluster!.propose(id, 'majority'));
    const onOld = cluster.propose(old, 'old');
    const oldOutcome = onOld.then(
      () => null,
      (e: unknown) => e,
    );

    const results = await Promise.all(onMajority);
    expect(results.map((r) => r.value).sort()).toEqual([1, 2]);
    const fresh = await cluster.leader(majority);
    expect(fresh).not.toBe(old);
    expect(cluster.server(fresh).status().term).toBeGreaterThan(cluster.server(old).status().term);

    expect(await oldOutcome).toBeInstanceOf(RaftUnavailableError);
    expect(cluster.server(old).status().role).not.toBe('leader');

    cluster.network.heal();
    await cluster.propose(old, 'after');
    await cluster.converged();
    for (const id of three) {
      const state = cluster.state(id);
      expect(state.counters.get('majority')).toBe(2);
      expect(state.counters.get('after')).toBe(1);
      // The old leader's entry was never committed: its uncommitted tail was overwritten on rejoining.
      expect(state.counters.has('old')).toBe(false);
    }
  });

  it('a proposal retried with the same ID (timeout, then leader change) is applied once', async () => {
    cluster = new ServerCluster(three, { ...FAST, proposalTimeoutMs: 5_000 });
    await cluster.startAll();
    await Promise.all(three.map((id) => cluster!.server(id).ready()));
    const leader = await cluster.leader();
    const follower = others(leader)[0] as string;
    const base = cluster.server(follower).status().lastIndex;

    // The leader replicates but never hears back, so nothing commits; the follower's retry after
    // 2 × electionTicks puts the same proposal ID into the log a second time.
    cluster.network.dropWhere((m) => m.type === 'append-response' && m.to === leader);
    const proposal = cluster.propose(follower, 'once');
    await waitFor(() => cluster!.server(follower).status().lastIndex >= base + 2, 'the follower to hold the proposal twice');
    expect(cluster.state(follower).counters.has('once')).toBe(false);

    // Leader change: the new leader commits both copies; the state applies the ID once.
    cluster.network.heal();
    cluster.network.isolate(leader, three);
    const result = await proposal;
    expect(result.value).toBe(1);
    const majority = others(leader);
    await cluster.converged(majority);
    for (const id of majority) {
      expect(cluster.state(id).counters.get('once')).toBe(1);
      expect(cluster.state(id).duplicates).toBeGreaterThanOrEqual(1);
    }

    cluster.network.heal();
    await cluster.propose(leader, 'later');
    await cluster.converged();
    expect(cluster.state(leader).counters.get('once')).toBe(1);
  });
});
