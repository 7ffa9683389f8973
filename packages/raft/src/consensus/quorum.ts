import type { NodeId } from './types.js';

/** The state of an election given the votes seen so far. */
export type VoteResult = 'won' | 'lost' | 'pending';

/**
 * A majority of a voter set: the one place where Raft counts to a quorum. Elections, the commit
 * index, CheckQuorum and ReadIndex confirmations all ask it; learners are never in `voters`, so
 * nothing a learner does can ever count.
 */
export class MajorityQuorum {
  readonly voters: readonly NodeId[];

  constructor(voters: readonly NodeId[]) {
    this.voters = [...voters];
  }

  /** Votes needed for a majority (an empty voter set never reaches one). */
  get size(): number {
    return this.voters.length === 0 ? Number.POSITIVE_INFINITY : Math.floor(this.voters.length / 2) + 1;
  }

  /**
   * Tallies a yes/no/unknown answer from each voter: won once a majority said yes, lost once a
   * majority can no longer say yes.
   */
  tally(answer: (voter: NodeId) => boolean | undefined): VoteResult {
    let granted = 0;
    let rejected = 0;
    for (const voter of this.voters) {
      const vote = answer(voter);
      if (vote === true) granted++;
      else if (vote === false) rejected++;
    }
    if (granted >= this.size) return 'won';
    if (this.voters.length - rejected < this.size) return 'lost';
    return 'pending';
  }

  /** Whether the voters for which `holds` is true form a majority. */
  reached(holds: (voter: NodeId) => boolean): boolean {
    return this.tally((voter) => (holds(voter) ? true : undefined)) === 'won';
  }

  /** The highest index a majority holds, given each voter's match index (0 with no voters). */
  committedIndex(matchOf: (voter: NodeId) => number): number {
    if (this.voters.length === 0) return 0;
    const sorted = this.voters.map(matchOf).sort((a, b) => b - a);
    return sorted[this.size - 1] ?? 0;
  }
}
