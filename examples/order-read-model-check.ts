/**
 * Checks an order read model against the store: its orders and statuses against the store's own
 * status index (which the store writes in the same atomic step as the events), and, given what the
 * commands did, its totals and event count against the aggregates' final states.
 */
import type { Store } from '@timebox/core';
import { ORDER_STATUSES, orderTotals, type OrderEvents, type OrderStatus } from './order-domain.js';
import type { OrderReadModel } from './order-read-model.js';
import type { TrafficSummary } from './order-traffic.js';

/** Problems listed in full; beyond this many, the rest are counted. */
const SHOWN = 20;

/**
 * Compares `model` with the store; returns the disagreements (none when it matches). `run` limits
 * the comparison to the orders `['order', run, …]`; `summary` (the traffic's report) adds the
 * checks that nothing was lost or counted twice: per-status item counts and values, and the number
 * of distinct events applied.
 */
export async function checkReadModel(
  model: OrderReadModel,
  store: Store<OrderEvents>,
  options: { readonly run?: string; readonly summary?: TrafficSummary } = {},
): Promise<string[]> {
  const { run, summary } = options;
  const problems: string[] = [];
  const ours = (key: string) => run === undefined || key.startsWith(`order/${run}/`);

  // Every order the status index holds, with its status, and the model's view of the same orders.
  const indexed = new Map<string, OrderStatus>();
  for (const status of ORDER_STATUSES) {
    for (const entry of await store.listAggregatesByStatus(status)) {
      const key = entry.id.join('/');
      if (ours(key)) indexed.set(key, status);
    }
  }
  const held = new Map([...model.statuses()].filter(([key]) => ours(key)));
  for (const [key, status] of indexed) {
    const inModel = held.get(key);
    if (inModel !== status) problems.push(`${key}: the read model says ${inModel ?? 'nothing'}, the status index ${status}`);
  }
  for (const [key, status] of held) {
    if (!indexed.has(key)) problems.push(`${key}: the read model says ${status}, the status index has no such order`);
  }
  const rows = model.byStatus();
  for (const status of ORDER_STATUSES) {
    const inIndex = [...indexed.values()].filter((s) => s === status).length;
    const inModel = [...held.values()].filter((s) => s === status).length;
    if (inIndex !== inModel) problems.push(`${status}: the read model counts ${inModel} orders, the status index ${inIndex}`);
  }

  if (summary !== undefined) {
    const states = Object.values(summary.orders);
    for (const row of rows) {
      const inStatus = states.filter((state) => state.status === row.status);
      const items = inStatus.reduce((sum, state) => sum + orderTotals(state).itemCount, 0);
      const cents = inStatus.reduce((sum, state) => sum + orderTotals(state).totalCents, 0);
      if (row.orders !== inStatus.length)
        problems.push(`${row.status}: the read model counts ${row.orders} orders, the aggregates ${inStatus.length}`);
      if (row.items !== items) problems.push(`${row.status}: the read model counts ${row.items} items, the aggregates ${items}`);
      if (row.totalCents !== cents) problems.push(`${row.status}: the read model totals ${row.totalCents} cents, the aggregates ${cents}`);
    }
    if (model.eventsApplied !== summary.events) {
      problems.push(`the read model applied ${model.eventsApplied} distinct events, the commands appended ${summary.events}`);
    }
  }
  return problems.length <= SHOWN ? problems : [...problems.slice(0, SHOWN), `… and ${problems.length - SHOWN} more`];
}
