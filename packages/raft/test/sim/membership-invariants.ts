import type { Entry, NodeId } from '../../src/consensus/types.js';
import type { RaftNode } from '../../src/consensus/raft.js';

/** What the membership checks need to see of a node's durable log. */
export interface DurableView {
  /** Whether `node`'s durable log holds the entry at `index` of `term` (or a snapshot past it). */
  holds(node: NodeId, index: number, term: number): boolean;
  /** The entries of `node`'s durable log in [from, to], newest first, while `visit` returns true. */
  scanBack(node: NodeId, from: number, visit: (entry: Entry) => boolean): void;
}

/**
 * The membership rules, checked from outside the core as the simulation runs:
 * - quorum: whenever a leader's commit index moves to c, a majority of the voters of the
 *   configuration in force on it durably holds entry c (learners and removed nodes never count);
 * - only voters are elected: a node that wins an election is a voter of its own configuration;
 * - one change at a time: a leader appends a membership change only when the previous change in
 *   its log is committed and an entry of its own term is committed.
 */
export class MembershipChecker {
  private readonly commitSeen = new Map<string, number>();
  private readonly electedSeen = new Set<string>();

  constructor(
    private readonly view: DurableView,
    private readonly fail: (message: string) => void,
  ) {}

  observe(raft: RaftNode): void {
    const status = raft.status();
    if (status.role !== 'leader') return;
    const key = `${status.id}@${status.term}`;
    const config = raft.configuration();
    if (!this.electedSeen.has(key)) {
      this.electedSeen.add(key);
      if (!config.voters.includes(status.id)) {
        this.fail(`only voters are elected: ${status.id} leads term ${status.term} but its voters are ${JSON.stringify(config.voters)}`);
      }
    }
    const seen = this.commitSeen.get(key) ?? 0;
    if (status.commit <= seen) return;
    this.commitSeen.set(key, status.commit);
    const term = raft.termAt(status.commit);
    if (term === null || seen === 0) return;
    const holders = config.voters.filter((voter) => this.view.holds(voter, status.commit, term));
    if (holders.length < Math.floor(config.voters.length / 2) + 1) {
      this.fail(
        `quorum: ${status.id} (term ${status.term}) committed ${status.commit}@${term}, durable on only ${JSON.stringify(holders)} of voters ${JSON.stringify(config.voters)}`,
      );
    }
  }

  /** A leader handed these entries to its disk: check each membership change it appended. */
  onLeaderEntries(raft: RaftNode, entries: readonly Entry[]): void {
    const status = raft.status();
    if (status.role !== 'leader') return;
    entries.forEach((entry, position) => {
      if (entry.kind !== 'config' || entry.term !== status.term) return;
      let previous = 0;
      for (let i = position - 1; i >= 0 && previous === 0; i--) if (entries[i]!.kind === 'config') previous = entries[i]!.index;
      if (previous === 0) {
        this.view.scanBack(status.id, entry.index - 1, (older) => {
          if (older.kind === 'config') previous = older.index;
          return previous === 0;
        });
      }
      if (previous > status.commit) {
        this.fail(
          `one change at a time: ${status.id} appended membership change ${entry.index} while change ${previous} was uncommitted (commit ${status.commit})`,
        );
      } else if (raft.termAt(status.commit) !== status.term) {
        this.fail(
          `one change at a time: ${status.id} appended membership change ${entry.index} before committing an entry of term ${status.term}`,
        );
      }
    });
  }
}
