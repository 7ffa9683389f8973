import { resolveRaftConfig, type RaftNodeConfig, type ResolvedRaftConfig } from './config.js';
import {
  ConfChangeInProgressError,
  InvalidProposalError,
  InvalidTransferError,
  LeadershipTransferInProgressError,
  NoLeaderError,
  NotLeaderError,
  ProposalDroppedError,
  RaftProtocolError,
} from './errors.js';
import { RaftLog } from './log.js';
import {
  applyConfChange,
  encodeConfigEntry,
  EMPTY_CONFIGURATION,
  MembershipLog,
  snapshotConfiguration,
  type ConfChange,
  type Configuration,
} from './membership.js';
import type { Progress } from './progress.js';
import type { VoteResult } from './quorum.js';
import { ProgressTracker } from './tracker.js';
import { ReadOnlyQueue, type PendingRead } from './read-only.js';
import { entryBytes, type LogStorage } from './storage.js';
import type {
  AppendRequest,
  AppendResponse,
  Entry,
  HardState,
  HeartbeatRequest,
  HeartbeatResponse,
  Message,
  MessageType,
  NodeId,
  Proposal,
  RaftRole,
  RaftStatus,
  ReadState,
  Ready,
  Snapshot,
  SnapshotRequest,
  TimeoutNow,
  VoteRequest,
  VoteResponse,
} from './types.js';

/** Distributes Omit over a union, so each message type keeps its own fields. */
type Outgoing = Message extends infer M ? (M extends Message ? Omit<M, 'from'> : never) : never;

/** What `propose` did with a command. */
export type ProposeOutcome = 'appended' | 'forwarded';

/**
 * Message types a node may send before the Ready that produced them is durable: a leader's
 * appends (Raft thesis §10.2.1: it writes its own log in parallel), and messages that carry no
 * promise about this node's persistent state. Everything else — votes, append acknowledgements —
 * waits for the write.
 */
const SENDABLE_BEFORE_PERSIST: ReadonlySet<MessageType> = new Set<MessageType>([
  'append',
  'heartbeat',
  'snapshot',
  'pre-vote',
  'pre-vote-response',
  'propose',
  'read-index',
  'read-index-response',
  'timeout-now',
]);

/**
 * The Raft consensus core: a pure, synchronous, deterministic state machine. It owns no timer,
 * socket or file. The driver calls `tick()` on a clock, feeds received messages to `step()`,
 * offers commands through `propose()` and reads through `readIndex()`, and repeatedly takes a
 * `ready()` batch, persists and sends what it asks, applies committed entries, then `advance()`s.
 *
 * A few decisions are `protected` so tests can build deliberately broken variants and prove the
 * simulation catches them; production code never overrides them.
 */
export class RaftNode {
  readonly id: NodeId;
  protected readonly config: ResolvedRaftConfig;
  protected readonly log: RaftLog;
  /** The configuration of the log (membership changes take effect when appended). */
  protected readonly membership: MembershipLog;
  /** Who is a member, how each is replicating, and every quorum count. */
  protected readonly tracker: ProgressTracker;
  /** The index of the latest membership change this leader appended (or its first entry); a new change waits until it commits. */
  protected pendingConfIndex = 0;
  /** The voter this leader is handing leadership to, or null. */
  private leadTransferee: NodeId | null = null;

  private term = 0;
  private vote: NodeId | null = null;
  private leader: NodeId | null = null;
  private role: RaftRole = 'follower';

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;

  private messages: Message[] = [];
  private messagesAfterPersist: Message[] = [];
  private readStates: ReadState[] = [];
  private readonly readOnly = new ReadOnlyQueue();
  /** ReadIndex requests that arrived before this leader committed an entry of its term. */
  private deferredReads: { context: string; requester: NodeId }[] = [];
  /** Sizes of this leader's uncommitted proposals, oldest first. */
  private uncommitted: { index: number; bytes: number }[] = [];
  private uncommittedBytes = 0;

  private persistedHardState: HardState;
  private readyOutstanding = false;

  constructor(config: RaftNodeConfig) {
    this.config = resolveRaftConfig(config);
    this.id = this.config.id;
    const storage = this.config.storage;
    const initial = storage.initialState();
    this.log = new RaftLog(storage);
    // The stored configuration wins over the configured voters, which only bootstrap a new cluster.
    const snapshot = storage.snapshot();
    const stored = snapshot.meta.index > 0 || snapshot.meta.voters.length > 0;
    const base: Configuration = stored ? snapshotConfiguration(snapshot.meta) : { ...EMPTY_CONFIGURATION, voters: [...this.config.voters] };
    this.membership = new MembershipLog(snapshot.meta.index, base);
    this.membership.appended(configEntries(storage, this.log.firstIndex(), this.log.lastIndex()));
    this.tracker = new ProgressTracker(this.membership.current(), this.config.maxInflightMessages, this.config.maxInflightBytes);
    const hard = initial.hardState;
    if (hard.commit < this.log.committed || hard.commit > this.log.lastIndex()) {
      throw new RaftProtocolError(
        `stored commit ${hard.commit} is outside the stored log [${this.log.committed}, ${this.log.lastIndex()}]`,
      );
    }
    this.log.committed = hard.commit;
    if (this.config.applied !== null) {
      if (this.config.applied > hard.commit)
        throw new RaftProtocolError(`applied ${this.config.applied} is beyond the stored commit ${hard.commit}`);
      this.log.applied = Math.max(this.config.applied, this.log.applied);
    }
    this.persistedHardState = hard;
    this.term = hard.term;
    this.vote = hard.vote;
    this.becomeFollower(hard.term, null);
  }

  // ---------------------------------------------------------------- inputs

  /** Advances the logical clock by one tick: elections for followers, heartbeats and CheckQuorum for leaders. */
  tick(): void {
    if (this.role === 'leader') this.tickLeader();
    else this.tickElection();
  }

  /** Starts an election now (pre-vote first when enabled), as if the election timeout had run out. Learners and non-members never campaign. */
  campaign(): void {
    if (this.role === 'leader' || !this.promotable()) return;
    this.startCampaign(this.config.preVote ? 'pre-vote' : 'vote');
  }

  /** The voters and learners in force (the latest configuration in this node's log). */
  get voters(): readonly NodeId[] {
    return this.tracker.voters;
  }

  /** The configuration in force: the latest in this node's log, committed or not. */
  configuration(): Configuration {
    return this.membership.current();
  }

  /** The configuration as of log index `index` (at least the snapshot's index): what a snapshot taken there must record. */
  configurationAt(index: number): Configuration {
    return this.membership.at(index);
  }

  /**
   * Proposes a single-server membership change, on the leader only. The change is a log entry and
   * takes effect on each node as soon as that node appends it; the next change is refused until it
   * commits (and until this leader has committed an entry of its own term, which closes the
   * single-server change bug the dissertation's errata describe). Returns the entry's index.
   * @throws NotLeaderError on a follower. ConfChangeInProgressError while a change is uncommitted.
   * InvalidConfChangeError when the change does not apply. LeadershipTransferInProgressError during a transfer.
   */
  proposeConfChange(change: ConfChange): number {
    if (this.role !== 'leader') throw new NotLeaderError(this.id, this.leader, 'change the membership');
    if (this.leadTransferee !== null) throw new LeadershipTransferInProgressError(this.id, this.leadTransferee);
    if (this.changeInFlight()) throw new ConfChangeInProgressError(this.pendingConfIndex, this.log.committed);
    const next = applyConfChange(this.membership.current(), change);
    const index = this.log.lastIndex() + 1;
    const entry: Entry = { term: this.term, index, kind: 'config', proposalId: null, data: encodeConfigEntry(change, next) };
    this.log.append([entry]);
    this.pendingConfIndex = index;
    this.afterAppend([entry]);
    this.broadcastAppend();
    return index;
  }

  /**
   * Hands leadership to voter `to` (etcd's MsgTransferLeader): stops taking proposals, brings `to`
   * up to date, then tells it to campaign at once (TimeoutNow). Abandoned after an election timeout
   * if `to` has not taken over. A no-op when `to` is this node or already the transferee.
   * @throws NotLeaderError on a follower. InvalidTransferError when `to` is not a voter.
   */
  transferLeadership(to: NodeId): void {
    if (this.role !== 'leader') throw new NotLeaderError(this.id, this.leader, 'transfer leadership');
    if (to === this.id || to === this.leadTransferee) return;
    if (!this.tracker.isVoter(to)) throw new InvalidTransferError(`${JSON.stringify(to)} is not a voter`);
    this.leadTransferee = to;
    // The transfer must finish within an election timeout, counted from now.
    this.electionElapsed = 0;
    const progress = this.tracker.get(to) as Progress;
    if (progress.match === this.log.lastIndex()) this.sendTimeoutNow(to);
    else this.sendAppend(to, true);
  }

  /** Whether this leader's latest membership change (or its first entry) is still uncommitted. */
  protected changeInFlight(): boolean {
    return this.pendingConfIndex > this.log.committed;
  }

  /**
   * Offers a command. On the leader it is appended (and replicated); on a follower it is
   * forwarded to the leader. It is committed, or silently lost to a leader change — the caller
   * learns which by watching for `proposalId` among applied entries, and retries with the same
   * ID on timeout.
   * @throws NoLeaderError when no leader is known. ProposalDroppedError when the uncommitted tail is full.
   * LeadershipTransferInProgressError while this leader hands leadership over.
   */
  propose(proposalId: string, data: Uint8Array): ProposeOutcome {
    if (typeof proposalId !== 'string' || proposalId === '') throw new InvalidProposalError('the proposal ID must be a non-empty string');
    if (!(data instanceof Uint8Array)) throw new InvalidProposalError('the data must be a Uint8Array');
    const proposal: Proposal = { id: proposalId, data };
    if (this.role === 'leader') {
      if (this.leadTransferee !== null) throw new LeadershipTransferInProgressError(this.id, this.leadTransferee);
      this.appendProposals([proposal], true);
      return 'appended';
    }
    if (this.leader === null) throw new NoLeaderError(this.id, 'propose');
    this.send({ type: 'propose', to: this.leader, term: this.term, proposals: [proposal] });
    return 'forwarded';
  }

  /**
   * Offers several commands at once, each as `propose` would, but as one log append on the leader
   * (one append message per follower instead of one per command) or one forwarded message on a
   * follower. All or none are taken: on `NoLeaderError` or `ProposalDroppedError` none was.
   * @throws NoLeaderError when no leader is known. ProposalDroppedError when the uncommitted tail is full.
   */
  proposeMany(proposals: readonly Proposal[]): ProposeOutcome {
    // Checked through an `unknown` copy: Array.isArray on `proposals` itself would widen it to any[].
    const checked: unknown = proposals;
    if (!Array.isArray(checked) || proposals.length === 0) throw new InvalidProposalError('proposals must be a non-empty array');
    for (const proposal of proposals) {
      if (typeof proposal?.id !== 'string' || proposal.id === '')
        throw new InvalidProposalError('the proposal ID must be a non-empty string');
      if (!(proposal.data instanceof Uint8Array)) throw new InvalidProposalError('the data must be a Uint8Array');
    }
    const copy = proposals.map((proposal): Proposal => ({ id: proposal.id, data: proposal.data }));
    if (this.role === 'leader') {
      if (this.leadTransferee !== null) throw new LeadershipTransferInProgressError(this.id, this.leadTransferee);
      this.appendProposals(copy, true);
      return 'appended';
    }
    if (this.leader === null) throw new NoLeaderError(this.id, 'propose');
    this.send({ type: 'propose', to: this.leader, term: this.term, proposals: copy });
    return 'forwarded';
  }

  /**
   * Asks for a linearizable read. A `ReadState` with this context appears in a later Ready;
   * serve the read once the local state machine has applied its index. Unanswered requests
   * (lost to a leader change) should be retried with a fresh context.
   * @throws NoLeaderError when no leader is known.
   */
  readIndex(context: string): void {
    if (typeof context !== 'string' || context === '') throw new InvalidProposalError('the read context must be a non-empty string');
    if (this.role === 'leader') {
      this.handleReadIndex(context, this.id);
      return;
    }
    if (this.leader === null) throw new NoLeaderError(this.id, 'read');
    this.send({ type: 'read-index', to: this.leader, term: this.term, context });
  }

  /**
   * Feeds a message received from another node. Messages not addressed to this node are ignored.
   * Messages from nodes outside this node's configuration are taken (as etcd does): a member that
   * just joined, or whose log is behind, does not know every member yet.
   */
  step(message: Message): void {
    if (message.to !== this.id || message.from === this.id) return;
    // A voter ignores campaigns of nodes it does not know as voters (dissertation §4.2.3): a removed
    // member that missed its removal would otherwise disrupt the cluster with ever-higher terms.
    // Withholding a vote is always safe, but not always live: a voter whose log is behind may not
    // know yet that the candidate was promoted, while the configuration that did promote it needs
    // this vote (a voter behind a promotion and a removal it missed, the other voter the promoted
    // one: neither could ever be elected). So a candidate whose log is ahead of ours is heard; a
    // removed member's is not (it lacks at least its own removal, which the voters hold). A node
    // that is no voter in its own configuration (a learner, a node that just joined, one promoted
    // without knowing it yet) answers anyone, as in etcd.
    if (
      (message.type === 'vote' || message.type === 'pre-vote') &&
      this.tracker.isVoter(this.id) &&
      !this.tracker.isVoter(message.from) &&
      !this.log.isAheadOfUs(message.lastLogIndex, message.lastLogTerm)
    )
      return;
    if (message.type === 'propose' || message.type === 'read-index' || message.type === 'read-index-response') {
      // Not tied to a term: a forwarded command or read is fine whichever term it was sent in.
      this.stepByRole(message);
      return;
    }
    if (message.term > this.term) {
      if ((message.type === 'vote' || message.type === 'pre-vote') && message.transfer !== true && this.inLeaderLease()) return;
      if (message.type === 'pre-vote' || (message.type === 'pre-vote-response' && message.granted)) {
        // A pre-vote never moves anyone's term: the asker only proposes term + 1.
      } else if (message.type === 'append' || message.type === 'heartbeat' || message.type === 'snapshot') {
        this.becomeFollower(message.term, message.from);
      } else {
        this.becomeFollower(message.term, null);
      }
    } else if (message.term < this.term) {
      if (message.type === 'append' || message.type === 'heartbeat') {
        // A stale leader would otherwise keep a partition's term alive; our answer makes it step down.
        this.send({ type: 'append-response', to: message.from, term: this.term, index: 0, rejected: false, hintIndex: 0, hintTerm: 0 });
      } else if (message.type === 'pre-vote') {
        this.send({ type: 'pre-vote-response', to: message.from, term: this.term, granted: false });
      }
      return;
    }
    if (message.type === 'vote' || message.type === 'pre-vote') {
      this.handleVoteRequest(message);
      return;
    }
    this.stepByRole(message);
  }

  /** The transport could not reach `nodeId`: stop pipelining to it. */
  reportUnreachable(nodeId: NodeId): void {
    const progress = this.role === 'leader' ? this.tracker.get(nodeId) : undefined;
    if (progress !== undefined && progress.state === 'replicate') progress.becomeProbe();
  }

  /** The transport finished (or failed) sending a snapshot to `nodeId`; either way the follower goes back to probing. */
  reportSnapshot(nodeId: NodeId, succeeded: boolean): void {
    const progress = this.role === 'leader' ? this.tracker.get(nodeId) : undefined;
    if (progress === undefined || progress.state !== 'snapshot') return;
    if (!succeeded) progress.pendingSnapshot = 0;
    progress.becomeProbe();
    // Wait for the follower's answer (or a heartbeat) before sending more.
    progress.probeSent = true;
  }

  // ---------------------------------------------------------------- Ready / advance

  hasReady(): boolean {
    return (
      this.hardStateChanged() ||
      this.log.unstable.snapshot !== null ||
      this.log.unstable.entries.length > 0 ||
      this.log.hasNextCommittedEntries() ||
      this.messages.length > 0 ||
      this.messagesAfterPersist.length > 0 ||
      this.readStates.length > 0
    );
  }

  /** The next batch of work. Only one Ready may be outstanding: call `advance` before the next. */
  ready(): Ready {
    if (this.readyOutstanding) throw new RaftProtocolError('ready() called again before advance()');
    this.readyOutstanding = true;
    const ready: Ready = {
      hardState: this.hardStateChanged() ? this.hardState() : null,
      snapshot: this.log.unstable.snapshot,
      entries: [...this.log.unstable.entries],
      committedEntries: this.log.nextCommittedEntries(this.config.maxApplyBytes),
      messages: this.messages,
      messagesAfterPersist: this.messagesAfterPersist,
      readStates: this.readStates,
    };
    this.messages = [];
    this.messagesAfterPersist = [];
    this.readStates = [];
    return ready;
  }

  /** The driver made `ready`'s writes durable and applied its committed entries. */
  advance(ready: Ready): void {
    if (!this.readyOutstanding) throw new RaftProtocolError('advance() called without an outstanding ready()');
    this.readyOutstanding = false;
    if (ready.hardState !== null) this.persistedHardState = ready.hardState;
    if (ready.snapshot !== null) {
      this.log.stableSnapshotTo(ready.snapshot.meta.index);
      if (ready.snapshot.meta.index > this.log.applied) this.log.applied = ready.snapshot.meta.index;
    }
    const lastEntry = ready.entries[ready.entries.length - 1];
    if (lastEntry !== undefined) this.log.stableTo(lastEntry.index, lastEntry.term);
    const lastApplied = ready.committedEntries[ready.committedEntries.length - 1];
    if (lastApplied !== undefined) this.log.appliedTo(lastApplied.index);
    if (this.role === 'leader') this.acknowledgeOwnWrite();
  }

  // ---------------------------------------------------------------- inspection

  status(): RaftStatus {
    return {
      id: this.id,
      role: this.role,
      term: this.term,
      vote: this.vote,
      leader: this.leader,
      commit: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      transferee: this.leadTransferee,
    };
  }

  /** The term of the entry at `index` in this node's log (durable or not), or null if it has none there. */
  termAt(index: number): number | null {
    return this.log.term(index);
  }

  /** The first index this node still holds an entry for (older ones are in its snapshot). */
  firstIndex(): number {
    return this.log.firstIndex();
  }

  /** Replication state of each follower, when leader (for diagnostics). */
  followerProgress(): ReadonlyMap<NodeId, Readonly<Progress>> {
    return this.role === 'leader' ? this.tracker.all() : new Map();
  }

  // ---------------------------------------------------------------- overridable decisions

  /** The vote rule of Raft §5.4.1. */
  protected candidateLogIsUpToDate(lastIndex: number, lastTerm: number): boolean {
    return this.log.isUpToDate(lastIndex, lastTerm);
  }

  /** Raft §5.4.2: a leader commits by counting replicas only for an entry of its own term. */
  protected mayCommitByCounting(index: number): boolean {
    return this.log.term(index) === this.term;
  }

  /** Where an accepted append starts to differ from our log (0: nowhere). Only a term conflict counts. */
  protected appendConflictIndex(request: AppendRequest): number {
    return this.log.findConflict(request.entries);
  }

  /** Whether a message must wait until this Ready's writes are durable. */
  protected mustPersistBeforeSending(type: MessageType): boolean {
    return !SENDABLE_BEFORE_PERSIST.has(type);
  }

  // ---------------------------------------------------------------- roles

  private becomeFollower(term: number, leader: NodeId | null): void {
    this.reset(term);
    this.role = 'follower';
    this.leader = leader;
  }

  private becomePreCandidate(): void {
    // Changes neither term nor vote: a node cut off from the cluster must not inflate the term.
    this.role = 'pre-candidate';
    this.tracker.resetVotes();
    this.leader = null;
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.role = 'leader';
    this.leader = this.id;
    const self = this.tracker.get(this.id) as Progress;
    self.becomeReplicate();
    self.maybeUpdate(this.durableLastIndex());
    // The empty entry lets this leader commit (and so learn the commit index) in its own term.
    const empty: Entry = { term: this.term, index: this.log.lastIndex() + 1, kind: 'empty', proposalId: null, data: new Uint8Array(0) };
    this.log.append([empty]);
    // No membership change until this entry commits: an uncommitted change of an earlier term may
    // still be in some logs, and a second change on top of it could break the majority overlap.
    this.pendingConfIndex = empty.index;
    this.afterAppend([empty]);
    this.broadcastAppend();
  }

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = null;
    }
    this.leader = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.config.electionTicks + this.config.random.nextInt(this.config.electionTicks);
    this.tracker.resetVotes();
    this.tracker.resetProgress(this.log.lastIndex() + 1);
    this.leadTransferee = null;
    this.pendingConfIndex = 0;
    this.readOnly.clear();
    this.deferredReads = [];
    this.uncommitted = [];
    this.uncommittedBytes = 0;
  }

  // ---------------------------------------------------------------- elections

  private tickElection(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.randomizedElectionTimeout && this.promotable()) {
      this.electionElapsed = 0;
      this.startCampaign(this.config.preVote ? 'pre-vote' : 'vote');
    }
  }

  /** Only a voter of the configuration in force may campaign: learners and removed nodes never do. */
  protected promotable(): boolean {
    return this.tracker.isVoter(this.id);
  }

  private startCampaign(kind: 'pre-vote' | 'vote', transfer = false): void {
    let voteTerm: number;
    if (kind === 'pre-vote') {
      this.becomePreCandidate();
      voteTerm = this.term + 1;
    } else {
      this.becomeCandidate();
      voteTerm = this.term;
    }
    if (this.poll(this.id, true) === 'won') {
      if (kind === 'pre-vote') this.startCampaign('vote');
      else this.becomeLeader();
      return;
    }
    const lastLogIndex = this.log.lastIndex();
    const lastLogTerm = this.log.lastTerm();
    for (const voter of this.tracker.voters) {
      if (voter === this.id) continue;
      this.send({ type: kind, to: voter, term: voteTerm, lastLogIndex, lastLogTerm, ...(transfer ? { transfer } : {}) });
    }
  }

  private poll(voter: NodeId, granted: boolean): VoteResult {
    return this.tracker.recordVote(voter, granted);
  }

  /** CheckQuorum's lease: we heard from a leader within the minimum election timeout, so ignore campaigns. */
  private inLeaderLease(): boolean {
    return this.config.checkQuorum && this.leader !== null && this.electionElapsed < this.config.electionTicks;
  }

  private handleVoteRequest(request: VoteRequest): void {
    const responseType = request.type === 'vote' ? 'vote-response' : 'pre-vote-response';
    const canVote =
      this.vote === request.from ||
      (this.vote === null && this.leader === null) ||
      (request.type === 'pre-vote' && request.term > this.term);
    if (canVote && this.candidateLogIsUpToDate(request.lastLogIndex, request.lastLogTerm)) {
      // A pre-vote answer carries the term it was asked for, so the asker does not mistake it for a newer term.
      this.send({ type: responseType, to: request.from, term: request.term, granted: true });
      if (request.type === 'vote') {
        this.electionElapsed = 0;
        this.vote = request.from;
      }
    } else {
      this.send({ type: responseType, to: request.from, term: this.term, granted: false });
    }
  }

  // ---------------------------------------------------------------- per-role handling

  private stepByRole(message: Message): void {
    switch (this.role) {
      case 'leader':
        this.stepLeader(message);
        return;
      case 'candidate':
      case 'pre-candidate':
        this.stepCandidate(message);
        return;
      case 'follower':
        this.stepFollower(message);
        return;
    }
  }

  private stepLeader(message: Message): void {
    switch (message.type) {
      case 'propose':
        // A forwarded command that does not fit is dropped; its proposer times out and retries.
        this.appendProposals(message.proposals, false);
        return;
      case 'read-index':
        this.handleReadIndex(message.context, message.from);
        return;
      case 'append-response':
        this.handleAppendResponse(message);
        return;
      case 'heartbeat-response':
        this.handleHeartbeatResponse(message);
        return;
      default:
        return;
    }
  }

  private stepCandidate(message: Message): void {
    switch (message.type) {
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        // Someone won this term: follow it.
        this.becomeFollower(message.term, message.from);
        this.handleFromLeader(message);
        return;
      case 'pre-vote-response':
      case 'vote-response':
        this.handleVoteResponse(message);
        return;
      default:
        // Forwarded commands and reads are dropped: with no leader their senders retry.
        return;
    }
  }

  private stepFollower(message: Message): void {
    switch (message.type) {
      case 'propose':
        if (this.leader !== null) this.send({ type: 'propose', to: this.leader, term: this.term, proposals: message.proposals });
        return;
      case 'append':
      case 'heartbeat':
      case 'snapshot':
        this.handleFromLeader(message);
        return;
      case 'read-index-response':
        this.readStates.push({ context: message.context, index: message.index });
        return;
      case 'timeout-now':
        this.handleTimeoutNow(message);
        return;
      default:
        return;
    }
  }

  /** The leader handed us leadership: campaign at once, without pre-vote (the leader stepped aside, so it would fail no one). */
  private handleTimeoutNow(message: TimeoutNow): void {
    if (message.from !== this.leader || !this.promotable()) return;
    this.startCampaign('vote', true);
  }

  /** A message only the leader of our term sends: it proves the leader is alive. */
  private handleFromLeader(message: AppendRequest | HeartbeatRequest | SnapshotRequest): void {
    this.electionElapsed = 0;
    this.leader = message.from;
    if (message.type === 'append') this.handleAppend(message);
    else if (message.type === 'heartbeat') this.handleHeartbeat(message);
    else this.handleSnapshot(message);
  }

  private handleVoteResponse(response: VoteResponse): void {
    const expected = this.role === 'pre-candidate' ? 'pre-vote-response' : 'vote-response';
    if (response.type !== expected) return;
    const result = this.poll(response.from, response.granted);
    if (result === 'won') {
      if (this.role === 'pre-candidate') this.startCampaign('vote');
      else this.becomeLeader();
    } else if (result === 'lost') {
      this.becomeFollower(this.term, null);
    }
  }

  // ---------------------------------------------------------------- follower side of replication

  private handleAppend(request: AppendRequest): void {
    if (request.prevIndex < this.log.committed) {
      // Everything up to our commit index already matches the leader; say so instead of re-checking old ground.
      this.respondAppend(request.from, this.log.committed);
      return;
    }
    if (this.log.matchTerm(request.prevIndex, request.prevTerm)) {
      const conflictAt = this.appendConflictIndex(request);
      const lastNew = this.log.maybeAppend(request.prevIndex, request.prevTerm, request.commit, request.entries, conflictAt);
      // What was written from the conflict on replaced our log there: the configuration follows it.
      if (conflictAt !== 0) this.afterAppend(request.entries.slice(conflictAt - (request.prevIndex + 1)));
      this.respondAppend(request.from, lastNew ?? this.log.committed);
      return;
    }
    const hint = this.log.findConflictByTerm(Math.min(request.prevIndex, this.log.lastIndex()), request.prevTerm);
    this.send({
      type: 'append-response',
      to: request.from,
      term: this.term,
      index: request.prevIndex,
      rejected: true,
      hintIndex: hint.index,
      hintTerm: hint.term,
    });
  }

  private respondAppend(to: NodeId, index: number): void {
    this.send({ type: 'append-response', to, term: this.term, index, rejected: false, hintIndex: 0, hintTerm: 0 });
  }

  private handleHeartbeat(request: HeartbeatRequest): void {
    // The leader sends min(our match, its commit), which we hold durably.
    this.log.commitTo(Math.min(request.commit, this.log.lastIndex()));
    this.send({ type: 'heartbeat-response', to: request.from, term: this.term, context: request.context });
  }

  private handleSnapshot(request: SnapshotRequest): void {
    const snapshot = request.snapshot;
    if (this.restore(snapshot)) this.respondAppend(request.from, this.log.lastIndex());
    else this.respondAppend(request.from, this.log.committed);
  }

  private restore(snapshot: Snapshot): boolean {
    const { index, term } = snapshot.meta;
    if (index <= this.log.committed) return false;
    if (this.log.matchTerm(index, term)) {
      // We already hold the snapshot's last entry: just move the commit index.
      this.log.commitTo(index);
      return false;
    }
    this.log.restore(snapshot);
    this.membership.restored(snapshot);
    this.applyConfiguration();
    return true;
  }

  /** Entries just went into the log (replacing any from their first index on): follow a membership change among them. */
  private afterAppend(entries: readonly Entry[]): void {
    if (this.membership.appended(entries)) this.applyConfiguration();
  }

  /** The configuration in force changed (an entry appended or truncated, a snapshot restored). */
  private applyConfiguration(): void {
    this.tracker.setConfiguration(this.membership.current(), this.log.lastIndex() + 1);
    if (this.role !== 'leader') return;
    if (this.leadTransferee !== null && !this.tracker.isVoter(this.leadTransferee)) this.leadTransferee = null;
    // Fewer voters may mean a majority already holds more: commit it (and tell the followers).
    if (this.maybeCommit()) this.broadcastAppend();
  }

  // ---------------------------------------------------------------- leader side of replication

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.config.electionTicks) {
      this.electionElapsed = 0;
      // A transfer that did not finish within an election timeout is abandoned: take proposals again.
      this.leadTransferee = null;
      if (this.config.checkQuorum && !this.quorumActive()) {
        this.becomeFollower(this.term, null);
        return;
      }
    }
    if (this.heartbeatElapsed >= this.config.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat(this.readOnly.lastContext());
    }
  }

  /** True if a quorum (counting us, if we vote) was heard from since the last check; starts a new round. */
  private quorumActive(): boolean {
    return this.tracker.quorumActive(this.id);
  }

  private appendProposals(proposals: readonly Proposal[], throwIfFull: boolean): void {
    // A forwarded command during a transfer is dropped: its proposer retries on the new leader.
    if (this.leadTransferee !== null) return;
    let bytes = 0;
    let index = this.log.lastIndex();
    const entries: Entry[] = proposals.map((proposal) => {
      const entry: Entry = { term: this.term, index: ++index, kind: 'command', proposalId: proposal.id, data: proposal.data };
      bytes += entryBytes(entry);
      return entry;
    });
    // A single oversized proposal is still accepted when nothing is pending, or it could never go through.
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > this.config.maxUncommittedBytes) {
      if (throwIfFull) throw new ProposalDroppedError(this.id, this.uncommittedBytes, this.config.maxUncommittedBytes);
      return;
    }
    this.log.append(entries);
    this.uncommitted.push({ index, bytes });
    this.uncommittedBytes += bytes;
    this.broadcastAppend();
  }

  private handleAppendResponse(response: AppendResponse): void {
    const progress = this.tracker.get(response.from);
    if (progress === undefined) return;
    progress.recentActive = true;
    if (response.rejected) {
      let hint = response.hintIndex;
      if (response.hintTerm > 0) hint = this.log.findConflictByTerm(response.hintIndex, response.hintTerm).index;
      if (progress.maybeDecreaseTo(response.index, hint)) {
        if (progress.state === 'replicate') progress.becomeProbe();
        this.sendAppend(response.from, true);
      }
      return;
    }
    const wasPaused = progress.isPaused();
    if (!progress.maybeUpdate(response.index)) return;
    if (progress.state === 'probe') {
      progress.becomeReplicate();
    } else if (progress.state === 'snapshot' && progress.match >= progress.pendingSnapshot) {
      progress.becomeProbe();
      progress.becomeReplicate();
    } else if (progress.state === 'replicate') {
      progress.inflights.freeLE(response.index);
    }
    if (this.maybeCommit()) {
      this.broadcastAppend();
    } else if (wasPaused) {
      this.sendAppend(response.from, true);
    }
    // The leader may have stepped down (it committed its own removal).
    if (this.role !== 'leader') return;
    // Pipelining: keep the follower's window full.
    while (this.sendAppend(response.from, false)) {
      /* each call sends one more append */
    }
    if (response.from === this.leadTransferee && progress.match === this.log.lastIndex()) this.sendTimeoutNow(response.from);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send({ type: 'timeout-now', to, term: this.term });
  }

  private handleHeartbeatResponse(response: HeartbeatResponse): void {
    const progress = this.tracker.get(response.from);
    if (progress === undefined) return;
    progress.recentActive = true;
    progress.probeSent = false;
    if (progress.state === 'replicate' && progress.inflights.full()) progress.inflights.freeFirst();
    if (progress.match < this.log.lastIndex()) this.sendAppend(response.from, true);
    if (response.context === null) return;
    const acks = this.readOnly.acknowledge(response.context, response.from);
    if (acks === null || !this.tracker.hasQuorum(acks)) return;
    for (const read of this.readOnly.releaseThrough(response.context)) this.answerRead(read);
  }

  /** Sends the follower what it misses (an append, or a snapshot if the entries are compacted). Returns whether anything was sent. */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const progress = this.tracker.get(to);
    if (progress === undefined || progress.isPaused()) return false;
    const prevIndex = progress.next - 1;
    const prevTerm = this.log.term(prevIndex);
    const last = this.log.lastIndex();
    let entries: Entry[] | null = null;
    if (prevTerm !== null && progress.next >= this.log.firstIndex()) {
      entries = this.log.slice(progress.next, last + 1, this.config.maxMessageBytes);
    }
    if (prevTerm === null || entries === null) return this.sendSnapshot(to, progress);
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send({ type: 'append', to, term: this.term, prevIndex, prevTerm, entries, commit: this.log.committed });
    const lastSent = entries[entries.length - 1];
    progress.sentEntries(
      entries.length,
      lastSent?.index ?? prevIndex,
      entries.reduce((sum, entry) => sum + entryBytes(entry), 0),
    );
    return true;
  }

  private sendSnapshot(to: NodeId, progress: Progress): boolean {
    const snapshot = this.log.snapshot();
    if (snapshot.meta.index === 0) throw new RaftProtocolError(`follower ${to} needs compacted entries but no snapshot exists`);
    this.send({ type: 'snapshot', to, term: this.term, snapshot });
    progress.becomeSnapshot(snapshot.meta.index);
    return true;
  }

  /** Appends to every other member, voters and learners alike (and to those being removed, so they learn it). */
  private broadcastAppend(): void {
    for (const member of this.tracker.replicas()) if (member !== this.id) this.sendAppend(member, true);
  }

  private broadcastHeartbeat(context: string | null): void {
    for (const member of this.tracker.replicas()) {
      if (member === this.id) continue;
      const progress = this.tracker.get(member) as Progress;
      // Never tell a follower to commit past what it is known to hold.
      const commit = Math.min(progress.match, this.log.committed);
      this.send({ type: 'heartbeat', to: member, term: this.term, commit, context });
    }
  }

  /** The leader's own log write became durable: count it now, never earlier. */
  private acknowledgeOwnWrite(): void {
    // A leader removing itself has no progress of its own: it no longer counts.
    const self = this.tracker.get(this.id);
    if (self !== undefined && self.maybeUpdate(this.durableLastIndex()) && this.maybeCommit()) this.broadcastAppend();
  }

  private durableLastIndex(): number {
    if (this.log.unstable.snapshot !== null) return 0;
    return Math.min(this.log.unstable.offset - 1, this.log.lastIndex());
  }

  /**
   * Commits what a majority of the voters in force holds. Returns whether the commit index moved
   * (the caller tells the followers), except when this leader just committed its own removal: it
   * tells them itself and steps down (dissertation §4.2.2).
   */
  private maybeCommit(): boolean {
    const index = this.committedIndexByCounting();
    if (index <= this.log.committed || !this.mayCommitByCounting(index)) return false;
    const firstInTerm = this.log.term(this.log.committed) !== this.term;
    this.log.commitTo(index);
    while (this.uncommitted.length > 0 && (this.uncommitted[0] as { index: number }).index <= index) {
      this.uncommittedBytes -= (this.uncommitted.shift() as { bytes: number }).bytes;
    }
    if (firstInTerm && this.log.term(index) === this.term) {
      const deferred = this.deferredReads;
      this.deferredReads = [];
      for (const read of deferred) this.handleReadIndex(read.context, read.requester);
    }
    if (this.membership.currentIndex() <= index && (this.tracker.hasLeaving() || !this.tracker.isVoter(this.id))) {
      // The configuration in force is committed: tell the nodes it removed, then forget them.
      this.broadcastAppend();
      this.tracker.forgetLeaving();
      if (!this.tracker.isVoter(this.id)) {
        this.becomeFollower(this.term, null);
        return false;
      }
    }
    return true;
  }

  /** The highest index a majority of the voters in force holds. */
  protected committedIndexByCounting(): number {
    return this.tracker.committedIndex();
  }

  // ---------------------------------------------------------------- ReadIndex

  private handleReadIndex(context: string, requester: NodeId): void {
    if (this.log.term(this.log.committed) !== this.term) {
      // Until an entry of this term commits, our commit index may lag the cluster's.
      this.deferredReads.push({ context, requester });
      return;
    }
    const self = new Set([this.id]);
    if (this.tracker.hasQuorum(self)) {
      this.answerRead({ context, index: this.log.committed, requester, acks: self });
      return;
    }
    this.readOnly.add(context, this.log.committed, requester, this.id);
    this.broadcastHeartbeat(context);
  }

  private answerRead(read: PendingRead): void {
    if (read.requester === this.id) this.readStates.push({ context: read.context, index: read.index });
    else this.send({ type: 'read-index-response', to: read.requester, term: this.term, context: read.context, index: read.index });
  }

  // ---------------------------------------------------------------- plumbing

  private send(message: Outgoing): void {
    const full = { ...message, from: this.id } as Message;
    if (this.mustPersistBeforeSending(full.type)) this.messagesAfterPersist.push(full);
    else this.messages.push(full);
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private hardStateChanged(): boolean {
    const persisted = this.persistedHardState;
    return persisted.term !== this.term || persisted.vote !== this.vote || persisted.commit !== this.log.committed;
  }
}

/** The `config` entries of the stored log in [first, last], read in bounded batches. */
function configEntries(storage: LogStorage, first: number, last: number): Entry[] {
  const found: Entry[] = [];
  for (let next = first; next <= last;) {
    const batch = storage.entries(next, last + 1, 4 << 20);
    for (const entry of batch) if (entry.kind === 'config') found.push(entry);
    next += batch.length;
  }
  return found;
}
