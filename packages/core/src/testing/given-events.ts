import { InvalidArgumentError } from '../errors.js';
import type { EventMap, EventType, NewEvent } from '../event.js';
import { encodeAggregateId, ownAggregateId, type AggregateId } from '../id.js';
import { toJson } from '../payload.js';
import type { Store } from '../store.js';

/** The aggregate a spec's events and command go to when it names none. */
export const DEFAULT_SPEC_ID: AggregateId = Object.freeze(['test-aggregate']);

/** An event a test expects, compared by `type` and `data` as the store keeps them (a JSON round trip). */
export type ExpectedEvent<M extends EventMap> = {
  [K in EventType<M>]: { readonly type: K; readonly data: M[K] };
}[EventType<M>];

/** An event of a projection spec's history: of the aggregate `id`, or of the spec's default aggregate. */
export type GivenEvent<M extends EventMap> = {
  [K in EventType<M>]: { readonly type: K; readonly data: M[K]; readonly id?: AggregateId; readonly timestamp?: Date };
}[EventType<M>];

/** Throws `InvalidArgumentError` unless `events` is an array. */
export function assertEventArray(events: unknown, what: string): asserts events is readonly unknown[] {
  if (!Array.isArray(events)) throw new InvalidArgumentError(what, 'must be an array of events', events);
}

/**
 * Appends a history one event at a time, in the given order, so the store's log holds the events
 * exactly in that order even when they interleave several aggregates.
 */
export async function appendGiven<M extends EventMap>(
  store: Store<M>,
  events: readonly GivenEvent<M>[],
  defaultId: AggregateId,
): Promise<void> {
  const next = new Map<string, number>();
  for (const { id = defaultId, ...event } of events) {
    const ownId = ownAggregateId(id);
    const key = encodeAggregateId(ownId);
    const sequence = next.get(key) ?? 0;
    await store.appendEvents(ownId, sequence, [event as NewEvent<M>]);
    next.set(key, sequence + 1);
  }
}

/** Events as the comparison sees them: type and decoded data, in order. */
export function comparable(events: readonly { readonly type: string; readonly payload: unknown }[]): { type: string; data: unknown }[] {
  return events.map((event) => ({ type: event.type, data: event.payload }));
}

/** Expected events brought to the form the store gives back: data through a JSON round trip. */
export function normalizeExpected(
  expected: readonly { readonly type: string; readonly data: unknown }[],
): { type: string; data: unknown }[] {
  return expected.map((event, i) => {
    if (event === null || typeof event !== 'object' || typeof event.type !== 'string') {
      throw new InvalidArgumentError(`expected event ${i}`, 'must be { type, data }', event);
    }
    return { type: event.type, data: JSON.parse(toJson(event.data, `the data of expected event ${i} (${event.type})`)) as unknown };
  });
}

/** `ItemAdded {"sku":"KB-01"}, ItemRemoved {…}` for failure messages. */
export function listEvents(events: readonly { readonly type: string; readonly data: unknown }[]): string {
  if (events.length === 0) return 'no events';
  return events.map((event) => `${event.type} ${JSON.stringify(event.data)}`).join(', ');
}
