import type { AggregateId } from './id.js';

/** Maps each event type to its payload type, e.g. `{ ItemAdded: { sku: string; qty: number } }`. */
export type EventMap = Record<string, unknown>;

/** The event type names of an event map. */
export type EventType<M extends EventMap> = keyof M & string;

/** One event as core hands it to a backend's `append`: numbered, not yet placed in the log. `timestamp` is epoch milliseconds. */
export interface EventRecord {
  readonly type: string;
  readonly sequence: number;
  readonly timestamp: number;
  /** The JSON text of the payload. */
  readonly data: string;
}

/** One event as a backend returns it: with its position in the store's log (a positive safe integer). */
export interface StoredEventRecord extends EventRecord {
  readonly position: number;
}

const UNDECODED = Symbol('undecoded');

/**
 * A stored event. Immutable; `payload` decodes `data` once and caches the result.
 *
 * @typeParam T - the event type name
 * @typeParam P - the payload type
 */
export class Event<T extends string = string, P = unknown> {
  readonly type: T;
  readonly aggregateId: AggregateId;
  readonly sequence: number;
  readonly timestamp: Date;
  /** The JSON text of the payload, exactly as stored. */
  readonly data: string;
  #payload: P | typeof UNDECODED;
  #position: number;

  /** @internal Created by the store; user code receives events, it does not build them. */
  constructor(type: T, aggregateId: AggregateId, sequence: number, timestamp: Date, data: string, payload?: P, position = 0) {
    this.type = type;
    this.aggregateId = aggregateId;
    this.sequence = sequence;
    this.timestamp = timestamp;
    this.data = data;
    this.#payload = payload === undefined ? UNDECODED : payload;
    this.#position = position;
    Object.freeze(this);
  }

  /**
   * The event's place in its store's log (`store.readAll`): a positive safe integer, increasing in
   * the order appends commit within a log partition (a store has one partition unless a Redis store
   * spreads over a cluster). Positions may have gaps. 0 only on an event that was never stored.
   */
  get position(): number {
    return this.#position;
  }

  /** @internal Records where the backend placed an event the store built before appending it; once. */
  placeAt(position: number): void {
    if (this.#position !== 0) throw new TypeError('an event is placed in the log once');
    this.#position = position;
  }

  /** The decoded payload, parsed from `data` on first use and cached. */
  get payload(): P {
    if (this.#payload === UNDECODED) this.#payload = JSON.parse(this.data) as P;
    return this.#payload;
  }

  /** @internal Builds an event from a backend's record. */
  static fromRecord(aggregateId: AggregateId, record: StoredEventRecord): Event {
    return new Event(record.type, aggregateId, record.sequence, new Date(record.timestamp), record.data, undefined, record.position);
  }

  /** The plain record a backend stores for this event. */
  toRecord(): EventRecord {
    return { type: this.type, sequence: this.sequence, timestamp: this.timestamp.getTime(), data: this.data };
  }

  toJSON(): { type: T; aggregateId: AggregateId; sequence: number; position: number; timestamp: string; data: string } {
    return {
      type: this.type,
      aggregateId: this.aggregateId,
      sequence: this.sequence,
      position: this.#position,
      timestamp: this.timestamp.toISOString(),
      data: this.data,
    };
  }
}

/** The union of the typed events of an event map: narrowing on `type` narrows `payload`. */
export type EventOf<M extends EventMap> = EventOfType<M, EventType<M>>;

/** The typed events of the types `K` of an event map. */
export type EventOfType<M extends EventMap, K extends EventType<M>> = { [T in K]: Event<T, M[T]> }[K];

/**
 * An event to append. The store copies it and assigns `sequence` and `aggregateId` to its copy;
 * `timestamp` defaults to now.
 */
export type NewEvent<M extends EventMap = EventMap> = {
  [K in EventType<M>]: { readonly type: K; readonly data: M[K]; readonly timestamp?: Date };
}[EventType<M>];
