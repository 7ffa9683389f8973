import { describe, expect, it } from 'vitest';
import { MemoryLogStorage } from '../../src/consensus/storage.js';
import { TestCluster } from '../support/cluster.js';
import { drain, makeNode } from '../support/node.js';

const three = ['n1', 'n2', 'n3'];

describe('linearizable reads through ReadIndex', () => {
  it('the leader answers after a quorum confirms its leadership', () => {
    const cluster = new TestCluster(three);
    cluster.campaign('n1');
    cluster.propose('n1', 'a');
    cluster.node('n1').readIndex('r1');
    cluster.flush();
    expect(cluster.member('n1').readStates).toEqual([{ context: 'r1', index: 2 }]);
  });

  it("a follower forwards the read and gets the leader's commit index", () => {
    const cluster = new TestCluster(three);
    cluster.campaign('n1');
    cluster.propose('n1', 'a');
    cluster.node('n3').readIndex('r2');
    cluster.flush();
    expect(cluster.member('n3').readStates).toEqual([{ context: 'r2', index: 2 }]);
  });

  it('a leader cut off from the quorum never answers', () => {
    const cluster = new TestCluster(three, { checkQuorum: false });
    cluster.campaign('n1');
    cluster.isolate('n1');
    cluster.node('n1').readIndex('r3');
    for (let i = 0; i < 5; i++) cluster.tick('n1');
    expect(cluster.member('n1').readStates).toEqual([]);
    cluster.heal();
    cluster.tick('n1');
    expect(cluster.member('n1').readStates).toEqual([{ context: 'r3', index: 1 }]);
  });

  it('a new leader defers reads until an entry of its term commits', () => {
    const cluster = new TestCluster(three);
    cluster.drop((m) => m.type === 'append-response');
    cluster.campaign('n1');
    const leader = cluster.node('n1');
    expect(leader.status()).toMatchObject({ role: 'leader', commit: 0 });
    leader.readIndex('r4');
    cluster.flush();
    expect(cluster.member('n1').readStates).toEqual([]);
    cluster.heal();
    cluster.tick('n1');
    expect(leader.status().commit).toBe(1);
    expect(cluster.member('n1').readStates).toEqual([{ context: 'r4', index: 1 }]);
  });

  it('a single-node cluster answers at once with its commit index', () => {
    const storage = new MemoryLogStorage();
    const node = makeNode('solo', ['solo'], storage);
    node.campaign();
    node.readIndex('early');
    drain(node, storage); // makes the empty entry durable, which commits it
    const ready = drain(node, storage);
    expect(ready.readStates).toEqual([{ context: 'early', index: 1 }]);
  });
});
