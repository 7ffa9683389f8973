import type { Event, EventMap, EventOf, EventType } from './event.js';
import type { AggregateId } from './id.js';
import { buildEvent } from './validate.js';

/** Folds one event's payload into the state. Pure: returns the new state, never mutates. */
export type Applier<S, M extends EventMap, K extends EventType<M>> = (state: S, data: M[K], event: Event<K, M[K]>) => S;

/** One applier per event type; types without one are stored but leave the state unchanged. */
export type Appliers<S, M extends EventMap> = { readonly [K in EventType<M>]?: Applier<S, M, K> };

/** Runs after a successful exec with the final state and the events it stored. */
export type SuccessAction<S, M extends EventMap> = (state: S, events: readonly EventOf<M>[]) => void | Promise<void>;

/**
 * Handed to a command: it exposes the aggregate's current state and collects the events the
 * command raises, applying each to the state at once so the command sees its own events.
 */
export class Aggregator<S, M extends EventMap> {
  readonly #raised: Event[] = [];
  readonly #actions: SuccessAction<S, M>[] = [];
  #state: S;

  /** @internal Created by the executor for each attempt of a command. */
  constructor(
    readonly id: AggregateId,
    state: S,
    readonly baseSequence: number,
    private readonly applyEvent: (state: S, event: Event) => S,
  ) {
    this.#state = state;
  }

  /** The state, including the events raised so far. */
  get state(): S {
    return this.#state;
  }

  /** The sequence the next raised event will take. */
  get nextSequence(): number {
    return this.baseSequence + this.#raised.length;
  }

  /** The events raised so far in this attempt. */
  get raised(): readonly EventOf<M>[] {
    return this.#raised as EventOf<M>[];
  }

  /**
   * Raises an event: validates it, applies it to the state now, and queues it for the append.
   * Throws `InvalidEventError` or `InvalidPayloadError` for an event that cannot be stored.
   */
  raise<K extends EventType<M>>(type: K, data: M[K]): void {
    const event = buildEvent(this.id, this.nextSequence, type, data, new Date(), this.#raised.length);
    this.#state = this.applyEvent(this.#state, event);
    this.#raised.push(event);
  }

  /** Registers an action to run once this exec has stored its events. */
  onSuccess(action: SuccessAction<S, M>): void {
    this.#actions.push(action);
  }

  /** @internal */
  get successActions(): readonly SuccessAction<S, M>[] {
    return this.#actions;
  }
}
