// Run by node-test.test.ts under `node --test`: the testing helpers under node:test, with no
// vitest anywhere. One scenario passes; one holds a wrong expectation and must fail readably.
import { it } from 'node:test';
import { commandSpec } from '@timebox/core/testing';

const given = commandSpec({
  initialState: () => ({ items: 0 }),
  appliers: { ItemAdded: (cart, { quantity }) => ({ items: cart.items + quantity }) },
});
const addItem = (sku, quantity) => (_cart, aggregator) => aggregator.raise('ItemAdded', { sku, quantity });

it('passes on the right events', () =>
  given([])
    .when(addItem('KB-01', 2))
    .then([{ type: 'ItemAdded', data: { sku: 'KB-01', quantity: 2 } }]));

it('fails on the wrong events', () =>
  given([])
    .when(addItem('KB-01', 2))
    .then([{ type: 'ItemAdded', data: { sku: 'KB-01', quantity: 3 } }]));
