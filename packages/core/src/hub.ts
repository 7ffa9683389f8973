import type { Backend, Feed, FeedSink } from './backend.js';
import type { Checkpoint } from './checkpoint.js';
import { HubUnavailableError, InvalidArgumentError } from './errors.js';
import { Event, type StoredEventRecord } from './event.js';
import { assertIdPrefix, type AggregateId } from './id.js';
import { startsWith, Subscription, type SubscriptionError, type SubscriptionFilter } from './subscription.js';
import { hasLoneSurrogate } from './text.js';

/** Events a subscriber may fall behind by before further ones are dropped for it. */
export const DEFAULT_SUBSCRIBER_BUFFER = 10_000;

/** Options of `store.subscribe`. */
export interface SubscribeOptions<K extends string = string> {
  /** Only these event types (the handler's event type narrows to them). All types when omitted. */
  readonly types?: readonly K[];
  /** Only aggregates whose ID starts with these parts. All aggregates when omitted or empty. */
  readonly aggregatePrefix?: AggregateId;
  /** Aborting unsubscribes. */
  readonly signal?: AbortSignal;
  /**
   * Told, in stream order, when the handler threw (`SubscriberError`), when events were dropped
   * because the subscriber fell `bufferSize` behind (`EventsDroppedError`), and when the backend's
   * feed may have missed events (`HubGapError`). Defaults to `console.error`. Every such error is
   * also counted and traced through OpenTelemetry.
   */
  readonly onError?: (error: SubscriptionError) => void;
  /** How many undelivered events this subscriber may hold (default 10,000). */
  readonly bufferSize?: number;
  /**
   * Resume after this checkpoint: the log from there is delivered first, then live events; a gap
   * in the feed is filled from the log instead of being reported.
   */
  readonly after?: Checkpoint;
}

/** Stops a subscription; resolves once a handler call in progress has returned. Idempotent. */
export type Unsubscribe = () => Promise<void>;

/**
 * Fans one backend feed out to a store's subscribers. The feed opens with the first subscriber
 * and closes with the last. Each event is built once and handed to every subscriber, so its
 * payload is decoded at most once however many handlers read it.
 */
export class EventHub {
  readonly #backend: Backend;
  readonly #subscriptions = new Set<Subscription>();
  /** Told that events passing their filter were appended, without the events (see `watch`). */
  readonly #watchers = new Set<{ readonly filter: SubscriptionFilter; readonly wake: () => void }>();
  /** The open (or opening) feed, with the sink it feeds; the sink goes quiet once detached. */
  #feed: { readonly opened: Promise<Feed>; readonly sink: { active: boolean } } | undefined;
  /** Serializes opening and closing the feed. */
  #transition: Promise<unknown> = Promise.resolve();

  constructor(backend: Backend) {
    this.#backend = backend;
  }

  /** Registers `handler`; resolves once every event appended afterwards will reach it. */
  async subscribe(handler: (event: Event) => void | Promise<void>, options: SubscribeOptions): Promise<Unsubscribe> {
    if (typeof handler !== 'function') throw new InvalidArgumentError('handler', 'must be a function', handler);
    const resolved = resolveOptions(options);
    if (this.#backend.watch === undefined) throw new HubUnavailableError(this.#backend.name);
    resolved.signal?.throwIfAborted();
    const subscription = new Subscription(handler, resolved.filter, resolved.bufferSize, resolved.onError, this.#backend.name);
    await this.#join(this.#subscriptions, subscription);
    let done: Promise<void> | undefined;
    const unsubscribe: Unsubscribe = () => {
      done ??= this.#remove(subscription);
      resolved.signal?.removeEventListener('abort', onAbort);
      return done;
    };
    const onAbort = () => void unsubscribe();
    resolved.signal?.addEventListener('abort', onAbort, { once: true });
    if (resolved.signal?.aborted === true) await unsubscribe();
    return unsubscribe;
  }

  /**
   * Calls `wake` whenever the feed reports events that pass `filter` (or may have missed some),
   * without building the events: for a reader that reads the log itself and only needs to know
   * when to (a projection runner). Costs a check of the type and ID per event, where a
   * subscription would build every event and queue it.
   */
  async watch(filter: SubscriptionFilter, wake: () => void): Promise<Unsubscribe> {
    if (this.#backend.watch === undefined) throw new HubUnavailableError(this.#backend.name);
    const watcher = { filter, wake };
    await this.#join(this.#watchers, watcher);
    return async () => {
      if (!this.#watchers.delete(watcher)) return;
      await this.#closeIfUnused();
    };
  }

  /**
   * Stops every subscription and the feed. Does not wait for handler calls in progress: a handler
   * that never returns must not keep its store from closing (`unsubscribe()` does wait).
   */
  async close(): Promise<void> {
    for (const subscription of this.#subscriptions) void subscription.stop();
    this.#subscriptions.clear();
    this.#watchers.clear();
    await this.#serialized(() => this.#closeFeed());
  }

  async #remove(subscription: Subscription): Promise<void> {
    if (!this.#subscriptions.delete(subscription)) return;
    await subscription.stop();
    await this.#closeIfUnused();
  }

  /** Adds `member` to `members` and opens the feed for it; leaves nothing behind if that fails. */
  async #join<T>(members: Set<T>, member: T): Promise<void> {
    members.add(member);
    try {
      await this.#serialized(() => this.#open());
    } catch (error) {
      members.delete(member);
      throw error;
    }
  }

  #closeIfUnused(): Promise<void> {
    return this.#serialized(async () => {
      if (this.#subscriptions.size === 0 && this.#watchers.size === 0) await this.#closeFeed();
    });
  }

  async #open(): Promise<void> {
    if (this.#feed !== undefined) {
      await this.#feed.opened;
      return;
    }
    const watch = this.#backend.watch?.bind(this.#backend);
    if (watch === undefined) throw new HubUnavailableError(this.#backend.name);
    const state = { active: true };
    const sink: FeedSink = {
      events: (id, records) => {
        if (state.active) this.#deliver(id, records);
      },
      gap: (reason) => {
        if (!state.active) return;
        for (const watcher of this.#watchers) watcher.wake();
        for (const subscription of this.#subscriptions) subscription.gap(reason);
      },
    };
    const opened = watch(sink);
    this.#feed = { opened, sink: state };
    try {
      await opened;
    } catch (error) {
      state.active = false;
      this.#feed = undefined;
      throw error;
    }
  }

  async #closeFeed(): Promise<void> {
    const feed = this.#feed;
    if (feed === undefined) return;
    this.#feed = undefined;
    feed.sink.active = false;
    await (await feed.opened).close();
  }

  #deliver(id: AggregateId, records: readonly StoredEventRecord[]): void {
    for (const watcher of this.#watchers) {
      const { types, aggregatePrefix } = watcher.filter;
      if (aggregatePrefix !== undefined && !startsWith(id, aggregatePrefix)) continue;
      if (types === undefined || records.some((record) => types.has(record.type))) watcher.wake();
    }
    if (this.#subscriptions.size === 0) return;
    const aggregateId = Object.isFrozen(id) ? id : Object.freeze([...id]);
    for (const record of records) {
      const event = Event.fromRecord(aggregateId, record);
      for (const subscription of this.#subscriptions) subscription.offer(event);
    }
  }

  #serialized<T>(step: () => Promise<T>): Promise<T> {
    const next = this.#transition.then(step, step);
    this.#transition = next.catch(() => undefined);
    return next;
  }
}

interface ResolvedOptions {
  readonly filter: { readonly types: ReadonlySet<string> | undefined; readonly aggregatePrefix: AggregateId | undefined };
  readonly signal: AbortSignal | undefined;
  readonly onError: (error: SubscriptionError) => void;
  readonly bufferSize: number;
}

function resolveOptions(options: SubscribeOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('options', 'must be an object', options);
  const { types, aggregatePrefix, signal, onError, bufferSize = DEFAULT_SUBSCRIBER_BUFFER } = options;
  if (types !== undefined) {
    if (!Array.isArray(types)) throw new InvalidArgumentError('types', 'must be an array of event type names', types);
    for (const type of types as unknown[]) {
      if (typeof type !== 'string' || type === '' || hasLoneSurrogate(type)) {
        throw new InvalidArgumentError('types', 'must hold non-empty event type names', type);
      }
    }
  }
  if (aggregatePrefix !== undefined) assertIdPrefix(aggregatePrefix);
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new InvalidArgumentError('signal', 'must be an AbortSignal', signal);
  if (onError !== undefined && typeof onError !== 'function') throw new InvalidArgumentError('onError', 'must be a function', onError);
  if (typeof bufferSize !== 'number' || !Number.isSafeInteger(bufferSize) || bufferSize <= 0) {
    throw new InvalidArgumentError('bufferSize', 'must be an integer > 0', bufferSize);
  }
  return {
    filter: {
      types: types === undefined ? undefined : new Set(types),
      aggregatePrefix: aggregatePrefix === undefined || aggregatePrefix.length === 0 ? undefined : Object.freeze([...aggregatePrefix]),
    },
    signal,
    onError: onError ?? ((error) => console.error('timebox:', error)),
    bufferSize,
  };
}
