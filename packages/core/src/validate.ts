import { InvalidArgumentError, InvalidEventError, InvalidSequenceError } from './errors.js';
import { Event, type EventMap, type NewEvent } from './event.js';
import type { AggregateId } from './id.js';
import { toJson } from './payload.js';
import { hasLoneSurrogate, LONE_SURROGATE_PROBLEM } from './text.js';

/** Throws `InvalidSequenceError` unless `value` is a safe integer ≥ 0. */
export function assertSequence(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new InvalidSequenceError(name, 'must be a whole number', value);
  }
  if (value < 0) throw new InvalidSequenceError(name, 'must not be negative', value);
  if (!Number.isSafeInteger(value)) throw new InvalidSequenceError(name, 'must be a safe integer', value);
}

/** Throws `InvalidArgumentError` unless `value` is a string (non-empty when asked). */
export function assertString(name: string, value: unknown, nonEmpty = false): asserts value is string {
  if (typeof value !== 'string') throw new InvalidArgumentError(name, 'must be a string', value);
  if (nonEmpty && value === '') throw new InvalidArgumentError(name, 'must not be empty', value);
  if (hasLoneSurrogate(value)) throw new InvalidArgumentError(name, LONE_SURROGATE_PROBLEM, value);
}

/**
 * Validates the caller's new events and builds the store's own copies, numbered from
 * `firstSequence`. Throws before anything is stored.
 */
export function prepareEvents<M extends EventMap>(id: AggregateId, firstSequence: number, events: readonly NewEvent<M>[]): Event[] {
  if (!Array.isArray(events)) throw new InvalidArgumentError('events', 'must be an array', events);
  const now = Date.now();
  const prepared: Event[] = new Array<Event>(events.length);
  for (let i = 0; i < events.length; i++) {
    const input: unknown = events[i];
    if (input === null || typeof input !== 'object') throw new InvalidEventError(i, 'expected an object with type and data');
    const { type, data, timestamp } = input as { type?: unknown; data?: unknown; timestamp?: unknown };
    prepared[i] = buildEvent(id, firstSequence + i, type, data, timestamp ?? new Date(now), i);
  }
  return prepared;
}

/** Validates one event's parts and builds it. */
export function buildEvent(id: AggregateId, sequence: number, type: unknown, payload: unknown, timestamp: unknown, index: number): Event {
  if (typeof type !== 'string') throw new InvalidEventError(index, `type must be a string, got ${typeof type}`);
  if (type === '') throw new InvalidEventError(index, 'type must not be empty');
  if (hasLoneSurrogate(type)) throw new InvalidEventError(index, `type ${LONE_SURROGATE_PROBLEM}`);
  if (!(timestamp instanceof Date)) throw new InvalidEventError(index, 'timestamp must be a Date');
  const time = timestamp.getTime();
  if (!Number.isFinite(time)) throw new InvalidEventError(index, 'timestamp is an invalid Date');
  const data = toJson(payload, `the payload of event ${index} (${JSON.stringify(type)})`);
  // The payload cache is left empty: caching the caller's object would let later mutations leak in.
  return new Event(type, id, sequence, new Date(time), data);
}
