import type { Sql } from 'postgres';
import { appendBatchStatement, appendStatement, type AppendAttempt, type StoredAppend } from './append-statement.js';
import { isConnectionLoss } from './errors.js';

/** Most appends one statement carries. */
const MAX_APPENDS_PER_CALL = 64;

/** Event data (UTF-16 code units) beyond which a statement takes no further append: large appends travel alone. */
const MAX_CHARS_PER_CALL = 1 << 20;

interface Waiting {
  readonly append: StoredAppend;
  resolve(attempt: AppendAttempt): void;
  reject(error: unknown): void;
}

/**
 * Sends concurrent appends of one store together, each keeping its own sequence check and
 * outcome (see `appendBatchStatement`): group commit, one round trip, one socket write and one
 * commit (with its WAL flush) for many appends. Measured at 64 in flight over 10,000 aggregates on
 * a 2-core machine: about 12,500 appends/s against 3,800 with one statement per append, the
 * client's CPU per append down from about 150 to 55 µs and the server's from 280 to 55 µs.
 *
 * Appends go through connections of their own, one statement on each at a time. An append that
 * finds one free and nothing waiting goes out at once on its own statement (a sequential writer
 * pays no batching delay, and its statement is the single-append one); others wait until the
 * current tick's work is done, or, while every connection is busy, until one answers, and then
 * travel together. Connections of their own, so a batch never queues in the driver behind a read
 * (or a read behind a batch), and the number in flight is exactly the number of connections.
 *
 * One statement holds at most one append per aggregate (the others wait for the next). When a
 * batch fails for a reason other than a lost connection (a deadlock with another batch, an error
 * one append caused), nothing of it was written, and each append is sent again alone, so each
 * gets its own outcome. When the connection is lost, every append of the batch fails with that
 * error: as for a single append, whether it committed is unknown.
 */
export class AppendBatcher {
  readonly #connections: readonly Sql[];
  /** Connections with no statement of ours in flight. */
  readonly #free: Sql[];
  #waiting: Waiting[] = [];
  #flushScheduled = false;

  /** @param connections - one-connection instances, each used for one statement at a time */
  constructor(connections: readonly Sql[]) {
    this.#connections = connections;
    this.#free = [...this.#connections];
  }

  /** Appends `append` in a statement of its own or together with others; resolves with its own outcome. */
  submit(append: StoredAppend): Promise<AppendAttempt> {
    const connection = this.#waiting.length === 0 ? this.#free.pop() : undefined;
    if (connection === undefined) {
      return new Promise<AppendAttempt>((resolve, reject) => {
        this.#waiting.push({ append, resolve, reject });
        this.#schedule();
      });
    }
    return new Promise<AppendAttempt>((resolve, reject) => {
      void this.#send(connection, [{ append, resolve, reject }]).finally(() => this.#release(connection));
    });
  }

  /** Ends the connections (after the statements in flight). */
  async close(): Promise<void> {
    await Promise.all(this.#connections.map((connection) => connection.end({ timeout: 5 })));
  }

  #release(connection: Sql): void {
    this.#free.push(connection);
    if (this.#waiting.length > 0) this.#schedule();
  }

  #schedule(): void {
    if (this.#flushScheduled || this.#free.length === 0) return;
    this.#flushScheduled = true;
    process.nextTick(() => {
      this.#flushScheduled = false;
      for (;;) {
        const connection = this.#waiting.length > 0 ? this.#free.pop() : undefined;
        if (connection === undefined) return;
        void this.#send(connection, this.#takeBatch()).finally(() => this.#release(connection));
      }
    });
  }

  /**
   * The next batch: waiting appends in arrival order, one per aggregate, within the caps; sorted
   * by aggregate, so concurrent batches lock their head rows in one order (fewer deadlocks).
   */
  #takeBatch(): Waiting[] {
    const batch: Waiting[] = [];
    const rest: Waiting[] = [];
    const aggregates = new Set<string>();
    let chars = 0;
    for (const waiting of this.#waiting) {
      const size = waiting.append.events.reduce((sum, [type, , data]) => sum + type.length + data.length, 0);
      const fits = batch.length === 0 || (batch.length < MAX_APPENDS_PER_CALL && chars + size <= MAX_CHARS_PER_CALL);
      if (fits && !aggregates.has(waiting.append.aggregate)) {
        batch.push(waiting);
        aggregates.add(waiting.append.aggregate);
        chars += size;
      } else {
        rest.push(waiting);
      }
    }
    this.#waiting = rest;
    return batch.sort((a, b) => (a.append.aggregate < b.append.aggregate ? -1 : a.append.aggregate > b.append.aggregate ? 1 : 0));
  }

  /** Sends `batch` on `connection`; settles every append of it; resolves once the connection can take the next statement. */
  async #send(connection: Sql, batch: readonly Waiting[]): Promise<void> {
    if (batch.length === 1) {
      await this.#sendAlone(connection, batch[0] as Waiting);
      return;
    }
    let attempts: AppendAttempt[];
    try {
      attempts = await appendBatchStatement(
        connection,
        batch.map((waiting) => waiting.append),
      );
    } catch (error) {
      if (isConnectionLoss(error)) {
        for (const waiting of batch) waiting.reject(error);
        return;
      }
      for (const waiting of batch) await this.#sendAlone(connection, waiting);
      return;
    }
    batch.forEach((waiting, i) => waiting.resolve(attempts[i] as AppendAttempt));
  }

  async #sendAlone(connection: Sql, waiting: Waiting): Promise<void> {
    try {
      waiting.resolve(await appendStatement(connection, waiting.append));
    } catch (error) {
      waiting.reject(error);
    }
  }
}
