import { describe, expect, it } from 'vitest';
import type { RaftNode } from '../../src/consensus/raft.js';
import type { RaftNodeConfig } from '../../src/consensus/config.js';
import { brokenVariants } from '../sim/broken-variants.js';
import { TestCluster } from '../support/cluster.js';

const ids = ['s1', 's2', 's3', 's4', 's5'];
// The paper's Figure 8 is about plain Raft; PreVote and CheckQuorum would only delay the elections here.
const options = { preVote: false, checkQuorum: false, maxMessageBytes: 1 };

/** Plays Raft paper Figure 8 up to (c): s1, leader of a later term, has replicated an old-term entry to a majority. */
function playFigure8(createNode?: (config: RaftNodeConfig) => RaftNode): TestCluster {
  const cluster = new TestCluster(ids, options, createNode);
  // (a) s1 leads term 1 and gets entry 2 only to s2.
  cluster.campaign('s1');
  cluster.isolate('s1', ['s3', 's4', 's5']);
  cluster.propose('s1', 'old-term');
  expect(cluster.durableLog('s2')).toEqual(['1@1', '2@1']);
  // (b) s1 crashes; s5 wins term 2 with s3 and s4, writes its own entry 2 and reaches no one.
  cluster.heal();
  cluster.crash('s1');
  cluster.drop((message) => message.from === 's5' && message.type === 'append');
  cluster.campaign('s5');
  expect(cluster.node('s5').status()).toMatchObject({ role: 'leader', term: 2 });
  cluster.propose('s5', 'lost');
  cluster.isolate('s5');
  // (c) s1 restarts and wins term 3; it re-replicates its term-1 entry 2 to s3, but its term-3 entry reaches only s2.
  cluster.heal();
  cluster.restart('s1');
  cluster.isolate('s5');
  cluster.isolate('s1', ['s4']);
  // s3 first rejects the probe (it lacks entry 2), then gets entry 2 alone; everything after that is lost.
  cluster.drop((message) => message.from === 's1' && message.to === 's3' && cluster.member('s3').storage.lastIndex() >= 2);
  cluster.campaign('s1'); // term 2 is lost: s3 and s4 already voted for s5 in it
  cluster.campaign('s1');
  expect(cluster.node('s1').status()).toMatchObject({ role: 'leader', term: 3 });
  expect(cluster.durableLog('s3')).toEqual(['1@1', '2@1']);
  return cluster;
}

/** (d) s1 fails; s5 (restarted, last log term 2) wins a later term with s3 and s4, whose logs end in term 1. */
function reelectS5(cluster: TestCluster): void {
  cluster.heal();
  cluster.crash('s5');
  cluster.restart('s5');
  cluster.campaign('s5'); // term 3: s2, s3 already voted for s1
  cluster.campaign('s5');
  expect(cluster.node('s5').status()).toMatchObject({ role: 'leader', term: 4 });
}

describe('Figure 8: a leader commits only entries of its own term by counting replicas', () => {
  it('does not commit the old-term entry even though a majority holds it', () => {
    const cluster = playFigure8();
    expect(cluster.node('s1').status().commit).toBe(1);
    cluster.crash('s1');
    reelectS5(cluster);
    expect(cluster.node('s5').status().role).toBe('leader');
    // Overwriting entry 2 everywhere is safe: it was never committed, and no one applied it.
    for (const id of ['s2', 's3', 's4', 's5']) {
      expect(cluster.appliedIds(id)).not.toContain('old-term');
      expect(cluster.durableLog(id)[1]).toBe('2@2');
    }
  });

  it('commits the old entry once an entry of the current term reaches a majority', () => {
    const cluster = playFigure8();
    cluster.heal();
    cluster.isolate('s5');
    cluster.propose('s1', 'current-term');
    expect(cluster.node('s1').status().commit).toBe(4);
    expect(cluster.appliedIds('s1')).toEqual([null, 'old-term', null, 'current-term']);
  });

  it('the broken variant that counts old-term replicas commits entry 2 and then loses it', () => {
    const cluster = playFigure8(brokenVariants['commit-older-term']);
    expect(cluster.node('s1').status().commit).toBe(2);
    expect(cluster.appliedIds('s1')).toContain('old-term');
    cluster.crash('s1');
    cluster.crash('s2');
    reelectS5(cluster);
    expect(cluster.node('s5').status().role).toBe('leader');
    // A committed, applied entry is gone from the cluster: exactly what the rule prevents.
    expect(cluster.durableLog('s3')[1]).toBe('2@2');
  });
});
