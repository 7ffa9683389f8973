/**
 * A read model of orders kept up to date from the event hub: how many orders are in each status
 * and what they are worth. It never loads an aggregate; it folds the events it is handed, so any
 * number of processes can keep one, each from the same store.
 */
import { makeDispatcher, type EventHandler } from '@timebox/core';
import { ORDER_STATUSES, type OrderEvents, type OrderStatus } from './order-domain.js';

interface OrderSummary {
  status: OrderStatus;
  /** sku → quantity × unit price, as the order's lines stand. */
  readonly lines: Map<string, { quantity: number; unitPriceCents: number }>;
}

/** One row of the report: the orders in a status, their item count and their total value. */
export interface StatusRow {
  readonly status: OrderStatus;
  readonly orders: number;
  readonly items: number;
  readonly totalCents: number;
}

export class OrderReadModel {
  readonly #orders = new Map<string, OrderSummary>();
  /** Events folded so far (every type, including those the model does not need). */
  eventsSeen = 0;

  /** The handler to pass to `store.subscribe`. */
  readonly handler: EventHandler<Partial<OrderEvents>> = (event) => {
    this.eventsSeen++;
    return this.#dispatch(event);
  };

  readonly #dispatch = makeDispatcher<OrderEvents>({
    OrderCreated: (_, event) => void this.#orders.set(event.aggregateId.join('/'), { status: 'open', lines: new Map() }),
    ItemAdded: ({ sku, quantity, unitPriceCents }, event) => {
      const lines = this.#order(event.aggregateId).lines;
      const existing = lines.get(sku);
      lines.set(sku, { quantity: (existing?.quantity ?? 0) + quantity, unitPriceCents: existing?.unitPriceCents ?? unitPriceCents });
    },
    ItemRemoved: ({ sku }, event) => void this.#order(event.aggregateId).lines.delete(sku),
    OrderConfirmed: (_, event) => void (this.#order(event.aggregateId).status = 'confirmed'),
    OrderShipped: (_, event) => void (this.#order(event.aggregateId).status = 'shipped'),
    OrderDelivered: (_, event) => void (this.#order(event.aggregateId).status = 'delivered'),
  });

  /** Orders by status with totals, in lifecycle order. */
  byStatus(): StatusRow[] {
    const rows = new Map(ORDER_STATUSES.map((status) => [status, { status, orders: 0, items: 0, totalCents: 0 }]));
    for (const order of this.#orders.values()) {
      const row = rows.get(order.status) as { status: OrderStatus; orders: number; items: number; totalCents: number };
      row.orders++;
      for (const line of order.lines.values()) {
        row.items += line.quantity;
        row.totalCents += line.quantity * line.unitPriceCents;
      }
    }
    return [...rows.values()];
  }

  /** The status the model holds for one order, if it has seen it created. */
  statusOf(id: readonly string[]): OrderStatus | undefined {
    return this.#orders.get(id.join('/'))?.status;
  }

  #order(id: readonly string[]): OrderSummary {
    const order = this.#orders.get(id.join('/'));
    // Every order starts with OrderCreated, and the hub delivers each order's events in order.
    if (order === undefined) throw new Error(`read model: ${id.join('/')} has events before OrderCreated`);
    return order;
  }
}
