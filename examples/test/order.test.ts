import { createMemoryStore } from '@timebox/memory';
import { describe, expect, it } from 'vitest';
import {
  addItem,
  createOrder,
  createOrderExecutor,
  orderStoreConfig,
  orderTotals,
  OrderRuleError,
  runOrderDemo,
  shipOrder,
} from '../order-domain.js';

/** The single element of `items`; fails the test otherwise. */
function onlyOne<T>(items: readonly T[]): T {
  expect(items).toHaveLength(1);
  return items[0] as T;
}

describe('the order demo', () => {
  it('ends with the main order delivered, with the expected items and totals', async () => {
    const store = createMemoryStore(orderStoreConfig);
    const lines: string[] = [];
    const final = await runOrderDemo(store, (line) => lines.push(line));

    expect(final.status).toBe('delivered');
    expect(final.customer).toBe('ada@example.com');
    // The cable was added and then removed; the keyboard and the desk mats remain.
    expect(final.lines.map(({ sku, quantity }) => ({ sku, quantity }))).toEqual([
      { sku: 'KB-01', quantity: 1 },
      { sku: 'DM-03', quantity: 3 },
    ]);
    expect(orderTotals(final)).toEqual({ itemCount: 4, totalCents: 1 * 8900 + 3 * 1900 });
    expect(final.shipment?.trackingNumber).toBe('PF-7731');
    expect(final.delivery?.receivedBy).toBe('A. Lovelace');
    expect(lines.some((line) => line.includes('refused: cannot ship'))).toBe(true);
    await store.close();
  });

  it('leaves the index listing the main order as delivered and the second as confirmed', async () => {
    const store = createMemoryStore(orderStoreConfig);
    await runOrderDemo(store, () => {});

    const main = onlyOne(await store.listAggregatesByLabel('customer', 'ada@example.com'));
    const second = onlyOne(await store.listAggregatesByLabel('customer', 'grace@example.com'));
    expect((await store.listAggregatesByStatus('delivered')).map((entry) => entry.id)).toEqual([main]);
    expect((await store.listAggregatesByStatus('confirmed')).map((entry) => entry.id)).toEqual([second]);
    expect(await store.listAggregatesByStatus('open')).toEqual([]);

    // The demo snapshotted the main order after its ten events.
    const snapshot = await store.getSnapshot(main);
    expect(snapshot.nextSequence).toBe(10);
    expect(snapshot.events).toEqual([]);
    await store.close();
  });
});

describe('order rules', () => {
  it('refuses to ship an unconfirmed order and stores nothing', async () => {
    const store = createMemoryStore(orderStoreConfig);
    const orders = createOrderExecutor(store);
    const id = ['order', 'unconfirmed'];
    await orders.exec(id, createOrder('ada@example.com'));
    await orders.exec(id, addItem({ sku: 'KB-01', name: 'Mechanical keyboard', quantity: 1, unitPriceCents: 8900 }));
    const before = await store.getEvents(id);

    await expect(orders.exec(id, shipOrder('Parcelforce', 'PF-1'))).rejects.toThrow(OrderRuleError);

    expect(await store.getEvents(id)).toEqual(before);
    expect(before.map((event) => event.type)).toEqual(['OrderCreated', 'ItemAdded']);
    expect(await store.getAggregateStatus(id)).toBe('open');
    expect(await store.listAggregatesByStatus('shipped')).toEqual([]);
    expect((await orders.get(id)).status).toBe('open');
    await store.close();
  });
});
