import { LeadershipTransferInProgressError, NoLeaderError, ProposalDroppedError } from '../consensus/errors.js';
import type { Proposal } from '../consensus/types.js';
import type { CommittedEntry } from './ports.js';
import { ProposalResultMissingError } from './errors.js';

interface PendingProposal<Result> {
  readonly id: string;
  readonly data: Uint8Array;
  readonly startedAt: number;
  /** The tick of the last attempt the core took (appended or forwarded); null while it waits for a leader. */
  attemptedAt: number | null;
  readonly resolve: (result: Result) => void;
  readonly reject: (error: unknown) => void;
}

/** What the tracker needs from its node. */
export interface ProposalClock {
  /** The error a proposal rejects with once its wait ran out. */
  unavailable(): Error;
  /** A monotonic clock in milliseconds. */
  now(): number;
}

/**
 * The proposals this node waits on, keyed by proposal ID, and which of them are to be offered to
 * consensus next. It only keeps the books: the server takes the offers (`takeOffers`), hands them
 * to the core, and reports back refusals (`onSubmitFailed`) and applied entries (`onApplied`).
 *
 * Consensus may lose a proposal silently (forwarded to a leader that then lost its leadership), so
 * an unapplied proposal is offered again with the same ID — after a leader change, or when
 * `retryTicks` pass without it applying — until `timeoutMs`; the state machine applies an ID once
 * however often it reaches the log.
 */
export class ProposalTracker<Result> {
  private readonly pending = new Map<string, PendingProposal<Result>>();
  /** Proposals to offer at the next submission, by ID: one offered twice before then goes once. */
  private readonly offers = new Map<string, PendingProposal<Result>>();

  constructor(
    private readonly clock: ProposalClock,
    private readonly timeoutMs: number,
    private readonly retryTicks: number,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  /** Whether proposals wait to be offered to consensus. */
  get hasOffers(): boolean {
    return this.offers.size > 0;
  }

  /** Starts tracking `id` and offers it at the next submission; resolves with its result once applied here. */
  track(id: string, data: Uint8Array, tick: number): Promise<Result> {
    return new Promise<Result>((resolve, reject) => {
      const proposal: PendingProposal<Result> = { id, data, startedAt: this.clock.now(), attemptedAt: null, resolve, reject };
      this.pending.set(id, proposal);
      this.offer(proposal, tick);
    });
  }

  /** Takes the proposals to hand to consensus now, in the order they were offered. */
  takeOffers(): Proposal[] {
    const offers = [...this.offers.values()].map(({ id, data }) => ({ id, data }));
    this.offers.clear();
    return offers;
  }

  /**
   * Called every tick: rejects proposals past their deadline, offers again those waiting for a
   * leader (when one is known), lost to a leader change, or unapplied for `retryTicks`.
   */
  onTick(tick: number, leaderKnown: boolean, leaderChanged: boolean): void {
    const now = this.clock.now();
    for (const proposal of [...this.pending.values()]) {
      if (now - proposal.startedAt >= this.timeoutMs) {
        this.settle(proposal.id, () => proposal.reject(this.clock.unavailable()));
        continue;
      }
      if (!leaderKnown) continue;
      const due = proposal.attemptedAt === null || leaderChanged || tick - proposal.attemptedAt >= this.retryTicks;
      if (due) this.offer(proposal, tick);
    }
  }

  /** Resolves the proposals whose entries were just applied, from the state machine's results. */
  onApplied(entries: readonly CommittedEntry[], results: ReadonlyMap<string, Result>): void {
    for (const entry of entries) {
      const id = entry.proposalId;
      if (id === null) continue;
      const proposal = this.pending.get(id);
      if (proposal === undefined) continue;
      if (results.has(id)) this.settle(id, () => proposal.resolve(results.get(id) as Result));
      else this.settle(id, () => proposal.reject(new ProposalResultMissingError(id, entry.index)));
    }
  }

  /**
   * Consensus refused the offers `ids`: on `NoLeaderError`/`ProposalDroppedError` (or a leadership
   * transfer under way) they wait and are offered again on a later tick; any other error rejects
   * them.
   */
  onSubmitFailed(ids: readonly string[], error: unknown): void {
    for (const id of ids) {
      const proposal = this.pending.get(id);
      if (proposal === undefined) continue;
      if (isRetryable(error)) proposal.attemptedAt = null;
      else this.settle(id, () => proposal.reject(error));
    }
  }

  rejectAll(error: unknown): void {
    for (const proposal of [...this.pending.values()]) this.settle(proposal.id, () => proposal.reject(error));
  }

  private offer(proposal: PendingProposal<Result>, tick: number): void {
    proposal.attemptedAt = tick;
    this.offers.set(proposal.id, proposal);
  }

  private settle(id: string, outcome: () => void): void {
    this.pending.delete(id);
    this.offers.delete(id);
    outcome();
  }
}

/** Refusals that only mean "not now": no leader, a full uncommitted tail, a leadership transfer under way. */
function isRetryable(error: unknown): boolean {
  return error instanceof NoLeaderError || error instanceof ProposalDroppedError || error instanceof LeadershipTransferInProgressError;
}
