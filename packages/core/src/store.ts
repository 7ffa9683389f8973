import type { AppendResult, Backend, ArchiveRecordData } from './backend.js';
import { resolveConfig, type Config, type ResolvedConfig } from './config.js';
import {
  ArchiveHandlerMissingError,
  ArchivingDisabledError,
  InvalidArgumentError,
  StoreClosedError,
  VersionConflictError,
} from './errors.js';
import { Event, type EventMap, type EventOf, type EventRecord, type EventType, type NewEvent } from './event.js';
import type { SubscribeHandler } from './event-handlers.js';
import { EventHub, type SubscribeOptions, type Unsubscribe } from './hub.js';
import { assertIdPrefix, encodeAggregateId, ownAggregateId, type AggregateId } from './id.js';
import { foldIndexes, type StatusEntry } from './indexer.js';
import { toJson } from './payload.js';
import { Attr, countConflict, withSpan } from './telemetry.js';
import { assertSequence, assertString, prepareEvents } from './validate.js';

/** An aggregate's latest snapshot and what came after it. */
export interface Snapshot<T = unknown> {
  /** The snapshot's value, `undefined` when there is none. */
  readonly value: T | undefined;
  /** The sequence the snapshot covers: it reflects events below this; 0 without a snapshot. */
  readonly nextSequence: number;
  /** The stored events from `nextSequence` on. */
  readonly events: Event[];
  /** UTF-8 bytes of the snapshot's JSON (0 without one). */
  readonly snapshotBytes: number;
  /** UTF-8 bytes of the trailing events' data. */
  readonly eventBytes: number;
}

/** An archived aggregate, as `consumeArchive` hands it to its handler. */
export interface ArchiveRecord {
  readonly streamId: string;
  readonly aggregateId: AggregateId;
  /** The snapshot's JSON text at archive time, if there was one. */
  readonly snapshotData?: string | undefined;
  readonly snapshotSequence: number;
  readonly events: readonly Event[];
}

/** Called with each archive record; must be idempotent, as delivery is at-least-once. */
export type ArchiveHandler = (record: ArchiveRecord) => void | Promise<void>;

export interface ConsumeArchiveOptions {
  /** Aborting stops the wait; the call rejects with the signal's reason. */
  readonly signal?: AbortSignal;
}

/**
 * Event-store semantics over a backend: validation, sequencing, indexing and telemetry.
 * Several stores, in one process or many, may share one backend's data.
 *
 * @typeParam M - the event map, which types the indexer and `appendEvents`
 */
export class Store<M extends EventMap = EventMap> {
  /** The validated config with defaults filled in. */
  readonly config: ResolvedConfig<M>;
  readonly backend: Backend;
  #closed: Promise<void> | undefined;
  readonly #closing = new AbortController();
  readonly #hub: EventHub;

  constructor(backend: Backend, config: Config<M> = {}) {
    if (backend === null || typeof backend !== 'object' || typeof backend.append !== 'function') {
      throw new InvalidArgumentError('backend', 'must implement the Backend contract', backend);
    }
    this.config = resolveConfig(config);
    this.backend = backend;
    this.#hub = new EventHub(backend);
  }

  /** Resolves once the backend can serve requests. */
  async ready(): Promise<void> {
    this.#assertOpen('wait for readiness');
    await this.backend.ready();
  }

  /** Closes the store and its backend. Idempotent; later calls reject with `StoreClosedError`. */
  close(): Promise<void> {
    if (this.#closed === undefined) {
      this.#closing.abort(new StoreClosedError('consume the archive'));
      this.#closed = this.#hub.close().then(
        () => this.backend.close(),
        (error: unknown) =>
          this.backend.close().then(() => {
            throw error;
          }),
      );
    }
    return this.#closed;
  }

  /** True once `close()` has been called. */
  get closed(): boolean {
    return this.#closed !== undefined;
  }

  /**
   * Appends `events` if the aggregate's next sequence is `expectedSequence`, else rejects with
   * `VersionConflictError`. The caller's objects are copied, never mutated; the stored copies are
   * returned. The indexer runs on the batch and its update is stored atomically with it.
   */
  async appendEvents(id: AggregateId, expectedSequence: number, events: readonly NewEvent<M>[]): Promise<EventOf<M>[]> {
    this.#assertOpen('append events');
    const ownId = ownAggregateId(id);
    assertSequence('expectedSequence', expectedSequence);
    const prepared = prepareEvents(ownId, expectedSequence, events);
    await this.appendPrepared(ownId, expectedSequence, prepared);
    return prepared as EventOf<M>[];
  }

  /**
   * @internal Appends events that `prepareEvents`/`buildEvent` already validated and numbered.
   * Used by the executor so raised events are serialized once.
   */
  async appendPrepared(id: AggregateId, expectedSequence: number, events: readonly Event[]): Promise<void> {
    const attributes = () => ({
      [Attr.aggregateId]: encodeAggregateId(id),
      [Attr.eventCount]: events.length,
      [Attr.expectedSequence]: expectedSequence,
      [Attr.backend]: this.backend.name,
    });
    await withSpan('append', attributes, async () => {
      const index =
        this.config.indexer !== undefined && events.length > 0
          ? foldIndexes(this.config.indexer(events as EventOf<M>[]), events)
          : undefined;
      const records = events.map((event) => event.toRecord());
      this.#assertOpen('append events');
      const result: AppendResult = await this.backend.append({ id, expectedSequence, events: records, index });
      if (!result.ok) {
        countConflict({ [Attr.backend]: this.backend.name });
        throw new VersionConflictError(id, expectedSequence, result.actualSequence, this.#toEvents(id, result.newEvents));
      }
    });
  }

  /** The stored events from `fromSequence` on, in order; `[]` for an unknown aggregate. */
  async getEvents(id: AggregateId, fromSequence = 0): Promise<EventOf<M>[]> {
    this.#assertOpen('load events');
    const ownId = ownAggregateId(id);
    assertSequence('fromSequence', fromSequence);
    return withSpan(
      'load',
      () => ({ [Attr.aggregateId]: encodeAggregateId(ownId), [Attr.backend]: this.backend.name }),
      async (span) => {
        const events = this.#toEvents(ownId, await this.backend.loadEvents(ownId, fromSequence));
        span.setAttribute(Attr.eventCount, events.length);
        return events as EventOf<M>[];
      },
    );
  }

  /** The latest snapshot, the sequence it covers, the events after it, and their sizes. */
  async getSnapshot<T = unknown>(id: AggregateId): Promise<Snapshot<T>> {
    return this.loadSnapshotWith<T>(id, (data) => JSON.parse(data) as T);
  }

  /** @internal `getSnapshot` with the executor's own snapshot decoder. */
  async loadSnapshotWith<T>(id: AggregateId, decode: (data: string) => T): Promise<Snapshot<T>> {
    this.#assertOpen('load a snapshot');
    const ownId = ownAggregateId(id);
    return withSpan(
      'load',
      () => ({ [Attr.aggregateId]: encodeAggregateId(ownId), [Attr.backend]: this.backend.name }),
      async (span) => {
        const record = await this.backend.loadSnapshot(ownId);
        const events = this.#toEvents(ownId, record.events);
        span.setAttribute(Attr.eventCount, events.length);
        let eventBytes = 0;
        for (const event of events) eventBytes += Buffer.byteLength(event.data);
        return {
          value: record.data === undefined ? undefined : decode(record.data),
          nextSequence: record.sequence,
          events,
          snapshotBytes: record.data === undefined ? 0 : Buffer.byteLength(record.data),
          eventBytes,
        };
      },
    );
  }

  /**
   * Stores `value` as the snapshot covering events below `sequence`, if newer than the stored
   * one (an older one is ignored). With `trimEvents`, deletes the events it covers.
   */
  async putSnapshot(id: AggregateId, value: unknown, sequence: number): Promise<void> {
    this.#assertOpen('save a snapshot');
    const ownId = ownAggregateId(id);
    assertSequence('sequence', sequence);
    await this.putSnapshotData(ownId, toJson(value, 'the snapshot value'), sequence);
  }

  /** @internal Stores already-encoded snapshot JSON. */
  async putSnapshotData(id: AggregateId, data: string, sequence: number): Promise<void> {
    this.#assertOpen('save a snapshot');
    const attributes = () => ({ [Attr.aggregateId]: encodeAggregateId(id), [Attr.backend]: this.backend.name });
    await withSpan('snapshot', attributes, () => this.backend.saveSnapshot(id, data, sequence, this.config.trimEvents));
  }

  /** IDs whose parts start with `prefix` (every aggregate when omitted or empty). */
  async listAggregates(prefix: AggregateId = []): Promise<AggregateId[]> {
    this.#assertOpen('list aggregates');
    assertIdPrefix(prefix);
    return this.backend.listAggregates(Object.freeze([...prefix]));
  }

  /** The aggregate's current status, `""` when none. */
  async getAggregateStatus(id: AggregateId): Promise<string> {
    this.#assertOpen('read a status');
    return this.backend.getAggregateStatus(ownAggregateId(id));
  }

  /** Aggregates currently in `status` with the time each entered it, oldest first. */
  async listAggregatesByStatus(status: string): Promise<StatusEntry[]> {
    this.#assertOpen('list aggregates by status');
    assertString('status', status);
    const entries = await this.backend.listAggregatesByStatus(status);
    return entries.map((entry) => ({ id: entry.id, timestamp: new Date(entry.timestamp) }));
  }

  /** Aggregates currently holding `label` with `value`. */
  async listAggregatesByLabel(label: string, value: string): Promise<AggregateId[]> {
    this.#assertOpen('list aggregates by label');
    assertString('label', label, true);
    assertString('value', value);
    return this.backend.listAggregatesByLabel(label, value);
  }

  /** The distinct values of `label` currently held by any aggregate, sorted. */
  async listLabelValues(label: string): Promise<string[]> {
    this.#assertOpen('list label values');
    assertString('label', label, true);
    return this.backend.listLabelValues(label);
  }

  /**
   * Calls `handler` with every event appended to this store's data from now on — by this store or
   * any other process sharing the backend — after the append is durable, in sequence order per
   * aggregate. Resolves, once the backend's feed is live, with a function that unsubscribes.
   *
   * The writer never waits for subscribers: each subscription has its own bounded buffer and calls
   * its handler with one event at a time. A handler that throws is reported to `onError` (and
   * OpenTelemetry) and delivery goes on with the next event; a subscriber that falls `bufferSize`
   * events behind has further events dropped and is told how many (`EventsDroppedError`); a feed
   * that may have missed events (a dropped connection) says so (`HubGapError`). Events carry their
   * sequence, so a read model can also notice a gap itself and read the aggregate back.
   *
   * ```ts
   * const stop = await store.subscribe(makeDispatcher<OrderEvents>({ OrderShipped: (p, e) => … }));
   * ```
   * @throws HubUnavailableError when the backend has no event feed.
   */
  async subscribe<K extends EventType<M> = EventType<M>>(
    handler: SubscribeHandler<M, K>,
    options: SubscribeOptions<K> = {},
  ): Promise<Unsubscribe> {
    this.#assertOpen('subscribe');
    return this.#hub.subscribe(handler as (event: Event) => void | Promise<void>, options);
  }

  /**
   * Moves the aggregate's snapshot and events into archive storage and clears its live records,
   * status and labels. One-way. Archiving an unknown aggregate archives nothing.
   */
  async archive(id: AggregateId): Promise<void> {
    this.#assertOpen('archive');
    if (!this.backend.capabilities.archive || this.backend.archive === undefined) {
      throw new ArchivingDisabledError(this.backend.name);
    }
    await this.backend.archive(ownAggregateId(id));
  }

  /**
   * Waits for one archive record, calls `handler` with it, and acknowledges it only after the
   * handler resolves. If the handler throws, the record is delivered again (to this or another
   * consumer) and the call rejects with the handler's error. Handlers must be idempotent.
   */
  async consumeArchive(handler: ArchiveHandler, options: ConsumeArchiveOptions = {}): Promise<void> {
    this.#assertOpen('consume the archive');
    if (!this.backend.capabilities.archive || this.backend.consumeArchive === undefined) {
      throw new ArchivingDisabledError(this.backend.name);
    }
    if (typeof handler !== 'function') throw new ArchiveHandlerMissingError();
    const signal = options.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new InvalidArgumentError('signal', 'must be an AbortSignal', signal);
    }
    signal?.throwIfAborted();
    const combined = signal === undefined ? this.#closing.signal : AbortSignal.any([signal, this.#closing.signal]);
    await this.backend.consumeArchive(async (data: ArchiveRecordData) => {
      const aggregateId = Object.freeze([...data.aggregateId]);
      await handler({
        streamId: data.streamId,
        aggregateId,
        snapshotData: data.snapshotData,
        snapshotSequence: data.snapshotSequence,
        events: this.#toEvents(aggregateId, data.events),
      });
    }, combined);
  }

  #toEvents(id: AggregateId, records: readonly EventRecord[]): Event[] {
    const events: Event[] = new Array<Event>(records.length);
    for (let i = 0; i < records.length; i++) events[i] = Event.fromRecord(id, records[i] as EventRecord);
    return events;
  }

  #assertOpen(operation: string): void {
    if (this.#closed !== undefined) throw new StoreClosedError(operation);
  }
}

/** Binds a backend to a config. Throws `ConfigError` for an invalid config. */
export function createStore<M extends EventMap = EventMap>(backend: Backend, config: Config<M> = {}): Store<M> {
  return new Store<M>(backend, config);
}
