import type { Entry, HardState, Message, NodeId } from '../../src/consensus/types.js';
import type { RaftNode } from '../../src/consensus/raft.js';
import { entryFingerprint } from './state-machine.js';

interface LogFact {
  readonly fingerprint: string;
  readonly prevTerm: number | null;
}

/**
 * The safety properties of Raft, checked as the simulation runs. Each check is incremental, so
 * it can run after every event:
 * - election safety: at most one leader per term;
 * - one vote per term: no node grants its vote to two candidates in one term (as sent on the wire);
 * - durable hard state: the stored term never decreases, and the stored vote never changes within a term;
 * - log matching: every (index, term) ever written durably names one entry, always preceded by the same term;
 * - leader completeness: a new leader of term T holds every entry committed by the leaders of earlier terms;
 * - state machine safety: every node applies the same entry at each index (one canonical history),
 *   and a snapshot installed at an index carries the state every node had there;
 * - no committed entry lost: no durable log drops an entry that is known to be committed.
 */
export class InvariantChecker {
  readonly violations: string[] = [];
  private readonly leaders = new Map<number, NodeId>();
  private readonly leadersSeen = new Set<string>();
  /** The highest commit index each term's leader reached: entries up to it were committed in that term. */
  private readonly committedByTerm = new Map<number, number>();
  private readonly votes = new Map<string, NodeId>();
  private readonly durableHard = new Map<NodeId, HardState>();
  private readonly logFacts = new Map<string, LogFact>();
  /** The entry every node must apply at each index, as first applied anywhere. */
  private readonly canonical = new Map<number, { term: number; fingerprint: string }>();
  private canonicalEnd = 0;
  /** Terms of entries known committed, from leaders' commit indexes and from applies. */
  private readonly committedTerms = new Map<number, number>();
  private committedEnd = 0;
  /** How far each (leader, term)'s commit index has been recorded. */
  private readonly recordedCommit = new Map<string, number>();
  private readonly chainAt = new Map<number, number>();

  constructor(private readonly now: () => number) {}

  private fail(message: string): void {
    if (this.violations.length < 20) this.violations.push(`t=${this.now()} ${message}`);
  }

  onSend(message: Message): void {
    if (message.type !== 'vote-response' || !message.granted) return;
    const key = `${message.from}@${message.term}`;
    const earlier = this.votes.get(key);
    if (earlier === undefined) this.votes.set(key, message.to);
    else if (earlier !== message.to)
      this.fail(`double vote: ${message.from} voted for ${earlier} and ${message.to} in term ${message.term}`);
  }

  observe(raft: RaftNode): void {
    const status = raft.status();
    if (status.role !== 'leader') return;
    const leader = this.leaders.get(status.term);
    if (leader === undefined) this.leaders.set(status.term, status.id);
    else if (leader !== status.id) this.fail(`election safety: ${leader} and ${status.id} both lead term ${status.term}`);
    if ((this.committedByTerm.get(status.term) ?? 0) < status.commit) this.committedByTerm.set(status.term, status.commit);
    const key = `${status.id}@${status.term}`;
    const recorded = this.recordedCommit.get(key) ?? raft.firstIndex() - 1;
    for (let index = Math.max(recorded + 1, raft.firstIndex()); index <= status.commit; index++) {
      this.recordCommitted(index, raft.termAt(index) ?? -1, `${status.id} leading term ${status.term}`);
    }
    this.recordedCommit.set(key, Math.max(recorded, status.commit));
    if (this.leadersSeen.has(key)) return;
    this.leadersSeen.add(key);
    // Only entries committed in earlier terms must be here: a stale election can finish after a newer term committed.
    let bound = 0;
    for (const [term, commit] of this.committedByTerm) if (term < status.term && commit > bound) bound = commit;
    const first = raft.firstIndex();
    for (let index = first; index <= Math.min(bound, this.committedEnd); index++) {
      const committedTerm = this.committedTerms.get(index);
      if (committedTerm === undefined) continue;
      const term = raft.termAt(index);
      if (term !== committedTerm) {
        this.fail(
          `leader completeness: ${status.id} leads term ${status.term} but has term ${term} at committed index ${index} (committed term ${committedTerm})`,
        );
        return;
      }
    }
  }

  onDurableHardState(node: NodeId, hard: HardState): void {
    const previous = this.durableHard.get(node);
    this.durableHard.set(node, hard);
    if (previous === undefined) return;
    if (hard.term < previous.term) this.fail(`durable term of ${node} went back from ${previous.term} to ${hard.term}`);
    if (hard.term === previous.term && previous.vote !== null && hard.vote !== previous.vote) {
      this.fail(`durable vote of ${node} changed from ${previous.vote} to ${hard.vote} in term ${hard.term}`);
    }
    if (hard.commit < previous.commit) this.fail(`durable commit of ${node} went back from ${previous.commit} to ${hard.commit}`);
  }

  /** Called before a node's durable log is overwritten from `entries[0].index` on. */
  beforeDurableAppend(node: NodeId, termAt: (index: number) => number | null, lastIndex: number, entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    for (let index = first.index; index <= lastIndex && index <= this.committedEnd; index++) {
      const old = termAt(index);
      const replacement = entries[index - first.index];
      if (old === this.committedTerms.get(index) && replacement?.term !== old) {
        this.fail(`committed entry lost: ${node} dropped committed entry ${index} (term ${old}) from its durable log`);
        return;
      }
    }
  }

  afterDurableAppend(termAt: (index: number) => number | null, entries: readonly Entry[]): void {
    for (const entry of entries) {
      const key = `${entry.index}@${entry.term}`;
      const fact: LogFact = { fingerprint: entryFingerprint(entry), prevTerm: entry.index > 1 ? termAt(entry.index - 1) : 0 };
      const known = this.logFacts.get(key);
      if (known === undefined) {
        this.logFacts.set(key, fact);
        continue;
      }
      if (known.fingerprint !== fact.fingerprint)
        this.fail(`log matching: two different entries at index ${entry.index} term ${entry.term}`);
      else if (known.prevTerm !== null && fact.prevTerm !== null && known.prevTerm !== fact.prevTerm) {
        this.fail(
          `log matching: entry ${entry.index}@${entry.term} follows term ${known.prevTerm} in one log and ${fact.prevTerm} in another`,
        );
      }
    }
  }

  onApply(node: NodeId, entry: Entry, chainAfter: number): void {
    const fingerprint = entryFingerprint(entry);
    const known = this.canonical.get(entry.index);
    if (known === undefined) {
      this.canonical.set(entry.index, { term: entry.term, fingerprint });
      this.canonicalEnd = Math.max(this.canonicalEnd, entry.index);
      this.recordCommitted(entry.index, entry.term, `${node} applying`);
    } else if (known.term !== entry.term || known.fingerprint !== fingerprint) {
      this.fail(
        `state machine safety: ${node} applied ${entry.index}@${entry.term} but ${entry.index}@${known.term} was applied elsewhere`,
      );
    }
    this.checkChain(node, entry.index, chainAfter);
  }

  private recordCommitted(index: number, term: number, by: string): void {
    const known = this.committedTerms.get(index);
    if (known === undefined) {
      this.committedTerms.set(index, term);
      this.committedEnd = Math.max(this.committedEnd, index);
    } else if (known !== term) {
      this.fail(`state machine safety: ${by} holds ${index}@${term} committed, but ${index}@${known} was committed before`);
    }
  }

  onSnapshotInstalled(node: NodeId, index: number, chain: number): void {
    this.checkChain(node, index, chain);
  }

  private checkChain(node: NodeId, index: number, chain: number): void {
    const known = this.chainAt.get(index);
    if (known === undefined) this.chainAt.set(index, chain);
    else if (known !== chain) this.fail(`state machine safety: ${node}'s state after index ${index} differs from another node's`);
  }

  /** How many terms had a leader. */
  leaderTermCount(): number {
    return this.leaders.size;
  }

  /** The highest index any node has applied. */
  committedLength(): number {
    return this.canonicalEnd;
  }
}
