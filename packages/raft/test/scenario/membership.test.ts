import { describe, expect, it } from 'vitest';
import {
  ConfChangeInProgressError,
  InvalidConfChangeError,
  LeadershipTransferInProgressError,
  NotLeaderError,
} from '../../src/consensus/errors.js';
import { decodeConfigEntry } from '../../src/consensus/membership.js';
import { RaftNode } from '../../src/consensus/raft.js';
import { SeededRandom } from '../../src/consensus/random.js';
import { TestCluster } from '../support/cluster.js';

const three = ['n1', 'n2', 'n3'];
const encoder = new TextEncoder();

/** A three-voter cluster led by n1, with a few commands committed. */
function ledCluster(): TestCluster {
  // Without CheckQuorum's lease, so a test can elect another node by isolating the leader.
  const cluster = new TestCluster(three, { checkQuorum: false });
  cluster.campaign('n1');
  for (let i = 0; i < 3; i++) cluster.propose('n1', `p${i}`);
  return cluster;
}

describe('membership: learners', () => {
  it('a learner added to the cluster receives and applies the whole log', () => {
    const cluster = ledCluster();
    cluster.join('n4');
    cluster.change('n1', { type: 'add-learner', node: 'n4', address: '10.0.0.4:7400' });
    cluster.propose('n1', 'after');
    expect(cluster.appliedIds('n4')).toEqual(cluster.appliedIds('n1'));
    expect(cluster.node('n4').configuration()).toEqual({
      voters: three,
      learners: ['n4'],
      addresses: { n4: '10.0.0.4:7400' },
    });
    // The configuration entry itself is in the log, applied like any other entry.
    const entry = cluster.member('n1').applied.find((e) => e.kind === 'config');
    expect(decodeConfigEntry(entry!.data).change).toEqual({ type: 'add-learner', node: 'n4', address: '10.0.0.4:7400' });
  });

  it('a learner is not counted in the quorum', () => {
    const cluster = ledCluster();
    cluster.join('n4');
    cluster.change('n1', { type: 'add-learner', node: 'n4' });
    cluster.crash('n2');
    cluster.crash('n3');
    const before = cluster.node('n1').status().commit;
    cluster.propose('n1', 'needs-a-voter');
    // n1 and the learner hold it: two of four nodes, but only one of three voters.
    expect(cluster.node('n4').status().lastIndex).toBe(cluster.node('n1').status().lastIndex);
    expect(cluster.node('n1').status().commit).toBe(before);
    cluster.restart('n2');
    cluster.tick('n1');
    expect(cluster.node('n1').status().commit).toBe(cluster.node('n1').status().lastIndex);
  });

  it('a learner never campaigns, however long it hears nothing', () => {
    const cluster = ledCluster();
    cluster.join('n4');
    cluster.change('n1', { type: 'add-learner', node: 'n4' });
    cluster.isolate('n4');
    cluster.tick('n4', 100);
    expect(cluster.node('n4').status()).toMatchObject({ role: 'follower', term: 1 });
    cluster.node('n4').campaign();
    expect(cluster.node('n4').status().role).toBe('follower');
  });

  it('a node that joined knows no configuration and never campaigns before the leader reaches it', () => {
    const cluster = ledCluster();
    const joined = cluster.join('n4');
    cluster.tick('n4', 100);
    expect(joined.status()).toMatchObject({ role: 'follower', term: 0 });
    expect(joined.configuration()).toEqual({ voters: [], learners: [], addresses: {} });
  });
});

describe('membership: promotion and removal', () => {
  it('a promoted learner counts toward the quorum and may be elected', () => {
    const cluster = ledCluster();
    cluster.join('n4');
    cluster.change('n1', { type: 'add-learner', node: 'n4' });
    cluster.change('n1', { type: 'promote', node: 'n4' });
    expect(cluster.node('n1').voters).toEqual(['n1', 'n2', 'n3', 'n4']);
    // Four voters: a majority is three, so n1, n2 and n4 commit without n3…
    cluster.crash('n3');
    cluster.propose('n1', 'three-of-four');
    expect(cluster.node('n1').status().commit).toBe(cluster.node('n1').status().lastIndex);
    // …and two are not enough.
    cluster.crash('n2');
    cluster.propose('n1', 'two-of-four');
    expect(cluster.node('n1').status().commit).toBeLessThan(cluster.node('n1').status().lastIndex);
    cluster.restart('n2');
    cluster.restart('n3');
    cluster.tick('n1');
    cluster.isolate('n1');
    cluster.campaign('n4');
    expect(cluster.node('n4').status().role).toBe('leader');
  });

  it('a removed voter no longer counts: two voters commit what three could not without the third', () => {
    const cluster = ledCluster();
    cluster.change('n1', { type: 'remove', node: 'n3' });
    expect(cluster.node('n1').voters).toEqual(['n1', 'n2']);
    expect(cluster.node('n2').voters).toEqual(['n1', 'n2']);
    cluster.crash('n3');
    cluster.propose('n1', 'two-voters');
    expect(cluster.appliedIds('n2').at(-1)).toBe('two-voters');
    // The removed node gets nothing more from the leader.
    expect(cluster.node('n1').followerProgress().has('n3')).toBe(false);
  });

  it('a removed node learns of its removal and never campaigns', () => {
    const cluster = ledCluster();
    cluster.change('n1', { type: 'remove', node: 'n3' });
    expect(cluster.node('n3').voters).toEqual(['n1', 'n2']);
    cluster.tick('n3', 100);
    expect(cluster.node('n3').status().role).toBe('follower');
    expect(cluster.node('n1').status()).toMatchObject({ role: 'leader', term: 1 });
  });

  it('a leader that removes itself steps down once the removal commits, and the rest elect a leader', () => {
    const cluster = ledCluster();
    cluster.change('n1', { type: 'remove', node: 'n1' });
    const n1 = cluster.node('n1').status();
    expect(n1.role).toBe('follower');
    expect(cluster.node('n2').voters).toEqual(['n2', 'n3']);
    // Its followers learned that the removal committed before it stepped down.
    expect(cluster.node('n2').status().commit).toBe(n1.commit);
    cluster.tick('n2', 30);
    cluster.tick('n3', 30);
    const leader = cluster.leaderOf();
    expect(['n2', 'n3']).toContain(leader);
    cluster.propose(leader!, 'without-n1');
    expect(cluster.appliedIds(leader === 'n2' ? 'n3' : 'n2').at(-1)).toBe('without-n1');
  });

  it('a leader removing itself keeps leading until the removal commits, without counting itself', () => {
    const cluster = ledCluster();
    cluster.crash('n2');
    cluster.crash('n3');
    cluster.node('n1').proposeConfChange({ type: 'remove', node: 'n1' });
    cluster.flush();
    expect(cluster.node('n1').status().role).toBe('leader');
    expect(cluster.node('n1').status().commit).toBeLessThan(cluster.node('n1').status().lastIndex);
    cluster.restart('n2');
    cluster.tick('n1');
    // n2 alone is not a majority of {n2, n3}.
    expect(cluster.node('n1').status().role).toBe('leader');
    cluster.restart('n3');
    cluster.tick('n1');
    expect(cluster.node('n1').status().role).toBe('follower');
  });
});

describe('membership: one change at a time', () => {
  it('refuses a second change while the first is uncommitted, with a typed error', () => {
    const cluster = ledCluster();
    cluster.join('n4');
    cluster.crash('n2');
    cluster.crash('n3');
    const leader = cluster.node('n1');
    const index = leader.proposeConfChange({ type: 'add-learner', node: 'n4' });
    cluster.flush();
    expect(() => leader.proposeConfChange({ type: 'remove', node: 'n3' })).toThrow(ConfChangeInProgressError);
    try {
      leader.proposeConfChange({ type: 'remove', node: 'n3' });
    } catch (error) {
      expect((error as Error).message).toContain(`log index ${index}`);
    }
    cluster.restart('n2');
    cluster.tick('n1');
    expect(() => leader.proposeConfChange({ type: 'promote', node: 'n4' })).not.toThrow();
  });

  it('a new leader takes no change until an entry of its own term commits', () => {
    const fresh = new TestCluster(three, { checkQuorum: false }, undefined, 7);
    fresh.campaign('n1');
    fresh.isolate('n1');
    fresh.drop((m) => m.from === 'n3' && m.type === 'append');
    fresh.campaign('n3');
    // n3 won with n2's vote but its empty entry cannot reach n2: nothing of term 2 is committed.
    expect(fresh.node('n3').status().role).toBe('leader');
    expect(() => fresh.node('n3').proposeConfChange({ type: 'remove', node: 'n1' })).toThrow(ConfChangeInProgressError);
    fresh.heal();
    fresh.tick('n3');
    expect(() => fresh.node('n3').proposeConfChange({ type: 'remove', node: 'n1' })).not.toThrow();
  });

  it('refuses changes that do not apply, leaving the configuration unchanged', () => {
    const cluster = ledCluster();
    const leader = cluster.node('n1');
    const before = leader.status().lastIndex;
    expect(() => leader.proposeConfChange({ type: 'add-learner', node: 'n2' })).toThrow(InvalidConfChangeError);
    expect(() => leader.proposeConfChange({ type: 'promote', node: 'n2' })).toThrow(/not a learner/);
    expect(() => leader.proposeConfChange({ type: 'remove', node: 'n9' })).toThrow(/not a member/);
    expect(() => leader.proposeConfChange({ type: 'add-learner', node: '' })).toThrow(InvalidConfChangeError);
    expect(leader.status().lastIndex).toBe(before);
    expect(leader.voters).toEqual(three);
    expect(() => cluster.node('n2').proposeConfChange({ type: 'remove', node: 'n3' })).toThrow(NotLeaderError);
  });

  it('the last voter cannot be removed', () => {
    const solo = new TestCluster(['n1']);
    solo.campaign('n1');
    expect(() => solo.node('n1').proposeConfChange({ type: 'remove', node: 'n1' })).toThrow(/last voter/);
  });
});

describe('membership: a change takes effect when appended', () => {
  it('a follower uses a configuration it appended but has not seen committed', () => {
    const cluster = ledCluster();
    cluster.join('n4');
    // Only n2 gets the change; commit needs n3, which hears nothing.
    cluster.cutLink('n1', 'n3');
    cluster.drop((m) => m.type === 'append-response' && m.from === 'n2');
    cluster.node('n1').proposeConfChange({ type: 'add-learner', node: 'n4' });
    cluster.flush();
    const n2 = cluster.node('n2');
    expect(n2.configuration().learners).toEqual(['n4']);
    expect(n2.status().commit).toBeLessThan(n2.status().lastIndex);
    expect(cluster.node('n3').configuration().learners).toEqual([]);
  });

  it('a configuration entry truncated away by a new leader is undone', () => {
    const cluster = ledCluster();
    cluster.join('n4');
    cluster.isolate('n1');
    // The change reaches no one: only the old leader's log holds it.
    cluster.node('n1').proposeConfChange({ type: 'add-learner', node: 'n4' });
    cluster.flush();
    expect(cluster.node('n1').configuration().learners).toEqual(['n4']);
    cluster.heal();
    cluster.isolate('n1');
    cluster.campaign('n2');
    cluster.propose('n2', 'new-term');
    cluster.heal();
    cluster.tick('n2');
    expect(cluster.node('n1').status()).toMatchObject({ role: 'follower', leader: 'n2' });
    expect(cluster.node('n1').configuration().learners).toEqual([]);
    expect(cluster.appliedIds('n1').at(-1)).toBe('new-term');
  });
});

describe('membership: the configuration survives restarts and travels in snapshots', () => {
  it('a restarted node rebuilds its configuration from the log, whatever voters it is given', () => {
    const cluster = ledCluster();
    cluster.join('n4');
    cluster.change('n1', { type: 'add-learner', node: 'n4' });
    cluster.change('n1', { type: 'promote', node: 'n4' });
    cluster.change('n1', { type: 'remove', node: 'n3' });
    cluster.crash('n2');
    cluster.restart('n2');
    expect(cluster.node('n2').configuration()).toMatchObject({ voters: ['n1', 'n2', 'n4'], learners: [] });
    cluster.crash('n4');
    cluster.restart('n4');
    expect(cluster.node('n4').voters).toEqual(['n1', 'n2', 'n4']);
  });

  it('a snapshot records the configuration at its index; a node restored from it (or restarted on it) uses it', () => {
    const cluster = ledCluster();
    cluster.join('n4');
    cluster.change('n1', { type: 'add-learner', node: 'n4', address: 'h4:1' });
    const n1 = cluster.member('n1');
    const applied = cluster.node('n1').status().applied;
    const config = cluster.node('n1').configurationAt(applied);
    n1.storage.createSnapshot(applied, config, encoder.encode('image'));
    n1.storage.compact(applied);
    expect(n1.storage.snapshot().meta).toMatchObject({ voters: three, learners: ['n4'], addresses: { n4: 'h4:1' } });
    // A brand-new learner far behind gets the snapshot, and with it the configuration.
    cluster.join('n5');
    cluster.change('n1', { type: 'add-learner', node: 'n5' });
    cluster.tick('n1');
    expect(cluster.member('n1').sent.some((m) => m.type === 'snapshot' && m.to === 'n5')).toBe(true);
    expect(cluster.node('n5').configuration().learners).toEqual(['n4', 'n5']);
    // Restarted on the snapshot alone, n1 still knows n4 is a learner, given any bootstrap voters.
    const restarted = new RaftNode({ id: 'n1', voters: ['n1'], storage: n1.storage, random: new SeededRandom(3) });
    expect(restarted.configuration()).toMatchObject({ voters: three, learners: ['n4', 'n5'] });
  });
});

describe('leadership transfer', () => {
  it('an up-to-date target takes over at once, without waiting for an election timeout', () => {
    const cluster = ledCluster();
    cluster.node('n1').transferLeadership('n2');
    cluster.flush();
    expect(cluster.node('n2').status()).toMatchObject({ role: 'leader', term: 2 });
    expect(cluster.node('n1').status()).toMatchObject({ role: 'follower', leader: 'n2' });
    cluster.propose('n2', 'on-new-leader');
    expect(cluster.appliedIds('n1').at(-1)).toBe('on-new-leader');
  });

  it('works inside the voters’ leader lease (CheckQuorum on): the transfer flag lets them vote', () => {
    const cluster = new TestCluster(three, { checkQuorum: true });
    cluster.campaign('n1');
    cluster.tick('n1');
    cluster.node('n1').transferLeadership('n3');
    cluster.flush();
    expect(cluster.node('n3').status().role).toBe('leader');
  });

  it('a lagging target is brought up to date first, then told to campaign', () => {
    const cluster = ledCluster();
    cluster.isolate('n3');
    for (let i = 0; i < 5; i++) cluster.propose('n1', `q${i}`);
    const leader = cluster.node('n1');
    leader.transferLeadership('n3');
    cluster.flush();
    expect(leader.status().transferee).toBe('n3');
    expect(cluster.member('n1').sent.some((m) => m.type === 'timeout-now')).toBe(false);
    cluster.heal();
    cluster.tick('n1');
    expect(cluster.node('n3').status().role).toBe('leader');
    expect(cluster.node('n3').status().lastIndex).toBeGreaterThan(leader.status().commit - 1);
    expect(cluster.appliedIds('n3')).toContain('q4');
  });

  it('a leader refuses proposals and changes while transferring, then takes them again if the transfer times out', () => {
    const cluster = ledCluster();
    cluster.isolate('n3');
    const leader = cluster.node('n1');
    leader.transferLeadership('n3');
    expect(() => leader.propose('x', encoder.encode('x'))).toThrow(LeadershipTransferInProgressError);
    expect(() => leader.proposeConfChange({ type: 'remove', node: 'n2' })).toThrow(LeadershipTransferInProgressError);
    cluster.tick('n1', 10);
    expect(leader.status()).toMatchObject({ role: 'leader', transferee: null });
    expect(() => leader.propose('y', encoder.encode('y'))).not.toThrow();
  });

  it('refuses a target that is not a voter, and is leader-only', () => {
    const cluster = ledCluster();
    cluster.join('n4');
    cluster.change('n1', { type: 'add-learner', node: 'n4' });
    expect(() => cluster.node('n1').transferLeadership('n4')).toThrow(/not a voter/);
    expect(() => cluster.node('n2').transferLeadership('n3')).toThrow(NotLeaderError);
    // To itself: nothing to do.
    cluster.node('n1').transferLeadership('n1');
    expect(cluster.node('n1').status().transferee).toBeNull();
  });
});

describe('membership: who answers a campaign', () => {
  it('a voter ignores the campaign of a node it does not know as a voter (a removed member that missed its removal)', () => {
    const cluster = new TestCluster(three, { checkQuorum: false, preVote: false });
    cluster.campaign('n1');
    cluster.crash('n3');
    cluster.change('n1', { type: 'remove', node: 'n3' });
    cluster.restart('n3');
    // n3 never heard of its removal: it still counts itself a voter and campaigns (no pre-vote, no lease here).
    expect(cluster.node('n3').voters).toEqual(three);
    const n3 = cluster.node('n3');
    cluster.isolate('n3', ['n1']);
    n3.campaign();
    cluster.flush();
    // n2 neither votes nor moves to n3's term: the cluster is not disrupted.
    expect(cluster.node('n2').status().term).toBe(1);
    expect(n3.status().role).not.toBe('leader');
  });

  it('a voter answers a candidate it does not know as a voter whose log is ahead of its own (it missed the promotion)', () => {
    // The deadlock this prevents (simulation seed 10209): voters n1 and j1 in force; n1, behind,
    // still sees j1 as a learner, and j1 needs n1's vote. Withholding it, no one could be elected.
    const cluster = ledCluster();
    const n2 = cluster.node('n2');
    const { lastIndex, term } = n2.status();
    // Not ahead (the same log): ignored, as a removed member's campaign is.
    n2.step({ type: 'vote', from: 'j1', to: 'n2', term: term + 5, lastLogIndex: lastIndex, lastLogTerm: term });
    const ignored = n2.ready();
    expect([...ignored.messages, ...ignored.messagesAfterPersist].filter((m) => m.type === 'vote-response')).toEqual([]);
    expect(n2.status().term).toBe(term);
    n2.advance(ignored);
    // Ahead: heard, and granted.
    n2.step({ type: 'vote', from: 'j1', to: 'n2', term: term + 5, lastLogIndex: lastIndex + 10, lastLogTerm: term });
    const ready = n2.ready();
    expect([...ready.messages, ...ready.messagesAfterPersist]).toContainEqual(
      expect.objectContaining({ type: 'vote-response', to: 'j1', granted: true }),
    );
    n2.advance(ready);
  });

  it('a node that is not a voter in its own configuration still answers (it may have been promoted without knowing)', () => {
    const cluster = ledCluster();
    cluster.join('n4');
    cluster.change('n1', { type: 'add-learner', node: 'n4' });
    const learner = cluster.node('n4');
    learner.step({ type: 'vote', from: 'n2', to: 'n4', term: 5, lastLogIndex: 99, lastLogTerm: 1 });
    const ready = learner.ready();
    expect([...ready.messages, ...ready.messagesAfterPersist]).toContainEqual(
      expect.objectContaining({ type: 'vote-response', to: 'n2', granted: true }),
    );
    learner.advance(ready);
  });
});
