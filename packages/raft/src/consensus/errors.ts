import { TimeboxError } from '@timebox/core';

/** A proposal or read was made while this node knows no leader; retry after an election. */
export class NoLeaderError extends TimeboxError {
  constructor(
    readonly nodeId: string,
    operation: string,
  ) {
    super(
      'RAFT_NO_LEADER',
      `cannot ${operation} on node ${JSON.stringify(nodeId)}: no leader is known (an election is under way or quorum is lost)`,
    );
  }
}

/** The leader refused a proposal because too much of its log is still uncommitted. */
export class ProposalDroppedError extends TimeboxError {
  constructor(
    readonly nodeId: string,
    readonly uncommittedBytes: number,
    readonly limitBytes: number,
  ) {
    super(
      'RAFT_PROPOSAL_DROPPED',
      `leader ${JSON.stringify(nodeId)} dropped a proposal: ${uncommittedBytes} bytes are still uncommitted (limit ${limitBytes}); quorum may be lost`,
    );
  }
}

/** A proposal was malformed (empty ID, or data that is not bytes). */
export class InvalidProposalError extends TimeboxError {
  constructor(reason: string) {
    super('RAFT_INVALID_PROPOSAL', `invalid proposal: ${reason}`);
  }
}

/** The requested log index was compacted into a snapshot. */
export class LogCompactedError extends TimeboxError {
  constructor(
    readonly index: number,
    readonly firstIndex: number,
  ) {
    super('RAFT_LOG_COMPACTED', `log index ${index} was compacted (the log now starts at ${firstIndex})`);
  }
}

/** The requested log index is beyond the end of the log. */
export class LogUnavailableError extends TimeboxError {
  constructor(
    readonly index: number,
    readonly lastIndex: number,
  ) {
    super('RAFT_LOG_UNAVAILABLE', `log index ${index} is beyond the last index ${lastIndex}`);
  }
}

/** The driver broke the Ready/advance protocol or handed in state that cannot be right. */
export class RaftProtocolError extends TimeboxError {
  constructor(message: string) {
    super('RAFT_PROTOCOL', message);
  }
}

/** A membership change or leadership transfer was asked of a node that is not the leader. */
export class NotLeaderError extends TimeboxError {
  constructor(
    readonly nodeId: string,
    readonly leader: string | null,
    operation: string,
  ) {
    super(
      'RAFT_NOT_LEADER',
      `cannot ${operation} on node ${JSON.stringify(nodeId)}: it is not the leader (${leader === null ? 'no leader is known' : `the leader is ${JSON.stringify(leader)}`})`,
    );
  }
}

/** A membership change was refused because another one has not committed yet (one change at a time). */
export class ConfChangeInProgressError extends TimeboxError {
  constructor(
    readonly pendingIndex: number,
    readonly committed: number,
  ) {
    super(
      'RAFT_CONF_CHANGE_IN_PROGRESS',
      `a membership change is still in flight (log index ${pendingIndex}, committed ${committed}): one change at a time; retry once it commits`,
    );
  }
}

/** A membership change does not apply to the current configuration (unknown member, already a voter, last voter…). */
export class InvalidConfChangeError extends TimeboxError {
  constructor(reason: string) {
    super('RAFT_INVALID_CONF_CHANGE', `invalid membership change: ${reason}`);
  }
}

/** The leader is handing leadership over and takes no proposals until that ends (a new leader, or an election timeout). */
export class LeadershipTransferInProgressError extends TimeboxError {
  constructor(
    readonly nodeId: string,
    readonly transferee: string,
  ) {
    super(
      'RAFT_LEADERSHIP_TRANSFER',
      `leader ${JSON.stringify(nodeId)} is transferring leadership to ${JSON.stringify(transferee)} and takes no proposals meanwhile; retry on the new leader`,
    );
  }
}

/** A leadership transfer was asked for a node that cannot lead (not a voter). */
export class InvalidTransferError extends TimeboxError {
  constructor(reason: string) {
    super('RAFT_INVALID_TRANSFER', `invalid leadership transfer: ${reason}`);
  }
}
