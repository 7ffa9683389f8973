import { AssertionError } from 'node:assert';
import { describe, expect, it } from 'vitest';
import { InvalidArgumentError, makeDispatcher, type Event } from '../src/index.js';
import { projectionSpec } from '../src/testing/index.js';

type CartEvents = {
  ItemAdded: { sku: string; quantity: number };
  CartCheckedOut: { at: string };
};

class UnknownSkuError extends Error {
  constructor(readonly sku: string) {
    super(`unknown sku ${sku}`);
    this.name = 'UnknownSkuError';
  }
}

/** Items per cart, as a read model keyed `cart/1`. */
const given = projectionSpec<CartEvents, Map<string, number>>({
  readModel: () => new Map(),
  handler: (totals) =>
    makeDispatcher<CartEvents>({
      ItemAdded: ({ sku, quantity }, event) => {
        if (sku === '') throw new UnknownSkuError(sku);
        const key = event.aggregateId.join('/');
        totals.set(key, (totals.get(key) ?? 0) + quantity);
      },
    }),
});

const history = [
  { id: ['cart', '1'], type: 'ItemAdded', data: { sku: 'KB-01', quantity: 2 } },
  { id: ['cart', '2'], type: 'ItemAdded', data: { sku: 'MS-02', quantity: 1 } },
  { id: ['cart', '1'], type: 'CartCheckedOut', data: { at: '2026-01-01' } },
  { id: ['cart', '1'], type: 'ItemAdded', data: { sku: 'PD-03', quantity: 3 } },
] as const;

async function failure(promise: Promise<unknown>): Promise<AssertionError> {
  const error = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(error).toBeInstanceOf(AssertionError);
  return error as AssertionError;
}

describe('projectionSpec: then', () => {
  it('passes when the read model equals the expected one, and resolves with it', async () => {
    const totals = await given(history).then(
      new Map([
        ['cart/1', 5],
        ['cart/2', 1],
      ]),
    );
    expect(totals.size).toBe(2);
    await given([]).then(new Map());
  });

  it('fails with a diff when the read model differs', async () => {
    const error = await failure(given(history).then(new Map([['cart/1', 5]])));
    expect(error.message).toMatch(/^the read model is not the expected one\n/);
    expect(error.message).toContain("'cart/2' => 1");
  });

  it('takes a check instead: false fails, a throw propagates, anything else passes', async () => {
    await given(history).then((totals) => totals.get('cart/1') === 5);
    await given(history).then((totals) => void expect(totals.get('cart/2')).toBe(1));
    const error = await failure(given(history).then((totals) => totals.has('cart/3')));
    expect(error.message).toBe('the read model failed the check');
    await expect(
      given(history).then(() => {
        throw new RangeError('from the check');
      }),
    ).rejects.toThrow('from the check');
  });

  it("fails naming the handler's error when it throws", async () => {
    const error = await failure(given([{ type: 'ItemAdded', data: { sku: '', quantity: 1 } }]).then(new Map()));
    expect(error.message).toBe('expected the projection to handle every event, but its handler threw UnknownSkuError: unknown sku ');
    expect(error.cause).toBeInstanceOf(UnknownSkuError);
  });

  it('hands the events in log order, in batches, with the options the program uses', async () => {
    const spec = projectionSpec<CartEvents, string[]>({
      readModel: (): string[] => [],
      handler: (seen) => ({
        handleBatch: (events: readonly Event[], context) => {
          seen.push(
            `${context.projection}: ${events.map((event) => `${event.aggregateId.join('/')}#${event.sequence} ${event.type}`).join(', ')}`,
          );
        },
      }),
      options: { types: ['ItemAdded'], batchSize: 2 },
      name: 'cart-items',
      id: ['cart', '9'],
    });
    await spec([...history, { type: 'ItemAdded', data: { sku: 'a', quantity: 1 } }]).then([
      'cart-items: cart/1#0 ItemAdded, cart/2#0 ItemAdded',
      'cart-items: cart/1#2 ItemAdded, cart/9#0 ItemAdded',
    ]);
  });

  it('refuses being awaited without an expectation', async () => {
    const scenario = given(history) as unknown as PromiseLike<unknown>;
    await expect((async () => await scenario)()).rejects.toThrow('given(…) was awaited without an expectation');
  });
});

describe('projectionSpec: thenThrows', () => {
  const bad = given([...history, { id: ['cart', '3'], type: 'ItemAdded', data: { sku: '', quantity: 1 } }]);

  it("passes on the handler's own error, and resolves with it", async () => {
    const error = await bad.thenThrows(UnknownSkuError);
    expect(error.sku).toBe('');
    await bad.thenThrows((thrown) => thrown instanceof UnknownSkuError);
  });

  it('fails when the handler handles every event, or throws something else', async () => {
    const none = await failure(given(history).thenThrows(UnknownSkuError));
    expect(none.message).toBe('expected the projection handler to throw UnknownSkuError, but it handled every event');
    const other = await failure(bad.thenThrows(RangeError));
    expect(other.message).toBe('expected the projection handler to throw RangeError, but it threw UnknownSkuError: unknown sku ');
  });

  it('refuses bad options with typed errors', () => {
    expect(() => projectionSpec({ readModel: 'map', handler: () => () => undefined } as never)).toThrow(InvalidArgumentError);
    expect(() => projectionSpec({ readModel: () => 0, handler: undefined } as never)).toThrow('invalid handler: must be a function');
    expect(() => given({} as never)).toThrow('invalid given history: must be an array of events');
  });
});
