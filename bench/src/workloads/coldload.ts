import type { AggregateId, Store } from '@timebox/core';
import type { Comparison, Trial, Workload } from '../harness.js';
import type { CounterEvents } from './counter.js';

export interface ColdSizes {
  /** Events each cold aggregate holds. */
  readonly events: number;
  /** Events after the snapshot in the snapshot case. */
  readonly tail: number;
  /** Loads per trial. */
  readonly loads: number;
}

const REPLAY: AggregateId = Object.freeze(['cold', 'replay']);
const SNAPSHOTTED: AggregateId = Object.freeze(['cold', 'snapshot']);
const BATCH = 500;

/**
 * Writes the two cold aggregates into `store`: `events` events each (batches of 500), one with
 * no snapshot and one with a snapshot `tail` events before its end. Untimed setup, done once per
 * suite: loads only read, so every trial can reuse them.
 */
export async function fillColdAggregates(store: Store<CounterEvents>, { events, tail }: ColdSizes): Promise<void> {
  for (const id of [REPLAY, SNAPSHOTTED]) {
    for (let from = 0; from < events; from += BATCH) {
      const count = Math.min(BATCH, events - from);
      await store.appendEvents(
        id,
        from,
        Array.from({ length: count }, () => ({ type: 'Incremented' as const, data: { by: 1 } })),
      );
    }
  }
  await store.putSnapshot(SNAPSHOTTED, { count: events - tail }, events - tail);
}

/**
 * One cold load as the executor does it on a cache miss: `getSnapshot` (snapshot plus the
 * events after it, or every event when there is none), then the applier over each event. The
 * executor would also save a snapshot after a replay; that write is left out so both sides
 * measure reading and folding alone.
 */
async function coldLoad(store: Store<CounterEvents>, id: AggregateId): Promise<number> {
  const snapshot = await store.getSnapshot<{ count: number }>(id);
  let count = snapshot.value?.count ?? 0;
  for (const event of snapshot.events) if (event.type === 'Incremented') count += (event.payload as { by: number }).by;
  return count;
}

function loadWorkload(label: string, store: Store<CounterEvents>, id: AggregateId, { events, loads }: ColdSizes): Workload {
  return {
    label,
    ops: loads,
    async prepare(): Promise<Trial> {
      let last = -1;
      return {
        async run() {
          for (let i = 0; i < loads; i++) last = await coldLoad(store, id);
        },
        async verify() {
          if (last !== events) throw new Error(`${label}: loaded count ${last}, expected ${events}`);
        },
        close: async () => undefined,
      };
    },
  };
}

/** Snapshot plus tail (subject) against full replay (baseline), on a store already filled. */
export function coldLoadComparison(store: Store<CounterEvents>, sizes: ColdSizes, extraBaselines: readonly Workload[] = []): Comparison {
  return {
    key: 'cold-load',
    title: `cold load of ${sizes.events.toLocaleString('en-US')} events: snapshot + ${sizes.tail} tail vs full replay, loads/s`,
    kind: 'throughput',
    params: { events: sizes.events, tail: sizes.tail, loadsPerTrial: sizes.loads },
    subject: loadWorkload('snapshot + tail', store, SNAPSHOTTED, sizes),
    baselines: [loadWorkload('full replay', store, REPLAY, sizes), ...extraBaselines],
  };
}
