import { EventsDroppedError, HubGapError, SubscriberError } from './errors.js';
import type { Event } from './event.js';
import type { AggregateId } from './id.js';
import { reportHubError } from './telemetry.js';

/** Everything a subscriber can be told besides its events, in stream order. */
export type SubscriptionError = SubscriberError | EventsDroppedError | HubGapError;

/** Which events a subscription wants. */
export interface SubscriptionFilter {
  /** Event types to receive; all when undefined. */
  readonly types: ReadonlySet<string> | undefined;
  /** Only aggregates whose ID starts with these parts; all when undefined. */
  readonly aggregatePrefix: AggregateId | undefined;
}

interface Dropped {
  count: number;
  readonly first: Event;
  last: Event;
}

const COMPACT_AT = 1024;

/**
 * One subscriber: a filter, a bounded queue, and a loop that calls the handler with one event at
 * a time in arrival order. The feed only ever pushes into the queue, so a slow handler delays
 * nobody but itself; when it falls `bufferSize` events behind, further events are dropped for it
 * (never for other subscribers, never for the writer) and it is told how many, in stream order,
 * just before the next event it gets.
 */
export class Subscription {
  readonly #handler: (event: Event) => void | Promise<void>;
  readonly #filter: SubscriptionFilter;
  readonly #bufferSize: number;
  readonly #onError: (error: SubscriptionError) => void;
  readonly #backend: string;
  /** Pending events and errors; `#head` is the next to deliver (avoids O(n) shifts). */
  #queue: (Event | SubscriptionError)[] = [];
  #head = 0;
  #buffered = 0;
  #dropped: Dropped | undefined;
  #scheduled = false;
  /** Starts the scheduled drain now rather than at its `setImmediate`; undefined once used. */
  #hurry: (() => void) | undefined;
  #stopped = false;
  #idle: Promise<void> = Promise.resolve();

  constructor(
    handler: (event: Event) => void | Promise<void>,
    filter: SubscriptionFilter,
    bufferSize: number,
    onError: (error: SubscriptionError) => void,
    backend: string,
  ) {
    this.#handler = handler;
    this.#filter = filter;
    this.#bufferSize = bufferSize;
    this.#onError = onError;
    this.#backend = backend;
  }

  /** Queues `event` if the filter takes it; drops it (and remembers) when the buffer is full. */
  offer(event: Event): void {
    if (this.#stopped || !this.#wants(event)) return;
    if (this.#buffered >= this.#bufferSize) {
      if (this.#dropped === undefined) this.#dropped = { count: 1, first: event, last: event };
      else {
        this.#dropped.count++;
        this.#dropped.last = event;
      }
      return;
    }
    this.#flushDropped();
    this.#queue.push(event);
    this.#buffered++;
    this.#schedule();
    // Half the buffer pending and the drain still waiting for its setImmediate: the writers are
    // appending without ever letting the event loop turn (a tight loop on the memory backend,
    // whose appends never wait for I/O), so the drain would not start before the buffer overflowed.
    // Start it in a microtask instead.
    if (this.#hurry !== undefined && this.#buffered * 2 >= this.#bufferSize) {
      queueMicrotask(this.#hurry);
      this.#hurry = undefined;
    }
  }

  /** Tells the subscriber, in stream order, that the feed may have missed events. */
  gap(reason: string): void {
    if (this.#stopped) return;
    this.#flushDropped();
    this.#queue.push(new HubGapError(this.#backend, reason));
    this.#schedule();
  }

  /** Stops delivery; resolves once a handler call in progress has returned. */
  stop(): Promise<void> {
    this.#stopped = true;
    this.#queue = [];
    this.#head = 0;
    this.#buffered = 0;
    this.#dropped = undefined;
    return this.#idle;
  }

  #wants(event: Event): boolean {
    const { types, aggregatePrefix } = this.#filter;
    if (types !== undefined && !types.has(event.type)) return false;
    return aggregatePrefix === undefined || startsWith(event.aggregateId, aggregatePrefix);
  }

  #flushDropped(): void {
    const dropped = this.#dropped;
    if (dropped === undefined) return;
    this.#dropped = undefined;
    const at = (event: Event) => ({ aggregateId: event.aggregateId, sequence: event.sequence });
    this.#queue.push(new EventsDroppedError(dropped.count, at(dropped.first), at(dropped.last), this.#bufferSize));
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // setImmediate, not a microtask: the writer whose append produced the event resumes first
    // (unless the writers never let the event loop turn, see `offer`).
    this.#idle = new Promise<void>((resolve) => {
      let started = false;
      const start = () => {
        if (started) return;
        started = true;
        this.#hurry = undefined;
        void this.#drain().then(resolve);
      };
      this.#hurry = start;
      setImmediate(start);
    });
  }

  async #drain(): Promise<void> {
    while (!this.#stopped) {
      const item = this.#take();
      if (item === undefined) {
        if (this.#dropped === undefined) break;
        this.#flushDropped();
        continue;
      }
      if (item instanceof Error) {
        this.#report(item);
        continue;
      }
      try {
        // A handler that returns no promise is not awaited: an await per event would let the
        // writers append a round between any two events, and the queue would only grow.
        const result = this.#handler(item);
        if (result !== undefined) await result;
      } catch (error) {
        this.#report(new SubscriberError(item, { cause: error }));
      }
    }
    this.#scheduled = false;
  }

  #take(): Event | SubscriptionError | undefined {
    if (this.#head >= this.#queue.length) return undefined;
    const item = this.#queue[this.#head] as Event | SubscriptionError;
    this.#queue[this.#head] = undefined as never;
    this.#head++;
    if (this.#head >= COMPACT_AT && this.#head * 2 >= this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    if (!(item instanceof Error)) this.#buffered--;
    return item;
  }

  #report(error: SubscriptionError): void {
    reportHubError(error, { 'timebox.backend': this.#backend });
    try {
      this.#onError(error);
    } catch (thrown) {
      console.error('timebox: a subscriber onError callback threw', thrown, 'while reporting', error);
    }
  }
}

/** Whether `id` begins with the parts of `prefix`. */
export function startsWith(id: AggregateId, prefix: AggregateId): boolean {
  if (id.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (id[i] !== prefix[i]) return false;
  return true;
}
