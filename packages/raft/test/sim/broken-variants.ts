import { RaftNode } from '../../src/consensus/raft.js';
import type { AppendRequest, MessageType } from '../../src/consensus/types.js';
import type { RaftNodeConfig } from '../../src/consensus/config.js';
import type { NodeFactory } from './simulation.js';
import { MajorityQuorum } from '../../src/consensus/quorum.js';
import type { ProgressTracker } from '../../src/consensus/tracker.js';

/** Grants votes without checking that the candidate's log is at least as up to date. */
class VoteWithoutLogCheck extends RaftNode {
  protected override candidateLogIsUpToDate(): boolean {
    return true;
  }
}

/** Commits by counting replicas even for an entry of an older term (the Figure 8 bug). */
class CommitOlderTerm extends RaftNode {
  protected override mayCommitByCounting(index: number): boolean {
    return this.log.term(index) !== null;
  }
}

/** Rewrites its log from the first entry of every append, so a stale append truncates newer entries. */
class TruncateOnStaleAppend extends RaftNode {
  protected override appendConflictIndex(request: AppendRequest): number {
    const last = request.entries[request.entries.length - 1];
    // Treat "our log goes on past this message" as a conflict, and cut it back to the message.
    if (last !== undefined && this.log.lastIndex() > last.index) return request.entries[0]!.index;
    return super.appendConflictIndex(request);
  }
}

/** Sends its vote before the vote is durable. */
class VoteNotPersisted extends RaftNode {
  protected override mustPersistBeforeSending(type: MessageType): boolean {
    return type === 'vote-response' ? false : super.mustPersistBeforeSending(type);
  }
}

/** Counts acknowledgements over the given nodes against a majority of the voters only. */
function committedOver(node: RaftNodeInternals, ids: readonly string[]): number {
  const size = new MajorityQuorum(node.tracker.voters).size;
  const matches = ids.map((id) => node.tracker.get(id)?.match ?? 0).sort((a, b) => b - a);
  return matches[size - 1] ?? 0;
}

/** The protected parts a variant reaches into. */
type RaftNodeInternals = RaftNode & { readonly tracker: ProgressTracker };

/** Lets a second membership change in while the first is uncommitted (and before the leader's first entry commits). */
class TwoChangesInFlight extends RaftNode {
  protected override changeInFlight(): boolean {
    return false;
  }
}

/** Keeps counting the acknowledgements of nodes the configuration in force removed (until the removal commits). */
class RemovedMemberCounted extends RaftNode {
  protected override committedIndexByCounting(): number {
    const members = this.tracker.members();
    const removed = this.tracker.replicas().filter((id) => !members.includes(id));
    return committedOver(this as unknown as RaftNodeInternals, [...this.tracker.voters, ...removed]);
  }
}

/** Counts a learner's acknowledgements as if it were a voter. */
class LearnerCountedAsVoter extends RaftNode {
  protected override committedIndexByCounting(): number {
    return committedOver(this as unknown as RaftNodeInternals, this.tracker.members());
  }
}

export const brokenVariants = {
  'vote-without-log-check': (config: RaftNodeConfig) => new VoteWithoutLogCheck(config),
  'commit-older-term': (config: RaftNodeConfig) => new CommitOlderTerm(config),
  'truncate-on-stale-append': (config: RaftNodeConfig) => new TruncateOnStaleAppend(config),
  'vote-not-persisted': (config: RaftNodeConfig) => new VoteNotPersisted(config),
  'two-changes-in-flight': (config: RaftNodeConfig) => new TwoChangesInFlight(config),
  'removed-member-counted': (config: RaftNodeConfig) => new RemovedMemberCounted(config),
  'learner-counted-as-voter': (config: RaftNodeConfig) => new LearnerCountedAsVoter(config),
} satisfies Record<string, NodeFactory>;

export type BrokenVariantName = keyof typeof brokenVariants;
