/**
 * A read model of orders kept up to date from the store's events: how many orders are in each
 * status and what they are worth. It never loads an aggregate; it folds the events it is handed,
 * so any number of processes can keep one, each from the same store.
 *
 * Folding is idempotent: each order remembers the last sequence the model applied, and an event at
 * or below it is skipped. A projection delivers at least once (a batch whose checkpoint was not
 * stored, after a crash, comes again), so that is what keeps a redelivered event from counting
 * twice. `save` writes the model to a file atomically, so a process killed at any moment leaves
 * either the old model or the new one on disk, never a torn one.
 */
import { open, readFile, rename } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { makeDispatcher, type Event, type EventHandler } from '@timebox/core';
import { ORDER_STATUSES, type OrderEvents, type OrderStatus } from './order-domain.js';

interface OrderLineTotal {
  readonly quantity: number;
  readonly unitPriceCents: number;
}

interface OrderSummary {
  status: OrderStatus;
  /** The last sequence of this order the model applied; an event at or below it was applied already. */
  upTo: number;
  /** sku → quantity × unit price, as the order's lines stand. */
  readonly lines: Map<string, OrderLineTotal>;
}

/** One row of the report: the orders in a status, their item count and their total value. */
export interface StatusRow {
  readonly status: OrderStatus;
  readonly orders: number;
  readonly items: number;
  readonly totalCents: number;
}

/** The read model as its file holds it. */
export interface OrderReadModelData {
  readonly format: typeof FORMAT;
  /** Distinct events applied (every type, including those the model does not need), each once. */
  readonly eventsApplied: number;
  readonly orders: Readonly<
    Record<string, { readonly status: OrderStatus; readonly upTo: number; readonly lines: Readonly<Record<string, OrderLineTotal>> }>
  >;
}

const FORMAT = 'timebox-example/order-read-model@1';

export class OrderReadModel {
  /** The `format` its data (`toJSON`) carries. */
  static readonly FORMAT = FORMAT;
  readonly #orders = new Map<string, OrderSummary>();
  #eventsApplied = 0;
  /** Events handed to this instance that it had applied already (redelivered after a crash), and skipped. */
  duplicatesSkipped = 0;

  /** Distinct events applied (every type, including those the model does not need): redeliveries are not counted. */
  get eventsApplied(): number {
    return this.#eventsApplied;
  }

  /** A handler of one event (for `store.subscribe` or `store.project`); it applies the event once. */
  readonly handler: EventHandler<Partial<OrderEvents>> = (event) => void this.apply(event);

  /** Applies one event unless the model has it already; says whether it applied it. */
  apply(event: Event): boolean {
    const key = event.aggregateId.join('/');
    const order = this.#orders.get(key);
    if (order !== undefined && event.sequence <= order.upTo) {
      this.duplicatesSkipped++;
      return false;
    }
    void this.#dispatch(event);
    // OrderCreated made the order just now; any other event needs it to exist.
    this.#order(event.aggregateId).upTo = event.sequence;
    this.#eventsApplied++;
    return true;
  }

  readonly #dispatch = makeDispatcher<OrderEvents>({
    OrderCreated: (_, event) => void this.#orders.set(event.aggregateId.join('/'), { status: 'open', upTo: -1, lines: new Map() }),
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

  /** Every order the model holds, by `id.join('/')`, with its status. */
  statuses(): Map<string, OrderStatus> {
    return new Map([...this.#orders].map(([key, order]) => [key, order.status]));
  }

  toJSON(): OrderReadModelData {
    const orders: Record<string, OrderReadModelData['orders'][string]> = {};
    for (const [key, order] of this.#orders)
      orders[key] = { status: order.status, upTo: order.upTo, lines: Object.fromEntries(order.lines) };
    return { format: FORMAT, eventsApplied: this.#eventsApplied, orders };
  }

  /** The model `toJSON` gave; throws on anything else (say, a file from another program). */
  static fromJSON(data: unknown): OrderReadModel {
    const format = (data as { format?: unknown } | null)?.format;
    if (format !== FORMAT) throw new Error(`not an order read model (format ${JSON.stringify(format)}, expected ${FORMAT})`);
    const model = new OrderReadModel();
    const { eventsApplied, orders } = data as OrderReadModelData;
    model.#eventsApplied = eventsApplied;
    for (const [key, order] of Object.entries(orders)) {
      model.#orders.set(key, { status: order.status, upTo: order.upTo, lines: new Map(Object.entries(order.lines)) });
    }
    return model;
  }

  /** Loads the model from `file`; an empty model when the file does not exist yet. */
  static async load(file: string): Promise<OrderReadModel> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new OrderReadModel();
      throw error;
    }
    return OrderReadModel.fromJSON(JSON.parse(text));
  }

  /** Writes the model to `file` atomically and durably; see `writeFileAtomically`. */
  async save(file: string): Promise<void> {
    await writeFileAtomically(file, JSON.stringify(this));
  }

  #order(id: readonly string[]): OrderSummary {
    const order = this.#orders.get(id.join('/'));
    // Every order starts with OrderCreated, and the store hands each order's events in order.
    if (order === undefined) throw new Error(`read model: ${id.join('/')} has events before OrderCreated`);
    return order;
  }
}

/**
 * Replaces `file` with `text` so that a crash at any point leaves the old content or the new, and
 * once it resolves the new content survives a power cut: write a temporary file beside it, fsync
 * it, rename it over `file` (atomic within a file system), then fsync the folder so the rename
 * itself is on disk.
 */
export async function writeFileAtomically(file: string, text: string): Promise<void> {
  const temporary = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  const handle = await open(temporary, 'w');
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, file);
  const folder = await open(dirname(file), 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
}
