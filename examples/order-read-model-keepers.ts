/**
 * Where the order read model is kept durably, and how a projection's batch reaches it. Two forms:
 *
 * - `FileReadModel` (any backend): the model lives in this process and in a file. A batch is
 *   applied, the whole model is written to the file atomically, and only then does the handler
 *   resolve, after which the store saves the checkpoint. The file may run one batch ahead of the
 *   checkpoint (a crash between the two), never behind; the batch then comes again and the model
 *   skips what it has.
 * - `PostgresReadModel` (the PostgreSQL backend): the model lives in tables of the store's own
 *   database, written through the batch's transaction (`transactional: true`), in which the store
 *   then saves the checkpoint: both commit or neither does, so every event changes the model
 *   exactly once.
 */
import type { Event, ProjectionContext } from '@timebox/core';
import postgres, { type Sql, type TransactionSql } from 'postgres';
import { OrderReadModel, type OrderReadModelData } from './order-read-model.js';

/** Counts after a batch was written: distinct events applied in all, and redelivered events this process skipped. */
export interface BatchReport {
  readonly eventsApplied: number;
  readonly duplicatesSkipped: number;
}

export interface ReadModelKeeper {
  /** Where the model is, for messages. */
  readonly where: string;
  /** True when batches must run with `transactional: true` (the handler writes through `context.transaction`). */
  readonly transactional: boolean;
  /** The model as it is kept now. */
  load(): Promise<OrderReadModel>;
  /** Applies a batch and writes it: durable once this resolves, or (transactional) once the batch's transaction commits. */
  handleBatch(events: readonly Event[], context: ProjectionContext): Promise<BatchReport>;
  close(): Promise<void>;
}

/** The read model in this process and in a file, written atomically after each batch. */
export class FileReadModel implements ReadModelKeeper {
  readonly transactional = false;
  #model: OrderReadModel | undefined;

  constructor(readonly file: string) {}

  get where(): string {
    return `file ${this.file}`;
  }

  /** The file's model, read once; after that this process's copy, which every batch writes back. */
  async load(): Promise<OrderReadModel> {
    this.#model ??= await OrderReadModel.load(this.file);
    return this.#model;
  }

  async handleBatch(events: readonly Event[]): Promise<BatchReport> {
    const model = await this.load();
    for (const event of events) model.apply(event);
    await model.save(this.file);
    return { eventsApplied: model.eventsApplied, duplicatesSkipped: model.duplicatesSkipped };
  }

  async close(): Promise<void> {}
}

const ORDERS_TABLE = 'example_order_read_model';
const TOTALS_TABLE = 'example_order_read_model_totals';

interface OrderRow {
  order_key: string;
  status: OrderReadModelData['orders'][string]['status'];
  up_to: number;
  lines: OrderReadModelData['orders'][string]['lines'];
}

/**
 * The read model in two tables of the store's PostgreSQL database, one row per order and one of
 * totals per store prefix. Each batch reads the rows of the orders it touches, applies its events
 * and writes those rows back, all in the batch's transaction.
 */
export class PostgresReadModel implements ReadModelKeeper {
  readonly transactional = true;
  #duplicatesSkipped = 0;

  private constructor(
    readonly sql: Sql,
    /** The store prefix whose orders the rows hold. */
    readonly prefix: string,
  ) {}

  /** Connects to `url` and creates the tables if they are missing. */
  static async open(url: string, prefix: string): Promise<PostgresReadModel> {
    const sql = postgres(url, { max: 2, onnotice: () => undefined });
    try {
      await sql.begin(async (tx) => {
        // Two processes creating the same table at once would collide; the lock takes turns.
        await tx`SELECT pg_advisory_xact_lock(hashtext(${ORDERS_TABLE}))`;
        await tx`CREATE TABLE IF NOT EXISTS ${tx(ORDERS_TABLE)} (
          prefix text NOT NULL, order_key text NOT NULL, status text NOT NULL, up_to integer NOT NULL, lines jsonb NOT NULL,
          PRIMARY KEY (prefix, order_key))`;
        await tx`CREATE TABLE IF NOT EXISTS ${tx(TOTALS_TABLE)} (prefix text PRIMARY KEY, events_applied bigint NOT NULL)`;
      });
    } catch (error) {
      await sql.end({ timeout: 1 });
      throw error;
    }
    return new PostgresReadModel(sql, prefix);
  }

  get where(): string {
    return `tables ${ORDERS_TABLE} and ${TOTALS_TABLE} (prefix ${this.prefix})`;
  }

  async load(): Promise<OrderReadModel> {
    return this.#read(this.sql, undefined);
  }

  async handleBatch(events: readonly Event[], context: ProjectionContext): Promise<BatchReport> {
    const tx = context.transaction as TransactionSql | undefined;
    if (tx === undefined) throw new Error('PostgresReadModel needs the batch transaction: run the projection with transactional: true');
    const keys = [...new Set(events.map((event) => event.aggregateId.join('/')))];
    const model = await this.#read(tx, keys);
    for (const event of events) model.apply(event);
    this.#duplicatesSkipped += model.duplicatesSkipped;
    const rows = Object.entries(model.toJSON().orders).map(([key, { status, upTo, lines }]) => ({
      order_key: key,
      status,
      up_to: upTo,
      lines,
    }));
    await tx`
      INSERT INTO ${tx(ORDERS_TABLE)} (prefix, order_key, status, up_to, lines)
      SELECT ${this.prefix}, r.order_key, r.status, r.up_to, r.lines
        FROM jsonb_to_recordset(${JSON.stringify(rows)}::text::jsonb) AS r(order_key text, status text, up_to integer, lines jsonb)
      ON CONFLICT (prefix, order_key) DO UPDATE SET status = EXCLUDED.status, up_to = EXCLUDED.up_to, lines = EXCLUDED.lines`;
    await tx`
      INSERT INTO ${tx(TOTALS_TABLE)} (prefix, events_applied) VALUES (${this.prefix}, ${model.eventsApplied})
      ON CONFLICT (prefix) DO UPDATE SET events_applied = EXCLUDED.events_applied`;
    return { eventsApplied: model.eventsApplied, duplicatesSkipped: this.#duplicatesSkipped };
  }

  async close(): Promise<void> {
    await this.sql.end({ timeout: 5 });
  }

  /** The model's totals and the rows of `keys` (every order when undefined), through `sql`. */
  async #read(sql: Sql | TransactionSql, keys: readonly string[] | undefined): Promise<OrderReadModel> {
    const totals = await sql<{ events_applied: string }[]>`SELECT events_applied FROM ${sql(TOTALS_TABLE)} WHERE prefix = ${this.prefix}`;
    const rows =
      keys === undefined
        ? await sql<OrderRow[]>`SELECT order_key, status, up_to, lines FROM ${sql(ORDERS_TABLE)} WHERE prefix = ${this.prefix}`
        : await sql<OrderRow[]>`
            SELECT order_key, status, up_to, lines FROM ${sql(ORDERS_TABLE)}
             WHERE prefix = ${this.prefix} AND order_key IN (SELECT jsonb_array_elements_text(${JSON.stringify(keys)}::text::jsonb))`;
    return OrderReadModel.fromJSON({
      format: OrderReadModel.FORMAT,
      eventsApplied: Number(totals[0]?.events_applied ?? 0),
      orders: Object.fromEntries(rows.map((row) => [row.order_key, { status: row.status, upTo: row.up_to, lines: row.lines }])),
    } satisfies OrderReadModelData);
  }
}
