import { TimeboxError } from '@timebox/core';
import type { NodeId } from '../consensus/types.js';

/**
 * Why a call ran out of time: `'no-leader'` when this node knew no leader at the deadline (an
 * election is in progress, or no majority is up or reachable from here); `'not-committed'` when it
 * knew one, but that leader did not commit the proposal (or confirm the read) in time — it may be
 * cut off from a majority and not yet aware of it, or be overloaded.
 */
export type RaftUnavailableReason = 'no-leader' | 'not-committed';

/**
 * A proposal (or a linearizable read) could not be committed through a leader within the
 * configured wait: no leader was known, or the one that was did not commit it (`reason` says
 * which).
 *
 * The outcome of a timed-out proposal is ambiguous, as with any lost reply: it may still be
 * committed later (it can sit in a leader's log that survives), and then it is applied on every
 * node like any other entry.
 */
export class RaftUnavailableError extends TimeboxError {
  /** Which of the two cases this is; see {@link RaftUnavailableReason}. */
  readonly reason: RaftUnavailableReason;

  constructor(
    readonly nodeId: NodeId,
    readonly waitedMs: number,
    /** The leader this node last knew of, or null if it never knew one. */
    readonly lastLeader: NodeId | null,
    /** The term in which `lastLeader` was known (0 if none). */
    readonly lastTerm: number,
    /** The leader this node knew at the deadline, or null if it knew none then. */
    readonly leader: NodeId | null = null,
  ) {
    const reason: RaftUnavailableReason = leader === null ? 'no-leader' : 'not-committed';
    const known = lastLeader === null ? 'no leader was ever known' : `last known leader ${JSON.stringify(lastLeader)} in term ${lastTerm}`;
    const what =
      reason === 'no-leader'
        ? `no leader known within ${waitedMs} ms (${known})`
        : `leader ${JSON.stringify(leader)} is known but did not commit within ${waitedMs} ms (it may be cut off from a majority)`;
    super('RAFT_UNAVAILABLE', `node ${JSON.stringify(nodeId)}: ${what}; a proposal that timed out may still commit later`);
    this.reason = reason;
  }
}

/**
 * The node stopped because its durable log or its state machine failed (or the consensus core
 * rejected its input). It does not keep running on a half-written state: every pending and later
 * call rejects with this error; `cause` holds the original failure. Restart the process (the
 * log and the state recover from disk).
 */
export class RaftNodeFailedError extends TimeboxError {
  constructor(
    readonly nodeId: NodeId,
    cause: unknown,
  ) {
    super(
      'RAFT_NODE_FAILED',
      `raft node ${JSON.stringify(nodeId)} stopped after a fatal error: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}

/**
 * The state machine applied an entry carrying a proposal this node was waiting for, but returned
 * no result for its ID (a state machine must return the remembered result for a duplicate too).
 */
export class ProposalResultMissingError extends TimeboxError {
  constructor(
    readonly proposalId: string,
    readonly index: number,
  ) {
    super(
      'RAFT_RESULT_MISSING',
      `the state machine applied proposal ${JSON.stringify(proposalId)} at index ${index} but returned no result for it`,
    );
  }
}

/**
 * A membership change was appended by the leader but did not commit: it was lost to a leader
 * change (the cluster keeps its old configuration; propose it again), or it did not commit
 * within the wait (it may still commit later: check `member.members()`).
 */
export class MembershipChangeFailedError extends TimeboxError {
  constructor(
    readonly nodeId: NodeId,
    reason: string,
  ) {
    super('RAFT_MEMBERSHIP_CHANGE_FAILED', `membership change on ${JSON.stringify(nodeId)} did not complete: ${reason}`);
  }
}

/** No other voter took over leadership within the wait (it was down, or too far behind); this node may still lead. */
export class LeadershipTransferFailedError extends TimeboxError {
  constructor(
    readonly nodeId: NodeId,
    readonly target: NodeId,
    readonly waitedMs: number,
  ) {
    super(
      'RAFT_LEADERSHIP_TRANSFER_FAILED',
      `leader ${JSON.stringify(nodeId)} could not hand leadership to ${JSON.stringify(target)} within ${waitedMs} ms`,
    );
  }
}
