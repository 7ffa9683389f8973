import type { Proposal } from '../consensus/types.js';
import { wrapProposals } from './proposal-envelope.js';

/** Bytes of command data per core call; a single larger command still goes alone. */
const MAX_BATCH_BYTES = 256 * 1024;

/** One proposal for the core (a single write, or an envelope of several) and the IDs it carries. */
export interface ProposalBatch {
  readonly proposal: Proposal;
  readonly ids: readonly string[];
}

/**
 * Packs proposals, in order, into batches of at most `MAX_BATCH_BYTES` of command data, each
 * batch of two or more wrapped in one envelope entry (`proposal-envelope.ts`) under an ID from
 * `envelopeId`: a burst of writes becomes one log entry, one WAL frame and one entry in the
 * append messages to the followers rather than one of each per write.
 */
export function packProposals(proposals: readonly Proposal[], envelopeId: () => string): ProposalBatch[] {
  const batches: ProposalBatch[] = [];
  let start = 0;
  while (start < proposals.length) {
    let end = start;
    let bytes = 0;
    while (end < proposals.length && (end === start || bytes + (proposals[end] as Proposal).data.length <= MAX_BATCH_BYTES)) {
      bytes += (proposals[end] as Proposal).data.length;
      end++;
    }
    const batch = proposals.slice(start, end);
    batches.push({
      proposal: batch.length === 1 ? (batch[0] as Proposal) : wrapProposals(envelopeId(), batch),
      ids: batch.map((proposal) => proposal.id),
    });
    start = end;
  }
  return batches;
}
