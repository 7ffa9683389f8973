import {
  hasReadSide,
  type AppendResult,
  type ArchiveRecordData,
  type Backend,
  type ListPage,
  type ListRequest,
  type ReadSideBackend,
  type StatusListEntry,
} from './backend.js';
import {
  allItems,
  eachItem,
  queryTag,
  resolveIterateOptions,
  resolvePageOptions,
  toPage,
  type IterateOptions,
  type Page,
  type PageOptions,
} from './list-page.js';
import { compareCodeUnits } from './text.js';
import { decodeCheckpoint, encodeCheckpoint, startPositions, type Checkpoint } from './checkpoint.js';
import { MAX_PAGE_SIZE, resolveReadAll, type ReadAllOptions, type ReadAllPage } from './read-all.js';
import { resolveConfig, type Config, type ResolvedConfig } from './config.js';
import {
  ArchiveHandlerMissingError,
  ArchivingDisabledError,
  InvalidArgumentError,
  ReadSideUnavailableError,
  StoreClosedError,
  VersionConflictError,
} from './errors.js';
import { Event, type EventMap, type EventOf, type EventOfType, type EventType, type NewEvent, type StoredEventRecord } from './event.js';
import type { SubscribeHandler } from './event-handlers.js';
import { subscribeFrom } from './catch-up.js';
import { EventHub, type SubscribeOptions, type Unsubscribe } from './hub.js';
import { assertIdPrefix, encodeAggregateId, ownAggregateId, type AggregateId } from './id.js';
import { foldIndexes, type StatusEntry } from './indexer.js';
import { toJson } from './payload.js';
import {
  assertProjectionName,
  MAX_COUNTED_LAG,
  ProjectionRunner,
  resolveProjectOptions,
  type BatchProjectionHandler,
  type ProjectionHandler,
  type ProjectionStatus,
  type ProjectOptions,
  type Projection,
} from './projection.js';
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
  readonly #runners = new Set<ProjectionRunner>();

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
      this.#closed = this.#stopRunners()
        .then(() => this.#hub.close())
        .then(
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
      for (let i = 0; i < events.length; i++) (events[i] as Event).placeAt(result.positions[i] as number);
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

  /**
   * IDs whose parts start with `prefix` (every aggregate when omitted or empty), including
   * aggregates that have only a snapshot. Without page options, every ID in one array (read page
   * by page); with them, one page: up to `limit` IDs after `cursor`, and the cursor of the next.
   *
   * ```ts
   * let page = await store.listAggregates(['order'], { limit: 500 });
   * for (;;) {
   *   visit(page.items);
   *   if (page.cursor === undefined) break;
   *   page = await store.listAggregates(['order'], { limit: 500, cursor: page.cursor });
   * }
   * ```
   * An ID that stays in the store while you page is listed exactly once; one added or removed
   * meanwhile may or may not be. `iterateAggregates` does the paging for you.
   * @throws InvalidCursorError for a cursor of another store or query.
   */
  listAggregates(prefix?: AggregateId): Promise<AggregateId[]>;
  listAggregates(prefix: AggregateId, page: PageOptions): Promise<Page<AggregateId>>;
  async listAggregates(prefix: AggregateId = [], page?: PageOptions): Promise<AggregateId[] | Page<AggregateId>> {
    return this.#list(this.#aggregateQuery(prefix), page);
  }

  /** Every ID whose parts start with `prefix`, fetched page by page as you iterate. */
  iterateAggregates(prefix: AggregateId = [], options: IterateOptions = {}): AsyncIterable<AggregateId> {
    return this.#iterate(this.#aggregateQuery(prefix), options);
  }

  /** The aggregate's current status, `""` when none. */
  async getAggregateStatus(id: AggregateId): Promise<string> {
    this.#assertOpen('read a status');
    return this.backend.getAggregateStatus(ownAggregateId(id));
  }

  /**
   * Aggregates currently in `status` with the time each entered it, oldest first. Without page
   * options every entry in one array; with them one page (see `listAggregates`).
   */
  listAggregatesByStatus(status: string): Promise<StatusEntry[]>;
  listAggregatesByStatus(status: string, page: PageOptions): Promise<Page<StatusEntry>>;
  async listAggregatesByStatus(status: string, page?: PageOptions): Promise<StatusEntry[] | Page<StatusEntry>> {
    return this.#list(this.#statusQuery(status), page);
  }

  /** Every aggregate in `status`, oldest first, fetched page by page as you iterate. */
  iterateAggregatesByStatus(status: string, options: IterateOptions = {}): AsyncIterable<StatusEntry> {
    return this.#iterate(this.#statusQuery(status), options);
  }

  /**
   * Aggregates currently holding `label` with `value`. Without page options every ID in one
   * array; with them one page (see `listAggregates`).
   */
  listAggregatesByLabel(label: string, value: string): Promise<AggregateId[]>;
  listAggregatesByLabel(label: string, value: string, page: PageOptions): Promise<Page<AggregateId>>;
  async listAggregatesByLabel(label: string, value: string, page?: PageOptions): Promise<AggregateId[] | Page<AggregateId>> {
    return this.#list(this.#labelQuery(label, value), page);
  }

  /** Every aggregate holding `label` with `value`, fetched page by page as you iterate. */
  iterateAggregatesByLabel(label: string, value: string, options: IterateOptions = {}): AsyncIterable<AggregateId> {
    return this.#iterate(this.#labelQuery(label, value), options);
  }

  /**
   * The distinct values of `label` currently held by any aggregate. Without page options, all of
   * them sorted by code unit; with them one page in the backend's index order (code unit or code
   * point order, which differ only between astral characters and U+E000..U+FFFF). The cost is
   * in proportion to the distinct values, not to the aggregates holding them.
   */
  listLabelValues(label: string): Promise<string[]>;
  listLabelValues(label: string, page: PageOptions): Promise<Page<string>>;
  async listLabelValues(label: string, page?: PageOptions): Promise<string[] | Page<string>> {
    const result = await this.#list(this.#labelValuesQuery(label), page);
    return Array.isArray(result) ? result.sort(compareCodeUnits) : result;
  }

  /** Every distinct value of `label`, in the backend's index order, fetched page by page. */
  iterateLabelValues(label: string, options: IterateOptions = {}): AsyncIterable<string> {
    return this.#iterate(this.#labelValuesQuery(label), options);
  }

  #aggregateQuery(prefix: AggregateId): ListQuery<AggregateId, AggregateId> {
    this.#assertOpen('list aggregates');
    assertIdPrefix(prefix);
    const own = Object.freeze([...prefix]);
    return {
      operation: 'list aggregates',
      key: ['aggregates', JSON.stringify(own)],
      read: (request) => this.backend.listAggregates(own, request),
      map: (id) => id,
    };
  }

  #statusQuery(status: string): ListQuery<StatusListEntry, StatusEntry> {
    this.#assertOpen('list aggregates by status');
    assertString('status', status);
    return {
      operation: 'list aggregates by status',
      key: ['status', status],
      read: (request) => this.backend.listAggregatesByStatus(status, request),
      map: (entry) => ({ id: entry.id, timestamp: new Date(entry.timestamp) }),
    };
  }

  #labelQuery(label: string, value: string): ListQuery<AggregateId, AggregateId> {
    this.#assertOpen('list aggregates by label');
    assertString('label', label, true);
    assertString('value', value);
    return {
      operation: 'list aggregates by label',
      key: ['label', label, value],
      read: (request) => this.backend.listAggregatesByLabel(label, value, request),
      map: (id) => id,
    };
  }

  #labelValuesQuery(label: string): ListQuery<string, string> {
    this.#assertOpen('list label values');
    assertString('label', label, true);
    return {
      operation: 'list label values',
      key: ['label values', label],
      read: (request) => this.backend.listLabelValues(label, request),
      map: (value) => value,
    };
  }

  /** One page (with page options) or every item (without), checking the store is open per page. */
  async #list<T, U>(query: ListQuery<T, U>, page: PageOptions | undefined): Promise<U[] | Page<U>> {
    const read = (request: ListRequest) => {
      this.#assertOpen(query.operation);
      return query.read(request);
    };
    if (page === undefined) return (await allItems(read)).map(query.map);
    const tag = queryTag(this.backend, query.key);
    return toPage(tag, await read(resolvePageOptions(tag, page)), query.map);
  }

  /** Validates at once (so a bad option throws at the call), then reads pages as iterated. */
  #iterate<T, U>(query: ListQuery<T, U>, options: IterateOptions): AsyncIterable<U> {
    return this.#eachMapped(query, resolveIterateOptions(options));
  }

  async *#eachMapped<T, U>(query: ListQuery<T, U>, pageSize: number): AsyncGenerator<U, void, undefined> {
    for await (const item of eachItem(pageSize, (request) => {
      this.#assertOpen(query.operation);
      return query.read(request);
    })) {
      yield query.map(item);
    }
  }

  /**
   * A page of the store's whole log: up to `limit` events after the checkpoint `after` (from the
   * start when absent), in log order, with the checkpoint after them. Paging from the start with
   * each page's `checkpoint` reads every stored event exactly once; `end` says the page reached
   * the end of the log as it stood. Events removed by trimming or archiving are not in the log.
   * `types` and `aggregatePrefix` filter the page (the checkpoint still moves past what they skip).
   *
   * ```ts
   * let page = await store.readAll({ limit: 500 });
   * for (;;) {
   *   for (const event of page.events) fold(event);
   *   if (page.end) break;
   *   page = await store.readAll({ after: page.checkpoint, limit: 500 });
   * }
   * ```
   * @throws InvalidCheckpointError when `after` is not a checkpoint of this store.
   */
  async readAll<K extends EventType<M> = EventType<M>>(options: ReadAllOptions<K> = {}): Promise<ReadAllPage<M, K>> {
    const backend = this.#readSide('read the log');
    const request = resolveReadAll(backend.log, options);
    let after = request.after;
    for (;;) {
      const page = await backend.readLog({ ...request, after });
      const moved = page.after.some((position, i) => position !== after[i]);
      after = page.after;
      if (page.entries.length > 0 || page.end || !moved) {
        const events = page.entries.map((entry) => Event.fromRecord(Object.freeze([...entry.id]), entry.event));
        return { events: events as EventOfType<M, K>[], checkpoint: encodeCheckpoint(backend.log, after), end: page.end };
      }
      this.#assertOpen('read the log');
    }
  }

  /**
   * Every event of the store's log after `options.after` (from the start when absent), in log
   * order, read page by page (`options.limit` events per page, default 100) up to the end of the
   * log as it stands when the iteration reaches it. `types` and `aggregatePrefix` filter as in
   * `readAll`; each event carries its `position`. For a place to resume from, page with `readAll`
   * and keep its `checkpoint`.
   *
   * ```ts
   * for await (const event of store.iterateAll({ types: ['OrderPlaced'] })) count++;
   * ```
   * @throws InvalidCheckpointError when `after` is not a checkpoint of this store.
   */
  iterateAll<K extends EventType<M> = EventType<M>>(options: ReadAllOptions<K> = {}): AsyncIterable<EventOfType<M, K>> {
    const backend = this.#readSide('read the log');
    resolveReadAll(backend.log, options);
    return this.#eachEvent(options);
  }

  async *#eachEvent<K extends EventType<M>>(options: ReadAllOptions<K>): AsyncGenerator<EventOfType<M, K>, void, undefined> {
    let page = await this.readAll(options);
    for (;;) {
      yield* page.events;
      if (page.end) return;
      page = await this.readAll({ ...options, after: page.checkpoint });
    }
  }

  /**
   * Runs a named, durable projection: hands `handler` every event of the store in log order, in
   * batches, from the projection's stored checkpoint (the first time: from `options.start`), and
   * stores the checkpoint after each batch once the handler resolved. Delivery is at-least-once: a
   * batch whose checkpoint was not stored (a crash, a lost hold) is handled again, so make the
   * handler idempotent, or use `transactional` on PostgreSQL.
   *
   * Across every process sharing the store, one runner per name is active; other runners wait as
   * standbys and take over within `leaseMs` once the active one stops or dies. Caught up, the
   * runner waits for new appends (woken by the event feed where the backend has one, else every
   * `pollMs`). A handler that throws is retried with backoff and reported; the checkpoint never
   * passes a batch that failed.
   *
   * ```ts
   * const projection = store.project('orders-by-status', makeDispatcher<OrderEvents>({
   *   OrderPlaced: (placed, event) => db.insert(event.aggregateId, placed),
   * }));
   * await projection.caughtUp();
   * ```
   * The handler is either a function of one event (as `makeHandler`/`makeDispatcher` build) or an
   * object with `handleBatch(events, context)`.
   * @throws InvalidArgumentError for a bad name or option, InvalidCheckpointError for a bad start.
   */
  project<K extends EventType<M> = EventType<M>>(
    name: string,
    handler: ProjectionHandler<M, K> | BatchProjectionHandler<M, K>,
    options: ProjectOptions<K> = {},
  ): Projection {
    const backend = this.#readSide('run a projection');
    assertProjectionName(name);
    const resolved = resolveProjectOptions(backend.log, options);
    resolved.signal?.throwIfAborted();
    const runner = new ProjectionRunner(
      this as unknown as Store,
      backend,
      name,
      handler as unknown as BatchProjectionHandler<EventMap, string>,
      resolved,
      this.#closing.signal,
      (filter, wake) => {
        this.#assertOpen('run a projection');
        return this.#hub.watch(filter, wake);
      },
    );
    this.#runners.add(runner);
    void runner.done.catch(() => undefined).finally(() => this.#runners.delete(runner));
    return runner;
  }

  /** A projection's stored checkpoint, lag (events after it), current holder and last error. */
  async projectionStatus(name: string): Promise<ProjectionStatus> {
    const backend = this.#readSide('read a projection');
    assertProjectionName(name);
    const record = await backend.projections.load(name);
    let after =
      record?.checkpoint === undefined
        ? startPositions(backend.log)
        : decodeCheckpoint(backend.log, record.checkpoint, `stored checkpoint of projection ${JSON.stringify(name)}`);
    let lag = 0;
    while (lag < MAX_COUNTED_LAG) {
      const page = await backend.readLog({ after, limit: Math.min(MAX_PAGE_SIZE, MAX_COUNTED_LAG - lag) });
      lag += page.entries.length;
      if (page.end || page.after.every((position, i) => position === after[i])) break;
      after = page.after;
    }
    return { name, checkpoint: record?.checkpoint, lag, holder: record?.holder, lastError: record?.lastError };
  }

  /**
   * Points a projection at `checkpoint` (the start of the log when omitted) so it rebuilds from
   * there; its running holder notices at its next batch and goes on from the new checkpoint. Clear
   * the read model first when rebuilding from the start.
   * @throws InvalidCheckpointError when `checkpoint` is not this store's.
   */
  async resetProjection(name: string, checkpoint?: Checkpoint): Promise<void> {
    const backend = this.#readSide('reset a projection');
    assertProjectionName(name);
    if (checkpoint !== undefined) decodeCheckpoint(backend.log, checkpoint);
    await backend.projections.reset(name, checkpoint);
  }

  /**
   * The checkpoint at the end of the log now: reading from it returns only events appended
   * after this call.
   */
  async headCheckpoint(): Promise<Checkpoint> {
    const backend = this.#readSide('read the log');
    return encodeCheckpoint(backend.log, await backend.logHead());
  }

  /**
   * The checkpoint before the first event: reading from it returns the whole log.
   * @throws ReadSideUnavailableError when the backend has no log.
   */
  get startCheckpoint(): Checkpoint {
    const log = this.#readSide().log;
    return encodeCheckpoint(log, startPositions(log));
  }

  /** The backend, checked to read the log and keep projections; throws `ReadSideUnavailableError` otherwise. */
  #readSide(operation?: string): ReadSideBackend {
    if (operation !== undefined) this.#assertOpen(operation);
    if (!hasReadSide(this.backend)) throw new ReadSideUnavailableError(this.backend.name);
    return this.backend;
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
   *
   * With `after` (a checkpoint), the subscriber first receives the log from that checkpoint, then
   * the live events, and when the feed may have missed events it catches up from the log again
   * instead of reporting a gap. For a read model that must survive restarts, prefer `project`,
   * which stores its checkpoint durably.
   * @throws HubUnavailableError when the backend has no event feed.
   */
  async subscribe<K extends EventType<M> = EventType<M>>(
    handler: SubscribeHandler<M, K>,
    options: SubscribeOptions<K> = {},
  ): Promise<Unsubscribe> {
    this.#assertOpen('subscribe');
    if (options !== null && typeof options === 'object' && options.after !== undefined) {
      return subscribeFrom(this as unknown as Store, this.#readSide().log, this.#hub, handler as (event: Event) => void | Promise<void>, {
        ...options,
        after: options.after,
      });
    }
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

  /** Stops the projection runners, waiting a bounded time for a handler in progress. */
  async #stopRunners(): Promise<void> {
    if (this.#runners.size === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const patience = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 5_000);
      timer.unref();
    });
    await Promise.race([Promise.all([...this.#runners].map((runner) => runner.stop())), patience]);
    clearTimeout(timer);
  }

  #toEvents(id: AggregateId, records: readonly StoredEventRecord[]): Event[] {
    const events: Event[] = new Array<Event>(records.length);
    for (let i = 0; i < records.length; i++) events[i] = Event.fromRecord(id, records[i] as StoredEventRecord);
    return events;
  }

  #assertOpen(operation: string): void {
    if (this.#closed !== undefined) throw new StoreClosedError(operation);
  }
}

/** One list query: how to read its pages from the backend and what a user sees of an item. */
interface ListQuery<T, U> {
  readonly operation: string;
  /** Names the query and its arguments in cursors. */
  readonly key: readonly string[];
  readonly read: (request: ListRequest) => Promise<ListPage<T>>;
  readonly map: (item: T) => U;
}

/** Binds a backend to a config. Throws `ConfigError` for an invalid config. */
export function createStore<M extends EventMap = EventMap>(backend: Backend, config: Config<M> = {}): Store<M> {
  return new Store<M>(backend, config);
}
