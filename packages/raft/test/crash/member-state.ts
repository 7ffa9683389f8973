import { join } from 'node:path';
import { MaterializedState } from '../../src/state/materialized-state.js';
import { aggregateKey, EVENT_TYPE, type AppendedPayload } from './protocol.js';
import { everything } from '../support/pages.js';

/** What one member's materialized state holds once its process is stopped. */
export interface MemberState {
  readonly id: string;
  readonly applied: number;
  /** `exportSnapshot()`: equal states give equal bytes. */
  readonly image: Uint8Array;
  /** Per aggregate (by `aggregateKey`), the payload IDs in stored order. */
  readonly aggregates: ReadonlyMap<string, readonly string[]>;
  /** Gaps, misnumbered or foreign events found while reading. */
  readonly problems: readonly string[];
}

/** Opens a stopped member's `state/` folder on its own (no node, no transport), reads it and closes it. */
export async function readMemberState(id: string, dataDir: string): Promise<MemberState> {
  const state = MaterializedState.open(join(dataDir, 'state'));
  try {
    const problems: string[] = [];
    const aggregates = new Map<string, string[]>();
    for (const aggregate of everything((r) => state.listAggregates([], r))) {
      const key = aggregateKey(aggregate);
      const ops: string[] = [];
      for (const [i, event] of state.loadEvents(aggregate, 0).entries()) {
        // Nothing trims in this workload: sequences must run 0, 1, 2 … with no gap.
        if (event.sequence !== i) problems.push(`${id}: ${key} holds sequence ${event.sequence} at position ${i}`);
        if (event.type !== EVENT_TYPE) problems.push(`${id}: ${key}@${event.sequence} has type ${event.type}`);
        ops.push((JSON.parse(event.data) as AppendedPayload).op);
      }
      aggregates.set(key, ops);
    }
    return { id, applied: state.appliedIndex(), image: await state.exportSnapshot(), aggregates, problems };
  } finally {
    await state.close();
  }
}
