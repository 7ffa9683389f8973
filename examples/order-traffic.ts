/**
 * Order traffic for the projection example: `count` orders, each taken through part of its
 * lifecycle (order i stops at status i mod 4), several at a time.
 */
import type { Store } from '@timebox/core';
import {
  addItem,
  confirmOrder,
  createOrder,
  createOrderExecutor,
  deliverOrder,
  ORDER_STATUSES,
  removeItem,
  setBillingAddress,
  setShippingAddress,
  shipOrder,
  type OrderEvents,
  type OrderState,
} from './order-domain.js';

const CATALOG = [
  { sku: 'KB-01', name: 'Mechanical keyboard', unitPriceCents: 8900 },
  { sku: 'CB-02', name: 'USB-C cable', unitPriceCents: 950 },
  { sku: 'DM-03', name: 'Desk mat', unitPriceCents: 1900 },
  { sku: 'BK-09', name: 'Compiler handbook', unitPriceCents: 4200 },
];
const ADDRESS = { name: 'Ada Lovelace', street: '12 St James Square', city: 'London', postalCode: 'SW1Y 4JH', country: 'GB' };

/** What the traffic did, for checking a read model against. */
export interface TrafficSummary {
  /** Events appended in all. */
  readonly events: number;
  /** Final state of each order, by `id.join('/')`. */
  readonly orders: Record<string, OrderState>;
}

/** Runs the traffic on `store` under `['order', run, i]` IDs, `concurrency` orders at a time. */
export async function runOrderTraffic(store: Store<OrderEvents>, run: string, count: number, concurrency = 8): Promise<TrafficSummary> {
  const executor = createOrderExecutor(store);
  const orders: Record<string, OrderState> = {};
  let events = 0;
  const exec = (id: string[], command: Parameters<typeof executor.exec>[1]) => executor.exec(id, command);
  const runOne = async (i: number) => {
    const id = ['order', run, String(i)];
    const stopAt = ORDER_STATUSES[i % ORDER_STATUSES.length];
    let state = await exec(id, createOrder(`customer-${i}@example.com`));
    for (let line = 0; line < 1 + (i % 3); line++) {
      const product = CATALOG[(i + line) % CATALOG.length] as (typeof CATALOG)[number];
      state = await exec(id, addItem({ ...product, quantity: 1 + ((i + line) % 4) }));
    }
    if (i % 5 === 0 && state.lines.length > 1) state = await exec(id, removeItem((state.lines[0] as { sku: string }).sku));
    state = await exec(id, setShippingAddress(ADDRESS));
    state = await exec(id, setBillingAddress(ADDRESS));
    if (stopAt !== 'open') state = await exec(id, confirmOrder());
    if (stopAt === 'shipped' || stopAt === 'delivered') state = await exec(id, shipOrder('Parcelforce', `PF-${run}-${i}`));
    if (stopAt === 'delivered') state = await exec(id, deliverOrder('front desk'));
    orders[id.join('/')] = state;
    const stored = (await store.getEvents(id)).length;
    events += stored;
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) await runOne(next++);
    }),
  );
  return { events, orders };
}
