import type { Event, EventMap, EventOfType, EventType } from './event.js';

declare const handles: unique symbol;

/**
 * A function that consumes events, as `store.subscribe` takes it. `H` records, at the type level
 * only, which payload each event type is expected to carry, so that `subscribe` can reject a
 * handler written for another event map at compile time.
 */
export interface EventHandler<H extends EventMap = EventMap> {
  (event: Event): void | Promise<void>;
  /** Type-level only: the event types this handler acts on and their payloads. Never set. */
  readonly [handles]?: H;
}

/** Handles one event type: the decoded payload, and the event itself for its metadata. */
export type PayloadHandler<K extends string, P> = (payload: P, event: Event<K, P>) => void | Promise<void>;

/**
 * A handler for one event type: events of other types are ignored; for its type it calls `fn` with
 * the decoded payload. The payload is decoded once per event and cached on it, so every handler
 * of every subscription shares one decoding.
 *
 * ```ts
 * const onShipped = makeHandler('OrderShipped', (payload: { carrier: string }, event) => …);
 * await store.subscribe(onShipped, { types: ['OrderShipped'] });
 * ```
 * The payload type comes from `fn`'s annotation (or `makeHandler<'OrderShipped', Shipped>`); a
 * store typed with an event map refuses, at compile time, a handler whose payload type is not the
 * one its map gives that event type.
 */
export function makeHandler<K extends string, P>(type: K, fn: PayloadHandler<K, P>): EventHandler<{ [T in K]: P }> {
  if (typeof type !== 'string' || type === '') throw new TypeError('makeHandler needs a non-empty event type');
  if (typeof fn !== 'function') throw new TypeError(`makeHandler(${JSON.stringify(type)}) needs a handler function`);
  return (event: Event) => {
    if (event.type !== type) return;
    const typed = event as Event<K, P>;
    return fn(typed.payload, typed);
  };
}

/** One payload handler per event type of `M`; types left out are ignored. */
export type DispatchTable<M extends EventMap> = { [K in keyof M & string]?: PayloadHandler<K, M[K]> };

/**
 * Routes each event to the payload handler for its type; event types without one are ignored.
 *
 * ```ts
 * const readModel = makeDispatcher<OrderEvents>({
 *   ItemAdded: (item, event) => …,   // item: OrderEvents['ItemAdded']
 *   OrderShipped: (shipped) => …,
 * });
 * await store.subscribe(readModel);
 * ```
 */
export function makeDispatcher<M extends EventMap>(table: DispatchTable<M>): EventHandler<Partial<M>> {
  if (table === null || typeof table !== 'object') throw new TypeError('makeDispatcher needs an object of handlers by event type');
  const routes = new Map<string, PayloadHandler<string, unknown>>();
  for (const [type, fn] of Object.entries(table)) {
    if (fn === undefined) continue;
    if (typeof fn !== 'function') throw new TypeError(`makeDispatcher: the handler for ${JSON.stringify(type)} is not a function`);
    routes.set(type, fn as PayloadHandler<string, unknown>);
  }
  return (event: Event) => {
    const fn = routes.get(event.type);
    return fn === undefined ? undefined : fn(event.payload, event);
  };
}

/** Type-level only: a handler from makeHandler/makeDispatcher carries its payload types here, checked against `M`. */
export interface HandlesTypes<M extends EventMap> {
  readonly [handles]?: Partial<M>;
}

/** What `store.subscribe` accepts for a store typed by `M`, receiving the types `K`. */
export type SubscribeHandler<M extends EventMap, K extends EventType<M>> = ((event: EventOfType<M, K>) => void | Promise<void>) &
  HandlesTypes<M>;
