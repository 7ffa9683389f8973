import { expect } from 'vitest';
import type { Event } from '../event.js';
import type { Index } from '../indexer.js';
import type { AggregateId } from '../id.js';
import type { Backend, ProjectionStore } from '../backend.js';
import type { Store } from '../store.js';

/** A fixed timestamp, so time-dependent assertions do not depend on the clock. */
export const T0 = Date.UTC(2024, 0, 1, 12, 0, 0, 0);

/** `count` new events of `type`, payload `{ n }` from `start`, timestamps T0 + n seconds. */
export function makeEvents(count: number, start = 0, type = 'Counted'): { type: string; data: { n: number }; timestamp: Date }[] {
  return Array.from({ length: count }, (_, i) => ({
    type,
    data: { n: start + i },
    timestamp: new Date(T0 + (start + i) * 1000),
  }));
}

/** Asserts the events have sequences from, from+1, … with no gap. */
export function expectGapFree(events: readonly Event[], from = 0): void {
  expect(events.map((event) => event.sequence)).toEqual(Array.from({ length: events.length }, (_, i) => from + i));
}

/** Sorts IDs so listings can be compared regardless of order. */
export function sortIds(ids: readonly AggregateId[]): AggregateId[] {
  return [...ids].map((id) => [...id]).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
}

/**
 * Everything a store holds about some aggregates and labels, as plain data, so a test can show
 * that a failed call left the store exactly as it was.
 */
export async function fingerprint(
  store: Store,
  ids: readonly AggregateId[],
  labels: readonly string[] = [],
  statuses: readonly string[] = [],
): Promise<unknown> {
  const aggregates = [];
  for (const id of ids) {
    const snapshot = await store.getSnapshot(id);
    aggregates.push({
      id,
      events: (await store.getEvents(id)).map((event) => event.toJSON()),
      snapshot: { value: snapshot.value, nextSequence: snapshot.nextSequence },
      status: await store.getAggregateStatus(id),
    });
  }
  const labelValues = [];
  for (const label of labels) {
    const values = await store.listLabelValues(label);
    const holders = [];
    for (const value of values) holders.push(sortIds(await store.listAggregatesByLabel(label, value)));
    labelValues.push({ label, values, holders });
  }
  const statusMembers = [];
  for (const status of statuses) {
    statusMembers.push((await store.listAggregatesByStatus(status)).map((entry) => ({ id: entry.id, at: entry.timestamp.getTime() })));
  }
  return { all: sortIds(await store.listAggregates()), aggregates, labelValues, statusMembers };
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** An indexer for tests: each `Set` event's payload is its index; other events say nothing. */
export function payloadIndexer(events: readonly { type: string; payload: unknown }[]): (Index | undefined)[] {
  return events.map((event) => (event.type === 'Set' ? (event.payload as Index) : undefined));
}

/** The partitions of a store's log (1 when the backend has no read side). */
export function partitionsOf(store: { readonly backend: Backend }): number {
  return store.backend.log?.partitions ?? 1;
}

/** The backend's projection storage; fails the test when the backend has none. */
export function projectionStoreOf(store: { readonly backend: Backend }): ProjectionStore {
  const projections = store.backend.projections;
  if (projections === undefined) throw new Error('the backend has no projection storage (capabilities.readSide)');
  return projections;
}
