/**
 * The order domain: its events, its state, how events change the state (appliers), what a
 * caller may ask of an order (commands, which check the business rules), and how orders are
 * indexed for queries. `runOrderDemo` walks one order through its whole life.
 */
import {
  createExecutor,
  type AggregateId,
  type Appliers,
  type Command,
  type Config,
  type EventOf,
  type Executor,
  type Index,
  type Store,
} from '@timebox/core';
import { describeOrder, formatCents, formatId, formatPlace } from './order-format.js';

// ---------------------------------------------------------------------------------------------
// Events: the event map names each event type and types its payload, so `raise` rejects a
// wrong payload at compile time and each applier receives its own payload type.

export interface Address {
  readonly name: string;
  readonly street: string;
  readonly city: string;
  readonly postalCode: string;
  readonly country: string;
}

export type OrderEvents = {
  OrderCreated: { customer: string };
  // Money is held in whole cents: binary floating point cannot add up prices exactly.
  ItemAdded: { sku: string; name: string; quantity: number; unitPriceCents: number };
  ItemRemoved: { sku: string };
  ShippingAddressSet: { address: Address };
  BillingAddressSet: { address: Address };
  OrderConfirmed: { totalCents: number };
  OrderShipped: { carrier: string; trackingNumber: string };
  OrderDelivered: { receivedBy: string };
};

// ---------------------------------------------------------------------------------------------
// State: what the appliers fold the events into. It is plain JSON data (null, not undefined,
// for "not yet") so that it survives the JSON round trip of a snapshot.

/** The statuses the indexer records, in lifecycle order. */
export const ORDER_STATUSES = ['open', 'confirmed', 'shipped', 'delivered'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export interface OrderLine {
  readonly sku: string;
  readonly name: string;
  readonly quantity: number;
  readonly unitPriceCents: number;
}

export interface OrderState {
  /** `"none"` until the order is created. */
  readonly status: OrderStatus | 'none';
  readonly customer: string;
  readonly lines: readonly OrderLine[];
  readonly shippingAddress: Address | null;
  readonly billingAddress: Address | null;
  readonly shipment: { readonly carrier: string; readonly trackingNumber: string; readonly shippedAt: string } | null;
  readonly delivery: { readonly receivedBy: string; readonly deliveredAt: string } | null;
}

export function emptyOrder(): OrderState {
  return { status: 'none', customer: '', lines: [], shippingAddress: null, billingAddress: null, shipment: null, delivery: null };
}

/** Item count and total, derived from the lines rather than stored, so they can never drift. */
export function orderTotals(state: OrderState): { itemCount: number; totalCents: number } {
  let itemCount = 0;
  let totalCents = 0;
  for (const line of state.lines) {
    itemCount += line.quantity;
    totalCents += line.quantity * line.unitPriceCents;
  }
  return { itemCount, totalCents };
}

// ---------------------------------------------------------------------------------------------
// Appliers: pure functions (state, payload, event) => new state. They never validate: an event
// is a fact that already happened, and replaying history must always succeed.

export const orderAppliers: Appliers<OrderState, OrderEvents> = {
  OrderCreated: (state, { customer }) => ({ ...state, status: 'open', customer }),
  ItemAdded: (state, item) => {
    const existing = state.lines.find((line) => line.sku === item.sku);
    const lines =
      existing === undefined
        ? [...state.lines, item]
        : state.lines.map((line) => (line.sku === item.sku ? { ...line, quantity: line.quantity + item.quantity } : line));
    return { ...state, lines };
  },
  ItemRemoved: (state, { sku }) => ({ ...state, lines: state.lines.filter((line) => line.sku !== sku) }),
  ShippingAddressSet: (state, { address }) => ({ ...state, shippingAddress: address }),
  BillingAddressSet: (state, { address }) => ({ ...state, billingAddress: address }),
  OrderConfirmed: (state) => ({ ...state, status: 'confirmed' }),
  // The event's own timestamp, not the clock, keeps the applier pure: a replay gives the same state.
  OrderShipped: (state, { carrier, trackingNumber }, event) => ({
    ...state,
    status: 'shipped',
    shipment: { carrier, trackingNumber, shippedAt: event.timestamp.toISOString() },
  }),
  OrderDelivered: (state, { receivedBy }, event) => ({
    ...state,
    status: 'delivered',
    delivery: { receivedBy, deliveredAt: event.timestamp.toISOString() },
  }),
};

// ---------------------------------------------------------------------------------------------
// Commands: each checks the rules against the current state and raises events, or throws
// to refuse, in which case nothing is stored.

/** A business rule refused a command. */
export class OrderRuleError extends Error {
  override readonly name = 'OrderRuleError';
}

export type OrderCommand = Command<OrderState, OrderEvents>;

function requireStatus(state: OrderState, allowed: readonly OrderState['status'][], action: string): void {
  if (!allowed.includes(state.status)) {
    throw new OrderRuleError(`cannot ${action}: the order is ${state.status}, expected ${allowed.join(' or ')}`);
  }
}

function requireText(value: string, what: string): void {
  if (value.trim() === '') throw new OrderRuleError(`${what} must not be empty`);
}

export function createOrder(customer: string): OrderCommand {
  return (state, order) => {
    requireStatus(state, ['none'], 'create the order');
    requireText(customer, 'the customer');
    order.raise('OrderCreated', { customer });
  };
}

export function addItem(item: OrderLine): OrderCommand {
  return (state, order) => {
    requireStatus(state, ['open'], `add ${item.sku}`);
    requireText(item.sku, 'the SKU');
    if (!Number.isSafeInteger(item.quantity) || item.quantity <= 0) {
      throw new OrderRuleError(`the quantity of ${item.sku} must be a whole number above 0`);
    }
    if (!Number.isSafeInteger(item.unitPriceCents) || item.unitPriceCents < 0) {
      throw new OrderRuleError(`the price of ${item.sku} must be a whole number of cents, 0 or more`);
    }
    const existing = state.lines.find((line) => line.sku === item.sku);
    if (existing !== undefined && existing.unitPriceCents !== item.unitPriceCents) {
      throw new OrderRuleError(`${item.sku} is already in the order at ${formatCents(existing.unitPriceCents)}`);
    }
    order.raise('ItemAdded', { ...item });
  };
}

export function removeItem(sku: string): OrderCommand {
  return (state, order) => {
    requireStatus(state, ['open'], `remove ${sku}`);
    if (!state.lines.some((line) => line.sku === sku)) throw new OrderRuleError(`${sku} is not in the order`);
    order.raise('ItemRemoved', { sku });
  };
}

// Addresses may still change after confirmation, up to the moment the parcel leaves.
export function setShippingAddress(address: Address): OrderCommand {
  return (state, order) => {
    requireStatus(state, ['open', 'confirmed'], 'set the shipping address');
    order.raise('ShippingAddressSet', { address });
  };
}

export function setBillingAddress(address: Address): OrderCommand {
  return (state, order) => {
    requireStatus(state, ['open', 'confirmed'], 'set the billing address');
    order.raise('BillingAddressSet', { address });
  };
}

export function confirmOrder(): OrderCommand {
  return (state, order) => {
    requireStatus(state, ['open'], 'confirm');
    if (state.lines.length === 0) throw new OrderRuleError('cannot confirm an order without items');
    if (state.shippingAddress === null) throw new OrderRuleError('cannot confirm without a shipping address');
    if (state.billingAddress === null) throw new OrderRuleError('cannot confirm without a billing address');
    order.raise('OrderConfirmed', { totalCents: orderTotals(state).totalCents });
  };
}

export function shipOrder(carrier: string, trackingNumber: string): OrderCommand {
  return (state, order) => {
    requireStatus(state, ['confirmed'], 'ship');
    requireText(trackingNumber, 'the tracking number');
    order.raise('OrderShipped', { carrier, trackingNumber });
  };
}

export function deliverOrder(receivedBy: string): OrderCommand {
  return (state, order) => {
    requireStatus(state, ['shipped'], 'deliver');
    order.raise('OrderDelivered', { receivedBy });
  };
}

// ---------------------------------------------------------------------------------------------
// Indexing: runs at append time, in the same atomic step, so queries never disagree with the log.

function indexOf(event: EventOf<OrderEvents>): Index | undefined {
  switch (event.type) {
    case 'OrderCreated':
      return { status: 'open', labels: { customer: event.payload.customer } };
    case 'OrderConfirmed':
      return { status: 'confirmed' };
    case 'OrderShipped':
      return { status: 'shipped' };
    case 'OrderDelivered':
      return { status: 'delivered' };
    default:
      return undefined; // items and addresses do not change what is indexed
  }
}

/** The store config for orders: defaults, plus the indexer. */
export const orderStoreConfig: Config<OrderEvents> = {
  indexer: (events) => events.map(indexOf),
};

export function createOrderExecutor(store: Store<OrderEvents>): Executor<OrderState, OrderEvents> {
  return createExecutor(store, { initialState: emptyOrder, appliers: orderAppliers });
}

// ---------------------------------------------------------------------------------------------
// The demo.

const ADA: Address = { name: 'Ada Lovelace', street: '12 St James Square', city: 'London', postalCode: 'SW1Y 4JH', country: 'GB' };
const ADA_ACCOUNTS: Address = { ...ADA, name: 'Lovelace Analytical Ltd', street: '1 Accounts Row' };
const GRACE: Address = { name: 'Grace Hopper', street: '90 Navy Yard', city: 'Arlington', postalCode: '22202', country: 'US' };

/**
 * Walks an order from creation to delivery on `store`, with a second order beside it, and
 * shows the index queries and a snapshot. Logs each step through `log`; returns the final
 * state of the main order.
 */
export async function runOrderDemo(store: Store<OrderEvents>, log: (line: string) => void): Promise<OrderState> {
  const orders = createOrderExecutor(store);
  // A shared backend (redis, postgres) keeps earlier runs' orders, so each run numbers its own.
  const run = Date.now().toString(36);
  const mainId: AggregateId = ['order', `${run}-1`];
  const secondId: AggregateId = ['order', `${run}-2`];

  /** Runs one command and logs what it did; `what` may describe the resulting state. */
  const step = async (id: AggregateId, what: string | ((state: OrderState) => string), command: OrderCommand): Promise<OrderState> => {
    const state = await orders.exec(id, command);
    const text = typeof what === 'string' ? what : what(state);
    log(`  ✓ ${text.padEnd(54)} status=${state.status}`);
    return state;
  };

  const added = (item: OrderLine) => `added ${item.quantity} × ${item.name} @ ${formatCents(item.unitPriceCents)}`;

  log(`Order ${formatId(mainId)}`);
  await step(mainId, 'created for ada@example.com', createOrder('ada@example.com'));
  const keyboard = { sku: 'KB-01', name: 'Mechanical keyboard', quantity: 1, unitPriceCents: 8900 };
  await step(mainId, added(keyboard), addItem(keyboard));
  const cable = { sku: 'CB-02', name: 'USB-C cable', quantity: 2, unitPriceCents: 950 };
  await step(mainId, added(cable), addItem(cable));
  const mat = { sku: 'DM-03', name: 'Desk mat', quantity: 3, unitPriceCents: 1900 };
  await step(mainId, added(mat), addItem(mat));
  await step(mainId, `removed ${cable.name}`, removeItem(cable.sku));
  await step(mainId, `shipping address set (${formatPlace(ADA)})`, setShippingAddress(ADA));
  await step(mainId, `billing address set (${formatPlace(ADA_ACCOUNTS)})`, setBillingAddress(ADA_ACCOUNTS));

  // A command that breaks a rule throws; the exec rejects with its error and stores nothing.
  try {
    await orders.exec(mainId, shipOrder('Parcelforce', 'PF-1'));
  } catch (error) {
    log(`  ✗ refused: ${error instanceof Error ? error.message : String(error)}`);
  }

  await step(mainId, (state) => `confirmed, total ${formatCents(orderTotals(state).totalCents)}`, confirmOrder());
  await step(mainId, 'shipped with Parcelforce, tracking PF-7731', shipOrder('Parcelforce', 'PF-7731'));
  const final = await step(mainId, 'delivered, signed by A. Lovelace', deliverOrder('A. Lovelace'));

  log('');
  log(`Order ${formatId(secondId)}`);
  await step(secondId, 'created for grace@example.com', createOrder('grace@example.com'));
  const handbook = { sku: 'BK-09', name: 'Compiler handbook', quantity: 1, unitPriceCents: 4200 };
  await step(secondId, added(handbook), addItem(handbook));
  await step(secondId, `shipping address set (${formatPlace(GRACE)})`, setShippingAddress(GRACE));
  await step(secondId, `billing address set (${formatPlace(GRACE)})`, setBillingAddress(GRACE));
  await step(secondId, (state) => `confirmed, total ${formatCents(orderTotals(state).totalCents)}`, confirmOrder());

  log('');
  log(`Final state of ${formatId(mainId)}:`);
  for (const line of describeOrder(final, orderTotals(final))) log(`  ${line}`);

  log('');
  log('Orders by status (store.listAggregatesByStatus):');
  for (const status of ORDER_STATUSES) {
    const entries = await store.listAggregatesByStatus(status);
    const listed = entries.map((entry) => `${formatId(entry.id)} since ${entry.timestamp.toISOString()}`);
    log(`  ${status.padEnd(10)} ${listed.length === 0 ? '(none)' : listed.join(', ')}`);
  }

  log('');
  log('Orders by label (store.listAggregatesByLabel):');
  for (const customer of await store.listLabelValues('customer')) {
    const ids = await store.listAggregatesByLabel('customer', customer);
    log(`  customer=${customer.padEnd(18)} ${ids.map(formatId).join(', ')}`);
  }

  log('');
  log(`Snapshot of ${formatId(mainId)} (executor.saveSnapshot, then store.getSnapshot):`);
  await orders.saveSnapshot(mainId);
  const snapshot = await store.getSnapshot<OrderState>(mainId);
  log(`  nextSequence   ${snapshot.nextSequence} (the snapshot covers events 0..${snapshot.nextSequence - 1})`);
  log(`  snapshotBytes  ${snapshot.snapshotBytes}`);
  log(`  trailing       ${snapshot.events.length} events, ${snapshot.eventBytes} bytes`);
  // Without `trimEvents` the history stays: the snapshot only shortens the next cold load.
  log(`  events kept    ${(await store.getEvents(mainId)).length} (trimEvents is off)`);

  return final;
}
