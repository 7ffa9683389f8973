import type { Configuration } from './membership.js';
import { Progress } from './progress.js';
import { MajorityQuorum, type VoteResult } from './quorum.js';
import type { NodeId } from './types.js';

/**
 * The one place that knows who is in the configuration and how each member is doing: the
 * leader's per-member replication progress (voters and learners alike), the votes of an election,
 * and every question that needs a quorum (answered by {@link MajorityQuorum}, over voters only).
 */
export class ProgressTracker {
  private config: Configuration;
  private quorum: MajorityQuorum;
  private readonly progress = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();
  /**
   * Members the configuration in force removed, still sent the log until the removal commits so
   * that they learn of it (and so stop campaigning). They count toward nothing.
   */
  private readonly leaving = new Set<NodeId>();

  constructor(
    config: Configuration,
    private readonly maxInflight: number,
    private readonly maxInflightBytes: number,
  ) {
    this.config = config;
    this.quorum = new MajorityQuorum(config.voters);
  }

  get configuration(): Configuration {
    return this.config;
  }

  get voters(): readonly NodeId[] {
    return this.quorum.voters;
  }

  isVoter(id: NodeId): boolean {
    return this.config.voters.includes(id);
  }

  isMember(id: NodeId): boolean {
    return this.isVoter(id) || this.config.learners.includes(id);
  }

  /** Every member (voters, then learners). */
  members(): NodeId[] {
    return [...this.config.voters, ...this.config.learners];
  }

  /** Every node the leader replicates to: the members, and those whose removal has not committed yet. */
  replicas(): NodeId[] {
    return [...this.members(), ...this.leaving];
  }

  hasLeaving(): boolean {
    return this.leaving.size > 0;
  }

  /** The removal committed: stop replicating to the nodes it removed. */
  forgetLeaving(): void {
    for (const id of this.leaving) this.progress.delete(id);
    this.leaving.clear();
  }

  /** Forgets all progress and starts every member over at `next`. */
  resetProgress(next: number): void {
    this.progress.clear();
    this.leaving.clear();
    for (const id of this.members()) this.progress.set(id, this.newProgress(next));
  }

  /**
   * Switches to a new configuration: members who joined start probing at `next`, those who left
   * are forgotten, the rest keep their progress.
   */
  setConfiguration(config: Configuration, next: number): void {
    this.config = config;
    this.quorum = new MajorityQuorum(config.voters);
    const members = new Set(this.members());
    for (const id of [...this.progress.keys()]) if (!members.has(id)) this.leaving.add(id);
    for (const id of members) {
      this.leaving.delete(id);
      if (!this.progress.has(id)) this.progress.set(id, this.newProgress(next));
    }
  }

  get(id: NodeId): Progress | undefined {
    return this.progress.get(id);
  }

  /** The progress map, for diagnostics. */
  all(): ReadonlyMap<NodeId, Progress> {
    return this.progress;
  }

  /** The highest index replicated on a majority of voters. */
  committedIndex(): number {
    return this.quorum.committedIndex((id) => this.progress.get(id)?.match ?? 0);
  }

  /** True if a majority of voters (this node counting if it is one) was heard from since the last check; starts a new round. */
  quorumActive(self: NodeId): boolean {
    const active = this.quorum.reached((id) => id === self || this.progress.get(id)?.recentActive === true);
    for (const [id, progress] of this.progress) if (id !== self) progress.recentActive = false;
    return active;
  }

  /** Whether `acks` holds a majority of voters. */
  hasQuorum(acks: ReadonlySet<NodeId>): boolean {
    return this.quorum.reached((id) => acks.has(id));
  }

  resetVotes(): void {
    this.votes.clear();
  }

  /** Records a voter's answer (the first one counts) and tallies the election. */
  recordVote(id: NodeId, granted: boolean): VoteResult {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    return this.quorum.tally((voter) => this.votes.get(voter));
  }

  private newProgress(next: number): Progress {
    return new Progress(next, this.maxInflight, this.maxInflightBytes);
  }
}
