import { describe, expect, it } from 'vitest';
import { MemoryLogStorage } from '../../src/consensus/storage.js';
import type { AppendResponse, Message } from '../../src/consensus/types.js';
import { TestCluster } from '../support/cluster.js';
import { drain, entries, makeNode, sent, storageWith } from '../support/node.js';

const three = ['n1', 'n2', 'n3'];

describe('log replication', () => {
  it('the leader syncs divergent follower logs to its own', () => {
    const cluster = new TestCluster(three, { preVote: false });
    // n1 holds the newest term; n2 has a longer tail of a stale term; n3 is far behind.
    cluster.member('n1').storage.append(entries([1, 1, 2, 3]));
    cluster.member('n1').storage.setHardState({ term: 3, vote: null, commit: 0 });
    cluster.member('n2').storage.append(entries([1, 1, 2, 2, 2, 2, 2]));
    cluster.member('n2').storage.setHardState({ term: 2, vote: null, commit: 0 });
    cluster.member('n3').storage.append(entries([1]));
    cluster.member('n3').storage.setHardState({ term: 1, vote: null, commit: 0 });
    for (const id of three) cluster.restart(id);
    cluster.campaign('n1');
    expect(cluster.node('n1').status()).toMatchObject({ role: 'leader', term: 4, commit: 5 });
    const expected = ['1@1', '2@1', '3@2', '4@3', '5@4'];
    for (const id of three) expect(cluster.durableLog(id)).toEqual(expected);
    // Fast backtracking: n2's five stale entries cost one rejection, not five.
    const rejections = cluster.member('n2').sent.filter((m) => m.type === 'append-response' && m.rejected);
    expect(rejections.length).toBeLessThanOrEqual(1);
  });

  it('a stale, duplicated or reordered append never truncates the log', () => {
    const storage = new MemoryLogStorage();
    const follower = makeNode('n2', three, storage);
    const append = (prevIndex: number, prevTerm: number, terms: number[], commit = 0): Message => ({
      type: 'append',
      from: 'n1',
      to: 'n2',
      term: 1,
      prevIndex,
      prevTerm,
      entries: entries(terms, prevIndex + 1),
      commit,
    });
    follower.step(append(0, 0, [1, 1, 1]));
    drain(follower, storage);
    // An older append (one entry) and a duplicate of the first arrive late.
    follower.step(append(0, 0, [1]));
    follower.step(append(0, 0, [1, 1, 1]));
    const ready = drain(follower, storage);
    expect(storage.lastIndex()).toBe(3);
    expect(ready.entries).toEqual([]);
    const answers = sent(ready) as AppendResponse[];
    expect(answers.map((m) => [m.index, m.rejected])).toEqual([
      [1, false],
      [3, false],
    ]);
  });

  it('a real term conflict truncates from the first conflicting entry', () => {
    const storage = storageWith([1, 1, 1], { term: 1 });
    const follower = makeNode('n2', three, storage);
    follower.step({ type: 'append', from: 'n3', to: 'n2', term: 2, prevIndex: 1, prevTerm: 1, entries: entries([2], 2), commit: 0 });
    const ready = drain(follower, storage);
    expect(ready.entries.map((e) => `${e.index}@${e.term}`)).toEqual(['2@2']);
    expect(storage.lastIndex()).toBe(2);
    expect(storage.term(2)).toBe(2);
  });

  it('rejects with a hint that skips a whole term of mismatches', () => {
    const storage = storageWith([1, 1, 1, 1, 1], { term: 1 });
    const follower = makeNode('n2', three, storage);
    follower.step({ type: 'append', from: 'n1', to: 'n2', term: 3, prevIndex: 7, prevTerm: 3, entries: [], commit: 0 });
    const [answer] = sent(drain(follower, storage)) as AppendResponse[];
    expect(answer).toMatchObject({ rejected: true, index: 7, hintIndex: 5, hintTerm: 1 });
  });

  it('a follower commits only what the append proved, never beyond it', () => {
    const storage = storageWith([1, 1, 1, 1], { term: 1 });
    const follower = makeNode('n2', three, storage);
    // The leader's commit is 4, but this (stale) append only vouches for index 2.
    follower.step({ type: 'append', from: 'n1', to: 'n2', term: 1, prevIndex: 1, prevTerm: 1, entries: entries([1], 2), commit: 4 });
    expect(follower.status().commit).toBe(2);
  });

  it('pipelines appends in replicate state, bounded by the in-flight window', () => {
    const cluster = new TestCluster(three, { maxInflightMessages: 2 });
    cluster.campaign('n1');
    const leader = cluster.node('n1');
    cluster.cutLink('n2', 'n1'); // n2 receives but its answers are lost
    for (let i = 0; i < 6; i++) leader.propose(`p${i}`, new Uint8Array([i]));
    const ready = leader.ready();
    const toN2 = ready.messages.filter((m) => m.type === 'append' && m.to === 'n2' && m.entries.length > 0);
    const toN3 = ready.messages.filter((m) => m.type === 'append' && m.to === 'n3' && m.entries.length > 0);
    expect(toN2).toHaveLength(2);
    expect(toN3).toHaveLength(2);
    expect(leader.followerProgress().get('n2')).toMatchObject({ state: 'replicate' });
    leader.advance(ready);
  });

  it('bounds in-flight bytes as well as messages', () => {
    const cluster = new TestCluster(three, { maxInflightMessages: 100, maxInflightBytes: 200 });
    cluster.campaign('n1');
    const leader = cluster.node('n1');
    for (let i = 0; i < 10; i++) leader.propose(`p${i}`, new Uint8Array(50));
    const ready = leader.ready();
    const toN2 = ready.messages.filter((m) => m.type === 'append' && m.to === 'n2' && m.entries.length > 0);
    expect(toN2.length).toBeGreaterThan(0);
    expect(toN2.length).toBeLessThan(10);
    leader.advance(ready);
  });

  it('stops pipelining to a follower the transport reports unreachable', () => {
    const cluster = new TestCluster(three);
    cluster.campaign('n1');
    const leader = cluster.node('n1');
    expect(leader.followerProgress().get('n2')).toMatchObject({ state: 'replicate' });
    leader.reportUnreachable('n2');
    expect(leader.followerProgress().get('n2')).toMatchObject({ state: 'probe' });
  });

  it('a follower learns the commit index from heartbeats, never beyond what it holds', () => {
    const cluster = new TestCluster(three);
    cluster.campaign('n1');
    cluster.drop((m) => m.type === 'append' && m.to === 'n3' && m.entries.length > 0);
    cluster.propose('n1', 'a');
    cluster.tick('n1');
    expect(cluster.node('n2').status().commit).toBe(2);
    expect(cluster.node('n3').status()).toMatchObject({ commit: 1, lastIndex: 1 });
  });

  it('a new leader appends an empty entry of its term', () => {
    const cluster = new TestCluster(three);
    cluster.campaign('n2');
    const leader = cluster.node('n2');
    expect(leader.status().lastIndex).toBe(1);
    expect(cluster.member('n2').applied[0]).toMatchObject({ kind: 'empty', term: 1, proposalId: null });
  });

  it('ignores messages of an older term, and tells a stale leader the newer term', () => {
    const storage = storageWith([1, 2], { term: 3 });
    const follower = makeNode('n2', three, storage);
    follower.step({ type: 'append', from: 'n1', to: 'n2', term: 2, prevIndex: 2, prevTerm: 2, entries: entries([2], 3), commit: 2 });
    const ready = drain(follower, storage);
    expect(storage.lastIndex()).toBe(2);
    expect(follower.status()).toMatchObject({ term: 3, commit: 0 });
    expect(sent(ready)).toMatchObject([{ type: 'append-response', term: 3, to: 'n1' }]);
  });

  it('a stale leader steps down when it learns of a newer term', () => {
    const cluster = new TestCluster(three);
    cluster.campaign('n1');
    const leader = cluster.node('n1');
    leader.step({ type: 'append-response', from: 'n2', to: 'n1', term: 7, index: 0, rejected: false, hintIndex: 0, hintTerm: 0 });
    expect(leader.status()).toMatchObject({ role: 'follower', term: 7 });
  });
});

describe("commit and durability of the leader's own log", () => {
  it('a single-node cluster commits only after its own write is durable', () => {
    const storage = new MemoryLogStorage();
    const node = makeNode('solo', ['solo'], storage);
    node.campaign();
    expect(node.status().role).toBe('leader');
    const first = node.ready();
    expect(first.entries).toHaveLength(1);
    expect(first.committedEntries).toEqual([]);
    expect(node.status().commit).toBe(0);
    storage.append(first.entries);
    if (first.hardState) storage.setHardState(first.hardState);
    node.advance(first);
    expect(node.status().commit).toBe(1);
    node.propose('x', new Uint8Array([1]));
    expect(node.status().commit).toBe(1);
    const second = drain(node, storage);
    expect(second.committedEntries.map((e) => e.index)).toEqual([1]);
    const third = drain(node, storage);
    expect(third.committedEntries.map((e) => e.proposalId)).toEqual(['x']);
  });

  it('a leader does not count itself before its write is durable', () => {
    const cluster = new TestCluster(three);
    cluster.campaign('n1');
    cluster.crash('n3');
    const leader = cluster.node('n1');
    leader.propose('x', new Uint8Array([1]));
    const ready = leader.ready();
    // Send the append at once (allowed), and let n2's acknowledgement come back before our write.
    for (const message of ready.messages) cluster.deliver(message);
    const n2 = cluster.node('n2');
    const n2Ready = n2.ready();
    cluster.member('n2').storage.append(n2Ready.entries);
    n2.advance(n2Ready);
    for (const message of sent(n2Ready)) cluster.deliver(message);
    expect(leader.status().commit).toBe(1); // one durable copy of 2 (n2) is not a majority of 3
    cluster.member('n1').storage.append(ready.entries);
    leader.advance(ready);
    expect(leader.status().commit).toBe(2);
  });
});
