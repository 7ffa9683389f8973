import type { Proposal } from '../consensus/types.js';
import { wrapProposals } from './proposal-envelope.js';

/** Bytes of command data per core call; a single larger command still goes alone. */
const MAX_BATCH_BYTES = 256 * 1024;

/** Where a batcher sends its batches and reports refusals. */
export interface ProposalBatcherHost {
  /** Hands a batch to consensus (`RaftNode.proposeMany`); throws when it cannot take it now. */
  proposeMany(proposals: readonly Proposal[]): void;
  /** A batch was refused with `error`: its proposals' tracker decides what happens next. */
  onRefused(ids: readonly string[], error: unknown): void;
  /** Wakes the ready loop after a flush. */
  wake(): void;
  /** A fresh ID for an envelope (unique among this node's proposals). */
  envelopeId(): string;
}

/**
 * Collects the proposals made while the ready loop is busy (or within one event-loop turn) and
 * hands them to consensus together, wrapped in one envelope entry (`proposal-envelope.ts`), so a
 * burst of writes becomes one log entry, one WAL frame and one entry in the append messages to the
 * followers rather than one of each per write. The loop flushes before each turn; an idle loop
 * gets a flush on the next macrotask (`setImmediate`), so the writes of one burst — which reach
 * `add` through several promise hops — still travel together.
 */
export class ProposalBatcher {
  private pending: Proposal[] = [];
  private timer: NodeJS.Immediate | null = null;

  constructor(private readonly host: ProposalBatcherHost) {}

  get size(): number {
    return this.pending.length;
  }

  add(id: string, data: Uint8Array): void {
    this.pending.push({ id, data });
    this.timer ??= setImmediate(() => {
      this.timer = null;
      this.flush();
      this.host.wake();
    });
  }

  /** Hands everything collected to consensus now, in batches of at most `MAX_BATCH_BYTES`. */
  flush(): void {
    if (this.pending.length === 0) return;
    const all = this.pending;
    this.pending = [];
    let start = 0;
    while (start < all.length) {
      let end = start;
      let bytes = 0;
      while (end < all.length && (end === start || bytes + (all[end] as Proposal).data.length <= MAX_BATCH_BYTES)) {
        bytes += (all[end] as Proposal).data.length;
        end++;
      }
      const batch = all.slice(start, end);
      try {
        this.host.proposeMany(batch.length === 1 ? batch : [wrapProposals(this.host.envelopeId(), batch)]);
      } catch (error) {
        this.host.onRefused(
          batch.map((proposal) => proposal.id),
          error,
        );
      }
      start = end;
    }
  }

  /** Drops what was collected (the node is closing or failed; the tracker rejects the proposals). */
  clear(): void {
    this.pending = [];
    if (this.timer !== null) clearImmediate(this.timer);
    this.timer = null;
  }
}
