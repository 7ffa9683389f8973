import { makeDispatcher, type Appliers, type Command } from '../../src/index.js';
import { commandSpec, projectionSpec } from '../../src/testing/index.js';
import { describe, it } from 'vitest'; // or: import { describe, it } from 'node:test';

type CartEvents = { ItemAdded: { sku: string; quantity: number } };
type Cart = { items: number };

class CartFullError extends Error {}

const appliers: Appliers<Cart, CartEvents> = {
  ItemAdded: (cart, { quantity }) => ({ items: cart.items + quantity }),
};
const addItem =
  (sku: string, quantity: number): Command<Cart, CartEvents> =>
  (cart, aggregator) => {
    if (cart.items + quantity > 10) throw new CartFullError('the cart is full');
    aggregator.raise('ItemAdded', { sku, quantity });
  };

describe('adding an item', () => {
  const given = commandSpec<Cart, CartEvents>({ initialState: () => ({ items: 0 }), appliers });

  it('adds it while there is room', () =>
    given([{ type: 'ItemAdded', data: { sku: 'KB-01', quantity: 9 } }])
      .when(addItem('MS-02', 1))
      .then([{ type: 'ItemAdded', data: { sku: 'MS-02', quantity: 1 } }]));

  it('refuses it when the cart is full', () =>
    given([{ type: 'ItemAdded', data: { sku: 'KB-01', quantity: 10 } }])
      .when(addItem('MS-02', 1))
      .thenThrows(CartFullError));
});

describe('the items-per-cart read model', () => {
  const given = projectionSpec<CartEvents, Map<string, number>>({
    readModel: () => new Map(),
    handler: (totals) =>
      makeDispatcher<CartEvents>({
        ItemAdded: ({ quantity }, event) => {
          const cart = event.aggregateId.join('/');
          totals.set(cart, (totals.get(cart) ?? 0) + quantity);
        },
      }),
  });

  it('counts the items of each cart', () =>
    given([
      { id: ['cart', '1'], type: 'ItemAdded', data: { sku: 'KB-01', quantity: 2 } },
      { id: ['cart', '2'], type: 'ItemAdded', data: { sku: 'MS-02', quantity: 1 } },
      { id: ['cart', '1'], type: 'ItemAdded', data: { sku: 'PD-03', quantity: 3 } },
    ]).then(
      new Map([
        ['cart/1', 5],
        ['cart/2', 1],
      ]),
    ));
});
