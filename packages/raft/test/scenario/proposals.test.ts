import { ConfigError } from '@timebox/core';
import { describe, expect, it } from 'vitest';
import { InvalidProposalError, NoLeaderError, ProposalDroppedError } from '../../src/consensus/errors.js';
import { MemoryLogStorage } from '../../src/consensus/storage.js';
import { RaftNode } from '../../src/consensus/raft.js';
import { SeededRandom } from '../../src/consensus/random.js';
import { TestCluster } from '../support/cluster.js';
import { makeNode } from '../support/node.js';

const three = ['n1', 'n2', 'n3'];

describe('proposals', () => {
  it('a follower forwards a proposal to the leader, and every node applies it once, with its ID', () => {
    const cluster = new TestCluster(three);
    cluster.campaign('n1');
    expect(cluster.node('n2').propose('order-1', new TextEncoder().encode('x'))).toBe('forwarded');
    cluster.flush();
    for (const id of three) expect(cluster.appliedIds(id)).toEqual([null, 'order-1']);
  });

  it('fails fast with NoLeaderError when no leader is known', () => {
    const node = makeNode('n1', three);
    expect(() => node.propose('p', new Uint8Array())).toThrow(NoLeaderError);
    expect(() => node.readIndex('r')).toThrow(NoLeaderError);
    node.campaign(); // a pre-candidate knows no leader either
    expect(() => node.propose('p', new Uint8Array())).toThrow(/no leader is known/);
    expect(node.hasReady()).toBe(true); // only its pre-vote requests
    expect(node.ready().messages.every((m) => m.type === 'pre-vote')).toBe(true);
  });

  it('rejects a malformed proposal with a typed error', () => {
    const cluster = new TestCluster(three);
    cluster.campaign('n1');
    const leader = cluster.node('n1');
    expect(() => leader.propose('', new Uint8Array())).toThrow(InvalidProposalError);
    expect(() => leader.propose('p', 'text' as unknown as Uint8Array)).toThrow(/Uint8Array/);
    expect(() => leader.readIndex('')).toThrow(InvalidProposalError);
    expect(leader.status().lastIndex).toBe(1);
  });

  it('bounds the uncommitted tail while quorum is lost, and accepts again once it commits', () => {
    const cluster = new TestCluster(three, { maxUncommittedBytes: 300, checkQuorum: false });
    cluster.campaign('n1');
    cluster.isolate('n1');
    const leader = cluster.node('n1');
    let accepted = 0;
    let error: unknown;
    for (let i = 0; i < 20 && error === undefined; i++) {
      try {
        leader.propose(`p${i}`, new Uint8Array(40));
        accepted++;
      } catch (caught) {
        error = caught;
      }
    }
    expect(error).toBeInstanceOf(ProposalDroppedError);
    expect(accepted).toBeGreaterThan(1);
    expect(accepted).toBeLessThan(20);
    cluster.flush();
    cluster.heal();
    cluster.tick('n1');
    expect(leader.status().commit).toBe(1 + accepted);
    expect(() => leader.propose('after', new Uint8Array(40))).not.toThrow();
  });

  it('a retried proposal may reach the log twice; both copies carry the same ID for the state machine to apply once', () => {
    const cluster = new TestCluster(three);
    cluster.campaign('n1');
    cluster.propose('n2', 'same-id');
    cluster.propose('n3', 'same-id');
    expect(cluster.appliedIds('n1')).toEqual([null, 'same-id', 'same-id']);
  });
});

describe('static bootstrap and restart', () => {
  it('a single-voter cluster elects itself on its own', () => {
    const storage = new MemoryLogStorage();
    const node = makeNode('solo', ['solo'], storage);
    for (let i = 0; i < 20 && node.status().role !== 'leader'; i++) node.tick();
    expect(node.status()).toMatchObject({ role: 'leader', term: 1 });
  });

  it('restores term, vote, log and commit from storage, and re-delivers committed entries to apply', () => {
    const cluster = new TestCluster(three);
    cluster.campaign('n1');
    cluster.propose('n1', 'a');
    cluster.propose('n1', 'b');
    cluster.crash('n2');
    cluster.restart('n2');
    expect(cluster.node('n2').status()).toMatchObject({ role: 'follower', term: 1, vote: 'n1', lastIndex: 3 });
    cluster.flush();
    expect(cluster.appliedIds('n2')).toEqual([null, 'a', 'b']);
  });

  it('resumes applying after the index the state machine reports as applied', () => {
    const cluster = new TestCluster(three);
    cluster.campaign('n1');
    cluster.propose('n1', 'a');
    cluster.propose('n1', 'b');
    const storage = cluster.member('n2').storage;
    const node = new RaftNode({ id: 'n2', voters: three, storage, random: new SeededRandom(1), applied: 2 });
    expect(node.ready().committedEntries.map((e) => e.proposalId)).toEqual(['b']);
  });

  it('validates its config with ConfigError naming the field', () => {
    const base = { id: 'n1', voters: three, storage: new MemoryLogStorage(), random: new SeededRandom(1) };
    const bad: [string, object][] = [
      ['id', { id: '' }],
      ['voters', { voters: ['n2', 'n3'] }],
      ['voters', { voters: ['n1', 'n1'] }],
      ['electionTicks', { electionTicks: 0 }],
      ['heartbeatTicks', { heartbeatTicks: 10 }],
      ['maxInflightBytes', { maxInflightBytes: -1 }],
      ['applied', { applied: 1.5 }],
      ['preVote', { preVote: 'yes' }],
      ['random', { random: {} }],
    ];
    for (const [field, override] of bad) {
      let caught: unknown;
      try {
        new RaftNode({ ...base, ...override });
      } catch (error) {
        caught = error;
      }
      expect(caught, field).toBeInstanceOf(ConfigError);
      expect((caught as ConfigError).field).toBe(field);
    }
  });
});
