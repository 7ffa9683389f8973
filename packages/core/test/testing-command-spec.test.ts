import { AssertionError } from 'node:assert';
import { describe, expect, it } from 'vitest';
import { ConfigError, InvalidArgumentError, InvalidPayloadError, type Appliers, type Command } from '../src/index.js';
import { commandSpec } from '../src/testing/index.js';

type CartEvents = {
  ItemAdded: { sku: string; quantity: number };
  CartCheckedOut: { at: string };
};
interface Cart {
  readonly items: number;
  readonly checkedOut: boolean;
}

class CartFullError extends Error {
  constructor(readonly items: number) {
    super(`the cart is full (${items} items)`);
    this.name = 'CartFullError';
  }
}

const appliers: Appliers<Cart, CartEvents> = {
  ItemAdded: (cart, { quantity }) => ({ ...cart, items: cart.items + quantity }),
  CartCheckedOut: (cart) => ({ ...cart, checkedOut: true }),
};
const given = commandSpec<Cart, CartEvents>({ initialState: () => ({ items: 0, checkedOut: false }), appliers });

const addItem =
  (sku: string, quantity: number): Command<Cart, CartEvents> =>
  (cart, aggregator) => {
    if (cart.items + quantity > 10) throw new CartFullError(cart.items);
    aggregator.raise('ItemAdded', { sku, quantity });
  };
const nine = { type: 'ItemAdded', data: { sku: 'KB-01', quantity: 9 } } as const;

/** The assertion a spec failed with: an AssertionError from node:assert, as every runner reports. */
async function failure(promise: Promise<unknown>): Promise<AssertionError> {
  const error = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(error).toBeInstanceOf(AssertionError);
  return error as AssertionError;
}

describe('commandSpec: then(expected events)', () => {
  it('passes when the command stores exactly the expected events, after the history', async () => {
    const outcome = await given([nine])
      .when(addItem('MS-02', 1))
      .then([{ type: 'ItemAdded', data: { sku: 'MS-02', quantity: 1 } }]);
    expect(outcome.state).toEqual({ items: 10, checkedOut: false });
    expect(outcome.events.map((event) => event.sequence)).toEqual([1]);
  });

  it('compares data as stored: through a JSON round trip', async () => {
    const at = new Date('2026-01-02T03:04:05.000Z');
    await given([])
      .when((_cart, aggregator) => aggregator.raise('CartCheckedOut', { at: at.toISOString() }))
      .then([{ type: 'CartCheckedOut', data: { at: JSON.parse(JSON.stringify(at)) as string } }]);
    await given([])
      .when(() => undefined)
      .then([]);
  });

  it('fails with a diff when the command stores other events', async () => {
    const error = await failure(
      given([])
        .when(addItem('MS-02', 1))
        .then([{ type: 'ItemAdded', data: { sku: 'MS-02', quantity: 2 } }]),
    );
    expect(error.message).toMatch(/^the command stored other events than expected\n/);
    expect(error.message).toContain('quantity: 1');
    expect(error.message).toContain('quantity: 2');
  });

  it('fails when the command stores more or fewer events than expected', async () => {
    const extra = await failure(given([]).when(addItem('MS-02', 1)).then([]));
    expect(extra.message).toMatch(/^the command stored other events than expected/);
    const missing = await failure(
      given([])
        .when(() => undefined)
        .then([nine]),
    );
    expect(missing.message).toMatch(/^the command stored other events than expected/);
  });

  it('fails naming the error when the command throws instead', async () => {
    const error = await failure(
      given([{ ...nine, data: { sku: 'KB-01', quantity: 10 } }])
        .when(addItem('MS-02', 1))
        .then([nine]),
    );
    expect(error.message).toBe(
      'expected the command to succeed with 1 event(s): ItemAdded {"sku":"KB-01","quantity":9}, but it threw CartFullError: the cart is full (10 items)',
    );
    expect(error.cause).toBeInstanceOf(CartFullError);
  });

  it('refuses being awaited without an expectation', async () => {
    const scenario = given([]).when(addItem('MS-02', 1));
    await expect((async () => await (scenario as unknown as PromiseLike<unknown>))()).rejects.toThrow(
      'given(…).when(…) was awaited without an expectation: await given(…).when(…).then(expected) (or .thenThrows(...)) instead',
    );
  });
});

describe('commandSpec: thenState', () => {
  it('passes on the expected state and fails with a diff on another', async () => {
    await given([nine]).when(addItem('MS-02', 1)).thenState({ items: 10, checkedOut: false });
    const error = await failure(given([nine]).when(addItem('MS-02', 1)).thenState({ items: 11, checkedOut: false }));
    expect(error.message).toMatch(/^the state after the command is not the expected state\n/);
    expect(error.message).toContain('items: 10');
  });
});

describe('commandSpec: thenThrows', () => {
  const full = given([{ type: 'ItemAdded', data: { sku: 'KB-01', quantity: 10 } }]);

  it('passes on an error of the class, and resolves with it', async () => {
    const error = await full.when(addItem('MS-02', 1)).thenThrows(CartFullError);
    expect(error.items).toBe(10);
    await full.when(addItem('MS-02', 1)).thenThrows(Error);
    await full.when(addItem('MS-02', 1)).thenThrows();
  });

  it('applies a check after the class, and a lone check', async () => {
    await full.when(addItem('MS-02', 1)).thenThrows(CartFullError, (error) => error.items === 10);
    await full.when(addItem('MS-02', 1)).thenThrows((error) => error instanceof CartFullError);
    const failed = await failure(full.when(addItem('MS-02', 1)).thenThrows(CartFullError, (error) => error.items === 3));
    expect(failed.message).toBe(
      'expected the command to throw CartFullError, but it threw CartFullError: the cart is full (10 items), which failed the check',
    );
    const lone = await failure(full.when(addItem('MS-02', 1)).thenThrows(() => false));
    expect(lone.message).toBe(
      'expected the command to throw an error passing the check, but it threw CartFullError: the cart is full (10 items), which failed the check',
    );
  });

  it('fails when the command succeeds, listing what it stored', async () => {
    const error = await failure(given([]).when(addItem('MS-02', 1)).thenThrows(CartFullError));
    expect(error.message).toBe(
      'expected the command to throw CartFullError, but it succeeded and stored ItemAdded {"sku":"MS-02","quantity":1}',
    );
    const nothing = await failure(
      given([])
        .when(() => undefined)
        .thenThrows(),
    );
    expect(nothing.message).toBe('expected the command to throw an error, but it succeeded and stored no events');
  });

  it('fails when the command throws an error of another class, keeping it as the cause', async () => {
    const thrown = new RangeError('quantity must be positive');
    const error = await failure(
      given([])
        .when(() => {
          throw thrown;
        })
        .thenThrows(CartFullError),
    );
    expect(error.message).toBe('expected the command to throw CartFullError, but it threw RangeError: quantity must be positive');
    expect(error.cause).toBe(thrown);
  });

  it("sees the store's refusal of an event the command raised", async () => {
    const error = await given([])
      .when((_cart, aggregator) => aggregator.raise('ItemAdded', { sku: 'x', quantity: Number.NaN }))
      .thenThrows(InvalidPayloadError);
    expect(error.message).toContain('NaN');
  });

  it('does not count a broken setup as the command throwing', async () => {
    const broken = commandSpec<Cart, CartEvents>({ initialState: 'empty' as unknown as () => Cart, appliers });
    await expect(broken([]).when(addItem('a', 1)).thenThrows()).rejects.toThrow(ConfigError);
    await expect(
      given([{ type: 'ItemAdded', data: { sku: 'a', quantity: Number.POSITIVE_INFINITY } }])
        .when(addItem('a', 1))
        .thenThrows(),
    ).rejects.toThrow(InvalidPayloadError);
  });
});

describe('commandSpec: options and bad input', () => {
  it("runs on the spec's aggregate and store config", async () => {
    const spec = commandSpec<Cart, CartEvents>({
      initialState: () => ({ items: 0, checkedOut: false }),
      appliers,
      id: ['cart', '7'],
      config: { indexer: () => [{ status: 'open' }] },
    });
    const outcome = await spec([nine])
      .when((_cart, aggregator) => {
        expect(aggregator.id).toEqual(['cart', '7']);
        aggregator.raise('ItemAdded', { sku: 'b', quantity: 1 });
      })
      .then([{ type: 'ItemAdded', data: { sku: 'b', quantity: 1 } }]);
    expect(outcome.events[0]?.aggregateId).toEqual(['cart', '7']);
  });

  it('refuses bad input with typed errors', async () => {
    expect(() => commandSpec(null as never)).toThrow(InvalidArgumentError);
    expect(() => given('history' as never)).toThrow('invalid given history: must be an array of events');
    expect(() => given([]).when(42 as never)).toThrow('invalid when command: must be a function');
    await expect(
      given([])
        .when(addItem('a', 1))
        .thenThrows(42 as never),
    ).rejects.toThrow('invalid thenThrows expectation: must be an error class or a check function');
    await expect(
      given([])
        .when(addItem('a', 1))
        .then({} as never),
    ).rejects.toThrow('invalid expected events: must be an array of events');
  });

  it('is typed by the event map (compile-time checks)', () => {
    // Never run: each line only has to fail to compile.
    const unchecked = () => {
      // @ts-expect-error an event type the map does not have
      given([{ type: 'ItemRemoved', data: { sku: 'a' } }]);
      const scenario = given([]).when(addItem('a', 1));
      // @ts-expect-error a payload of the wrong type
      void scenario.then([{ type: 'ItemAdded', data: { sku: 'a', quantity: '1' } }]);
      // @ts-expect-error a state of the wrong shape
      void given([]).when(addItem('a', 1)).thenState({ items: 1 });
    };
    expect(typeof unchecked).toBe('function');
  });
});
