import { readMemberState } from '../crash/member-state.js';
import type { ProcessCluster } from '../crash/process-cluster.js';
import { aggregateKey, writeId, writeOp } from '../crash/protocol.js';

/** What one stopped member holds of the acknowledged writes. */
export interface StoredWrites {
  readonly id: string;
  /** Acknowledged writes missing from the member's state (must be none). */
  readonly missing: readonly number[];
  /** Gaps, misnumbered or foreign events found while reading the state. */
  readonly problems: readonly string[];
  readonly applied: number;
}

/**
 * Reads the states of the given members, whose processes must be stopped, and lists per member
 * the acknowledged writes (`write <k>`, see `protocol.ts`) it does not hold.
 */
export async function storedWrites(
  cluster: ProcessCluster,
  indexes: readonly number[],
  acknowledged: readonly number[],
): Promise<StoredWrites[]> {
  const results: StoredWrites[] = [];
  for (const i of indexes) {
    const member = cluster.members[i];
    if (member === undefined) throw new Error(`no member ${i}`);
    const state = await readMemberState(member.localId, member.dataDir);
    const missing = acknowledged.filter((k) => state.aggregates.get(aggregateKey(writeId(k)))?.[0] !== writeOp(k));
    results.push({ id: member.localId, missing, problems: state.problems, applied: state.applied });
  }
  return results;
}
