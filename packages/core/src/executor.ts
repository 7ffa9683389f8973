import { LRUCache } from 'lru-cache';
import { Aggregator, type Appliers, type SuccessAction } from './aggregator.js';
import { requirePositiveInteger } from './config.js';
import { ConfigError, InvalidArgumentError, MaxRetriesExceededError, VersionConflictError } from './errors.js';
import type { Event, EventMap, EventOf } from './event.js';
import { assertAggregateId, encodeAggregateId, ownAggregateId, type AggregateId } from './id.js';
import { KeyedLock } from './keyed-lock.js';
import { toJson } from './payload.js';
import type { Store } from './store.js';
import { Attr, countRetry, withSpan } from './telemetry.js';

/** Reads the state, may raise events through the aggregator, and may throw to abort. */
export type Command<S, M extends EventMap> = (state: S, aggregator: Aggregator<S, M>) => void | Promise<void>;

/** Turns state into snapshot JSON text and back. */
export interface SnapshotCodec<S> {
  encode(state: S): string;
  decode(data: string): S;
}

/** Where the executor reports failures it does not throw (success actions, background snapshots). */
export interface ExecutorLogger {
  error(message: string, error: unknown): void;
}

export interface ExecutorOptions<S, M extends EventMap> {
  /** The state of an aggregate with no events. Called for each new projection. */
  readonly initialState: () => S;
  /** Folds events into state, one pure function per event type. */
  readonly appliers: Appliers<S, M>;
  /** Overrides the store's `cacheSize` for this executor. */
  readonly cacheSize?: number;
  /** Runs after every successful exec; see also `Aggregator.onSuccess`. */
  readonly onSuccess?: SuccessAction<S, M>;
  /** Snapshot encoding; JSON by default, so state must survive a JSON round trip. */
  readonly snapshotCodec?: SnapshotCodec<S>;
  /** Defaults to `console`. */
  readonly logger?: ExecutorLogger;
}

interface Projection<S> {
  readonly state: S;
  /** The sequence the next event appended to this aggregate should take. */
  readonly nextSequence: number;
}

const jsonCodec: SnapshotCodec<never> = {
  encode: (state) => toJson(state, 'the snapshot state'),
  decode: (data) => JSON.parse(data) as never,
};

/**
 * Loads aggregate state, runs commands, persists the events they raise, and retries on conflict.
 * Keeps an LRU cache of projections and runs commands on one aggregate one at a time, so
 * conflicts only come from other processes.
 *
 * @typeParam S - the aggregate state
 * @typeParam M - the event map: `raise` and the appliers are typed by it
 */
export class Executor<S, M extends EventMap> {
  readonly store: Store<M>;
  readonly #options: ExecutorOptions<S, M>;
  readonly #cache: LRUCache<string, Projection<S>>;
  readonly #locks = new KeyedLock();
  readonly #codec: SnapshotCodec<S>;
  readonly #logger: ExecutorLogger;

  /**
   * @param store - a store typed by the same event map, or an untyped one (`Store<EventMap>`)
   */
  constructor(store: Store<M> | Store<EventMap>, options: ExecutorOptions<S, M>) {
    if (options === null || typeof options !== 'object') throw new ConfigError('executor options', 'must be an object', options);
    if (typeof options.initialState !== 'function') {
      throw new ConfigError('initialState', 'must be a function returning the empty state', options.initialState);
    }
    if (options.appliers === null || typeof options.appliers !== 'object') {
      throw new ConfigError('appliers', 'must be an object of functions keyed by event type', options.appliers);
    }
    for (const [type, applier] of Object.entries(options.appliers)) {
      if (typeof applier !== 'function') throw new ConfigError(`appliers.${type}`, 'must be a function', applier);
    }
    const cacheSize = options.cacheSize ?? store.config.cacheSize;
    requirePositiveInteger('cacheSize', cacheSize);
    this.store = store as Store<M>;
    this.#options = options;
    this.#cache = new LRUCache({ max: cacheSize });
    this.#codec = options.snapshotCodec ?? jsonCodec;
    this.#logger = options.logger ?? console;
  }

  /**
   * Runs `command` against the aggregate's current state and appends the events it raises at the
   * loaded sequence. On a conflict it catches up with the winner's events and runs the command
   * again, up to `maxRetries` times, then rejects with `MaxRetriesExceededError`. A command that
   * throws stores nothing and rejects with its error. Resolves with the final state.
   */
  async exec(id: AggregateId, command: Command<S, M>): Promise<S> {
    const ownId = ownAggregateId(id);
    if (typeof command !== 'function') throw new InvalidArgumentError('command', 'must be a function', command);
    const key = encodeAggregateId(ownId);
    const outcome = await withSpan(
      'exec',
      () => ({ [Attr.aggregateId]: key, [Attr.backend]: this.store.backend.name }),
      (span) =>
        this.#locks.run(key, async () => {
          const cached = this.#cache.get(key);
          let projection = cached ?? (await this.#load(ownId, key));
          // A cached projection may lag behind other processes. An append would reveal that by a
          // conflict, but a command that throws or raises nothing would decide on stale state, so
          // in those cases the projection is caught up once and the command run again.
          let mayBeStale = cached !== undefined;
          let retries = 0;
          for (;;) {
            const aggregator = new Aggregator<S, M>(ownId, projection.state, projection.nextSequence, this.#applyEvent);
            let rejection: { error: unknown } | undefined;
            try {
              await command(aggregator.state, aggregator);
            } catch (error) {
              rejection = { error };
            }
            const events = aggregator.raised as readonly Event[];
            if (mayBeStale && (rejection !== undefined || events.length === 0)) {
              mayBeStale = false;
              const current = await this.#fresh(ownId, key);
              if (current !== projection) {
                projection = current;
                continue;
              }
            }
            if (rejection !== undefined) throw rejection.error;
            try {
              if (events.length > 0) await this.store.appendPrepared(ownId, projection.nextSequence, events);
            } catch (error) {
              if (!(error instanceof VersionConflictError)) throw error;
              if (retries >= this.store.config.maxRetries) {
                span.setAttribute(Attr.retryCount, retries);
                throw new MaxRetriesExceededError(ownId, retries, { cause: error });
              }
              retries++;
              countRetry({ [Attr.backend]: this.store.backend.name });
              span.addEvent('timebox.retry', { [Attr.retryCount]: retries, [Attr.expectedSequence]: error.expectedSequence });
              projection = await this.#catchUp(ownId, key, projection, error);
              mayBeStale = false;
              continue;
            }
            projection = { state: aggregator.state, nextSequence: projection.nextSequence + events.length };
            this.#cache.set(key, projection);
            span.setAttribute(Attr.retryCount, retries);
            span.setAttribute(Attr.eventCount, events.length);
            return { state: aggregator.state, events: aggregator.raised, actions: aggregator.successActions };
          }
        }),
    );
    await this.#runSuccessActions(ownId, outcome.state, outcome.events, outcome.actions);
    return outcome.state;
  }

  /** The aggregate's current state, caught up with anything other writers appended. */
  async get(id: AggregateId): Promise<S> {
    const ownId = ownAggregateId(id);
    const key = encodeAggregateId(ownId);
    return this.#locks.run(key, async () => (await this.#fresh(ownId, key)).state);
  }

  /** Stores a snapshot of the aggregate's current state now. */
  async saveSnapshot(id: AggregateId): Promise<void> {
    const ownId = ownAggregateId(id);
    const key = encodeAggregateId(ownId);
    await this.#locks.run(key, async () => {
      const projection = await this.#fresh(ownId, key);
      await this.store.putSnapshotData(ownId, this.#codec.encode(projection.state), projection.nextSequence);
    });
  }

  /** Drops the aggregate's cached projection; the next use reloads it from the store. */
  evict(id: AggregateId): void {
    assertAggregateId(id);
    this.#cache.delete(encodeAggregateId(id));
  }

  /** How many projections the cache holds. */
  get cachedCount(): number {
    return this.#cache.size;
  }

  readonly #applyEvent = (state: S, event: Event): S => {
    const applier = this.#options.appliers[event.type as keyof Appliers<S, M>] as
      ((state: S, data: unknown, event: Event) => S) | undefined;
    return applier === undefined ? state : applier(state, event.payload, event);
  };

  /** The cached projection caught up with the store, or a fresh load. */
  async #fresh(id: AggregateId, key: string): Promise<Projection<S>> {
    const cached = this.#cache.get(key);
    if (cached === undefined) return this.#load(id, key);
    // Read from the last event the projection already holds: if it is still stored, nothing
    // before our position was trimmed and what follows continues the projection. If it is gone,
    // a snapshot with trimming (ours, or another process's, whatever its config) may have
    // removed every event from our position on, so an empty answer would not prove the cache
    // current: reload from the snapshot instead.
    const known = cached.nextSequence - 1;
    const events = await this.store.getEvents(id, Math.max(known, 0));
    if (known < 0 ? events.length === 0 : events[0]?.sequence !== known) return this.#load(id, key);
    const caughtUp = this.#applyContiguous(cached, known < 0 ? events : events.slice(1));
    if (caughtUp === undefined) return this.#load(id, key);
    if (caughtUp !== cached) this.#cache.set(key, caughtUp);
    return caughtUp;
  }

  /** Applies a conflict's new events; reloads when they do not continue the cached projection. */
  async #catchUp(id: AggregateId, key: string, projection: Projection<S>, conflict: VersionConflictError): Promise<Projection<S>> {
    const caughtUp = this.#applyContiguous(projection, conflict.newEvents);
    if (caughtUp === undefined || caughtUp.nextSequence !== conflict.actualSequence) return this.#load(id, key);
    this.#cache.set(key, caughtUp);
    return caughtUp;
  }

  /** Applies events that continue the projection exactly, or returns undefined on a gap. */
  #applyContiguous(projection: Projection<S>, events: readonly Event[]): Projection<S> | undefined {
    if (events.length === 0) return projection;
    let { state, nextSequence } = projection;
    for (const event of events) {
      if (event.sequence !== nextSequence) return undefined;
      state = this.#applyEvent(state, event);
      nextSequence++;
    }
    return { state, nextSequence };
  }

  /** Loads from the snapshot plus trailing events, refreshing the snapshot when it is due. */
  async #load(id: AggregateId, key: string): Promise<Projection<S>> {
    const snapshot = await this.store.loadSnapshotWith(id, (data) => this.#codec.decode(data));
    let state = snapshot.value === undefined ? this.#options.initialState() : snapshot.value;
    let nextSequence = snapshot.nextSequence;
    for (const event of snapshot.events) {
      state = this.#applyEvent(state, event);
      nextSequence = event.sequence + 1;
    }
    const projection = { state, nextSequence };
    this.#cache.set(key, projection);
    if (snapshot.events.length > 0 && this.#snapshotDue(snapshot.value !== undefined, snapshot.snapshotBytes, snapshot.eventBytes)) {
      try {
        await this.store.putSnapshotData(id, this.#codec.encode(state), nextSequence);
      } catch (error) {
        // An opportunistic snapshot is an optimization; failing it must not fail the caller.
        this.#logger.error(`timebox: opportunistic snapshot of ${key} failed`, error);
      }
    }
    return projection;
  }

  #snapshotDue(hasSnapshot: boolean, snapshotBytes: number, eventBytes: number): boolean {
    if (!hasSnapshot) return true;
    if (snapshotBytes === 0) return eventBytes > 0;
    return eventBytes / snapshotBytes > this.store.config.snapshotRatio;
  }

  async #runSuccessActions(id: AggregateId, state: S, events: readonly EventOf<M>[], actions: readonly SuccessAction<S, M>[]) {
    const all = this.#options.onSuccess === undefined ? actions : [...actions, this.#options.onSuccess];
    for (const action of all) {
      try {
        await action(state, events);
      } catch (error) {
        this.#logger.error(`timebox: success action for ${encodeAggregateId(id)} failed`, error);
      }
    }
  }
}

/** Creates an executor over a store. */
export function createExecutor<S, M extends EventMap>(store: Store<M> | Store<EventMap>, options: ExecutorOptions<S, M>): Executor<S, M> {
  return new Executor(store, options);
}
