/** A stable node identifier (the member's `localId`). */
export type NodeId = string;

/**
 * What a log entry carries: a client command, the empty entry a new leader appends, or a
 * membership change (its data is the change and the configuration it produces; see `membership.ts`).
 */
export type EntryKind = 'command' | 'empty' | 'config';

/** One slot of the replicated log. Entries are immutable once created. */
export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly kind: EntryKind;
  /**
   * Set on commands: the ID the proposer chose, so the state machine can apply a command once
   * even when it was forwarded or retried and so appears in the log more than once.
   */
  readonly proposalId: string | null;
  readonly data: Uint8Array;
}

/** The state that must be durable before any message that depends on it is sent. */
export interface HardState {
  readonly term: number;
  /** The candidate this node voted for in `term`, or null. */
  readonly vote: NodeId | null;
  readonly commit: number;
}

/** Where a snapshot ends, and the configuration at that point. */
export interface SnapshotMeta {
  readonly index: number;
  readonly term: number;
  readonly voters: readonly NodeId[];
  /** Members that receive the log but do not vote (none when absent). */
  readonly learners?: readonly NodeId[];
  /** Addresses of members added through the log, for the driver (none when absent). */
  readonly addresses?: Readonly<Record<NodeId, string>>;
}

/** The state machine's image at `meta.index`; `data` is opaque to consensus. */
export interface Snapshot {
  readonly meta: SnapshotMeta;
  readonly data: Uint8Array;
}

/** The role a node plays right now. */
export type RaftRole = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  /** The sender's term (for pre-votes: the term it would campaign in). */
  readonly term: number;
}

/** A (pre-)vote request. A pre-vote asks "would you vote for me?" without anyone changing term. */
export interface VoteRequest extends Envelope {
  readonly type: 'vote' | 'pre-vote';
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
  /**
   * Set when the leader asked this candidate to take over (leadership transfer): voters answer
   * even inside their leader lease, since the leader itself stepped aside.
   */
  readonly transfer?: boolean;
}

/** The answer to a (pre-)vote request. */
export interface VoteResponse extends Envelope {
  readonly type: 'vote-response' | 'pre-vote-response';
  readonly granted: boolean;
}

/** AppendEntries: the consistency check on (prevIndex, prevTerm), then the entries. */
export interface AppendRequest extends Envelope {
  readonly type: 'append';
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

/**
 * The answer to an append (or a snapshot). On success `index` is the last index the follower
 * now knows to match the leader. On rejection `index` is the rejected prevIndex and
 * (`hintIndex`, `hintTerm`) let the leader skip a whole term of mismatches at once.
 */
export interface AppendResponse extends Envelope {
  readonly type: 'append-response';
  readonly index: number;
  readonly rejected: boolean;
  readonly hintIndex: number;
  readonly hintTerm: number;
}

/** Leader heartbeat; `context` is set when it also confirms leadership for ReadIndex. */
export interface HeartbeatRequest extends Envelope {
  readonly type: 'heartbeat';
  readonly commit: number;
  readonly context: string | null;
}

/** The answer to a heartbeat, echoing its context. */
export interface HeartbeatResponse extends Envelope {
  readonly type: 'heartbeat-response';
  readonly context: string | null;
}

/** InstallSnapshot, sent whole (the transport may stream it in chunks). */
export interface SnapshotRequest extends Envelope {
  readonly type: 'snapshot';
  readonly snapshot: Snapshot;
}

/** A proposal a follower forwards to the leader it knows. */
export interface ProposalForward extends Envelope {
  readonly type: 'propose';
  readonly proposals: readonly Proposal[];
}

/** A ReadIndex request a follower forwards to the leader. */
export interface ReadIndexRequest extends Envelope {
  readonly type: 'read-index';
  readonly context: string;
}

/** The leader's answer: reads for `context` may be served once `index` is applied. */
export interface ReadIndexResponse extends Envelope {
  readonly type: 'read-index-response';
  readonly context: string;
  readonly index: number;
}

/** The leader tells an up-to-date voter to campaign now (the last step of a leadership transfer). */
export interface TimeoutNow extends Envelope {
  readonly type: 'timeout-now';
}

/** Every message nodes exchange: plain data, so a transport can serialize it. */
export type Message =
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | HeartbeatRequest
  | HeartbeatResponse
  | SnapshotRequest
  | ProposalForward
  | ReadIndexRequest
  | ReadIndexResponse
  | TimeoutNow;

/** The discriminant of {@link Message}. */
export type MessageType = Message['type'];

/** A command offered for replication. */
export interface Proposal {
  readonly id: string;
  readonly data: Uint8Array;
}

/** A linearizable read may be served once this node has applied `index`. */
export interface ReadState {
  readonly context: string;
  readonly index: number;
}

/**
 * One batch of work for the driver. Persist `hardState`, `snapshot` and `entries` (in that
 * order: entries overwrite any stored entries from their first index on); send `messages` at
 * once (they depend on nothing in this batch); after the writes are durable send
 * `messagesAfterPersist`, apply `committedEntries`, then call `advance(ready)`.
 */
export interface Ready {
  readonly hardState: HardState | null;
  readonly snapshot: Snapshot | null;
  readonly entries: readonly Entry[];
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly messagesAfterPersist: readonly Message[];
  readonly readStates: readonly ReadState[];
}

/** A read-only view of a node, for drivers and diagnostics. */
export interface RaftStatus {
  readonly id: NodeId;
  readonly role: RaftRole;
  readonly term: number;
  readonly vote: NodeId | null;
  readonly leader: NodeId | null;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  /** The voter a leader is handing leadership to, while a transfer is under way. */
  readonly transferee: NodeId | null;
}
