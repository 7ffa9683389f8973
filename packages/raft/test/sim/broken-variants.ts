import { RaftNode } from '../../src/consensus/raft.js';
import type { AppendRequest, MessageType } from '../../src/consensus/types.js';
import type { RaftNodeConfig } from '../../src/consensus/config.js';
import type { NodeFactory } from './simulation.js';

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

export const brokenVariants = {
  'vote-without-log-check': (config: RaftNodeConfig) => new VoteWithoutLogCheck(config),
  'commit-older-term': (config: RaftNodeConfig) => new CommitOlderTerm(config),
  'truncate-on-stale-append': (config: RaftNodeConfig) => new TruncateOnStaleAppend(config),
  'vote-not-persisted': (config: RaftNodeConfig) => new VoteNotPersisted(config),
} satisfies Record<string, NodeFactory>;

export type BrokenVariantName = keyof typeof brokenVariants;
