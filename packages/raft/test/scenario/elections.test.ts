import { describe, expect, it } from 'vitest';
import type { VoteResponse } from '../../src/consensus/types.js';
import { TestCluster } from '../support/cluster.js';
import { drain, makeNode, sent, storageWith } from '../support/node.js';

const three = ['n1', 'n2', 'n3'];

describe('leader election', () => {
  it('elects a leader in one round and commits its empty entry', () => {
    const cluster = new TestCluster(three);
    cluster.campaign('n1');
    expect(cluster.node('n1').status()).toMatchObject({ role: 'leader', term: 1, commit: 1 });
    for (const id of ['n2', 'n3']) expect(cluster.node(id).status()).toMatchObject({ role: 'follower', term: 1, leader: 'n1', commit: 1 });
    const first = cluster.member('n2').applied[0];
    expect(first).toMatchObject({ index: 1, term: 1, kind: 'empty' });
  });

  it('wins with a majority even when one node is down, and not without one', () => {
    const cluster = new TestCluster(three);
    cluster.crash('n3');
    cluster.campaign('n1');
    expect(cluster.node('n1').status().role).toBe('leader');

    const lonely = new TestCluster(three);
    lonely.crash('n2');
    lonely.crash('n3');
    lonely.campaign('n1');
    // PreVote: the lone node never even bumps its term.
    expect(lonely.node('n1').status()).toMatchObject({ role: 'pre-candidate', term: 0 });
  });

  it('without PreVote a lone candidate bumps its term each time', () => {
    const lonely = new TestCluster(three, { preVote: false });
    lonely.crash('n2');
    lonely.crash('n3');
    lonely.campaign('n1');
    lonely.campaign('n1');
    expect(lonely.node('n1').status()).toMatchObject({ role: 'candidate', term: 2 });
  });

  it('campaigns after a randomized timeout between electionTicks and 2 × electionTicks − 1', () => {
    const seen = new Set<number>();
    for (let seed = 1; seed <= 30; seed++) {
      const node = makeNode('n1', three, undefined, {}, seed);
      let ticks = 0;
      while (node.status().role === 'follower') {
        node.tick();
        ticks++;
      }
      expect(ticks).toBeGreaterThanOrEqual(10);
      expect(ticks).toBeLessThanOrEqual(19);
      seen.add(ticks);
    }
    expect(seen.size).toBeGreaterThan(3);
  });

  it('a candidate that hears from a leader of its term falls back to follower', () => {
    const node = makeNode('n1', three, undefined, { preVote: false });
    node.campaign();
    expect(node.status()).toMatchObject({ role: 'candidate', term: 1 });
    node.step({ type: 'append', from: 'n2', to: 'n1', term: 1, prevIndex: 0, prevTerm: 0, entries: [], commit: 0 });
    expect(node.status()).toMatchObject({ role: 'follower', term: 1, leader: 'n2' });
  });

  it('a candidate that loses the vote falls back to follower', () => {
    const node = makeNode('n1', three, undefined, { preVote: false });
    node.campaign();
    node.step({ type: 'vote-response', from: 'n2', to: 'n1', term: 1, granted: false });
    expect(node.status().role).toBe('candidate');
    node.step({ type: 'vote-response', from: 'n3', to: 'n1', term: 1, granted: false });
    expect(node.status()).toMatchObject({ role: 'follower', term: 1 });
  });
});

describe('follower vote rules', () => {
  function voteFrom(candidate: string, term: number, lastLogIndex: number, lastLogTerm: number, type: 'vote' | 'pre-vote' = 'vote') {
    return { type, from: candidate, to: 'n1', term, lastLogIndex, lastLogTerm } as const;
  }
  function answer(node: ReturnType<typeof makeNode>, storage: ReturnType<typeof storageWith>): VoteResponse {
    const messages = sent(drain(node, storage));
    return messages.find((m): m is VoteResponse => m.type === 'vote-response' || m.type === 'pre-vote-response')!;
  }

  const cases: [string, number, number, boolean][] = [
    ['older last term', 1, 5, false],
    ['same last term, shorter log', 2, 1, false],
    ['same last term, same length', 2, 2, true],
    ['same last term, longer log', 2, 3, true],
    ['newer last term, shorter log', 3, 1, true],
  ];
  for (const [name, lastTerm, lastIndex, granted] of cases) {
    it(`${granted ? 'grants' : 'refuses'} a candidate with ${name}`, () => {
      const storage = storageWith([1, 2], { term: 2 });
      const node = makeNode('n1', three, storage);
      node.step(voteFrom('n2', 3, lastIndex, lastTerm));
      expect(answer(node, storage)).toMatchObject({ type: 'vote-response', to: 'n2', granted });
    });
  }

  it('votes for one candidate per term, and again for the same one', () => {
    const storage = storageWith([1], { term: 1 });
    const node = makeNode('n1', three, storage);
    node.step(voteFrom('n2', 2, 1, 1));
    expect(answer(node, storage).granted).toBe(true);
    node.step(voteFrom('n3', 2, 1, 1));
    expect(answer(node, storage).granted).toBe(false);
    node.step(voteFrom('n2', 2, 1, 1));
    expect(answer(node, storage).granted).toBe(true);
  });

  it('sends a vote only after the vote is durable, in the same Ready as the hard state', () => {
    const storage = storageWith([1], { term: 1 });
    const node = makeNode('n1', three, storage);
    node.step(voteFrom('n2', 2, 1, 1));
    const ready = drain(node, storage);
    expect(ready.hardState).toMatchObject({ term: 2, vote: 'n2' });
    expect(ready.messages).toEqual([]);
    expect(ready.messagesAfterPersist).toMatchObject([{ type: 'vote-response', granted: true }]);
  });

  it('remembers its vote across a restart', () => {
    const storage = storageWith([1], { term: 1 });
    const node = makeNode('n1', three, storage);
    node.step(voteFrom('n2', 2, 1, 1));
    drain(node, storage);
    const restarted = makeNode('n1', three, storage);
    expect(restarted.status()).toMatchObject({ term: 2, vote: 'n2' });
    restarted.step(voteFrom('n3', 2, 1, 1));
    expect(answer(restarted, storage).granted).toBe(false);
  });

  it('answers a pre-vote without changing its term or vote', () => {
    const storage = storageWith([1], { term: 1 });
    const node = makeNode('n1', three, storage);
    node.step(voteFrom('n2', 2, 1, 1, 'pre-vote'));
    const ready = drain(node, storage);
    expect(ready.hardState).toBeNull();
    expect(ready.messages).toMatchObject([{ type: 'pre-vote-response', term: 2, granted: true }]);
    expect(node.status()).toMatchObject({ term: 1, vote: null });
  });
});

describe('PreVote and CheckQuorum', () => {
  it('dueling pre-candidates: a node that cannot win does not bump the term', () => {
    const cluster = new TestCluster(three, { checkQuorum: false });
    cluster.isolate('n1', ['n3']);
    cluster.campaign('n1');
    expect(cluster.node('n1').status()).toMatchObject({ role: 'leader', term: 1 });
    // n3 never heard of n1; its log is behind n2's, so its pre-vote fails and nothing changes.
    cluster.campaign('n3');
    expect(cluster.node('n3').status()).toMatchObject({ role: 'follower', term: 1 });
    expect(cluster.node('n1').status()).toMatchObject({ role: 'leader', term: 1 });
    cluster.heal();
    cluster.tick('n1');
    expect(cluster.node('n3').status()).toMatchObject({ leader: 'n1', term: 1, commit: 1 });
  });

  it('a disruptive follower cut off for a long time cannot unseat the leader when it returns', () => {
    const cluster = new TestCluster(three);
    cluster.campaign('n1');
    cluster.isolate('n3');
    for (let i = 0; i < 100; i++) {
      cluster.tick('n1');
      cluster.tick('n2');
      cluster.tick('n3');
    }
    expect(cluster.node('n3').status().term).toBe(1);
    cluster.heal();
    for (let i = 0; i < 5; i++) {
      cluster.tick('n1');
      cluster.tick('n3');
    }
    expect(cluster.node('n1').status()).toMatchObject({ role: 'leader', term: 1 });
    expect(cluster.node('n3').status()).toMatchObject({ leader: 'n1', term: 1 });
  });

  it('without PreVote the same returning follower forces an election', () => {
    const cluster = new TestCluster(three, { preVote: false, checkQuorum: false });
    cluster.campaign('n1');
    cluster.isolate('n3');
    for (let i = 0; i < 40; i++) cluster.tick('n3');
    const inflated = cluster.node('n3').status().term;
    expect(inflated).toBeGreaterThan(1);
    cluster.heal();
    cluster.tick('n1');
    expect(cluster.node('n1').status().term).toBeGreaterThanOrEqual(inflated);
    expect(cluster.node('n1').status().role).not.toBe('leader');
  });

  it('a leader that stops hearing from a quorum steps down', () => {
    const cluster = new TestCluster(three);
    cluster.campaign('n1');
    cluster.isolate('n1');
    for (let i = 0; i < 20; i++) cluster.tick('n1');
    expect(cluster.node('n1').status()).toMatchObject({ role: 'follower', term: 1, leader: null });
  });

  it('without CheckQuorum the cut-off leader keeps believing it leads', () => {
    const cluster = new TestCluster(three, { checkQuorum: false });
    cluster.campaign('n1');
    cluster.isolate('n1');
    for (let i = 0; i < 40; i++) cluster.tick('n1');
    expect(cluster.node('n1').status().role).toBe('leader');
  });

  it('a follower that heard from its leader recently ignores a vote request of a higher term', () => {
    const cluster = new TestCluster(three);
    cluster.campaign('n1');
    const follower = cluster.node('n2');
    follower.step({ type: 'vote', from: 'n3', to: 'n2', term: 5, lastLogIndex: 9, lastLogTerm: 4 });
    expect(follower.status()).toMatchObject({ term: 1, vote: 'n1' });
    expect(follower.hasReady()).toBe(false);
  });
});
