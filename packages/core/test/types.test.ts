import { describe, expect, expectTypeOf, it } from 'vitest';
import type { Aggregator } from '../src/aggregator.js';
import type { Backend } from '../src/backend.js';
import type { Event, EventOf, NewEvent } from '../src/event.js';
import { makeDispatcher, makeHandler } from '../src/event-handlers.js';
import { createExecutor } from '../src/executor.js';
import { createStore, type Store } from '../src/store.js';

// These checks are compiled by `tsc --noEmit` (the package's `test` script runs it before vitest):
// an `@ts-expect-error` line that no longer errors fails the build. They are never run.

type OrderEvents = {
  ItemAdded: { sku: string; qty: number };
  OrderShipped: { carrier: string };
};

interface OrderState {
  readonly items: number;
  readonly carrier: string | undefined;
}

/** A backend that satisfies the contract's types; the type checks never call it. */
function typeOnlyBackend(): Backend {
  const fail = (): never => {
    throw new Error('type-only backend');
  };
  return {
    name: 'type-only',
    capabilities: { archive: false },
    ready: async () => undefined,
    close: async () => undefined,
    append: async () => fail(),
    loadEvents: async () => fail(),
    loadSnapshot: async () => fail(),
    saveSnapshot: async () => fail(),
    listAggregates: async () => fail(),
    getAggregateStatus: async () => fail(),
    listAggregatesByStatus: async () => fail(),
    listAggregatesByLabel: async () => fail(),
    listLabelValues: async () => fail(),
    log: { id: 'type-only', partitions: 1 },
    readLog: async () => fail(),
    logHead: async () => fail(),
    projections: {
      load: async () => fail(),
      claim: async () => fail(),
      save: async () => fail(),
      release: async () => fail(),
      reset: async () => fail(),
    },
  };
}

function typeChecks(): void {
  const store: Store<OrderEvents> = createStore<OrderEvents>(typeOnlyBackend());

  const executor = createExecutor(store, {
    initialState: (): OrderState => ({ items: 0, carrier: undefined }),
    appliers: {
      ItemAdded: (state, data, event) => {
        expectTypeOf(state).toEqualTypeOf<OrderState>();
        expectTypeOf(data).toEqualTypeOf<{ sku: string; qty: number }>();
        expectTypeOf(event).toEqualTypeOf<Event<'ItemAdded', { sku: string; qty: number }>>();
        return { ...state, items: state.items + data.qty };
      },
      OrderShipped: (state, data) => {
        expectTypeOf(data).toEqualTypeOf<{ carrier: string }>();
        // @ts-expect-error OrderShipped carries no qty
        void data.qty;
        return { ...state, carrier: data.carrier };
      },
    },
  });

  createExecutor(store, {
    initialState: (): OrderState => ({ items: 0, carrier: undefined }),
    appliers: {
      // @ts-expect-error an applier keyed by a type the event map does not have
      Nope: (state: OrderState) => state,
    },
  });

  createExecutor(store, {
    initialState: (): OrderState => ({ items: 0, carrier: undefined }),
    appliers: {
      // @ts-expect-error an applier must take its own payload type
      ItemAdded: (state: OrderState, data: { sku: number }) => ({ ...state, items: data.sku }),
    },
  });

  void executor.exec(['order', '1'], (state, aggregator) => {
    expectTypeOf(state).toEqualTypeOf<OrderState>();
    expectTypeOf(aggregator).toEqualTypeOf<Aggregator<OrderState, OrderEvents>>();

    aggregator.raise('ItemAdded', { sku: 'a', qty: 1 });
    aggregator.raise('OrderShipped', { carrier: 'ups' });

    // @ts-expect-error wrong payload: qty must be a number
    aggregator.raise('ItemAdded', { sku: 'a', qty: 'one' });
    // @ts-expect-error missing field: qty
    aggregator.raise('ItemAdded', { sku: 'a' });
    // @ts-expect-error one event type's payload under another type
    aggregator.raise('OrderShipped', { sku: 'a', qty: 1 });
    // @ts-expect-error unknown event type
    aggregator.raise('Nope', {});

    expectTypeOf(aggregator.state).toEqualTypeOf<OrderState>();
    expectTypeOf(aggregator.raised).toEqualTypeOf<readonly EventOf<OrderEvents>[]>();
  });

  expectTypeOf<typeof executor.exec>().returns.toEqualTypeOf<Promise<OrderState>>();
  expectTypeOf<typeof executor.get>().returns.toEqualTypeOf<Promise<OrderState>>();

  const narrow = (event: EventOf<OrderEvents>) => {
    if (event.type === 'ItemAdded') {
      expectTypeOf(event.payload).toEqualTypeOf<{ sku: string; qty: number }>();
    } else {
      expectTypeOf(event.type).toEqualTypeOf<'OrderShipped'>();
      expectTypeOf(event.payload).toEqualTypeOf<{ carrier: string }>();
      // @ts-expect-error an OrderShipped payload has no sku
      void event.payload.sku;
    }
  };
  void narrow;

  void store.appendEvents(['order', '1'], 0, [
    { type: 'ItemAdded', data: { sku: 'a', qty: 2 } },
    { type: 'OrderShipped', data: { carrier: 'dhl' }, timestamp: new Date() },
  ]);
  // @ts-expect-error wrong payload for the store's event map
  void store.appendEvents(['order', '1'], 0, [{ type: 'ItemAdded', data: { sku: 'a', qty: 'one' } }]);
  // @ts-expect-error unknown event type for the store's event map
  void store.appendEvents(['order', '1'], 0, [{ type: 'Nope', data: {} }]);
  // @ts-expect-error payload of another type
  void store.appendEvents(['order', '1'], 0, [{ type: 'OrderShipped', data: { sku: 'a', qty: 1 } }]);

  expectTypeOf<typeof store.getEvents>().returns.toEqualTypeOf<Promise<EventOf<OrderEvents>[]>>();
  expectTypeOf<NewEvent<OrderEvents>>().toEqualTypeOf<
    | { readonly type: 'ItemAdded'; readonly data: { sku: string; qty: number }; readonly timestamp?: Date }
    | { readonly type: 'OrderShipped'; readonly data: { carrier: string }; readonly timestamp?: Date }
  >();

  // The hub: handlers are typed by the store's event map.
  void store.subscribe((event) => {
    expectTypeOf(event).toEqualTypeOf<EventOf<OrderEvents>>();
  });
  void store.subscribe(
    (event) => {
      expectTypeOf(event).toEqualTypeOf<Event<'OrderShipped', { carrier: string }>>();
    },
    { types: ['OrderShipped'] },
  );
  // @ts-expect-error a type the event map does not have
  void store.subscribe(() => undefined, { types: ['Nope'] });
  void store.subscribe(
    makeHandler('ItemAdded', (item: { sku: string; qty: number }, event) => {
      expectTypeOf(event).toEqualTypeOf<Event<'ItemAdded', { sku: string; qty: number }>>();
    }),
  );
  // @ts-expect-error a makeHandler payload type that is not the map's for that event type
  void store.subscribe(makeHandler('ItemAdded', (item: { sku: number }) => void item));
  // @ts-expect-error a makeHandler for an event type the map does not have
  void store.subscribe(makeHandler('Nope', (payload: { sku: string }) => void payload));
  void store.subscribe(
    makeDispatcher<OrderEvents>({
      ItemAdded: (item, event) => {
        expectTypeOf(item).toEqualTypeOf<{ sku: string; qty: number }>();
        expectTypeOf(event.sequence).toEqualTypeOf<number>();
      },
    }),
  );
  makeDispatcher<OrderEvents>({
    // @ts-expect-error a dispatcher entry must take its own payload type
    OrderShipped: (shipped: { sku: string }) => void shipped,
  });
  // @ts-expect-error a dispatcher built for another event map
  void store.subscribe(makeDispatcher<{ Other: { x: number } }>({ Other: () => undefined }));
}

describe('types', () => {
  it('compiles the type checks (enforced by tsc --noEmit, never run)', () => {
    expect(typeof typeChecks).toBe('function');
    expect(typeChecks.length).toBe(0);
  });
});
