import { randomUUID } from 'node:crypto';
import { setTimeout as pauseFor } from 'node:timers/promises';
import type { LogDescriptor, ProjectionRecord, ProjectionStore, ProjectionWrite, ReadSideBackend } from './backend.js';
import { decodeCheckpoint, encodeCheckpoint, startPositions, type Checkpoint } from './checkpoint.js';
import { InvalidArgumentError, ProjectionError, StoreClosedError, TimeboxError } from './errors.js';
import { Event, type EventMap, type EventOfType, type EventType, type StoredEventRecord } from './event.js';
import type { HandlesTypes } from './event-handlers.js';
import type { AggregateId } from './id.js';
import { MAX_PAGE_SIZE, resolveLogFilter } from './read-all.js';
import type { Unsubscribe } from './hub.js';
import type { Store } from './store.js';
import type { SubscriptionFilter } from './subscription.js';
import { hasLoneSurrogate } from './text.js';
import { WakeSignal } from './wake-signal.js';

/** What a projection's handler learns besides the events. */
export interface ProjectionContext {
  /** The projection's name. */
  readonly projection: string;
  /** The checkpoint the batch ends at: stored once the handler resolved. */
  readonly checkpoint: Checkpoint;
  /**
   * With `transactional: true` on a backend that supports it (PostgreSQL): the open transaction in
   * which the checkpoint is stored after the handler resolves. Write the read model through it and
   * it changes exactly once per event. For `@timebox/postgres` this is a postgres.js
   * `TransactionSql`. Undefined otherwise.
   */
  readonly transaction: unknown;
}

/** Handles one event at a time; a batch's checkpoint is stored once every event of it was handled. */
export type ProjectionHandler<M extends EventMap, K extends EventType<M>> = ((
  event: EventOfType<M, K>,
  context: ProjectionContext,
) => void | Promise<void>) &
  HandlesTypes<M>;

/** Handles a whole batch at once (for bulk writes); its checkpoint is stored once it resolved. */
export interface BatchProjectionHandler<M extends EventMap, K extends EventType<M>> {
  handleBatch(events: readonly EventOfType<M, K>[], context: ProjectionContext): void | Promise<void>;
}

/** Where a projection that has no stored checkpoint starts. */
export type ProjectionStart = 'beginning' | 'now' | { readonly after: Checkpoint };

/** Options of `store.project`. */
export interface ProjectOptions<K extends string = string> {
  /** Where to start the first time, when no checkpoint is stored: the whole log (default), now, or after a checkpoint. */
  readonly start?: ProjectionStart;
  /** Events per batch, 1 to 10,000 (default 100). */
  readonly batchSize?: number;
  /** Only events of these types reach the handler (the checkpoint still moves past the others). */
  readonly types?: readonly K[];
  /** Only events of aggregates whose ID starts with these parts reach the handler. */
  readonly aggregatePrefix?: AggregateId;
  /**
   * How long (ms) a runner's hold on the projection lasts without renewal; a standby takes over
   * this long after the active runner died. Renewed every third of it. Default 10,000; at least 100.
   */
  readonly leaseMs?: number;
  /** How often (ms) a caught-up runner looks for new events without a wake from the feed, and a standby tries to take over. Default 1,000. */
  readonly pollMs?: number;
  /** Retrying a batch whose handler threw: delays double from `initialDelayMs` up to `maxDelayMs`; after `reportAfter` failed attempts each failure goes to `onError`. */
  readonly retry?: { readonly initialDelayMs?: number; readonly maxDelayMs?: number; readonly reportAfter?: number };
  /** Told of failures the runner does not throw: a handler that keeps failing, a stored checkpoint it cannot read. Default `console.error`. */
  readonly onError?: (error: ProjectionError) => void;
  /** Run each batch and its checkpoint in one backend transaction (PostgreSQL); see `ProjectionContext.transaction`. */
  readonly transactional?: boolean;
  /** Aborting stops the runner, like `stop()`. */
  readonly signal?: AbortSignal;
}

/** A projection's durable state, as `store.projectionStatus` reports it. */
export interface ProjectionStatus {
  readonly name: string;
  /** Where it has handled the log up to; undefined before its first batch. */
  readonly checkpoint: Checkpoint | undefined;
  /** Events in the log after the checkpoint, counted up to `MAX_COUNTED_LAG`. */
  readonly lag: number;
  /** The runner that holds it now (an opaque ID), undefined when none does. */
  readonly holder: string | undefined;
  /** The last failure a runner reported, cleared by the next successful batch. */
  readonly lastError: string | undefined;
}

/**
 * A caught-up runner reads the log at most this often (ms), so appends arriving meanwhile are
 * handled as one batch. It adds at most this much to a projection's delay under load; a lone
 * append after a quiet spell is read as soon as the feed reports it.
 */
export const FOLLOW_INTERVAL_MS = 10;

/** `projectionStatus` counts lag up to this many events. */
export const MAX_COUNTED_LAG = 100_000;

/** A running projection. */
export interface Projection {
  readonly name: string;
  /** This runner's ID, as `ProjectionStatus.holder` shows it. */
  readonly runnerId: string;
  /** True while this runner holds the projection (others wait as standbys). */
  readonly active: boolean;
  /**
   * Resolves once the projection's stored checkpoint (by this runner or another) covers every
   * event appended before the call. Rejects when the runner stops first, or `signal` aborts.
   */
  caughtUp(options?: { readonly signal?: AbortSignal }): Promise<void>;
  /** Stops the runner after its current batch and gives its hold up. Idempotent. */
  stop(): Promise<void>;
  /** Settles when the runner has stopped: resolves on `stop()`, rejects if it stopped on an error it cannot get past. */
  readonly done: Promise<void>;
}

interface ResolvedProjectOptions {
  readonly start: ProjectionStart;
  readonly batchSize: number;
  readonly types: readonly string[] | undefined;
  readonly prefix: AggregateId | undefined;
  readonly leaseMs: number;
  readonly pollMs: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly reportAfter: number;
  readonly onError: (error: ProjectionError) => void;
  readonly transactional: boolean;
  readonly signal: AbortSignal | undefined;
}

/** Throws `InvalidArgumentError` unless `name` can name a projection. */
export function assertProjectionName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name === '') throw new InvalidArgumentError('projection name', 'must be a non-empty string', name);
  if (name.length > 200) throw new InvalidArgumentError('projection name', 'must be at most 200 characters', name);
  if (hasLoneSurrogate(name)) throw new InvalidArgumentError('projection name', 'must be Unicode text (it holds a lone surrogate)', name);
}

function wholeNumber(name: string, value: unknown, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(name, `must be a whole number from ${min} to ${max}`, value);
  }
  return value;
}

export function resolveProjectOptions(log: LogDescriptor, options: ProjectOptions): ResolvedProjectOptions {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('project options', 'must be an object', options);
  const start = options.start ?? 'beginning';
  if (start !== 'beginning' && start !== 'now') {
    if (start === null || typeof start !== 'object' || !('after' in start)) {
      throw new InvalidArgumentError('start', "must be 'beginning', 'now' or { after: checkpoint }", start);
    }
    decodeCheckpoint(log, start.after, 'start.after');
  }
  const { types, prefix } = resolveLogFilter(options);
  const retry = options.retry ?? {};
  const initialDelayMs = wholeNumber('retry.initialDelayMs', retry.initialDelayMs, 1, 3_600_000, 100);
  if (options.onError !== undefined && typeof options.onError !== 'function') {
    throw new InvalidArgumentError('onError', 'must be a function', options.onError);
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new InvalidArgumentError('signal', 'must be an AbortSignal', options.signal);
  }
  return {
    start,
    batchSize: wholeNumber('batchSize', options.batchSize, 1, MAX_PAGE_SIZE, 100),
    types,
    prefix,
    leaseMs: wholeNumber('leaseMs', options.leaseMs, 100, 3_600_000, 10_000),
    pollMs: wholeNumber('pollMs', options.pollMs, 1, 3_600_000, 1_000),
    initialDelayMs,
    maxDelayMs: wholeNumber('retry.maxDelayMs', retry.maxDelayMs, initialDelayMs, 3_600_000, Math.max(initialDelayMs, 10_000)),
    reportAfter: wholeNumber('retry.reportAfter', retry.reportAfter, 1, 1_000_000, 3),
    onError: options.onError ?? ((error) => console.error(error)),
    transactional: options.transactional ?? false,
    signal: options.signal,
  };
}

type AnyHandler = ProjectionHandler<EventMap, string> | BatchProjectionHandler<EventMap, string>;

/** Turns either handler form into one that takes a batch. */
function batchFunction(handler: AnyHandler): (events: readonly Event[], context: ProjectionContext) => Promise<void> {
  if (typeof handler === 'function') {
    return async (events, context) => {
      for (const event of events) await handler(event, context);
    };
  }
  if (handler !== null && typeof handler === 'object' && typeof handler.handleBatch === 'function') {
    return async (events, context) => handler.handleBatch(events, context);
  }
  throw new InvalidArgumentError('projection handler', 'must be a function of each event, or an object with handleBatch(events)', handler);
}

/** The runner behind `store.project`: claims the projection, catches up, follows the log, hands over on stop. */
export class ProjectionRunner implements Projection {
  readonly runnerId = randomUUID();
  readonly done: Promise<void>;
  #active = false;
  #stopping = false;
  readonly #stopped = new AbortController();
  readonly #wake = new WakeSignal();
  /** Woken each time this runner stores a checkpoint, so `caughtUp` answers without waiting for its poll. */
  readonly #progress = new WakeSignal();
  readonly #handle: (events: readonly Event[], context: ProjectionContext) => Promise<void>;
  #unsubscribe: (() => Promise<void>) | undefined;

  constructor(
    readonly store: Store,
    readonly backend: ReadSideBackend,
    readonly name: string,
    handler: AnyHandler,
    readonly options: ResolvedProjectOptions,
    closing: AbortSignal,
    /** Calls `wake` when the feed reports events passing `filter` (`EventHub.watch`). */
    private readonly watchAppends: (filter: SubscriptionFilter, wake: () => void) => Promise<Unsubscribe>,
  ) {
    this.#handle = batchFunction(handler);
    const stop = () => void this.stop();
    closing.addEventListener('abort', stop, { once: true });
    options.signal?.addEventListener('abort', stop, { once: true });
    this.done = this.#run().finally(() => {
      closing.removeEventListener('abort', stop);
      options.signal?.removeEventListener('abort', stop);
    });
    // A runner that fails reports through `done`; keep an unobserved failure from crashing the process.
    this.done.catch(() => undefined);
  }

  get active(): boolean {
    return this.#active;
  }

  get #projections(): ProjectionStore {
    return this.backend.projections;
  }

  async stop(): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = true;
      this.#stopped.abort(new ProjectionStoppedError(this.name));
      this.#wake.wake();
    }
    await this.done.catch(() => undefined);
  }

  async caughtUp(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    const target = await this.backend.logHead();
    const log = this.backend.log;
    for (;;) {
      options.signal?.throwIfAborted();
      if (this.#stopping) throw new ProjectionStoppedError(this.name);
      const record = await this.#projections.load(this.name);
      if (record?.checkpoint !== undefined) {
        const positions = decodeCheckpoint(log, record.checkpoint, 'stored checkpoint');
        if (positions.every((position, i) => position >= (target[i] ?? 0))) return;
      }
      // Another runner's progress is only seen by polling; this runner's own wakes the wait at once.
      await this.#progress.wait(Math.min(this.options.pollMs, 50), options.signal, this.#stopped.signal).catch((error: unknown) => {
        if (this.#stopped.signal.aborted) throw new ProjectionStoppedError(this.name);
        throw error;
      });
    }
  }

  async #run(): Promise<void> {
    let delay = this.options.initialDelayMs;
    try {
      await this.#followFeed();
      while (!this.#stopping) {
        try {
          const claim = await this.#projections.claim(this.name, this.runnerId, this.options.leaseMs);
          if (!claim.held) {
            // A standby: try again well within the lease, so it takes over soon after a holder dies.
            await this.#sleep(Math.min(this.options.pollMs, this.options.leaseMs / 3));
            continue;
          }
          this.#active = true;
          try {
            await this.#lead(claim.record);
          } finally {
            this.#active = false;
          }
          delay = this.options.initialDelayMs;
        } catch (error) {
          if (!isTransient(error)) throw error;
          // The backend failed (a dropped connection, a server restarting): report it and try
          // again with backoff, as a projection must outlive a passing outage.
          this.options.onError(new ProjectionError(this.name, 'the backend failed; retrying', { cause: error }));
          await this.#sleep(delay);
          delay = Math.min(delay * 2, this.options.maxDelayMs);
        }
      }
    } catch (error) {
      if (error instanceof ProjectionStoppedError || error instanceof StoreClosedError) return;
      throw error;
    } finally {
      await this.#unsubscribe?.().catch(() => undefined);
      await this.#projections.release(this.name, this.runnerId).catch(() => undefined);
    }
  }

  /**
   * Wakes the runner on every append the backend's feed reports (a wake only: the runner reads
   * the events from the log, so the feed's events are not built for it); without a feed it polls.
   */
  async #followFeed(): Promise<void> {
    if (this.backend.watch === undefined) return;
    const { types, prefix } = this.options;
    this.#unsubscribe = await this.watchAppends(
      {
        types: types === undefined ? undefined : new Set(types),
        aggregatePrefix: prefix === undefined || prefix.length === 0 ? undefined : prefix,
      },
      () => this.#wake.wake(),
    );
  }

  /** Runs batches while this runner holds the projection; returns when it lost the hold or the record was reset. */
  async #lead(record: ProjectionRecord): Promise<void> {
    const log = this.backend.log;
    let position: number[];
    if (record.checkpoint !== undefined) {
      try {
        position = decodeCheckpoint(log, record.checkpoint, `stored checkpoint of projection ${JSON.stringify(this.name)}`);
      } catch (cause) {
        // Never start over silently: that would replay the whole log into a live read model.
        const error = new ProjectionError(this.name, 'its stored checkpoint cannot be read; reset it with resetProjection', { cause });
        this.options.onError(error);
        await this.#projections.save(this.name, this.runnerId, record.generation, { lastError: error.message }, this.options.leaseMs);
        throw error;
      }
    } else {
      const start = this.options.start;
      position =
        start === 'beginning'
          ? startPositions(log)
          : start === 'now'
            ? await this.backend.logHead()
            : decodeCheckpoint(log, start.after, 'start.after');
      const write = await this.#save(record.generation, { checkpoint: encodeCheckpoint(log, position) });
      if (write !== 'ok') return;
    }
    let renewedAt = Date.now();
    let readAt = 0;
    let behind = true;
    while (!this.#stopping) {
      // Once caught up, read no more often than every FOLLOW_INTERVAL_MS: under a steady stream
      // of appends each read then takes a batch instead of an event or two, and the reads and
      // checkpoint writes a live projection costs the store stay bounded (SPEC 16: the feed's cost).
      if (!behind) await this.#pause(readAt + FOLLOW_INTERVAL_MS - Date.now());
      readAt = Date.now();
      const generation = this.#wake.generation;
      const page = await this.backend.readLog({
        after: position,
        limit: this.options.batchSize,
        types: this.options.types,
        prefix: this.options.prefix,
      });
      const checkpoint = encodeCheckpoint(log, page.after);
      const moved = page.after.some((p, i) => p !== position[i]);
      if (page.entries.length > 0) {
        const events = page.entries.map((entry) => eventOf(entry.id, entry.event));
        const write = await this.#handleWithRetries(events, checkpoint, record.generation);
        if (write !== 'ok') return;
        renewedAt = Date.now();
      } else if (moved || Date.now() - renewedAt >= this.options.leaseMs / 3) {
        const write = await this.#save(record.generation, moved ? { checkpoint } : {});
        if (write !== 'ok') return;
        renewedAt = Date.now();
      }
      position = page.after;
      behind = !page.end;
      if (page.end && page.entries.length === 0 && !moved) {
        const untilRenewal = this.options.leaseMs / 3 - (Date.now() - renewedAt);
        if (this.#wake.generation === generation) await this.#sleep(Math.max(1, Math.min(this.options.pollMs, untilRenewal)));
      }
    }
  }

  /** Runs the handler on a batch until it succeeds, with backoff; then stores the checkpoint. */
  async #handleWithRetries(events: readonly Event[], checkpoint: Checkpoint, generation: number): Promise<ProjectionWrite> {
    let delay = this.options.initialDelayMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#handleOnce(events, checkpoint, generation);
      } catch (cause) {
        if (this.#stopping) throw new ProjectionStoppedError(this.name);
        const error = new ProjectionError(this.name, `its handler failed (attempt ${attempt}) on a batch of ${events.length} events`, {
          cause,
        });
        const write = await this.#save(generation, { lastError: error.message });
        if (write !== 'ok') return write;
        if (attempt >= this.options.reportAfter) this.options.onError(error);
        await this.#sleep(delay);
        delay = Math.min(delay * 2, this.options.maxDelayMs);
      }
    }
  }

  async #handleOnce(events: readonly Event[], checkpoint: Checkpoint, generation: number): Promise<ProjectionWrite> {
    const update = { checkpoint, lastError: null };
    const renewal = setInterval(() => void this.#save(generation, {}).catch(() => undefined), this.options.leaseMs / 3);
    renewal.unref();
    try {
      const projections = this.#projections;
      if (this.options.transactional && projections.saveWith !== undefined) {
        const write = await projections.saveWith(this.name, this.runnerId, generation, update, this.options.leaseMs, (transaction) =>
          this.#handle(events, { projection: this.name, checkpoint, transaction }),
        );
        if (write === 'ok') this.#progress.wake();
        return write;
      }
      await this.#handle(events, { projection: this.name, checkpoint, transaction: undefined });
    } finally {
      clearInterval(renewal);
    }
    return this.#save(generation, update);
  }

  async #save(generation: number, update: { readonly checkpoint?: string; readonly lastError?: string | null }): Promise<ProjectionWrite> {
    const write = await this.#projections.save(this.name, this.runnerId, generation, update, this.options.leaseMs);
    if (write === 'ok' && update.checkpoint !== undefined) this.#progress.wake();
    return write;
  }

  /** Sleeps `ms` (a feed wake does not cut it short); throws `ProjectionStoppedError` once stopped. */
  async #pause(ms: number): Promise<void> {
    if (ms <= 0) return;
    await pauseFor(ms, undefined, { signal: this.#stopped.signal }).catch(() => undefined);
    if (this.#stopping) throw new ProjectionStoppedError(this.name);
  }

  /** Sleeps up to `ms`, waking early on a feed wake; throws `ProjectionStoppedError` once stopped. */
  async #sleep(ms: number): Promise<void> {
    await this.#wake.wait(ms, this.#stopped.signal).catch((error: unknown) => {
      throw error instanceof TimeboxError ? error : new ProjectionStoppedError(this.name);
    });
    if (this.#stopping) throw new ProjectionStoppedError(this.name);
  }
}

/** A failure the runner outlives by retrying: anything but a stop, a closed store, or its own verdict. */
function isTransient(error: unknown): boolean {
  return !(error instanceof ProjectionStoppedError || error instanceof StoreClosedError || error instanceof ProjectionError);
}

/** Internal: unwinds a runner that was asked to stop. */
class ProjectionStoppedError extends TimeboxError {
  constructor(name: string) {
    super('PROJECTION_STOPPED', `projection ${JSON.stringify(name)} was stopped`);
  }
}

function eventOf(id: AggregateId, record: StoredEventRecord): Event {
  return Event.fromRecord(Object.freeze([...id]), record);
}
